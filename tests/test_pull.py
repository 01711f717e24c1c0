"""Pulling images from a real registry into archives that skopeo and our own reader take back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from registryv2 import (
    DigestMismatchError,
    ImageArchive,
    RegistryClient,
    RegistryError,
    ValidationError,
    pull,
    pull_docker_tar,
    push_docker_tar,
    validate_docker_tar,
)
from registryv2.manifest import OCI_INDEX, host_platform

from .archives import (
    SampleImage,
    file_digest,
    layer_tar,
    sha256,
    simple_image,
    write_legacy,
    write_oci_dir,
)
from .proxies import FAST, FaultyProxy
from .servers import RegistryServer, push_index, skopeo, skopeo_to_dir

pytestmark = pytest.mark.integration


def skopeo_pushes(registry: RegistryServer, image: SampleImage, target: str, tmp: Path) -> str:
    """Push ``image`` with skopeo (from an OCI layout, layers as the image stores them)."""
    oci = write_oci_dir(tmp / "oci", image, ref="src")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{oci}:src", f"docker://{target}")
    with RegistryClient(registry.url) as client:
        repository, tag = target.split("/", 1)[1].rsplit(":", 1)
        return client.resolve_digest(repository, tag)


def read_back(archive: Path, tmp: Path, name: str = "") -> dict[str, Any]:
    """The archive read by skopeo as a docker archive, every blob checked."""
    return skopeo_to_dir(f"docker-archive:{archive}{name}", tmp / f"read-{os.urandom(4).hex()}")


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile() and not m.name.startswith("blobs/")
        }


def push_v1(registry: RegistryServer, repo: str, tmp: Path, image: SampleImage) -> str:
    """Push ``image`` as ``repo:v1`` with registryv2, from a legacy archive; its digest."""
    return push_docker_tar(write_legacy(tmp / "src.tar", [image]), registry.url, repo, "v1")


def big_layer_image(mib: int, *more: bytes) -> tuple[SampleImage, bytes]:
    """An image whose first layer holds ``mib`` MiB of random bytes, then ``more`` layers."""
    big = layer_tar({"big.bin": os.urandom(mib * 1024 * 1024)})
    return SampleImage(layers=[big, *more], tags=["app:v1"]), big


def test_skopeo_pushed_gzip_image_pulls_and_pushes_back_to_the_same_digest(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(compression=["gzip", "gzip"])
    source = f"{registry.host}/{repo}:v1"
    digest = skopeo_pushes(registry, image, source, tmp_path)
    out = tmp_path / "pulled.tar"
    [info] = pull(source, out)
    assert info.manifest_digest == digest
    assert info.repo_tags == [source]
    assert [x.media_type for x in info.layers] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ] * 2
    # skopeo reads it as a docker archive: the diff_ids are the source image's, and skopeo
    # checked each decompressed layer against them.
    read = read_back(out, tmp_path)
    assert read["config"]["parsed"]["rootfs"]["diff_ids"] == [sha256(x) for x in image.layers]
    assert [x["digest"] for x in read["layers"]] == [sha256(x) for x in image.layers]
    # ... and as an OCI archive, with the layers as stored in the registry.
    oci = skopeo_to_dir(f"oci-archive:{out}", tmp_path / "as-oci")
    assert oci["digest"] == digest
    # Pushed again from the archive, the image keeps its digest.
    assert push_docker_tar(out, registry.url, repo + "-again", "v1") == digest
    assert validate_docker_tar(out)


def test_registryv2_pushed_image_pulls_and_pushes_back_to_the_same_digest(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(n_layers=3)
    digest = push_v1(registry, repo, tmp_path, image)
    out = tmp_path / "pulled.tar"
    assert pull_docker_tar(out, registry.url, repo, "v1") == digest
    read = read_back(out, tmp_path)
    assert read["config"]["parsed"]["rootfs"]["diff_ids"] == [sha256(x) for x in image.layers]
    assert file_digest(tmp_path / "pulled.tar") == file_digest(out)
    assert push_docker_tar(out, registry.url, repo + "-again", "v1") == digest
    # The archive is docker 25's layout: manifest.json with the tag, an OCI index naming it.
    files = members(out)
    [entry] = json.loads(files["manifest.json"])
    assert entry["RepoTags"] == [f"{registry.host}/{repo}:v1"]
    assert entry["Layers"] == [f"blobs/sha256/{sha256(x)[7:]}" for x in image.layers]
    index = json.loads(files["index.json"])
    assert index["mediaType"] == OCI_INDEX
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["annotations"] == {
        "io.containerd.image.name": f"{registry.host}/{repo}:v1",
        "org.opencontainers.image.ref.name": "v1",
    }
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}


def test_pulling_twice_gives_the_same_bytes(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image()
    push_v1(registry, repo, tmp_path, image)
    pull_docker_tar(tmp_path / "a.tar", registry.url, repo, "v1")
    pull_docker_tar(tmp_path / "b.tar", registry.url, repo, "v1")
    assert file_digest(tmp_path / "a.tar") == file_digest(tmp_path / "b.tar")


def test_several_references_into_one_archive(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    one, two = simple_image(seed="one"), simple_image(seed="two", n_layers=1)
    first = push_docker_tar(write_legacy(tmp_path / "1.tar", [one]), registry.url, repo, "one")
    push_docker_tar(write_legacy(tmp_path / "2.tar", [two]), registry.url, repo + "/db", "two")
    with RegistryClient(registry.url) as client:
        client.tag(repo, "one", "also")
    refs = [
        f"{registry.host}/{repo}:one",
        f"{registry.host}/{repo}/db:two",
        f"{registry.host}/{repo}:also",
        f"{registry.host}/{repo}@{first}",
    ]
    out = tmp_path / "both.tar"
    infos = pull(refs, out)
    assert [i.id for i in infos] == [sha256(x.config()) for x in (one, two, one, one)]
    entries = json.loads(members(out)["manifest.json"])
    assert [e["RepoTags"] for e in entries] == [[refs[0], refs[2]], [refs[1]]]
    with ImageArchive.open(out) as archive:
        assert [i.tags for i in archive.images] == [(refs[0], refs[2]), (refs[1],)]
    for ref, image in [(refs[1], two), (refs[2], one)]:
        read = read_back(out, tmp_path, ":" + ref)
        assert read["config"]["parsed"]["rootfs"]["diff_ids"] == [sha256(x) for x in image.layers]


def test_multi_platform_index_pulls_the_platform_asked_for(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    images = {
        arch: simple_image(seed=arch, architecture=arch, n_layers=1) for arch in ("amd64", "arm64")
    }
    archives = {a: write_legacy(tmp_path / f"{a}.tar", [i]) for a, i in images.items()}
    push_index(registry.url, repo, "multi", archives)
    with RegistryClient(registry.url) as client:
        ref = f"{repo}:multi"
        [arm] = client.pull(ref, tmp_path / "arm.tar", platform="linux/arm64")
        assert arm.architecture == "arm64"
        assert arm.id == sha256(images["arm64"].config())
        read = read_back(tmp_path / "arm.tar", tmp_path)
        assert read["config"]["parsed"]["architecture"] == "arm64"
        # No platform: this machine's.
        [mine] = client.pull(ref, tmp_path / "host.tar")
        assert mine.architecture == host_platform().architecture
        with pytest.raises(ValidationError) as err:
            client.pull(ref, tmp_path / "s390x.tar", platform="linux/s390x")
        assert "has no image for linux/s390x (available: linux/amd64, linux/arm64)" in str(
            err.value
        )
        assert not (tmp_path / "s390x.tar").exists()
        # A single-platform image asked for with another platform is refused, as docker does.
        with pytest.raises(ValidationError, match="is for linux/amd64, not linux/arm64"):
            client.pull(f"{repo}:amd64", tmp_path / "wrong.tar", platform="linux/arm64")


def test_a_download_cut_in_the_middle_resumes_with_range(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image, big = big_layer_image(3, layer_tar({"small": b"x"}))
    push_v1(registry, repo, tmp_path, image)
    with FaultyProxy(registry.host) as proxy:
        proxy.cut(sha256(big), after=1_000_000, times=2)
        out = tmp_path / "pulled.tar"
        pull_docker_tar(out, proxy.url, repo, "v1")
        gets = proxy.blob_gets(sha256(big))
    # Cut twice: at 1,000,000 bytes, then 1,000,000 bytes later; the third GET finishes.
    assert [g.range for g in gets] == [None, "bytes=1000000-", "bytes=2000000-"]
    read = read_back(out, tmp_path)
    assert [x["digest"] for x in read["layers"]] == [sha256(x) for x in image.layers]


def test_a_server_that_ignores_range_is_followed_by_skipping(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image, big = big_layer_image(2)
    push_v1(registry, repo, tmp_path, image)
    with FaultyProxy(registry.host) as proxy:
        proxy.ignore_range = True
        proxy.cut(sha256(big), after=700_000)
        out = tmp_path / "pulled.tar"
        pull_docker_tar(out, proxy.url, repo, "v1")
        assert [g.range for g in proxy.blob_gets(sha256(big))] == [None, "bytes=700000-"]
    assert validate_docker_tar(out)


def test_a_download_that_never_progresses_gives_up_and_leaves_nothing(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image()
    push_v1(registry, repo, tmp_path, image)
    layer = sha256(image.layers[0])
    with FaultyProxy(registry.host) as proxy:
        proxy.cut(layer, after=100, times=2)
        proxy.cut(layer, after=0, times=10)
        broke = r"download broke off at byte 200 of \d+ \(the connection closed early\)"
        with pytest.raises(RegistryError, match=broke + r" \(gave up after 5 attempts\)$"):
            pull_docker_tar(tmp_path / "out.tar", proxy.url, repo, "v1", retry=FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.tar"]


def test_a_corrupted_blob_is_refused_and_the_old_file_stays(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image()
    push_v1(registry, repo, tmp_path, image)
    layer = sha256(image.layers[1])
    # Corrupt the blob inside the registry's own storage: it serves whatever the disk holds.
    stored = (
        registry.root / "data/docker/registry/v2/blobs/sha256" / layer[7:9] / layer[7:] / "data"
    )
    data = bytearray(stored.read_bytes())
    data[100] ^= 0xFF
    stored.write_bytes(bytes(data))
    out = tmp_path / "out.tar"
    out.write_bytes(b"an older archive")
    with pytest.raises(DigestMismatchError, match=layer):
        pull_docker_tar(out, registry.url, repo, "v1")
    assert out.read_bytes() == b"an older archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tar", "src.tar"]


def test_output_path_problems_are_named(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    push_v1(registry, repo, tmp_path, simple_image())
    # A directory is an OCI layout to write: one holding other files is refused, untouched.
    with pytest.raises(ValidationError, match="neither empty nor an OCI image layout"):
        pull_docker_tar(tmp_path, registry.url, repo, "v1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.tar"]
    with pytest.raises(ValidationError, match="does not exist"):
        pull_docker_tar(tmp_path / "no" / "out.tar", registry.url, repo, "v1")


@pytest.mark.parametrize(
    ("signum", "status", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_a_pull_stalled_mid_blob_ends_within_two_seconds_of_a_signal(
    registry: RegistryServer, repo: str, tmp_path: Path, signum: int, status: int, said: str
) -> None:
    image, big = big_layer_image(2)
    push_v1(registry, repo, tmp_path, image)
    out = tmp_path / "out"
    out.mkdir()
    (out / "app.tar").write_bytes(b"an older archive")
    with FaultyProxy(registry.host) as proxy:
        proxy.hang(sha256(big), after=300_000)  # then silence, well inside the read timeout
        command = [sys.executable, "-m", "registryv2", "pull", f"{proxy.host}/{repo}:v1"]
        process = subprocess.Popen(
            [*command, "-o", str(out / "app.tar")], stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 30
        while proxy.downloaded < 300_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # stalled now
        assert len(list(out.iterdir())) == 2, "the pull should have begun its temporary file"
        process.send_signal(signum)
        signalled = time.monotonic()
        _, stderr = process.communicate(timeout=30)
        took = time.monotonic() - signalled
    assert process.returncode == status
    assert stderr.strip() == f"registryv2: {said}"
    assert took < 2, took
    assert [p.name for p in out.iterdir()] == ["app.tar"]
    assert (out / "app.tar").read_bytes() == b"an older archive"


def test_a_disk_that_fills_up_is_one_clear_error_and_leaves_nothing(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image, _ = big_layer_image(2)
    push_v1(registry, repo, tmp_path, image)
    out = tmp_path / "out"
    out.mkdir()
    (out / "app.tar").write_bytes(b"an older archive")
    # A file size limit stands in for a full disk: writes past it fail with EFBIG.
    limited = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000)); "
        "from registryv2.cli import main; sys.argv[0] = 'registryv2'; main()"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            limited,
            "pull",
            f"{registry.host}/{repo}:v1",
            "-o",
            str(out / "app.tar"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "cannot write (File too large)" in done.stderr and str(out / "app.tar") in done.stderr
    assert [p.name for p in out.iterdir()] == ["app.tar"]
    assert (out / "app.tar").read_bytes() == b"an older archive"
