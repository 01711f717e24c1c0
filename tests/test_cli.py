"""The registryv2 command, run as a user runs it: a subprocess, its stdout, stderr and status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .archives import simple_image, write_legacy
from .servers import RegistryServer, skopeo_pull_dir

pytestmark = pytest.mark.integration


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registryv2", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_push_prints_the_digest(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    done = run("push", str(tar), f"{registry.host}/{repo}:v1")
    assert done.returncode == 0, done.stderr
    digest = done.stdout.strip()
    assert digest.startswith("sha256:") and len(digest) == 71
    assert skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")["digest"] == digest


def test_push_of_a_missing_file(registry: RegistryServer, tmp_path: Path) -> None:
    missing = tmp_path / "nope.tar"
    assert_one_line_error(
        run("push", str(missing), f"{registry.host}/x:y"), str(missing), "no such file"
    )


def test_push_of_a_junk_file(registry: RegistryServer, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive\n" * 100)
    assert_one_line_error(run("push", str(junk), f"{registry.host}/x:y"), str(junk), "not a tar")


def test_push_of_an_archive_missing_a_layer(registry: RegistryServer, tmp_path: Path) -> None:
    import tarfile

    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    broken = tmp_path / "broken.tar"
    with tarfile.open(tar) as src, tarfile.open(broken, "w") as dst:
        dropped = None
        for member in src.getmembers():
            if member.name.endswith("layer.tar") and dropped is None:
                dropped = member.name
                continue
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
    assert dropped is not None
    assert_one_line_error(run("push", str(broken), f"{registry.host}/x:y"), str(broken), dropped)


def test_push_to_a_reference_without_registry(tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    assert_one_line_error(run("push", str(tar), "team/app:v1"), "team/app:v1", "registry")


def test_push_to_an_invalid_reference(tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    assert_one_line_error(run("push", str(tar), "localhost:1/Team/App:v1"), "Team/App")


def test_push_to_a_registry_that_is_not_there(tmp_path: Path) -> None:
    from .servers import free_port

    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    port = free_port()
    assert_one_line_error(
        run("push", str(tar), f"127.0.0.1:{port}/x:y"), f"127.0.0.1:{port}", "connection refused"
    )
