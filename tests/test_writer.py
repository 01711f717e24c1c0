"""The archive writer on its own: any image in, a docker 25+ archive out, or nothing at all."""

from __future__ import annotations

import errno
import json
import os
import tarfile
from pathlib import Path

import pytest

from registryv2 import ArchiveWriteError, ImageArchive, RegistryV2Error, copy_all_tags
from registryv2.archive.writer import ArchiveWriter
from registryv2.imagecopy import Selection, plan_image
from registryv2.places import PlannedImage

from .archives import sha256, simple_image, write_big_legacy, write_legacy
from .servers import skopeo_to_dir


def test_a_legacy_archive_rewritten_in_the_docker25_layout(tmp_path: Path) -> None:
    one = simple_image(tag="example.com/team/app:v1", seed="one", compression=["gzip", "none"])
    two = simple_image(tag="nginx:alpine", seed="two", n_layers=1)
    legacy = write_legacy(tmp_path / "legacy.tar", [one, two])
    out = tmp_path / "new.tar"
    # Blobs come out of the archive, not a registry: the engine does not care where from.
    results = copy_all_tags(legacy, out)
    assert [r.destination for r in results] == [
        (f"docker-archive:{out}:example.com/team/app:v1",),
        (f"docker-archive:{out}:nginx:alpine",),
    ]
    with tarfile.open(out) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == [
        "example.com/team/app:v1",
        "docker.io/library/nginx:alpine",
    ]
    with ImageArchive.open(out) as archive:
        assert archive.tags == ["example.com/team/app:v1", "nginx:alpine"]
    read = skopeo_to_dir(f"docker-archive:{out}:nginx:alpine", tmp_path / "read")
    assert read["config"]["parsed"]["rootfs"]["diff_ids"] == [sha256(x) for x in two.layers]


def planned(archive: ImageArchive) -> list[PlannedImage]:
    return [plan_image(archive, e, e.names, Selection()) for e in archive.entries()]


def test_an_archive_missing_blob_bytes_is_never_committed(tmp_path: Path) -> None:
    legacy = write_legacy(tmp_path / "legacy.tar", [simple_image()])
    out = tmp_path / "out.tar"
    with ImageArchive.open(legacy) as archive:
        writer = ArchiveWriter(out)
        writer.begin(planned(archive))
        with pytest.raises(RegistryV2Error, match="blobs not written in full"), writer:
            [(_, first), *_] = writer.pending
            with writer.blob_writer(first) as slot:
                slot.write(b"partial")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legacy.tar"]


def test_a_slot_takes_no_more_than_its_blob(tmp_path: Path) -> None:
    legacy = write_legacy(tmp_path / "legacy.tar", [simple_image()])
    too_much = pytest.raises(RegistryV2Error, match="more than")
    with (
        ImageArchive.open(legacy) as archive,
        too_much,
        ArchiveWriter(tmp_path / "out.tar") as writer,
    ):
        writer.begin(planned(archive))
        [(_, first), *_] = writer.pending
        writer.blob_writer(first).write(b"x" * (first.size + 1))
    assert not (tmp_path / "out.tar").exists()


def rewrite(source: Path, out: Path) -> None:
    copy_all_tags(source, out)


def test_a_large_archive_is_written_back_while_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Written back to disk in the background as it grows, so the final fsync has only the
    # rest to wait for; the archive is whole all the same.
    synced: list[int] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    source = write_big_legacy(tmp_path / "big.tar", "big:v1", [80 << 20])
    rewrite(source, tmp_path / "out.tar")
    assert synced  # at least once during the writing (80 MiB, one write-back per 32 MiB)
    read = skopeo_to_dir(f"docker-archive:{tmp_path / 'out.tar'}:big:v1", tmp_path / "read")
    with ImageArchive.open(source) as archive:
        assert read["layers"][0]["digest"] == archive.images[0].layers[0].digest


def test_a_failed_background_write_back_fails_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The disk's error reaches the background write-back (and only its descriptor): it must
    # still fail the archive, which is then never moved into place.
    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    source = write_big_legacy(tmp_path / "big.tar", "big:v1", [40 << 20])
    with pytest.raises(ArchiveWriteError, match=r"out\.tar: cannot write \(Input/output error\)"):
        rewrite(source, tmp_path / "out.tar")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["big.tar"]
