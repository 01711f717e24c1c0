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


def tail_ranges(ranges: list[str], size: int) -> list[tuple[int, int]]:
    """Explicit ranges, end to end, that finish the blob; where they start."""
    spans = sorted(
        (int(m.group(1)), int(m.group(2) or size - 1))
        for m in (re.fullmatch(r"bytes=(\d+)-(\d*)", r) for r in ranges)
        if m
    )
    assert len(spans) == len(ranges), ranges
    position = spans[0][0]
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
        proxy.throttle = 0.002  # a per-connection limit: 32 MB/s
        with RegistryClient(proxy.url, workers=4) as client:
            client.pull(f"{repo}:v1", out)
        gets = proxy.blob_gets(layer.digest)
    # One GET that proved slow, then the rest as ranges at once, end to end to the blob's end;
    # the first connection was dropped where the ranges begin: nothing fetched twice (but what
    # was in flight when it was dropped).
    first, *ranged = gets
    assert first.range is None
    spans = tail_ranges([str(g.range) for g in ranged], layer.size)
    assert len(spans) >= 2 and spans[0][0] >= 8 * MiB
    assert proxy.downloaded < layer.size + 8 * MiB
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
    assert len(gets) >= 1 + 2  # the first GET, and two resumed after their cuts
    skopeo_to_dir(f"docker-archive:{out}", tmp_path / "read")
