"""What docker itself accepts: archives docker saves, images docker pulls, archives docker loads.

docker treats registries on 127.0.0.0/8 as insecure by default, so it talks plain http to the
test registry. Images are a busybox binary in one layer, so docker can run what it got.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from registryv2 import (
    copy,
    inspect_docker_tar,
    pull_docker_tar,
    push_docker_tar,
    push_docker_tar_with_all_original_tags,
)
from registryv2.manifest import DOCKER_LAYER_GZIP

from .archives import SampleImage, write_docker25
from .servers import DockerDaemon, RegistryServer, require, skopeo

pytestmark = pytest.mark.integration


def busybox_image(tags: list[str]) -> SampleImage:
    """One layer holding a static busybox, executable: docker can run it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = Path(require("busybox")).read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode, info.mtime = len(data), 0o755, 1_700_000_000
        tar.addfile(info, io.BytesIO(data))
    return SampleImage(layers=[buffer.getvalue()], tags=tags)


@pytest.fixture
def images(docker: DockerDaemon) -> Iterator[list[str]]:
    """Names of images this test gives docker; removed from docker afterwards."""
    names: list[str] = []
    yield names
    if names:
        docker.run("rmi", "--force", *names)


def docker_saved(docker: DockerDaemon, images: list[str], repo: str, tmp_path: Path) -> Path:
    """A busybox image given to docker, then ``docker save``d: docker's own archive, its own
    layout."""
    source = f"rv2-test/{repo.replace('/', '-')}:src"
    images.append(source)
    docker.run("load", "-i", str(write_docker25(tmp_path / "src.tar", [busybox_image([source])])))
    saved = tmp_path / "saved.tar"
    docker.run("save", "-o", str(saved), source)
    return saved


def test_an_archive_docker_saved_is_pushed_and_docker_pulls_and_runs_it(
    docker: DockerDaemon, images: list[str], registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    saved = docker_saved(docker, images, repo, tmp_path)
    digest = push_docker_tar(saved, registry.url, repo, "v1")

    ref = f"{registry.host}/{repo}:v1"
    images.append(ref)
    docker.run("pull", ref)
    repo_digests = docker.run("image", "inspect", "--format", "{{json .RepoDigests}}", ref)
    assert f"{registry.host}/{repo}@{digest}" in repo_digests
    # Same image ID: the config docker saved is the config that came back.
    ids = {docker.run("image", "inspect", "--format", "{{.Id}}", name).strip() for name in images}
    assert ids == {inspect_docker_tar(saved).id}
    assert docker.run("run", "--rm", ref, "/bin/busybox", "echo", "hello").strip() == "hello"


def test_an_archive_pushed_gzipped_is_what_docker_pulls_and_runs(
    docker: DockerDaemon, images: list[str], registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    saved = docker_saved(docker, images, repo, tmp_path)
    digest = push_docker_tar(saved, registry.url, repo, "gz", compress="gzip")

    ref = f"{registry.host}/{repo}:gz"
    images.append(ref)
    docker.run("pull", ref)
    manifest = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}"))
    assert {layer["mediaType"] for layer in manifest["layers"]} == {DOCKER_LAYER_GZIP}
    assert f"{registry.host}/{repo}@{digest}" in docker.run(
        "image", "inspect", "--format", "{{json .RepoDigests}}", ref
    )
    # The image ID is the config's digest: unchanged by compressing the layers.
    assert docker.run("image", "inspect", "--format", "{{.Id}}", ref).strip() == (
        inspect_docker_tar(saved).id
    )
    assert docker.run("run", "--rm", ref, "/bin/busybox", "echo", "gz").strip() == "gz"


def test_an_archive_we_pull_is_loaded_and_run_by_docker(
    docker: DockerDaemon, images: list[str], registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    archive = write_docker25(tmp_path / "src.tar", [busybox_image(["example.com/bb:1"])])
    push_docker_tar(archive, registry.url, repo, "v1")
    pulled = tmp_path / "pulled.tar"
    pull_docker_tar(pulled, registry.url, repo, "v1")

    ref = f"{registry.host}/{repo}:v1"
    images.append(ref)
    assert f"Loaded image: {ref}" in docker.run("load", "-i", str(pulled))
    assert docker.run("run", "--rm", ref, "/bin/busybox", "echo", "loaded").strip() == "loaded"


def test_every_tag_of_a_docker_saved_archive_is_pulled_by_docker(
    docker: DockerDaemon, images: list[str], registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    base = f"{registry.host}/{repo}"
    tags = [f"{base}/tool:1.0", f"{base}/tool:latest", f"{base}/other:2"]
    images.extend(tags)
    docker.run("load", "-i", str(write_docker25(tmp_path / "src.tar", [busybox_image(tags)])))
    saved = tmp_path / "saved.tar"
    docker.run("save", "-o", str(saved), *tags)
    docker.run("rmi", *tags)
    digests = push_docker_tar_with_all_original_tags(saved, registry.url)
    assert len(digests) == 3 and len(set(digests)) == 1
    for tag in tags:
        docker.run("pull", tag)
        assert docker.run("run", "--rm", tag, "/bin/busybox", "echo", "ok").strip() == "ok"


def test_a_pull_to_standard_output_is_piped_into_docker_load(
    docker: DockerDaemon, images: list[str], registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    archive = write_docker25(tmp_path / "src.tar", [busybox_image(["example.com/bb:1"])])
    push_docker_tar(archive, registry.url, repo, "v1")
    ref = f"{registry.host}/{repo}:v1"
    images.append(ref)
    pipeline = subprocess.run(
        [
            "bash",
            "-o",
            "pipefail",
            "-c",
            f"{sys.executable} -m registryv2 pull {ref} -o - | docker load",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pipeline.returncode == 0, pipeline.stderr
    assert f"Loaded image: {ref}" in pipeline.stdout
    assert docker.run("run", "--rm", ref, "/bin/busybox", "echo", "piped").strip() == "piped"


def test_a_layout_docker_cannot_read_goes_into_docker_through_an_archive(
    docker: DockerDaemon, images: list[str], registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    # A layout (BuildKit's --output type=oci) becomes a docker-loadable archive, and the image
    # pushed from the layout is what docker pulls and runs.
    archive = write_docker25(tmp_path / "src.tar", [busybox_image(["example.com/bb:1"])])
    layout = tmp_path / "layout"
    copy(str(archive), f"oci:{layout}:v1")
    loadable = tmp_path / "loadable.tar"
    copy(f"oci:{layout}:v1", f"docker-archive:{loadable}:example.com/{repo}:fromlayout")
    images.append(f"example.com/{repo}:fromlayout")
    assert f"Loaded image: example.com/{repo}:fromlayout" in docker.run("load", "-i", str(loadable))
    ref = f"{registry.host}/{repo}:layout"
    images.append(ref)
    copy(f"oci:{layout}:v1", ref)
    docker.run("pull", ref)
    assert docker.run("run", "--rm", ref, "/bin/busybox", "echo", "layout").strip() == "layout"


def test_a_sync_bundle_is_loaded_by_docker_with_every_tag(
    docker: DockerDaemon, images: list[str], registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    # Two images (one tagged twice) in two repositories, into one bundle for the air gap.
    tool = write_docker25(tmp_path / "tool.tar", [busybox_image(["example.com/tool:1"])])
    other = write_docker25(
        tmp_path / "other.tar",
        [busybox_image(["example.com/other:1"])],
    )
    push_docker_tar(tool, registry.url, f"{repo}-tool", "1.0")
    push_docker_tar(tool, registry.url, f"{repo}-tool", "latest")
    push_docker_tar(other, registry.url, f"{repo}-other", "2", compress="gzip")
    listing = tmp_path / "sync.yml"
    listing.write_text(
        f"{registry.host}:\n  images:\n    {repo}-tool: []\n    {repo}-other: ['2']\n"
    )
    bundle = tmp_path / "bundle.tar"
    command = [sys.executable, "-m", "registryv2", "sync", "--src", "yaml"]
    command += ["--dest", "docker-archive", str(listing), str(bundle)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Named as skopeo names them: the repository's last part, and the tag.
    base = repo.rpartition("/")[2]
    names = [f"{base}-tool:1.0", f"{base}-tool:latest", f"{base}-other:2"]
    images.extend(names)
    loaded = docker.run("load", "-i", str(bundle))
    assert sorted(line for line in loaded.splitlines() if line.startswith("Loaded image")) == [
        f"Loaded image: {name}" for name in sorted(names)
    ]
    for name in names:
        assert docker.run("run", "--rm", name, "/bin/busybox", "echo", "ok").strip() == "ok"
