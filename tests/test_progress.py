"""``progress=True`` where it is read: a few plain lines in a log file, one output updated in
place in a notebook (a real Jupyter kernel); the terminal is tests/test_cli_terminal.py's."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from registryv2 import get_manifest

from .archives import write_big_legacy
from .servers import RegistryServer

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
LINE = re.compile(r"(?P<label>\S+): (?P<done>\d+)/(?P<total>\d+) blobs, [\d.]+ \w+ of [\d.]+ \w+, ")


def test_progress_in_a_log_file_is_a_few_plain_lines(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "app.tar", "app:v1", [6 * MiB, 3 * MiB, 1 * MiB])
    log = tmp_path / "stderr.log"
    script = (
        "import sys\n"
        "from registryv2 import pull_docker_tar, push_docker_tar\n"
        "push_docker_tar(sys.argv[1], sys.argv[2], sys.argv[3], 'v1', progress=True)\n"
        "pull_docker_tar(sys.argv[4], sys.argv[2], sys.argv[3], 'v1', progress=True)\n"
    )
    with open(log, "w") as stderr:
        subprocess.run(
            [sys.executable, "-c", script, str(tar), registry.url, repo, str(tmp_path / "p.tar")],
            stderr=stderr,
            check=True,
            timeout=120,
        )
    assert get_manifest(registry.url, repo, "v1")["layers"]
    text = log.read_text()
    assert "\x1b" not in text and "\r" not in text, repr(text[:500])
    lines = text.splitlines()
    assert 4 <= len(lines) <= 8, lines  # a run's start and end, for the push and the pull
    found = [LINE.match(line) for line in lines]
    assert all(found), lines
    # The push (config and three layers), then the pull, each to its end.
    ends = [m for m in found if m and m["done"] == m["total"]]
    assert [m["label"] for m in ends] == [repo, f"{registry.host}/{repo}"]
    assert ends[0]["total"] == "4" and int(ends[1]["total"]) >= 3


def _run_cells(cells: list[str]) -> list[list[Any]]:
    """Run ``cells`` in a real Jupyter kernel; each cell's outputs just after it ran, and then
    (last) every cell's outputs at the end."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell(c) for c in cells])  # type: ignore[no-untyped-call]
    client = NotebookClient(notebook, timeout=60)
    seen: list[list[Any]] = []
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
            seen.append(copy.deepcopy([c.outputs for c in notebook.cells]))
    return seen


def _shown(outputs: list[Any]) -> tuple[list[str], int]:
    """The text form of a cell's one progress output, and how many bars its HTML draws."""
    [output] = outputs
    assert output["output_type"] == "display_data", output
    html = output["data"]["text/html"]
    return output["data"]["text/plain"].splitlines(), html.count("<progress ")


def test_a_notebook_shows_one_output_with_the_blobs_in_flight() -> None:
    setup = """
from registryv2.events import TransferEvent
from registryv2.progress import progress_callback

progress = progress_callback(True)
a, b, c = ("sha256:" + x * 64 for x in "abc")
event = lambda *args: progress(TransferEvent(args[0], "team/app", *args[1:]))
event("plan", "", 3 * 1024, 0, None, 3)
for blob in (a, b, c):
    event("start", blob, 1024)
event("progress", a, 1024, 512)
event("done", c, 1024, 1024, "exists")
type(progress).__name__
"""
    finish = 'event("done", a, 1024, 1024, "uploaded"); event("done", b, 1024, 1024, "mounted")'
    again = 'event("plan", "", 10, 0, None, 1); event("done", c, 10, 10, "exists")'
    midway, finished, second = _run_cells([setup, finish, again])

    *shown, result = midway[0]
    assert result["data"]["text/plain"] == "'NotebookProgress'"
    text, bars = _shown(shown)
    # The run's bar, then a bar for each blob in flight (not c, which is done).
    assert text[0].startswith("[############............]  50%  team/app: 1/3 blobs"), text
    assert [line.split()[0] for line in text[1:]] == ["a" * 12, "b" * 12] and bars == 3

    # The blobs done, their bars gone: the same output, updated in place, at 100%.
    text, bars = _shown(finished[0][:1])
    assert text == [text[0]] and bars == 1
    assert text[0].startswith("[########################] 100%  team/app: 3/3 blobs"), text
    assert finished[1] == []

    # The next transfer shows in the cell that runs it; the first one's output stays.
    assert second[0][:1] == finished[0][:1]
    text, _ = _shown(second[2])
    assert text[0].startswith("[########################] 100%  team/app: 1/1 blobs"), text


def test_a_sync_is_one_run_over_the_set(
    registry: RegistryServer, other: RegistryServer, tmp_path: Path
) -> None:
    """Progress over a whole sync: one run from the first image to the last, counting images
    as well as blobs, in plain lines when standard error is a file."""
    import io

    from registryv2 import RegistryClient, sync
    from registryv2.progress import LineProgress

    from .archives import simple_image, write_legacy

    with RegistryClient(registry.url) as client:
        for n in range(3):
            tar = write_legacy(tmp_path / f"{n}.tar", [simple_image(f"s{n}:v1", seed=f"s{n}")])
            client.push(tar, f"progress-set/s{n}", "v1")
    out = io.StringIO()
    doc = {registry.host: {"images": {f"progress-set/s{n}": ["v1"] for n in range(3)}}}
    report = sync(doc, f"{other.host}/mirror", progress=LineProgress(out))
    assert report.copied == 3
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    # It begins with the set and ends once, when the last image is done, with every blob.
    assert lines[0].startswith(f"{other.host}/mirror: 0/3 images, "), lines
    assert re.match(rf"{re.escape(other.host)}/mirror: 3/3 images, (\d+)/\1 blobs, ", lines[-1])
    assert sum(" 3/3 images" in line for line in lines) == 1, lines
