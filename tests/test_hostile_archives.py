"""Hostile archives: bounded work, bounded disk, no waiting on a FIFO, one clear error."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from pathlib import Path

import pytest

from registryv2 import ImageArchive, TarReadError, push_docker_tar, validate_docker_tar

from .archives import (
    OCI_INDEX,
    SampleImage,
    _add,
    layer_tar,
    sha256,
    simple_image,
    write_docker25,
    write_legacy,
)
from .servers import RegistryServer, require, skopeo_pull_dir


def _nested(tmp_path: Path, depth: int) -> Path:
    """An archive whose index.json lists an index ten times, which lists the next ten times,
    ``depth`` deep, above one image: walked naively that is 10^depth visits."""
    image = simple_image()
    base = write_docker25(tmp_path / "base.tar", [image], manifest_json=False)
    manifest = image.oci_manifest()
    image_entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha256(manifest),
        "size": len(manifest),
        "annotations": {"io.containerd.image.name": "app:v1"},
    }
    entry, blobs = image_entry, []
    for _ in range(depth):
        raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry] * 10})
        blobs.append(raw.encode())
        entry = {"mediaType": OCI_INDEX, "digest": sha256(blobs[-1]), "size": len(raw)}
    top = {"schemaVersion": 2, "manifests": [entry] * 10 + [image_entry]}
    hostile = tmp_path / f"hostile-{depth}.tar"
    with tarfile.open(base) as src, tarfile.open(hostile, "w") as dst:
        for member in src.getmembers():
            if member.name != "index.json":
                dst.addfile(member, src.extractfile(member))
        for data in blobs:
            _add(dst, "blobs/sha256/" + sha256(data)[7:], data)
        _add(dst, "index.json", json.dumps(top).encode())
    return hostile


def test_indexes_that_repeat_are_walked_once_each(tmp_path: Path) -> None:
    started = time.monotonic()
    with ImageArchive.open(_nested(tmp_path, 3)) as archive:
        assert len(archive.images) == 1
        assert [len(archive.walk(e.manifest)) for e in archive.entries()] == [4, 1]
    assert time.monotonic() - started < 2


def test_indexes_nested_too_deep_are_refused_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    with (
        ImageArchive.open(_nested(tmp_path, 8)) as archive,
        pytest.raises(TarReadError, match="indexes nested more than 4 deep"),
    ):
        archive.images  # noqa: B018
    assert time.monotonic() - started < 2


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "archive.tar"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            ImageArchive.open(fifo)
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert outcome, "opening a FIFO must not block"
    assert isinstance(outcome[0], TarReadError)
    assert "not a regular file" in str(outcome[0])
    assert validate_docker_tar(fifo) is False


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused(device: str) -> None:
    with pytest.raises(TarReadError, match="not a regular file"):
        ImageArchive.open(device)


def gzip_bomb(path: Path, gib: int) -> Path:
    """A .tar.gz whose one member claims ``gib`` GiB of zeros: many gzip members of 1 MiB of
    zeros each (a member is about 1 KiB), after one holding the tar header."""
    header = tarfile.TarInfo("manifest.json")
    header.size = gib << 30
    zeros = zlib.compressobj(9, zlib.DEFLATED, 31)
    one = zeros.compress(b"\0" * (1 << 20)) + zeros.flush()
    with open(path, "wb") as f:
        head = zlib.compressobj(9, zlib.DEFLATED, 31)
        f.write(head.compress(header.tobuf(tarfile.PAX_FORMAT)) + head.flush())
        for _ in range(gib << 10):
            f.write(one)
    return path


def test_a_gzip_bomb_is_refused_in_bounded_time_and_no_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = gzip_bomb(tmp_path / "bomb.tar.gz", 8)  # 8 MiB on disk, 8 GiB inflated
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    started = time.monotonic()
    with pytest.raises(TarReadError) as err:
        ImageArchive.open(bomb)
    assert time.monotonic() - started < 15
    assert "gzip bomb" in str(err.value) and str(bomb) in str(err.value)
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.tar.gz", "tmp"]


def test_sigterm_while_reading_a_gzip_archive_leaves_nothing(tmp_path: Path) -> None:
    bomb = gzip_bomb(tmp_path / "bomb.tar.gz", 4)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "registryv2", "push", str(bomb), "127.0.0.1:1/x:y"],
        env={**os.environ, "TMPDIR": str(scratch)},
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    child.terminate()
    _, stderr = child.communicate(timeout=10)
    assert child.returncode in (1, 143), stderr  # stopped, or refused the bomb first
    assert "Traceback" not in stderr
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("tool", ["pigz", "cat"])
def test_a_tar_gz_of_several_gzip_members_pushes_and_validates(
    registry: RegistryServer, repo: str, tmp_path: Path, tool: str
) -> None:
    """What ``pigz -c a b`` and ``cat a.gz b.gz`` write: one gzip member per part. Each part
    but the last ends inside megabytes of zeros, so a member ends while the inflater holds
    input back, and the next member runs on through random bytes."""
    image = SampleImage(
        layers=[
            layer_tar({"a-zeros": b"\0" * (6 << 20), "b-noise": os.urandom(256 << 10)}),
            layer_tar({"a-zeros": b"\0" * (5 << 20), "b-noise": os.urandom(128 << 10)}),
        ],
        tags=["example.com/team/app:v1"],
    )
    plain = write_legacy(tmp_path / "app.tar", [image]).read_bytes()
    zeros = b"\0" * (1 << 20)
    first = plain.index(zeros) + (2 << 20)
    cuts = [0, first, plain.index(zeros, first + (4 << 20)) + (2 << 20), len(plain)]
    parts = [str(tmp_path / f"part{i}") for i in range(len(cuts) - 1)]
    for part, (start, end) in zip(parts, itertools.pairwise(cuts), strict=True):
        Path(part).write_bytes(plain[start:end])
    archive = tmp_path / f"{tool}.tar.gz"
    if tool == "pigz":
        with open(archive, "wb") as out:
            subprocess.run([require("pigz"), "-c", *parts], stdout=out, check=True)
    else:
        subprocess.run([require("gzip"), *parts], check=True)
        with open(archive, "wb") as out:
            subprocess.run(["cat", *(f"{p}.gz" for p in parts)], stdout=out, check=True)
    subprocess.run([require("gzip"), "-t", str(archive)], check=True)

    assert validate_docker_tar(archive) is True
    digest = push_docker_tar(archive, registry.url, repo, "v1")
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")
    assert pulled["digest"] == digest
    assert [x["digest"] for x in pulled["layers"]] == [sha256(x) for x in image.layers]
    assert pulled["config"]["digest"] == sha256(image.config())


def test_a_50_mb_manifest_json_is_refused_quickly_in_bounded_memory(tmp_path: Path) -> None:
    """A manifest.json listing 257,549 images (over 50 MB): one short line, in a second or two
    and a small fraction of the memory parsing it would take (its bytes are never all read)."""
    image = simple_image()
    base = write_legacy(tmp_path / "base.tar", [image])
    with tarfile.open(base) as src:
        entry = json.loads(src.extractfile("manifest.json").read())[0]  # type: ignore[union-attr]
    one = json.dumps(entry).encode()
    doc = b"[" + b",".join([one] * 257_549) + b"]"
    assert len(doc) > 50_000_000
    hostile = tmp_path / "hostile.tar"
    with tarfile.open(base) as src, tarfile.open(hostile, "w") as dst:
        for member in src.getmembers():
            if member.name != "manifest.json":
                dst.addfile(member, src.extractfile(member))
        _add(dst, "manifest.json", doc)
    # Its own parent, so that the peak resident size measured is the command's alone.
    measure = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(done.stderr)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    started = time.monotonic()
    command = [sys.executable, "-m", "registryv2", "push", str(hostile), "localhost:1/x:y"]
    done = subprocess.run(
        [sys.executable, "-c", measure, *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    *lines, last = done.stdout.strip().splitlines()
    status, peak_kib = (int(x) for x in last.split())
    assert status == 2, done.stdout
    assert len(lines) == 1 and len(lines[0]) < 300, lines
    assert lines[0].startswith(f"registryv2: error: Invalid Docker tar file: {hostile}: ")
    assert "manifest.json" in lines[0]
    assert elapsed < 10, elapsed
    assert peak_kib < 100 * 1024, peak_kib  # parsing it all took 747 MB
