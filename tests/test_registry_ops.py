"""Listing, manifests, image info and deletes against a real registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from registryv2 import (
    NotFoundError,
    RegistryClient,
    UnsupportedError,
    ValidationError,
    check_registry_connectivity,
    delete_image,
    delete_image_by_digest,
    get_image_info,
    get_manifest,
    list_repositories,
    list_tags,
    push_docker_tar,
)
from registryv2.archive import ImageArchive

from .archives import (
    sha256,
    simple_image,
    write_legacy,
    write_oci_index_dir,
)
from .servers import RegistryServer, skopeo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def catalog_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry of this module's own, so its catalog holds exactly what the test put there."""
    server = RegistryServer(tmp_path_factory.mktemp("catalog"), {"catalog": {"maxentries": 50}})
    yield server
    server.stop()


def test_check_registry_connectivity(registry: RegistryServer) -> None:
    assert check_registry_connectivity(registry.url) is True
    assert check_registry_connectivity(registry.host) is True  # loopback: falls back to http


def test_120_repositories_and_60_tags_all_come_back(
    catalog_registry: RegistryServer, tmp_path: Path
) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    names = [f"many/repo-{n:03d}" for n in range(120)]
    tags = [f"t{n:02d}" for n in range(60)]
    with RegistryClient(catalog_registry.url) as client, ImageArchive.open(tar) as archive:
        image = archive.select()
        for name in names:
            client.push_image(image, name, ["latest"])
        client.push_image(image, names[0], tags)
        assert client.list_repositories() == names  # 3 pages of at most 50
        assert client.list_repositories(page_size=7) == names
        # The registry's own order, which for tags is its storage's order, not sorted.
        raw = requests.get(f"{catalog_registry.url}/v2/{names[0]}/tags/list").json()["tags"]
        assert sorted(raw) == sorted([*tags, "latest"])
        assert client.list_tags(names[0]) == raw
        assert sorted(client.list_tags(names[0], page_size=13)) == sorted(raw)
    assert list_repositories(catalog_registry.url) == names
    assert list_tags(catalog_registry.url, names[5]) == ["latest"]


def test_missing_repository_and_tag_are_named(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError) as err:
        list_tags(registry.url, "no/such/repo")
    assert "no/such/repo" in str(err.value) and err.value.codes == ["NAME_UNKNOWN"]
    push_docker_tar(write_legacy(tmp_path / "a.tar", [simple_image()]), registry.url, repo, "v1")
    with pytest.raises(NotFoundError) as err:
        get_manifest(registry.url, repo, "v404")
    assert f"{repo}:v404" in str(err.value) and err.value.codes == ["MANIFEST_UNKNOWN"]
    with pytest.raises(NotFoundError):
        get_image_info(registry.url, repo, "sha256:" + "0" * 64)
    with pytest.raises(ValidationError, match="Bad/Name"):
        list_tags(registry.url, "Bad/Name")


def test_manifest_and_image_info(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    image = simple_image(compression=["gzip", "none"], labels={"org.example": "yes"})
    digest = push_docker_tar(write_legacy(tmp_path / "a.tar", [image]), registry.url, repo, "v1")
    with RegistryClient(registry.url) as client:
        manifest = client.get_manifest(repo, "v1")
        info = client.get_image_info(repo, "v1")
        assert client.get_manifest(repo, digest).raw == manifest.raw
    assert manifest.digest == digest == sha256(manifest.raw)
    assert manifest.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert not manifest.is_index
    assert manifest.config is not None and manifest.config.digest == sha256(image.config())
    assert [x.size for x in manifest.layers] == [len(x) for x in image.stored_layers()]
    assert manifest.total_size == len(image.config()) + sum(len(x) for x in image.stored_layers())

    assert (info.os, info.architecture) == ("linux", "amd64")
    assert info.created == datetime(2024, 1, 1, tzinfo=UTC)
    assert info.config.labels == {"org.example": "yes"}
    assert info.config.env == ["PATH=/usr/bin"] and info.config.cmd == ["/bin/sh"]
    assert info.manifest_digest == digest
    assert info.repo_tags == [f"{repo}:v1"] and info.repo_digests == [f"{repo}@{digest}"]
    assert [x.digest for x in info.layers] == [sha256(x) for x in image.stored_layers()]
    assert [x.diff_id for x in info.layers] == [sha256(x) for x in image.layers]
    assert [x.media_type for x in info.layers] == [
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
    ]
    assert info.size == sum(len(x) for x in image.stored_layers())

    # The module functions answer as registry-api-v2-client does: dicts.
    doc = get_manifest(registry.url, repo, "v1")
    assert doc == {**json.loads(manifest.raw), "digest": digest}
    assert get_manifest(registry.url, repo, tag=digest) == doc
    summary = get_image_info(registry.url, repo, tag="v1")
    assert summary == {
        "repository": repo,
        "tag": "v1",
        "digest": digest,
        "manifest": doc,
        "config": json.loads(image.config()),
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "total_size": manifest.total_size,
        "layer_count": 2,
    }


def test_index_pushed_by_skopeo_all(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    amd = simple_image(seed="amd", architecture="amd64")
    arm = simple_image(seed="arm", architecture="arm64")
    write_oci_index_dir(tmp_path / "oci", [amd, arm], ref="multi")
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"oci:{tmp_path / 'oci'}:multi",
        f"docker://{registry.host}/{repo}:multi",
    )
    with RegistryClient(registry.url) as client:
        manifest = client.get_manifest(repo, "multi")
        first = client.get_image_info(repo, manifest.manifests[0].digest)
        info = client.get_image_info(repo, "multi", platform="linux/arm64")
    # skopeo re-serializes the index on the way; the registry's digest is the reference.
    head = requests.head(
        f"{registry.url}/v2/{repo}/manifests/multi",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    )
    assert manifest.is_index and manifest.digest == head.headers["Docker-Content-Digest"]
    assert manifest.media_type == "application/vnd.oci.image.index.v1+json"
    assert [str(m.platform) for m in manifest.manifests] == ["linux/amd64", "linux/arm64"]
    # skopeo compressed the layers, so the per-platform manifests are new; configs are not.
    assert first.id == sha256(amd.config()) and first.repo_tags == []
    assert info.architecture == "arm64"
    assert info.id == sha256(arm.config())
    assert get_image_info(registry.url, repo, "multi", platform="linux/arm64")["digest"] == (
        manifest.manifests[1].digest
    )
    with pytest.raises(ValidationError) as err:
        get_image_info(registry.url, repo, "multi", platform="linux/s390x")
    assert "linux/amd64, linux/arm64" in str(err.value)


def test_delete_takes_every_tag_of_the_manifest(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    one, two = simple_image(seed="one"), simple_image(seed="two")
    with RegistryClient(registry.url) as client:
        for image, tags in [(one, ["a", "b"]), (two, ["c"])]:
            with ImageArchive.open(write_legacy(tmp_path / "x.tar", [image])) as archive:
                client.push_image(archive.select(), repo, tags)
        assert sorted(client.list_tags(repo)) == ["a", "b", "c"]
    assert delete_image(registry.url, repo, "a") is True
    assert list_tags(registry.url, repo) == ["c"]  # "b" pointed at the same manifest
    digest = get_manifest(registry.url, repo, "c")["digest"]
    assert delete_image_by_digest(registry.url, repo, digest) is True
    assert list_tags(registry.url, repo) == []
    with pytest.raises(NotFoundError):
        delete_image_by_digest(registry.url, repo, digest)
    with pytest.raises(NotFoundError):
        delete_image(registry.url, repo, "c")
    with pytest.raises(ValidationError, match="invalid digest"):
        delete_image_by_digest(registry.url, repo, "latest")


def test_delete_on_a_registry_with_deletes_disabled(tmp_path: Path) -> None:
    server = RegistryServer(
        tmp_path / "nodelete",
        {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "nodelete" / "data")}}},
    )
    try:
        push_docker_tar(write_legacy(tmp_path / "a.tar", [simple_image()]), server.url, "app", "v1")
        with pytest.raises(UnsupportedError) as err:
            delete_image(server.url, "app", "v1")
        assert err.value.status == 405
        assert "does not allow deletes" in str(err.value)
        assert list_tags(server.url, "app") == ["v1"]
    finally:
        server.stop()
