"""A large blob is pulled as several ranges at once into its place in the archive, checked by
one sha256 over the whole: one layer behind a per-connection limit moves at several
connections' speed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from registryv2 import RegistryClient, inspect_docker_tar, pull_docker_tar, push_docker_tar

from .archives import write_big_legacy
from .proxies import FaultyProxy
from .servers import RegistryServer, skopeo_to_dir

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def one_big_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_big_legacy(tmp_path_factory.mktemp("ranged") / "big.tar", "big:v1", [64 * MiB])


def covered(ranges: list[str], size: int) -> list[tuple[int, int]]:
    spans = sorted(
        (int(m.group(1)), int(m.group(2) or size - 1))
        for m in (re.fullmatch(r"bytes=(\d+)-(\d*)", r) for r in ranges)
        if m
    )
    assert len(spans) == len(ranges), ranges
    position = 0
    for start, end in spans:
        assert start == position, spans
        position = end + 1
    assert position == size
    return spans


def test_a_large_layer_comes_as_several_ranges_and_skopeo_reads_the_archive(
    registry: RegistryServer, repo: str, one_big_layer: Path, tmp_path: Path
) -> None:
    digest = push_docker_tar(one_big_layer, registry.url, repo, "v1")
    layer = inspect_docker_tar(one_big_layer).layers[0]
    out = tmp_path / "pulled.tar"
    with FaultyProxy(registry.host) as proxy:
        proxy.throttle = 0.0005  # a per-connection limit: 64 KiB per half millisecond at most
        with RegistryClient(proxy.url, workers=4) as client:
            client.pull(f"{repo}:v1", out)
        gets = proxy.blob_gets(layer.digest)
    # Four ranges at once, end to end (the first from byte 0, the last to the end): nothing
    # fetched twice.
    assert len(covered([g.range or "bytes=0-" for g in gets], layer.size)) == 4
    assert proxy.downloaded < 1.01 * layer.size + MiB
    assert inspect_docker_tar(out).manifest_digest == digest
    read = skopeo_to_dir(f"docker-archive:{out}", tmp_path / "read")
    assert read["layers"][0]["size"] == layer.size


def test_a_registry_ignoring_ranges_still_gives_the_right_bytes(
    registry: RegistryServer, repo: str, one_big_layer: Path, tmp_path: Path
) -> None:
    push_docker_tar(one_big_layer, registry.url, repo, "v1")
    out = tmp_path / "pulled.tar"
    with FaultyProxy(registry.host) as proxy:
        proxy.ignore_range = True  # every range answered with the whole blob, from byte 0
        pull_docker_tar(out, proxy.url, repo, "v1")
    skopeo_to_dir(f"docker-archive:{out}", tmp_path / "read")


def test_a_range_cut_short_is_resumed_and_the_whole_is_checked(
    registry: RegistryServer, repo: str, one_big_layer: Path, tmp_path: Path
) -> None:
    push_docker_tar(one_big_layer, registry.url, repo, "v1")
    layer = inspect_docker_tar(one_big_layer).layers[0]
    out = tmp_path / "pulled.tar"
    with FaultyProxy(registry.host) as proxy:
        proxy.cut(layer.digest, 3 * MiB, times=2)
        pull_docker_tar(out, proxy.url, repo, "v1")
        gets = proxy.blob_gets(layer.digest)
    assert len(gets) >= 4 + 2
    skopeo_to_dir(f"docker-archive:{out}", tmp_path / "read")
