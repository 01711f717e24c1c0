"""Bad layouts, bad names and bad destinations: one line, exit 2, nothing half-written.

Every case runs the real command in a subprocess against a real registry, and then checks what
is left where it would have written: nothing new in the registry, the directory as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .archives import OCI_INDEX, sha256, simple_image, write_oci_dir
from .servers import RegistryServer

pytestmark = pytest.mark.integration


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registryv2", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def refused(done: subprocess.CompletedProcess[str], status: int, *said: str) -> None:
    assert done.returncode == status, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for text in said:
        assert text in lines[0], lines[0]


def tags_of(registry: RegistryServer, repo: str) -> list[str]:
    import requests

    response = requests.get(f"{registry.url}/v2/{repo}/tags/list", timeout=10)
    return list(response.json().get("tags") or []) if response.status_code == 200 else []


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest[7:]


def _index(layout: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((layout / "index.json").read_text())
    return doc


def _layer(layout: Path) -> str:
    """The digest of the first layer of the layout's image."""
    top = _index(layout)["manifests"]
    assert isinstance(top, list)
    manifest = json.loads(_blob(layout, top[0]["digest"]).read_text())
    return str(manifest["layers"][0]["digest"])


def _no_oci_layout(layout: Path) -> str:
    (layout / "oci-layout").unlink()
    return "no oci-layout file"


def _unknown_version(layout: Path) -> str:
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "9.9.9"}')
    return "imageLayoutVersion '9.9.9'"


def _missing_blob(layout: Path) -> str:
    layer = _layer(layout)
    _blob(layout, layer).unlink()
    return f"blob {layer} is listed but not in the layout"


def _changed_blob(layout: Path) -> str:
    layer = _layer(layout)
    path = _blob(layout, layer)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    return layer


def _symlink_out(layout: Path) -> str:
    layer = _layer(layout)
    outside = layout.parent / "outside"
    shutil.move(_blob(layout, layer), outside)
    os.symlink("../../../outside", _blob(layout, layer))
    return "is a link that leaves the layout"


def _self_index(layout: Path) -> str:
    # An index that lists itself can only do so by digest: one listing a second that lists the
    # first is the nearest a file can come, and both are refused as a cycle.
    manifests = _index(layout)["manifests"]
    assert isinstance(manifests, list)
    inner = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [manifests[0]]}
    raw = json.dumps(inner).encode()
    _blob(layout, sha256(raw)).write_bytes(raw)
    entry = {"mediaType": OCI_INDEX, "digest": sha256(raw), "size": len(raw)}
    for _ in range(6):
        raw = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
        ).encode()
        _blob(layout, sha256(raw)).write_bytes(raw)
        entry = {"mediaType": OCI_INDEX, "digest": sha256(raw), "size": len(raw)}
    entry["annotations"] = {"org.opencontainers.image.ref.name": "deep"}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return "indexes nested more than 4 deep"


BROKEN: dict[str, Callable[[Path], str]] = {
    "no-oci-layout": _no_oci_layout,
    "unknown-version": _unknown_version,
    "missing-blob": _missing_blob,
    "changed-blob": _changed_blob,
    "symlink-out": _symlink_out,
    "nested-index": _self_index,
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_layout_is_refused_in_one_line(
    case: str, registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    layout = write_oci_dir(tmp_path / "layout", simple_image(tag="x:1", seed="bad"), ref="v1")
    said = BROKEN[case](layout)
    target = f"{registry.host}/{repo}:v1"
    # A nested index is only walked whole: with --all (one platform asks for a platform first).
    done = run("push", "--all", f"oci:{layout}", target)
    if case == "changed-blob":
        # Found only when the bytes are read: a data error (1), and the manifest never goes up.
        refused(done, 1, said, "digest")
    else:
        refused(done, 2, said)
    assert tags_of(registry, repo) == []
    out = tmp_path / "out"
    done = run("copy", "--all", f"oci:{layout}", f"oci:{out}")
    assert done.returncode in (1, 2) and len(done.stderr.splitlines()) == 1, done.stderr
    assert not out.exists()


def test_a_name_that_is_not_there_lists_those_that_are(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    layout = write_oci_dir(tmp_path / "layout", simple_image(tag="x:1", seed="names"), ref="v1")
    done = run("push", f"oci:{layout}:v2", f"{registry.host}/{repo}")
    refused(done, 2, "'v2' matches no image", "#0 v1 (sha256:")
    assert tags_of(registry, repo) == []


def test_several_images_and_no_name_lists_them(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    previous: list[object] = []
    for n in range(12):
        image = simple_image(tag=f"x:{n}", seed=f"many-{n}")
        write_oci_dir(tmp_path / f"l{n}", image, ref=f"r{n}")
        shutil.copytree(tmp_path / f"l{n}", layout, dirs_exist_ok=True)
        if previous:
            merged = json.loads((layout / "index.json").read_text())
            merged["manifests"] = previous + merged["manifests"]
            (layout / "index.json").write_text(json.dumps(merged))
        previous = json.loads((layout / "index.json").read_text())["manifests"]
    done = run("push", str(layout), f"{registry.host}/{repo}:v1")
    # The first few, then how many more: one line, however many images there are.
    refused(done, 2, "holds 12 images", "#0 r0", "and 4 more")
    assert len(done.stderr) < 1000


def test_a_destination_that_is_not_a_layout_is_left_alone(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    source = write_oci_dir(tmp_path / "layout", simple_image(tag="x:1", seed="dest"), ref="v1")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    done = run("copy", f"oci:{source}", f"oci:{busy}")
    refused(done, 2, "neither empty nor an OCI image layout")
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    done = run("pull", f"{registry.host}/{repo}:v1", "-o", str(tmp_path / "no" / "dir") + "/")
    refused(done, 2, "does not exist")
    assert not (tmp_path / "no").exists()


def test_reading_from_standard_input_and_writing_to_a_terminal_are_refused(
    tmp_path: Path,
) -> None:
    done = run("push", "-", "localhost:1/x:1")
    refused(done, 2, "standard input is not supported")
    source = write_oci_dir(tmp_path / "layout", simple_image(tag="x:1", seed="tty"), ref="v1")
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "registryv2", "copy", f"oci:{source}", "-"],
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    refused(done, 2, "refusing to write an archive to a terminal")
