"""The archive utilities (no network) on archives in both layouts, skopeo's, and junk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registryv2 import (
    TarReadError,
    extract_original_tags,
    get_primary_tag,
    get_tar_manifest,
    inspect_docker_tar,
    validate_docker_tar,
)

from .archives import sha256, simple_image, write_docker25, write_legacy, write_oci_dir
from .servers import skopeo


@pytest.fixture(params=["legacy", "legacy.gz", "docker25", "oci-only"])
def archive(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    image = simple_image(
        tag="docker.io/library/nginx:alpine",
        compression=["gzip", "none"],
        labels={"maintainer": "x"},
    )
    image.tags.append("ghcr.io/org/app:1")
    path = tmp_path / "a.tar"
    if request.param == "legacy":
        write_legacy(path, [image])
    elif request.param == "legacy.gz":
        write_legacy(path, [image], compress=True)
    else:
        write_docker25(path, [image], manifest_json=request.param == "docker25")
    return path, image


def test_utilities_agree_with_what_was_written(archive) -> None:  # type: ignore[no-untyped-def]
    path, image = archive
    assert validate_docker_tar(path) is True
    tags = extract_original_tags(path)
    assert tags == ["docker.io/library/nginx:alpine", "ghcr.io/org/app:1"]
    assert get_primary_tag(path) == ("nginx", "alpine")
    [entry] = get_tar_manifest(path)
    assert entry["RepoTags"] == tags and len(entry["Layers"]) == 2
    info = inspect_docker_tar(path)
    assert info.tags == tuple(tags)
    assert info.config_digest == sha256(image.config())
    assert (info.os, info.architecture) == ("linux", "amd64")
    assert info.config.labels == {"maintainer": "x"}
    assert [x.digest for x in info.layers] == [sha256(x) for x in image.stored_layers()]
    assert [x.diff_id for x in info.layers] == [sha256(x) for x in image.layers]
    assert info.size == len(image.config()) + sum(len(x) for x in image.stored_layers())


@pytest.mark.integration
def test_utilities_on_an_archive_skopeo_wrote(tmp_path: Path) -> None:
    image = simple_image(compression=["gzip", "gzip"])
    oci = write_oci_dir(tmp_path / "oci", image, ref="v1")
    tar = tmp_path / "s.tar"
    skopeo("copy", f"oci:{oci}:v1", f"docker-archive:{tar}:docker.io/bench/app:v1")
    assert validate_docker_tar(tar) is True
    assert extract_original_tags(tar) == ["docker.io/bench/app:v1"]
    assert get_primary_tag(tar) == ("bench/app", "v1")
    info = inspect_docker_tar(tar)
    assert info.config_digest == sha256(image.config())
    # skopeo's docker-archive stores layers uncompressed: their digests are the diff_ids.
    assert [x.digest for x in info.layers] == [sha256(x) for x in image.layers]


def test_validate_finds_a_corrupt_blob(tmp_path: Path) -> None:
    image = simple_image()
    for writer in (write_legacy, write_docker25):
        path = writer(tmp_path / "a.tar", [image])
        data = bytearray(path.read_bytes())
        at = data.find(image.stored_layers()[0])
        data[at + 700] ^= 1
        path.write_bytes(bytes(data))
        assert validate_docker_tar(path) is False


@pytest.mark.parametrize("content", [b"", b"junk" * 300, b"\x1f\x8b\x08\x00garbage"])
def test_junk(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.tar"
    path.write_bytes(content)
    assert validate_docker_tar(path) is False
    assert get_primary_tag(path) is None
    for function in (inspect_docker_tar, get_tar_manifest, extract_original_tags):
        with pytest.raises(TarReadError, match=str(path)):
            function(path)


def test_missing_file(tmp_path: Path) -> None:
    assert validate_docker_tar(tmp_path / "none.tar") is False
    with pytest.raises(TarReadError, match="no such file"):
        inspect_docker_tar(tmp_path / "none.tar")


def test_untagged_image(tmp_path: Path) -> None:
    image = simple_image()
    image.tags.clear()
    path = write_legacy(tmp_path / "a.tar", [image])
    assert extract_original_tags(path) == []
    assert get_primary_tag(path) is None
    assert json.loads(json.dumps(get_tar_manifest(path)))[0]["RepoTags"] == []
