"""One copy between every place an image lives, checked by the tools that write and read them.

skopeo writes OCI layouts (``oci:``) and OCI archives (``oci-archive:``) from images in a real
registry, single-platform and multi-platform; registryv2 pushes and copies them, and skopeo
pulls the results back with every digest checked. The other way, registryv2 writes layouts and
archives, skopeo copies them into a registry and umoci, an independent reader of OCI layouts,
unpacks them into a root filesystem whose files are compared.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from registryv2 import (
    OCILayout,
    RegistryClient,
    copy,
    copy_all_tags,
    pull,
)

from .archives import SampleImage, sha256, simple_image, write_docker25
from .servers import RegistryServer, push_index, require, skopeo, skopeo_pull_dir

pytestmark = pytest.mark.integration


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registryv2", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(*args: str) -> str:
    done = run(*args)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    return done.stdout


def index_of(layout: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((layout / "index.json").read_text())
    return doc


def ref_digest(layout: Path, ref: str) -> str:
    """The digest index.json names ``ref`` by (its OCI ref.name)."""
    found = [
        m["digest"]
        for m in index_of(layout)["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref
    ]
    assert len(found) == 1, index_of(layout)
    return str(found[0])


def raw_digest(reference: str) -> str:
    """The digest of the manifest skopeo reads at ``docker://reference``."""
    raw = subprocess.run(
        [require("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        check=True,
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def skopeo_all(source: str, dest: Path) -> None:
    """skopeo copies every platform of ``source`` into an OCI layout, checking every digest."""
    skopeo("copy", "--all", "--src-tls-verify=false", source, f"oci:{dest}:check")


def arch_images() -> dict[str, SampleImage]:
    return {
        arch: simple_image(tag=f"multi:{arch}", seed=f"multi-{arch}", architecture=arch)
        for arch in ("amd64", "arm64")
    }


@pytest.fixture
def multi(registry: RegistryServer, repo: str, tmp_path: Path) -> tuple[str, str]:
    """A two-platform index in the registry: its reference and its digest."""
    archives = {
        arch: write_docker25(tmp_path / f"{arch}.tar", [image])
        for arch, image in arch_images().items()
    }
    index = push_index(registry.url, repo, "multi", archives)
    return f"{registry.host}/{repo}:multi", sha256(index)


def test_skopeo_layouts_and_oci_archives_push_under_their_own_tag(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(tag="app:v1", seed="skopeo-layout")
    source = write_docker25(tmp_path / "src.tar", [image])
    layout, oci_tar = tmp_path / "layout", tmp_path / "app-oci.tar"
    skopeo("copy", f"docker-archive:{source}", f"oci:{layout}:v1")
    skopeo("copy", f"docker-archive:{source}", f"oci-archive:{oci_tar}:v1")
    written = ref_digest(layout, "v1")
    config = json.loads((layout / "blobs" / "sha256" / written[7:]).read_text())["config"]

    # oci:DIR:REF, a bare directory, and a tarred layout without a tag: each goes up under
    # the v1 its ref.name gives, with the digest skopeo gave it.
    out = ok("push", f"oci:{layout}:v1", f"{registry.host}/{repo}")
    assert out.strip() == f"{registry.host}/{repo}:v1@{written}"
    ok("push", str(layout), f"{registry.host}/{repo}:bare")
    assert ok("push", "-q", str(oci_tar), f"{other.host}/{repo}").strip() == written
    for reference in (f"{registry.host}/{repo}:v1", f"{registry.host}/{repo}:bare"):
        pulled = skopeo_pull_dir(reference, tmp_path / reference.rsplit(":", 1)[1])
        assert pulled["digest"] == written
        assert pulled["config"]["digest"] == config["digest"]
    assert raw_digest(f"{other.host}/{repo}:v1") == written

    # inspect names the image by its tag; copy from the layout to a registry and an archive.
    assert "Tags:         v1" in ok("inspect", str(oci_tar))
    assert "Tags:         v1" in ok("inspect", f"oci:{layout}")
    result = copy(f"oci:{layout}:v1", f"{other.host}/{repo}:copied")
    assert result.digest == written and result.destination == (f"{other.host}/{repo}:copied",)
    assert raw_digest(f"{other.host}/{repo}:copied") == written


def test_a_skopeo_multi_platform_layout_keeps_its_index_digest(
    registry: RegistryServer,
    other: RegistryServer,
    repo: str,
    tmp_path: Path,
    multi: tuple[str, str],
) -> None:
    reference, index_digest = multi
    layout, oci_tar = tmp_path / "layout", tmp_path / "multi-oci.tar"
    skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{reference}",
        f"oci:{layout}:m",
    )
    skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{reference}",
        f"oci-archive:{oci_tar}",
    )
    assert ref_digest(layout, "m") == index_digest

    ok("copy", f"oci:{layout}:m", f"{other.host}/{repo}:from-layout")
    ok("push", "--all", str(oci_tar), f"{other.host}/{repo}:from-archive")
    ok("push", "--platform", "all", f"oci:{layout}:m", f"{registry.host}/{repo}:again")
    for target in (
        f"{other.host}/{repo}:from-layout",
        f"{other.host}/{repo}:from-archive",
        f"{registry.host}/{repo}:again",
    ):
        assert raw_digest(target) == index_digest
        skopeo_all(f"docker://{target}", tmp_path / "check")

    # One platform of the layout: that image, pushed as it is.
    with RegistryClient(registry.url) as client:
        arm = client.get_manifest(repo, "multi").manifests[1]
    assert arm.platform is not None and arm.platform.architecture == "arm64"
    out = ok("push", "--platform", "linux/arm64", f"oci:{layout}:m", f"{other.host}/{repo}:arm")
    assert out.strip().endswith("@" + arm.digest)
    assert raw_digest(f"{other.host}/{repo}:arm") == arm.digest


def test_an_index_round_trips_through_an_archive_and_a_layout(
    registry: RegistryServer, repo: str, tmp_path: Path, multi: tuple[str, str]
) -> None:
    reference, index_digest = multi
    bundle, layout = tmp_path / "bundle.tar", tmp_path / "layout"
    ok("pull", "--all", reference, "-o", str(bundle))
    ok("pull", "--platform", "all", reference, "-o", f"{layout}/")
    ok("push", "--all", str(bundle), f"{registry.host}/{repo}:via-archive")
    ok("push", "--all", str(layout), f"{registry.host}/{repo}:via-layout")
    assert raw_digest(f"{registry.host}/{repo}:via-archive") == index_digest
    assert raw_digest(f"{registry.host}/{repo}:via-layout") == index_digest
    # skopeo reads both as OCI: the archive as oci-archive, the layout as oci.
    skopeo(
        "copy", "--all", "--preserve-digests", f"oci-archive:{bundle}", f"oci:{tmp_path / 'a'}:x"
    )
    skopeo("copy", "--all", "--preserve-digests", f"oci:{layout}", f"oci:{tmp_path / 'b'}:x")
    assert ref_digest(tmp_path / "a", "x") == ref_digest(tmp_path / "b", "x") == index_digest


def umoci_unpack(layout: Path, ref: str, bundle: Path) -> Path:
    subprocess.run(
        [require("umoci"), "unpack", "--image", f"{layout}:{ref}", str(bundle)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return bundle / "rootfs"


def test_layouts_and_oci_archives_we_write_are_read_by_skopeo_and_umoci(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(tag="app:v1", seed="umoci", n_layers=2)
    source = write_docker25(tmp_path / "src.tar", [image])
    ok("push", str(source), f"{registry.host}/{repo}:v1")
    layout, oci_tar = tmp_path / "layout", tmp_path / "out-oci.tar"
    ok("pull", f"{registry.host}/{repo}:v1", "-o", f"oci:{layout}:v1")
    ok("copy", f"{registry.host}/{repo}:v1", f"oci-archive:{oci_tar}:v1")

    skopeo(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{layout}:v1",
        f"docker://{other.host}/{repo}:l",
    )
    skopeo(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci-archive:{oci_tar}:v1",
        f"docker://{other.host}/{repo}:a",
    )
    digest = raw_digest(f"{registry.host}/{repo}:v1")
    assert raw_digest(f"{other.host}/{repo}:l") == raw_digest(f"{other.host}/{repo}:a") == digest

    extracted = tmp_path / "extracted"
    with tarfile.open(oci_tar) as tar:
        tar.extractall(extracted, filter="data")
    for where, name in ((layout, "from-layout"), (extracted, "from-archive")):
        rootfs = umoci_unpack(where, "v1", tmp_path / name)
        for layer in image.layers:
            with tarfile.open(fileobj=__import__("io").BytesIO(layer)) as tar:
                for member in tar.getmembers():
                    data = tar.extractfile(member)
                    assert data is not None
                    assert (rootfs / member.name).read_bytes() == data.read(), member.name


def test_an_image_added_to_a_layout_keeps_the_ones_there(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    one = simple_image(tag="one:1", seed="layout-one", n_layers=2)
    two = simple_image(tag="two:2", seed="layout-two", n_layers=2)
    two.layers[0] = one.layers[0]  # a base layer shared with the first
    for name, image in (("one", one), ("two", two)):
        ok(
            "push",
            str(write_docker25(tmp_path / f"{name}.tar", [image])),
            f"{registry.host}/{repo}:{name}",
        )
    layout = tmp_path / "layout"
    skopeo(
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{registry.host}/{repo}:one",
        f"oci:{layout}:one",
    )
    before = {p.name: p.stat().st_mtime_ns for p in (layout / "blobs" / "sha256").iterdir()}

    pulled = pull(f"{registry.host}/{repo}:two", OCILayout(str(layout), "two"))
    assert [p.repo_tags for p in pulled] == [["two"]]
    blobs = layout / "blobs" / "sha256"
    # The shared layer was there: not written again.
    shared = sha256(one.stored_layers()[0])[7:]
    assert (blobs / shared).stat().st_mtime_ns == before[shared]
    assert set(before) < {p.name for p in blobs.iterdir()}
    assert not [p for p in layout.iterdir() if p.name.endswith(".part")]
    assert {
        m["annotations"]["org.opencontainers.image.ref.name"] for m in index_of(layout)["manifests"]
    } == {"one", "two"}
    for ref in ("one", "two"):
        skopeo("copy", f"oci:{layout}:{ref}", f"dir:{tmp_path / ('dir-' + ref)}")

    # The same name again replaces its entry; the other stays.
    pull(f"{registry.host}/{repo}:one", OCILayout(str(layout), "two"))
    assert ref_digest(layout, "two") == ref_digest(layout, "one")
    assert len(index_of(layout)["manifests"]) == 2


def test_every_tag_into_a_layout_and_back(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    images = [simple_image(tag=f"app:{t}", seed=f"all-{t}") for t in ("v1", "v2")]
    for image in images:
        ok(
            "push",
            str(write_docker25(tmp_path / f"{image.tags[0]}.tar", [image])),
            f"{registry.host}/{repo}",
        )
    layout = tmp_path / "mirror"
    results = copy_all_tags(f"{registry.host}/{repo}", f"{layout}/")
    assert sorted(d for r in results for d in r.destination) == [
        f"oci:{layout}/:{registry.host}/{repo}:v1",
        f"oci:{layout}/:{registry.host}/{repo}:v2",
    ]
    assert {ref_digest(layout, t) for t in ("v1", "v2")} == {r.digest for r in results}
    ok("copy", "--all-tags", f"oci:{layout}", f"{other.host}/{repo}")
    with RegistryClient(other.url) as client:
        assert sorted(client.list_tags(repo)) == ["v1", "v2"]
        assert {client.resolve_digest(repo, t) for t in ("v1", "v2")} == {r.digest for r in results}


def test_a_pull_killed_while_writing_into_a_layout_leaves_it_as_it_was(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    from .archives import write_big_legacy
    from .proxies import FaultyProxy

    small = write_docker25(tmp_path / "small.tar", [simple_image(tag="s:1", seed="kill-small")])
    ok("push", str(small), f"{registry.host}/{repo}:small")
    ok(
        "push",
        str(write_big_legacy(tmp_path / "big.tar", "big:1", [24 << 20])),
        f"{registry.host}/{repo}:big",
    )
    layout = tmp_path / "layout"
    ok("pull", f"{registry.host}/{repo}:small", "-o", f"oci:{layout}:small")
    index_before = (layout / "index.json").read_bytes()
    with FaultyProxy(registry.host) as proxy:
        proxy.throttle = 0.01  # about 6 MB/s: the kill lands mid-layer
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "registryv2",
                "pull",
                f"{proxy.host}/{repo}:big",
                "-o",
                f"oci:{layout}:big",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import time

        deadline = time.monotonic() + 30
        while proxy.downloaded < 4 << 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.kill()
        process.wait(10)
    assert (layout / "index.json").read_bytes() == index_before
    skopeo("copy", f"oci:{layout}:small", f"dir:{tmp_path / 'still-readable'}")
    # The next pull completes (the killed one's temporary files are no part of the layout).
    ok("pull", f"{registry.host}/{repo}:big", "-o", f"oci:{layout}:big")
    ok("validate", f"oci:{layout}:big")
    with RegistryClient(registry.url) as client:
        assert ref_digest(layout, "big") == client.resolve_digest(repo, "big")
    skopeo("copy", f"oci:{layout}:small", f"dir:{tmp_path / 'small-read'}")


def test_pull_to_standard_output_is_an_archive_skopeo_reads(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(tag="app:v1", seed="stdout")
    ok("push", str(write_docker25(tmp_path / "src.tar", [image])), f"{registry.host}/{repo}:v1")
    out = tmp_path / "streamed.tar"
    with open(out, "wb") as f:
        done = subprocess.run(
            [sys.executable, "-m", "registryv2", "pull", f"{registry.host}/{repo}:v1", "-o", "-"],
            stdout=f,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    # The summary went to standard error: standard output is the archive alone.
    assert done.stderr.startswith("sha256:")
    read = skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "reg")
    streamed = tmp_path / "from-stream"
    skopeo("copy", f"docker-archive:{out}", f"dir:{streamed}")
    assert (
        json.loads((streamed / "manifest.json").read_text())["config"]["digest"]
        == read["config"]["digest"]
    )
    with tarfile.open(out) as tar:
        assert {"manifest.json", "index.json", "oci-layout"} <= set(tar.getnames())


def test_docker_manifests_go_into_a_layout_as_oci_ones_with_format_oci(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    from .archives import write_legacy

    image = simple_image(tag="app:v1", seed="format-oci")
    ok("push", str(write_legacy(tmp_path / "legacy.tar", [image])), f"{registry.host}/{repo}:v1")
    reference = f"{registry.host}/{repo}:v1"
    kept, converted = tmp_path / "kept", tmp_path / "converted"
    ok("pull", reference, "-o", f"oci:{kept}:v1")
    ok("pull", "--format", "oci", reference, "-o", f"oci:{converted}:v1")
    # Byte for byte by default (the registry's digest, a Docker manifest); OCI on request.
    assert ref_digest(kept, "v1") == raw_digest(reference)
    manifest = json.loads(
        (converted / "blobs" / "sha256" / ref_digest(converted, "v1")[7:]).read_text()
    )
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert [layer["digest"] for layer in manifest["layers"]] == [
        sha256(layer) for layer in image.stored_layers()
    ]
    rootfs = umoci_unpack(converted, "v1", tmp_path / "bundle")
    assert (rootfs / "file0.txt").read_bytes() == b"format-oci layer 0\n"
    skopeo(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{converted}:v1",
        f"docker://{other.host}/{repo}:oci",
    )
    assert raw_digest(f"{other.host}/{repo}:oci") == ref_digest(converted, "v1")


def test_push_docker_tar_takes_a_layout_and_a_named_place(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    from registryv2 import push_docker_tar

    image = simple_image(tag="app:v1", seed="api-place")
    source = write_docker25(tmp_path / "src.tar", [image])
    layout = tmp_path / "layout"
    copy(str(source), f"oci:{layout}:v1")
    copy(str(source), f"oci:{layout}:v2")
    # A layout's path with the name as image=, or the name in the place: its tag when none given.
    one = push_docker_tar(layout, registry.url, repo, image="v1")
    two = push_docker_tar(f"oci:{layout}:v2", registry.url, repo)
    assert one == two == ref_digest(layout, "v1")
    with RegistryClient(registry.url) as client:
        assert sorted(client.list_tags(repo)) == ["v1", "v2"]
