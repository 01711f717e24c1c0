"""Compression on push: what docker push sends (gzip) or zstd in an OCI manifest, checked by
skopeo and by decompressing what the registry holds; remembered, resumable, never doubled."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from registryv2 import RegistryClient, ValidationError, push_docker_tar
from registryv2.compress import CompressingReader, CompressionMemory
from registryv2.events import TransferEvent
from registryv2.manifest import (
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
)
from registryv2.models import BlobInfo
from registryv2.retry import RetryPolicy

from .archives import (
    SampleImage,
    sha256,
    simple_image,
    write_big_legacy,
    write_docker25,
    write_legacy,
)
from .proxies import FaultyProxy
from .servers import RegistryServer, skopeo, skopeo_pull_dir

MiB = 1024 * 1024


def decompress(data: bytes, media_type: str) -> bytes:
    if media_type.endswith("zstd"):
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return gzip.decompress(data)


@pytest.mark.parametrize(
    ("algorithm", "manifest_type", "layer_type"),
    [("gzip", DOCKER_MANIFEST, DOCKER_LAYER_GZIP), ("zstd", OCI_MANIFEST, OCI_LAYER_ZSTD)],
)
def test_compressed_push_pulls_with_skopeo_and_decompresses_to_the_diff_ids(
    registry: RegistryServer,
    repo: str,
    tmp_path: Path,
    algorithm: str,
    manifest_type: str,
    layer_type: str,
) -> None:
    image = simple_image(n_layers=3)
    tar = write_legacy(tmp_path / "app.tar", [image])
    digest = push_docker_tar(tar, registry.url, repo, "v1", compress=algorithm)
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")
    assert pulled["digest"] == digest
    assert pulled["mediaType"] == manifest_type
    assert [layer["mediaType"] for layer in pulled["layers"]] == [layer_type] * 3
    # The config is the archive's own, diff_ids naming the uncompressed layers...
    assert pulled["config"]["digest"] == sha256(image.config())
    if algorithm == "zstd":
        assert pulled["config"]["mediaType"] == OCI_CONFIG
    # ...which is what the compressed layers hold.
    for desc, original in zip(pulled["layers"], image.layers, strict=True):
        data = (tmp_path / "out" / desc["digest"][7:]).read_bytes()
        assert len(data) < len(original)
        assert decompress(data, layer_type) == original


def test_a_second_compressed_push_uploads_nothing(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "big.tar", "big:v1", [12 * MiB, 3 * MiB])
    with RegistryClient(registry.url) as client:
        first = client.push(tar, repo, "v1", compress="gzip")
        second = client.push(tar, repo, "v2", compress="gzip")
    assert first.bytes_uploaded > 15 * MiB
    assert second.digest == first.digest
    assert second.bytes_uploaded == 0
    assert {b.action for b in second.blobs} == {"exists"}
    # Another client (a new process) remembers through the state directory.
    with RegistryClient(registry.url) as client:
        third = client.push(tar, f"{repo}-other", "v1", compress="gzip")
    assert third.digest == first.digest
    assert [b.size for b in third.blobs] == [b.size for b in first.blobs]


def test_compression_is_deterministic_without_memory(
    registry: RegistryServer, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    first = push_docker_tar(tar, registry.url, repo, "v1", compress="zstd")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "forgotten"))
    assert push_docker_tar(tar, registry.url, repo, "v2", compress="zstd") == first


def test_stored_compressed_layers_are_never_compressed_twice(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = SampleImage(
        layers=simple_image(n_layers=2).layers,
        tags=["example.com/app:v1"],
        compression=["gzip", "none"],
    )
    tar = write_docker25(tmp_path / "app.tar", [image])
    push_docker_tar(tar, registry.url, repo, "v1", compress="zstd")
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")
    kept, made = pulled["layers"]
    assert kept["mediaType"] == OCI_LAYER_GZIP
    assert kept["digest"] == sha256(image.stored_layers()[0])
    assert made["mediaType"] == OCI_LAYER_ZSTD
    assert (
        decompress((tmp_path / "out" / made["digest"][7:]).read_bytes(), "zstd") == image.layers[1]
    )


def test_a_compressed_push_through_resets_resumes_and_pulls(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "big.tar", "big:v1", [40 * MiB])
    events: list[TransferEvent] = []
    with FaultyProxy(registry.host) as proxy:
        proxy.reset_every(3)
        retry = RetryPolicy(initial_delay=0.05)
        with RegistryClient(proxy.url, retry=retry, progress=events.append) as client:
            result = client.push(tar, repo, "v1", compress="gzip")
    assert any("broke" in str(e.message) for e in events if e.kind == "retry")
    # Progress counts the uncompressed layer, named by its own digest.
    layer_done = [e for e in events if e.kind == "done" and e.size > MiB]
    assert len(layer_done) == 1 and layer_done[0].bytes_done == layer_done[0].size >= 40 * MiB
    progress = [e.bytes_done for e in events if e.kind == "progress" and e.size > MiB]
    assert progress and max(progress) <= layer_done[0].size
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")
    assert pulled["digest"] == result.digest
    data = (tmp_path / "out" / pulled["layers"][0]["digest"][7:]).read_bytes()
    config = pulled["config"]["parsed"]
    assert (
        "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
        == config["rootfs"]["diff_ids"][0]
    )


def test_the_compressed_bytes_do_not_depend_on_how_they_are_read() -> None:
    source = simple_image(n_layers=1).layers[0] * 300
    outputs = set()
    for size in (1, 4096, 1 << 20, 3 << 20):
        reader = CompressingReader(io.BytesIO(source), "gzip")
        parts = []
        while data := reader.read(size):
            parts.append(data)
        assert reader.consumed == len(source)
        outputs.add(b"".join(parts))
    assert len(outputs) == 1
    assert gzip.decompress(outputs.pop()) == source


def test_an_unknown_compression_is_a_one_line_error(
    registry: RegistryServer, tmp_path: Path
) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    with pytest.raises(ValidationError, match="unknown compression 'brotli'"):
        push_docker_tar(tar, registry.url, "x", "v1", compress="brotli")


def test_memory_survives_a_broken_state_file(tmp_path: Path) -> None:
    memory = CompressionMemory(tmp_path)
    digest = "sha256:" + "a" * 64
    assert memory.recall("gzip", digest) is None
    memory.remember("gzip", digest, BlobInfo("sha256:" + "b" * 64, 10))
    assert memory.recall("gzip", digest) == BlobInfo("sha256:" + "b" * 64, 10)
    assert memory.recall("zstd", digest) is None
    for path in tmp_path.iterdir():
        path.write_text(json.dumps({"digest": 3}))
    assert memory.recall("gzip", digest) is None


def test_the_cli_compresses_on_request(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    ref = f"{registry.host}/{repo}:v1"
    done = subprocess.run(
        [sys.executable, "-m", "registryv2", "push", "--compress", "zstd", str(tar), ref],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}"))
    assert {layer["mediaType"] for layer in raw["layers"]} == {OCI_LAYER_ZSTD}
    bad = subprocess.run(
        [sys.executable, "-m", "registryv2", "push", "--compress", "lz4", str(tar), ref],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "lz4" in bad.stderr and "Traceback" not in bad.stderr
