"""Copying and tagging on real registries: digests kept, blobs mounted or streamed, none for tag."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from registryv2 import (
    NotFoundError,
    RegistryClient,
    ValidationError,
    copy,
    push_docker_tar,
    tag,
)

from .archives import SampleImage, layer_tar, sha256, simple_image, write_legacy, write_oci_dir
from .proxies import FaultyProxy
from .servers import RegistryServer, push_index, skopeo, skopeo_pull_dir, skopeo_to_dir
from .test_cli import assert_one_line_error, run

pytestmark = pytest.mark.integration


def test_copy_within_a_registry_mounts_every_blob(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image()
    digest = push_docker_tar(write_legacy(tmp_path / "a.tar", [image]), registry.url, repo, "v1")
    with FaultyProxy(registry.host) as proxy, RegistryClient(proxy.url) as client:
        result = client.copy(repo, "v1", repo + "/copy", "v2")
        blob_writes = [
            r for r in proxy.requests if r.method in ("PATCH", "PUT") and "/blobs/" in r.path
        ]
        mounts = [r for r in proxy.requests if r.method == "POST" and "mount=" in r.path]
    assert result.digest == digest
    assert {b.action for b in result.blobs} == {"mounted"}
    assert len(mounts) == len(image.layers) + 1 and blob_writes == []
    assert skopeo_pull_dir(f"{registry.host}/{repo}/copy:v2", tmp_path / "out")["digest"] == digest


def test_copy_between_registries_streams_and_keeps_the_digest(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    # skopeo pushes gzip layers; one is larger than a chunk, so it streams through PATCHes.
    big = layer_tar({"big.bin": os.urandom(1_500_000)})
    image = SampleImage(layers=[big, layer_tar({"a": b"a"})], tags=[], compression=["gzip"] * 2)
    oci = write_oci_dir(tmp_path / "oci", image, ref="src")
    skopeo(
        "copy", "--dest-tls-verify=false", f"oci:{oci}:src", f"docker://{registry.host}/{repo}:v1"
    )
    with (
        RegistryClient(registry.url) as source,
        RegistryClient(other.url, chunk_size=256 * 1024) as target,
    ):
        digest = source.resolve_digest(repo, "v1")
        result = target.copy(repo, "v1", "mirror/app", "v1", source=source)
    assert result.digest == digest
    assert {b.action for b in result.blobs} == {"uploaded"}
    assert sorted(b.bytes_moved for b in result.blobs) == sorted(
        [len(image.config()), *(len(x) for x in image.stored_layers())]
    )
    pulled = skopeo_pull_dir(f"{other.host}/mirror/app:v1", tmp_path / "out")
    assert pulled["digest"] == digest
    assert pulled["config"]["parsed"]["rootfs"]["diff_ids"] == [sha256(x) for x in image.layers]


def test_an_index_is_copied_whole(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    archives = {
        arch: write_legacy(
            tmp_path / f"{arch}.tar", [simple_image(seed=arch, architecture=arch, n_layers=1)]
        )
        for arch in ("amd64", "arm64")
    }
    index = push_index(registry.url, repo, "multi", archives)
    digest = copy(f"{registry.host}/{repo}:multi", f"{other.host}/{repo}:multi").digest
    assert digest == sha256(index)
    with RegistryClient(other.url) as client:
        copied = client.get_manifest(repo, "multi")
        assert copied.raw == index
        for entry in copied.manifests:
            assert client.get_manifest(repo, entry.digest).digest == entry.digest
    # skopeo takes every platform from the copy, checking each blob.
    skopeo(
        "copy",
        "--all",
        "--src-tls-verify=false",
        f"docker://{other.host}/{repo}:multi",
        f"oci:{tmp_path / 'all'}:multi",
    )
    for arch in ("amd64", "arm64"):
        read = skopeo_to_dir(
            f"docker://{other.host}/{repo}:multi",
            tmp_path / f"dir-{arch}",
            "--src-tls-verify=false",
            "--override-arch",
            arch,
        )
        assert read["config"]["parsed"]["architecture"] == arch


def test_tag_puts_the_same_manifest_and_moves_no_blob(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    digest = push_docker_tar(
        write_legacy(tmp_path / "a.tar", [simple_image()]), registry.url, repo, "v1"
    )
    with FaultyProxy(registry.host) as proxy:
        assert tag(f"{proxy.host}/{repo}:v1", "stable").digest == digest
        assert not [r for r in proxy.requests if "/blobs/" in r.path]
        assert [(r.method, r.path) for r in proxy.requests if r.method == "PUT"] == [
            ("PUT", f"/v2/{repo}/manifests/stable")
        ]
    with RegistryClient(registry.url) as client:
        assert client.resolve_digest(repo, "stable") == digest
        assert sorted(client.list_tags(repo)) == ["stable", "v1"]


def test_copy_and_tag_refuse_bad_targets(registry: RegistryServer, repo: str) -> None:
    source = f"{registry.host}/{repo}:v1"
    with pytest.raises(ValidationError, match="copy to a tag, not a digest"):
        copy(source, f"{registry.host}/{repo}@sha256:{'0' * 64}")
    with pytest.raises(ValidationError, match="'other/repo:v2' is in another repository"):
        tag(source, "other/repo:v2")
    with pytest.raises(ValidationError, match="invalid tag 'v2@x'"):
        tag(source, "v2@x")
    with pytest.raises(NotFoundError, match=f"manifest {repo}:v1"):
        copy(source, f"{registry.host}/{repo}:v2")


def test_cli_pull_copy_and_tag(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    image = simple_image()
    src = f"{registry.host}/{repo}:v1"
    digest = push_docker_tar(write_legacy(tmp_path / "a.tar", [image]), registry.url, repo, "v1")

    done = run("tag", "-q", src, "v1.0")
    assert (done.returncode, done.stdout.strip()) == (0, digest), done.stderr
    done = run("copy", src, f"{registry.host}/{repo}/copy:v1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{registry.host}/{repo}/copy:v1@{digest}"
    out = tmp_path / "pulled.tar"
    copied, tagged = f"{registry.host}/{repo}/copy:v1", f"{registry.host}/{repo}:v1.0"
    done = run("pull", copied, tagged, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{digest} {copied}",
        f"{digest} {tagged}",
    ]
    read = skopeo_to_dir(f"docker-archive:{out}", tmp_path / "read")
    assert read["config"]["parsed"]["rootfs"]["diff_ids"] == [sha256(x) for x in image.layers]

    missing = tmp_path / "missing.tar"
    assert_one_line_error(
        run("pull", f"{registry.host}/{repo}:nope", "-o", str(missing)), 1, f"{repo}:nope"
    )
    assert_one_line_error(
        run("pull", src, "--platform", "linux", "-o", str(missing)), 2, "invalid platform 'linux'"
    )
    assert not missing.exists()
