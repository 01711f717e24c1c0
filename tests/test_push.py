"""Pushing archives of every layout into a real registry, checked by skopeo pulling them."""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from registryv2 import (
    DigestMismatchError,
    RegistryClient,
    ValidationError,
    push_docker_tar,
    push_docker_tar_with_all_original_tags,
    push_docker_tar_with_original_tags,
)
from registryv2.events import TransferEvent

from .archives import (
    SampleImage,
    file_digest,
    layer_tar,
    sha256,
    simple_image,
    write_big_legacy,
    write_docker25,
    write_legacy,
    write_oci_dir,
)
from .archives import (
    _add as add_member,
)
from .proxies import FaultyProxy
from .servers import RegistryServer, skopeo, skopeo_pull_dir

pytestmark = pytest.mark.integration

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def assert_same_image(pulled: dict[str, Any], image: SampleImage) -> None:
    """The pulled manifest names exactly the test image's config and stored layers."""
    config = image.config()
    assert pulled["config"]["digest"] == sha256(config)
    assert pulled["config"]["size"] == len(config)
    stored = image.stored_layers()
    assert [x["digest"] for x in pulled["layers"]] == [sha256(x) for x in stored]
    assert [x["size"] for x in pulled["layers"]] == [len(x) for x in stored]


def push_then_skopeo_pulls(
    tar: Path, registry: RegistryServer, repo: str, tmp_path: Path
) -> dict[str, Any]:
    """Push ``tar`` as ``repo:v1``; skopeo pulls it back with the digest the push returned."""
    digest = push_docker_tar(tar, registry.url, repo, "v1")
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")
    assert pulled["digest"] == digest
    return pulled


def test_legacy_archive_pushes_and_skopeo_pulls_it(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(n_layers=3)
    pulled = push_then_skopeo_pulls(
        write_legacy(tmp_path / "app.tar", [image]), registry, repo, tmp_path
    )
    assert pulled["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert [x["mediaType"] for x in pulled["layers"]] == [DOCKER_LAYER] * 3
    assert_same_image(pulled, image)


def test_docker25_archive_keeps_its_manifest_digest(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(compression=["gzip", "none"])
    tar = write_docker25(tmp_path / "app.tar", [image])
    pulled = push_then_skopeo_pulls(tar, registry, repo, tmp_path)
    assert pulled["digest"] == sha256(image.oci_manifest())
    assert [x["mediaType"] for x in pulled["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar",
    ]
    assert_same_image(pulled, image)


def test_docker25_archive_with_symlinked_layers(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image()
    tar = write_docker25(tmp_path / "app.tar", [image], symlinked_layers=True)
    pulled = push_then_skopeo_pulls(tar, registry, repo, tmp_path)
    assert pulled["digest"] == sha256(image.oci_manifest())
    assert_same_image(pulled, image)


def test_bare_oci_archive_without_manifest_json(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(tag="docker.io/library/busybox:1.36")
    tar = write_docker25(tmp_path / "app.tar", [image], manifest_json=False)
    digest = push_docker_tar_with_original_tags(tar, registry.url)
    pulled = skopeo_pull_dir(f"{registry.host}/busybox:1.36", tmp_path / "out")
    assert pulled["digest"] == digest == sha256(image.oci_manifest())


def test_gzip_compressed_archive(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    image = simple_image()
    tar = write_legacy(tmp_path / "app.tar.gz", [image], compress=True)
    assert_same_image(push_then_skopeo_pulls(tar, registry, repo, tmp_path), image)


def test_gzip_layers_inside_legacy_archive_keep_their_media_type(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(compression=["gzip", "none"])
    tar = write_legacy(tmp_path / "app.tar", [image])
    pulled = push_then_skopeo_pulls(tar, registry, repo, tmp_path)
    assert [x["mediaType"] for x in pulled["layers"]] == [DOCKER_LAYER_GZIP, DOCKER_LAYER]
    assert_same_image(pulled, image)


@pytest.mark.parametrize("kind", ["docker-archive", "oci-archive"])
def test_archives_written_by_skopeo(
    registry: RegistryServer, repo: str, tmp_path: Path, kind: str
) -> None:
    image = simple_image(compression=["gzip", "gzip"])
    oci = write_oci_dir(tmp_path / "oci", image, ref="v1")
    tar = tmp_path / "skopeo.tar"
    skopeo("copy", f"oci:{oci}:v1", f"{kind}:{tar}:example.com/team/app:v1")
    digest = push_docker_tar(tar, registry.url, repo, "v2")
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}:v2", tmp_path / "out")
    assert pulled["digest"] == digest
    # skopeo's docker-archive stores layers uncompressed; whatever it stored, the diff_ids
    # in the config are the source image's.
    config = json.loads((tmp_path / "out" / pulled["config"]["digest"][7:]).read_bytes())
    assert config["rootfs"]["diff_ids"] == [sha256(x) for x in image.layers]


def test_zstd_layers_written_by_skopeo_get_an_oci_manifest(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image()
    oci = write_oci_dir(tmp_path / "oci", image, ref="v1")
    zstd_dir = tmp_path / "zstd"
    skopeo(
        "copy",
        "--dest-compress-format",
        "zstd",
        "--dest-compress",
        f"oci:{oci}:v1",
        f"oci:{zstd_dir}:v1",
    )
    # Repackage the zstd OCI layout as a legacy docker save archive: manifest.json + layers.
    tar = tmp_path / "zstd.tar"
    index = json.loads((zstd_dir / "index.json").read_text())
    manifest = json.loads(
        (zstd_dir / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text()
    )
    with tarfile.open(tar, "w") as t:
        for blob in (zstd_dir / "blobs/sha256").iterdir():
            t.add(
                blob,
                arcname=f"{blob.name}/layer.tar"
                if blob.name in {x["digest"][7:] for x in manifest["layers"]}
                else f"{blob.name}.json",
            )
        entry = [
            {
                "Config": manifest["config"]["digest"][7:] + ".json",
                "RepoTags": ["app:z"],
                "Layers": [x["digest"][7:] + "/layer.tar" for x in manifest["layers"]],
            }
        ]
        data = json.dumps(entry).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    push_docker_tar(tar, registry.url, repo, "z")
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}:z", tmp_path / "out")
    assert pulled["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [x["mediaType"] for x in pulled["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+zstd"
    ] * 2
    assert [x["digest"] for x in pulled["layers"]] == [x["digest"] for x in manifest["layers"]]


def test_chunked_upload_of_a_large_layer(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    big = layer_tar({"big.bin": os.urandom(3 * 1024 * 1024 + 17)})
    image = SampleImage(layers=[big], tags=["app:big"])
    tar = write_legacy(tmp_path / "app.tar", [image])
    with RegistryClient(registry.url, chunk_size=256 * 1024, workers=3) as client:
        result = client.push(tar, repo, "big")
    uploaded = {b.digest: b for b in result.blobs}
    assert uploaded[sha256(big)].action == "uploaded"
    assert uploaded[sha256(big)].bytes_moved == len(big)
    assert_same_image(skopeo_pull_dir(f"{registry.host}/{repo}:big", tmp_path / "out"), image)


def test_second_push_uploads_no_blob_bytes(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    with RegistryClient(registry.url) as client:
        first = client.push(tar, repo, "v1")
        second = client.push(tar, repo, "v2")
    assert first.bytes_uploaded > 0
    assert {b.action for b in first.blobs} == {"uploaded"}
    assert second.bytes_uploaded == 0
    assert {b.action for b in second.blobs} == {"exists"}
    assert first.digest == second.digest


def test_all_original_tags_upload_each_blob_once(registry: RegistryServer, tmp_path: Path) -> None:
    image = simple_image(tag="docker.io/library/allone:v1", n_layers=3)
    image.tags += ["allone:latest", "ghcr.io/org/alltwo:1", "localhost:5000/allthree:x"]
    tar = write_legacy(tmp_path / "app.tar", [image])
    with RegistryClient(registry.url) as client:
        results = client.push_all_tags(tar)
    assert [(r.repository, r.tag) for r in results] == [
        ("allone", "v1"),
        ("allone", "latest"),
        ("org/alltwo", "1"),
        ("allthree", "x"),
    ]
    assert len({r.digest for r in results}) == 1
    by_repo = {r.repository: {b.action for b in r.blobs} for r in results}
    assert by_repo == {"allone": {"uploaded"}, "org/alltwo": {"mounted"}, "allthree": {"mounted"}}
    uploaded = sum(r.bytes_uploaded for r in results if r.tag in ("v1", "1", "x"))
    assert uploaded == sum(len(x) for x in image.stored_layers()) + len(image.config())
    for name in ["allone:v1", "allone:latest", "org/alltwo:1", "allthree:x"]:
        r = requests.head(
            f"{registry.url}/v2/{name.replace(':', '/manifests/')}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        assert r.status_code == 200, name


def test_module_function_for_all_tags_returns_digest_per_tag(
    registry: RegistryServer, tmp_path: Path
) -> None:
    image = simple_image(tag="fnall:a")
    image.tags.append("fnall:b")
    tar = write_legacy(tmp_path / "app.tar", [image])
    digests = push_docker_tar_with_all_original_tags(tar, registry.url)
    assert len(digests) == 2 and digests[0] == digests[1]
    assert digests[0].startswith("sha256:")


def test_missing_parts_come_from_the_first_tag(registry: RegistryServer, tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image(tag="docker.io/bench/first:v7")])
    push_docker_tar(tar, registry.url)  # bench/first:v7
    push_docker_tar(tar, registry.url, "bench/other")  # bench/other:v7
    push_docker_tar(tar, registry.url, None, "v8")  # bench/first:v8
    for path in [
        "bench/first/manifests/v7",
        "bench/other/manifests/v7",
        "bench/first/manifests/v8",
    ]:
        assert requests.head(f"{registry.url}/v2/{path}").status_code == 200, path


def test_multi_image_archive_needs_a_choice(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    a = simple_image(tag="multi-a:1", seed="a")
    b = simple_image(tag="multi-b:2", seed="b")
    tar = write_legacy(tmp_path / "two.tar", [a, b])
    with pytest.raises(ValidationError) as err:
        push_docker_tar(tar, registry.url, repo, "v1")
    assert "holds 2 images" in str(err.value)
    assert "multi-a:1" in str(err.value) and "multi-b:2" in str(err.value)
    digest = push_docker_tar(tar, registry.url, repo, "v1", image="multi-b:2")
    assert skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")["digest"] == digest
    assert_same_image(skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "o2"), b)
    # Without repository and tag, the archive's first tag chooses.
    push_docker_tar(tar, registry.url)
    assert requests.head(f"{registry.url}/v2/multi-a/manifests/1").status_code == 200


def test_corrupt_layer_is_refused_and_no_manifest_is_put(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image()
    tar = write_docker25(tmp_path / "app.tar", [image])
    # Flip one byte of the second layer's content inside the archive.
    data = bytearray(tar.read_bytes())
    layer = image.stored_layers()[1]
    at = data.find(layer)
    assert at > 0
    data[at + 600] ^= 0xFF
    tar.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError) as err:
        push_docker_tar(tar, registry.url, repo, "v1")
    assert sha256(layer) in str(err.value)
    r = requests.get(f"{registry.url}/v2/{repo}/manifests/v1")
    assert r.status_code == 404


def test_a_large_layer_corrupt_near_its_end_is_refused_by_digest(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    # Its last segment goes with the commit, under the digest the archive gives: the bytes
    # are checked as they go, and the registry checks them too; either way, one clear error.
    tar = write_big_legacy(tmp_path / "big.tar", "big:v1", [12 << 20])
    with tarfile.open(tar) as archive:
        member = archive.getmember("l0/layer.tar")
        config = archive.extractfile("config.json")
        assert config is not None
        layer_digest = json.load(config)["rootfs"]["diff_ids"][0]
    data = bytearray(tar.read_bytes())
    data[member.offset_data + member.size - 100_000] ^= 0xFF
    tar.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError, match=layer_digest) as err:
        push_docker_tar(tar, registry.url, repo, "v1")
    assert "the bytes have digest" in str(err.value)
    assert requests.get(f"{registry.url}/v2/{repo}/manifests/v1").status_code == 404
    assert requests.head(f"{registry.url}/v2/{repo}/blobs/{layer_digest}").status_code == 404


def test_skopeo_pushed_image_archive_round_trip(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    # skopeo pushes, skopeo writes the archive, we push it under another name.
    image = simple_image(compression=["gzip", "gzip"])
    oci = write_oci_dir(tmp_path / "oci", image, ref="v1")
    skopeo(
        "copy", "--dest-tls-verify=false", f"oci:{oci}:v1", f"docker://{registry.host}/{repo}:src"
    )
    tar = tmp_path / "saved.tar"
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{registry.host}/{repo}:src",
        f"docker-archive:{tar}:saved/app:v1",
    )
    digest = push_docker_tar(tar, registry.url, repo, "again")
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}:again", tmp_path / "out")
    assert pulled["digest"] == digest
    config_path = tmp_path / "out" / pulled["config"]["digest"][7:]
    assert file_digest(config_path) == sha256(image.config())


@pytest.mark.parametrize("tagged", [True, False])
def test_the_image_chosen_in_an_archive_of_two_sharing_a_config_is_the_one_pushed(
    registry: RegistryServer, repo: str, tmp_path: Path, tagged: bool
) -> None:
    """Two images with one config and the same layers, differing in their manifests'
    annotations: #1 must push the second manifest, not the first one found."""
    image = simple_image()
    first = json.loads(image.oci_manifest())
    manifests = [first, {**first, "annotations": {"org.example.variant": "two"}}]
    raws = [json.dumps(m).encode() for m in manifests]
    tags = [["app:one"], ["app:two"]] if tagged else [[], []]
    path = tmp_path / "two.tar"
    with tarfile.open(path, "w") as tar:
        for data in [image.config(), *image.stored_layers(), *raws]:
            add_member(tar, f"blobs/sha256/{sha256(data)[7:]}", data)
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha256(raw),
                    "size": len(raw),
                    "annotations": {"io.containerd.image.name": f"docker.io/library/{t[0]}"}
                    if t
                    else {},
                }
                for raw, t in zip(raws, tags, strict=True)
            ],
        }
        add_member(tar, "index.json", json.dumps(index).encode())
        entries = [
            {
                "Config": f"blobs/sha256/{sha256(image.config())[7:]}",
                "RepoTags": t,
                "Layers": [f"blobs/sha256/{sha256(x)[7:]}" for x in image.stored_layers()],
            }
            for t in tags
        ]
        add_member(tar, "manifest.json", json.dumps(entries).encode())
    for choice, raw in [("#0", raws[0]), ("#1", raws[1])]:
        digest = push_docker_tar(path, registry.url, repo, choice[1:], image=choice)
        assert digest == sha256(raw)


def widest_push(registry: RegistryServer, tar: Path, repo: str) -> int:
    """Push through a link with latency, two workers; the most blobs moving at once."""
    lock, in_flight, widest = threading.Lock(), [0], [0]

    def count(event: TransferEvent) -> None:
        with lock:
            if event.kind == "start":
                in_flight[0] += 1
                widest[0] = max(widest[0], in_flight[0])
            elif event.kind in ("done", "error"):
                in_flight[0] -= 1

    with FaultyProxy(registry.host) as proxy:
        proxy.before_forward = lambda seen: time.sleep(0.05)
        with RegistryClient(proxy.url, workers=2, progress=count) as client:
            client.push(tar, repo, "v1")
    return widest[0]


def test_small_blobs_run_wider_than_the_workers_large_ones_do_not(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    """Many small layers are round trips: they run up to four times the workers at once."""
    small = write_legacy(tmp_path / "small.tar", [simple_image(n_layers=16)])
    large = write_big_legacy(tmp_path / "large.tar", "big:v1", [6 * 1024 * 1024] * 6)
    assert widest_push(registry, small, f"{repo}-small") > 2
    # Six large layers two at a time (and, beside them, the small config).
    assert widest_push(registry, large, f"{repo}-large") <= 2 + 1
