"""The archive utilities (no network) on archives in both layouts, skopeo's, and junk."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from registryv2 import (
    RegistryError,
    TarReadError,
    ValidationError,
    extract_original_tags,
    get_primary_tag,
    get_tar_manifest,
    inspect_docker_tar,
    validate_docker_tar,
)

from .archives import (
    SampleImage,
    rewrite_members,
    sha256,
    simple_image,
    write_docker25,
    write_legacy,
    write_oci_dir,
)
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
    return path, image, request.param


def test_utilities_agree_with_what_was_written(archive) -> None:  # type: ignore[no-untyped-def]
    path, image, layout = archive
    tags = ["docker.io/library/nginx:alpine", "ghcr.io/org/app:1"]
    assert validate_docker_tar(path) is True
    # extract_original_tags reads manifest.json (as registry-api-v2-client does); a bare OCI
    # layout has none, and its tags are only in what inspect_docker_tar reads.
    if layout == "oci-only":
        assert extract_original_tags(path) == [] and get_primary_tag(path) is None
    else:
        assert extract_original_tags(path) == tags
        assert get_primary_tag(path) == ("docker.io/library/nginx", "alpine")
    [entry] = get_tar_manifest(path)
    assert entry["RepoTags"] == tags and len(entry["Layers"]) == 2
    info = inspect_docker_tar(path)
    assert info.repo_tags == tags
    assert info.id == sha256(image.config())
    assert (info.os, info.architecture) == ("linux", "amd64")
    assert info.created == datetime(2024, 1, 1, tzinfo=UTC)
    assert info.config.labels == {"maintainer": "x"}
    assert (
        info.config.cmd == ["/bin/sh"] and info.config.entrypoint == [] and info.config.user == ""
    )
    assert [x.digest for x in info.layers] == [sha256(x) for x in image.stored_layers()]
    assert [x.diff_id for x in info.layers] == [sha256(x) for x in image.layers]
    assert info.rootfs_layers == [sha256(x) for x in image.layers]
    assert info.size == info.virtual_size == sum(len(x) for x in image.stored_layers())


@pytest.mark.integration
def test_utilities_on_an_archive_skopeo_wrote(tmp_path: Path) -> None:
    image = simple_image(compression=["gzip", "gzip"])
    oci = write_oci_dir(tmp_path / "oci", image, ref="v1")
    tar = tmp_path / "s.tar"
    skopeo("copy", f"oci:{oci}:v1", f"docker-archive:{tar}:docker.io/bench/app:v1")
    assert validate_docker_tar(tar) is True
    assert extract_original_tags(tar) == ["docker.io/bench/app:v1"]
    assert get_primary_tag(tar) == ("docker.io/bench/app", "v1")
    info = inspect_docker_tar(tar)
    assert info.id == sha256(image.config())
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
    assert extract_original_tags(path) == []
    for function in (inspect_docker_tar, get_tar_manifest):
        with pytest.raises(ValidationError, match=str(path)) as err:
            function(path)
        assert isinstance(err.value, TarReadError)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.tar"
    validators: list[Callable[[Path], object]] = [
        validate_docker_tar,
        inspect_docker_tar,
        get_tar_manifest,
    ]
    for function in validators:
        with pytest.raises(ValidationError, match=r"^Tar file does not exist: "):
            function(missing)
    # As registry-api-v2-client: the tag readers raise FileNotFoundError there.
    tag_readers: list[Callable[[Path], object]] = [extract_original_tags, get_primary_tag]
    for function in tag_readers:
        with pytest.raises(FileNotFoundError, match=r"^Tar file does not exist: ") as err:
            function(missing)
        assert isinstance(err.value, RegistryError)


def with_config(tmp_path: Path, image: SampleImage, config: dict[str, Any]) -> Path:
    """A legacy archive of ``image`` whose config is replaced by ``config``."""
    written = write_legacy(tmp_path / "a.tar", [image])
    new = json.dumps(config).encode()
    return rewrite_members(
        written, tmp_path / "b.tar", lambda name, data: new if data == image.config() else data
    )


def test_a_config_without_rootfs_is_valid_as_it_is_pushable(tmp_path: Path) -> None:
    image = simple_image()
    config = json.loads(image.config())
    del config["rootfs"]
    path = with_config(tmp_path, image, config)
    assert validate_docker_tar(path) is True
    assert inspect_docker_tar(path).rootfs_layers == []


def test_a_config_listing_another_number_of_layers_is_refused_by_all(tmp_path: Path) -> None:
    image = simple_image(n_layers=2)
    config = json.loads(image.config())
    config["rootfs"]["diff_ids"].pop()
    path = with_config(tmp_path, image, config)
    assert validate_docker_tar(path) is False
    with pytest.raises(TarReadError, match="lists 1 diff_ids for 2 layers"):
        inspect_docker_tar(path)
