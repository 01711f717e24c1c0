"""Memory stays bounded whatever the image size: layers stream out of the archive by offset."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from registryv2 import push_docker_tar, validate_docker_tar

from .archives import write_big_legacy
from .proxies import FaultyProxy
from .servers import RegistryServer, skopeo

pytestmark = pytest.mark.integration

MiB = 1024 * 1024

PUSH_AND_MEASURE = textwrap.dedent(
    """
    import sys
    from registryv2 import RegistryClient
    url, tar, repo, tag, compress = sys.argv[1:]
    with RegistryClient(url) as client:
        result = client.push(tar, repo, tag, compress=compress or None)
    report = {"digest": result.digest, "uploaded": result.bytes_uploaded}
    """
)

# Appended to each script. VmHWM is the program's own peak resident size; getrusage's ru_maxrss
# is not, as Linux carries the starting process's peak over into it (a large pytest would count).
REPORT_WITH_PEAK = textwrap.dedent(
    """
    import json
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({**report, "peak_rss_kib": peak}))
    """
)


def measure(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter; its ``report``, with its peak resident size."""
    done = subprocess.run(
        [sys.executable, "-c", script + REPORT_WITH_PEAK, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.parametrize(
    ("compressed", "compress"),
    [(False, ""), (True, ""), (False, "gzip"), (False, "zstd")],
    ids=["tar", "tar.gz", "tar-compressed-to-gzip", "tar-compressed-to-zstd"],
)
def test_pushing_300_mb_stays_under_100_mb_rss(
    registry: RegistryServer, tmp_path: Path, compressed: bool, compress: str
) -> None:
    sizes = [120 * MiB, 100 * MiB, 80 * MiB]
    tar = write_big_legacy(tmp_path / "big.tar", "big/app:v1", sizes)
    if compressed:
        # Random payloads do not compress: the .gz is as big, and must be spooled to disk.
        subprocess.run(["gzip", "-1", str(tar)], check=True)
        tar = tar.with_suffix(".tar.gz")
    assert tar.stat().st_size > 300 * MiB
    repo = f"big/{'gz' if compressed else 'plain'}{compress}"
    report = measure(PUSH_AND_MEASURE, registry.url, str(tar), repo, "v1", compress)
    assert report["uploaded"] > 300 * MiB
    assert report["peak_rss_kib"] * 1024 < 100 * MiB, report
    # And what went up is a whole, pullable image.
    out = skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/{repo}:v1")
    assert json.loads(out)["Digest"] == report["digest"]


PULL_AND_MEASURE = textwrap.dedent(
    """
    import sys
    from registryv2 import pull
    reference, out = sys.argv[1:]
    [info] = pull(reference, out)
    report = {"digest": info.manifest_digest}
    """
)


def test_pulling_300_mb_stays_under_100_mb_rss(registry: RegistryServer, tmp_path: Path) -> None:
    tar = write_big_legacy(tmp_path / "big.tar", "big/app:v1", [120 * MiB, 100 * MiB, 80 * MiB])
    digest = push_docker_tar(tar, registry.url, "big/pull", "v1")
    tar.unlink()
    out = tmp_path / "pulled.tar"
    report = measure(PULL_AND_MEASURE, f"{registry.host}/big/pull:v1", str(out))
    assert report["digest"] == digest
    assert out.stat().st_size > 300 * MiB
    assert report["peak_rss_kib"] * 1024 < 100 * MiB, report
    assert validate_docker_tar(out)


def test_a_registry_demanding_huge_chunks_gets_them_streamed(
    registry: RegistryServer, tmp_path: Path
) -> None:
    """OCI-Chunk-Min-Length: 10^12 makes every blob one chunk: it is streamed from the archive
    in one PATCH, never held in memory."""
    tar = write_big_legacy(tmp_path / "one.tar", "big/app:v1", [150 * MiB])
    with FaultyProxy(registry.host) as proxy:
        proxy.add_headers["POST"] = {"OCI-Chunk-Min-Length": str(10**12)}
        report = measure(PUSH_AND_MEASURE, proxy.url, str(tar), "big/chunky", "v1", "")
        patches = proxy.seen("PATCH")
    assert report["uploaded"] > 150 * MiB
    assert report["peak_rss_kib"] * 1024 < 100 * MiB, report
    assert len(patches) == 1  # the layer, whole; the small config went in its PUT
    out = skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/big/chunky:v1")
    assert json.loads(out)["Digest"] == report["digest"]


STREAM_AND_MEASURE = textwrap.dedent(
    """
    import os, sys
    from registryv2 import pull
    reference, out = sys.argv[1:]
    # Standard output is the file: what "pull -o - > file" writes, through a pipe or not.
    saved = os.dup(1)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    [info] = pull(reference, "-")
    sys.stdout.flush()
    os.dup2(saved, 1)
    report = {"digest": info.manifest_digest}
    """
)


def test_pulling_300_mb_to_standard_output_stays_under_100_mb_rss(
    registry: RegistryServer, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "big.tar", "big/app:v1", [120 * MiB, 100 * MiB, 80 * MiB])
    digest = push_docker_tar(tar, registry.url, "big/stream", "v1")
    tar.unlink()
    out = tmp_path / "streamed.tar"
    report = measure(STREAM_AND_MEASURE, f"{registry.host}/big/stream:v1", str(out))
    assert report["digest"] == digest
    assert out.stat().st_size > 300 * MiB
    assert report["peak_rss_kib"] * 1024 < 100 * MiB, report
    assert validate_docker_tar(out)


def test_a_300_mb_layout_pushes_and_pulls_under_100_mb_rss(
    registry: RegistryServer, other: RegistryServer, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "big.tar", "big/app:v1", [120 * MiB, 100 * MiB, 80 * MiB])
    digest = push_docker_tar(tar, registry.url, "big/layout", "v1")
    tar.unlink()
    layout = tmp_path / "layout"
    report = measure(PULL_AND_MEASURE, f"{registry.host}/big/layout:v1", f"oci:{layout}:v1")
    assert report["digest"] == digest
    assert report["peak_rss_kib"] * 1024 < 100 * MiB, report
    push = textwrap.dedent(
        """
        import sys
        from registryv2 import copy
        result = copy(*sys.argv[1:])
        report = {"digest": result.digest, "moved": result.bytes_moved}
        """
    )
    # Into another registry: this one would mount the layers the pull came from.
    report = measure(push, f"oci:{layout}:v1", f"{other.host}/big/layout-back:v1")
    assert report["digest"] == digest and report["moved"] > 300 * MiB
    assert report["peak_rss_kib"] * 1024 < 100 * MiB, report
