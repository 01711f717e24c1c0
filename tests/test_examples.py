"""The examples run as users run them, against a real registry."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registryv2 import get_image_info, get_manifest, list_tags, push_docker_tar

from .archives import simple_image, write_docker25, write_legacy
from .servers import RegistryServer, skopeo_to_dir

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).parent.parent / "examples"


def _run_example(
    script: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> list[str]:
    """Run ``examples/script`` as a user does; its lines of output, once it has succeeded."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_a_script_written_for_the_async_library_runs_once_await_is_deleted(
    tmp_path: Path,
) -> None:
    registry = RegistryServer(tmp_path / "registry")
    try:
        write_legacy(tmp_path / "my-image.tar", [simple_image(seed="mine")])
        write_docker25(tmp_path / "exported-image.tar", [simple_image(tag="exported/app:2.1")])
        lines = _run_example(
            "migrated_from_async.py", cwd=tmp_path, env={"REGISTRY_URL": registry.url}
        )
        assert lines[0] == "Registry accessible: True"
        pushed = get_manifest(registry.url, "myapp", "v1.0.0")["digest"]
        assert lines[1] == f"Upload complete: {pushed}"
        original = get_manifest(registry.url, "exported/app", "2.1")["digest"]
        assert lines[2] == f"Pushed with original tags: {original}"
        assert lines[3] == "Repositories: ['exported/app', 'myapp']"
        assert list_tags(registry.url, "myapp") == ["v1.0.0"]
    finally:
        registry.stop()


def test_the_notebook_runs_with_progress_bars(
    registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    archive = write_legacy(tmp_path / "app.tar", [simple_image(n_layers=24)])
    monkeypatch.setenv("REGISTRY", registry.url)
    monkeypatch.setenv("ARCHIVE", str(archive))
    notebook = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    results = [
        next(
            (o["data"]["text/plain"] for o in c.outputs if o["output_type"] == "execute_result"), ""
        )
        for c in code
    ]
    digest = get_manifest(registry.url, "notebook/app", "v1")["digest"]
    assert results[1] == repr(digest)
    assert "'notebook/app'" in results[2] and "['v1']" in results[2]
    assert (
        results[3]
        == "('amd64', 'linux', 24, "
        + str(get_image_info(registry.url, "notebook/app", "v1")["total_size"])
        + ")"
    )
    assert results[4] == repr(digest)
    assert (tmp_path / "pulled.tar").exists()
    # progress=True drew one output for the push and one for the pull (the config and 24
    # layers each), updated in place to its end: no bar left per blob, no widget state to save.
    for cell in (code[1], code[4]):
        [shown] = [o for o in cell.outputs if o["output_type"] == "display_data"]
        assert shown["data"]["text/plain"].startswith("[########################] 100%  ")
        assert " 25/25 blobs, " in shown["data"]["text/plain"]
        assert shown["data"]["text/html"].count("<progress ") == 1
    assert "widgets" not in notebook.metadata
    assert len(nbformat.writes(notebook)) < 100_000  # type: ignore[no-untyped-call]


def test_the_api_works_inside_a_running_event_loop(
    registry: RegistryServer, tmp_path: Path
) -> None:
    """A notebook, or an async application, calls the blocking API from inside its loop."""
    archive = write_legacy(tmp_path / "app.tar", [simple_image()])

    async def inside() -> tuple[str, list[str]]:
        digest = push_docker_tar(archive, registry.url, "loop/app", "v1")
        return digest, list_tags(registry.url, "loop/app")

    digest, tags = asyncio.run(inside())
    assert tags == ["v1"] and digest == get_manifest(registry.url, "loop/app", "v1")["digest"]


def test_each_task_script_runs_against_a_real_registry(
    registry: RegistryServer, other: RegistryServer, tmp_path: Path
) -> None:
    image = simple_image(tag="docker.io/examples/tool:1.0", seed="tasks", n_layers=3)
    image.tags.append("examples/tool:latest")
    archive = write_docker25(tmp_path / "app.tar", [image])
    out = _run_example("push.py", str(archive), registry.host, cwd=tmp_path)
    assert out[0] == "tags in the archive: ['docker.io/examples/tool:1.0', 'examples/tool:latest']"
    digest = get_manifest(registry.url, "examples/app", "v1")["digest"]
    assert out[1] == f"examples/app:v1 {digest}"
    # The layers went up byte for byte: every name carries the same manifest.
    assert out[2] == f"first original tag {digest}"
    assert out[3] == f"every original tag {[digest, digest]}"
    assert sorted(list_tags(registry.url, "examples/tool")) == ["1.0", "latest"]

    pulled = tmp_path / "pulled.tar"
    out = _run_example("pull.py", registry.host, "examples/app", "v1", str(pulled), cwd=tmp_path)
    assert out[0] == f"wrote {pulled} {digest}"
    assert out[1].endswith(" 3 layers")
    checked = skopeo_to_dir(f"docker-archive:{pulled}", tmp_path / "checked")
    assert len(checked["layers"]) == 3

    target = f"{other.host}/mirror/app:v1"
    out = _run_example(
        "copy_and_tag.py", f"{registry.host}/examples/app:v1", target, "stable", cwd=tmp_path
    )
    assert out == [
        f"copied {registry.host}/examples/app:v1 -> {target} {digest}",
        f"tagged stable {digest}",
    ]
    assert sorted(list_tags(other.url, "mirror/app")) == ["stable", "v1"]

    out = _run_example("list_and_inspect.py", other.host, cwd=tmp_path)
    manifest = get_manifest(other.url, "mirror/app", "v1")
    size = sum(layer["size"] for layer in manifest["layers"])
    assert sorted(out) == [
        f"mirror/app:{t} {digest} linux/amd64 3 layers {size} bytes" for t in ("stable", "v1")
    ]

    out = _run_example("delete.py", other.host, "mirror/app", "v1", cwd=tmp_path)
    assert out[0] == f"deleting {digest} and its tags ['stable', 'v1']"
    assert out[1] == "left: []"
