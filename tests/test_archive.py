"""Reading archives of every layout, without a registry."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import pytest

from registryv2 import ImageArchive, TarReadError, ValidationError
from registryv2.manifest import (
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
)

from .archives import (
    SampleImage,
    gzip_bytes,
    layer_tar,
    rewrite_members,
    sha256,
    simple_image,
    write_docker25,
    write_legacy,
)


def read_all(blob_open: Callable[[], BinaryIO]) -> bytes:
    with blob_open() as f:
        return f.read()


def test_legacy_layout_digests_sizes_media_types_and_bytes(tmp_path: Path) -> None:
    image = simple_image(compression=["gzip", "none"])
    with ImageArchive.open(write_legacy(tmp_path / "a.tar", [image])) as archive:
        [read] = archive.images
        assert read.tags == ("example.com/team/app:v1",)
        # No manifest in a legacy archive: one is made, docker's own kind, for these blobs.
        assert read.manifest_media_type == DOCKER_MANIFEST
        assert json.loads(read.manifest_bytes)["config"]["digest"] == sha256(image.config())
        assert read.config.digest == sha256(image.config())
        assert read.config_bytes == image.config()
        stored = image.stored_layers()
        assert [x.digest for x in read.layers] == [sha256(x) for x in stored]
        assert [x.size for x in read.layers] == [len(x) for x in stored]
        assert [x.info.media_type for x in read.layers] == [DOCKER_LAYER_GZIP, DOCKER_LAYER]
        assert [read_all(x.open) for x in read.layers] == stored


def test_docker25_layout_reuses_the_archive_manifest(tmp_path: Path) -> None:
    image = simple_image(compression=["none", "gzip"])
    with ImageArchive.open(write_docker25(tmp_path / "a.tar", [image])) as archive:
        [read] = archive.images
        assert read.manifest == image.oci_manifest()
        assert read.manifest_media_type == OCI_MANIFEST
        assert [x.info.media_type for x in read.layers] == [OCI_LAYER, OCI_LAYER_GZIP]
        assert [read_all(x.open) for x in read.layers] == image.stored_layers()


def test_a_gzip_compressed_archive_is_read_in_place_without_a_temporary_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    image = simple_image()
    with ImageArchive.open(write_legacy(tmp_path / "a.tar.gz", [image], compress=True)) as archive:
        assert [read_all(x.open) for x in archive.images[0].layers] == image.stored_layers()
    assert list(scratch.iterdir()) == []


def test_gzip_members_are_read_in_parallel_and_seek_back(tmp_path: Path) -> None:
    # Layers far larger than the distance between checkpoints, in a gzip of two members
    # (as concatenating two gzip files gives), with trailing zeros after the last one.
    big = [layer_tar({"f": os.urandom(9 * 1024 * 1024)}), layer_tar({"g": b"z" * 7_000_000})]
    image = SampleImage(layers=big, tags=["app:v1"])
    plain = write_legacy(tmp_path / "a.tar", [image]).read_bytes()
    half = len(plain) // 2
    (tmp_path / "a.tar.gz").write_bytes(
        gzip_bytes(plain[:half]) + gzip_bytes(plain[half:]) + b"\0" * 100
    )
    with ImageArchive.open(tmp_path / "a.tar.gz") as archive:
        layers = archive.images[0].layers
        with ThreadPoolExecutor(4) as pool:
            read = list(pool.map(lambda blob: read_all(blob.open), [*layers, *layers]))
        assert read == [*big, *big]
        with layers[0].open() as f:
            f.seek(5_000_000)
            middle = f.read(1000)
            f.seek(10)
            assert (f.read(20), middle) == (big[0][10:30], big[0][5_000_000:5_001_000])


def test_uncompressed_layer_not_named_by_digest_is_hashed_when_config_lacks_diff_ids(
    tmp_path: Path,
) -> None:
    image = simple_image()
    tar = write_legacy(tmp_path / "a.tar", [image])
    # Rewrite the config without diff_ids: the reader must hash the layers itself.
    config = json.loads(image.config())
    del config["rootfs"]
    rewritten = rewrite_members(
        tar,
        tmp_path / "b.tar",
        lambda name, data: json.dumps(config).encode() if data == image.config() else data,
    )
    with ImageArchive.open(rewritten) as archive:
        assert [x.digest for x in archive.images[0].layers] == [
            sha256(x) for x in image.stored_layers()
        ]


def test_select_by_tag_normalized_tag_digest_and_index(tmp_path: Path) -> None:
    a = simple_image(tag="docker.io/library/nginx:alpine", seed="a")
    b = simple_image(tag="ghcr.io/org/app:1", seed="b")
    with ImageArchive.open(write_legacy(tmp_path / "two.tar", [a, b])) as archive:
        assert archive.tags == ["docker.io/library/nginx:alpine", "ghcr.io/org/app:1"]
        assert archive.select("nginx:alpine") is archive.images[0]
        assert archive.select("ghcr.io/org/app:1") is archive.images[1]
        assert archive.select(sha256(b.config())[:19]) is archive.images[1]
        assert archive.select("#1") is archive.images[1]
        with pytest.raises(ValidationError, match="holds 2 images"):
            archive.select()
        with pytest.raises(ValidationError, match="matches no image"):
            archive.select("nope:1")


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"", "not a tar archive"),
        (b"junk" * 1000, "not a tar archive"),
        (b"\x1f\x8bnot really gzip", "cannot decompress"),
    ],
)
def test_junk_files_give_one_clear_error(tmp_path: Path, content: bytes, complaint: str) -> None:
    path = tmp_path / "junk.tar"
    path.write_bytes(content)
    with pytest.raises(TarReadError) as err:
        ImageArchive.open(path)
    # registry-api-v2-client's words first, then the file and what is wrong with it.
    assert str(err.value).startswith(f"Invalid Docker tar file: {path}: ")
    assert complaint in str(err.value)


def test_tar_without_image_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(__file__, arcname="hello.py")
    with pytest.raises(TarReadError, match="not an image archive"):
        ImageArchive.open(path)


def test_truncated_archive(tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "a.tar", [simple_image()])
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    with pytest.raises(TarReadError) as err:
        ImageArchive.open(tar)
    assert str(tar) in str(err.value)


def test_link_pointing_outside_the_archive(tmp_path: Path) -> None:
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        data = json.dumps([{"Config": "c.json", "RepoTags": [], "Layers": ["l/layer.tar"]}])
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data.encode()))
        info = tarfile.TarInfo("c.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
        link = tarfile.TarInfo("l/layer.tar")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../etc/passwd"
        tar.addfile(link)
    with pytest.raises(TarReadError, match="outside the archive"):
        ImageArchive.open(path)
