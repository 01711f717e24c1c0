"""Push speed: registryv2, skopeo and curl pushing the same archive, side by side, in one run.

Usage: python -m bench.push_bench [--size-mb 256] [--layers 4] [--rounds 3]

Each tool pushes into a registry of its own with empty storage, so none finds blobs already
there. curl is the floor: one monolithic PUT per blob from layer files extracted beforehand
(extraction not timed), run one blob after another as a shell script would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.common import bench_archive, options, print_header, time_rounds
from registryv2 import BlobInfo, RegistryClient
from registryv2.manifest import DOCKER_LAYER, build_manifest
from registryv2.manifest import DOCKER_MANIFEST as MANIFEST
from tests.archives import file_digest
from tests.servers import RegistryServer


def push_registryv2(tar: Path, server: RegistryServer) -> None:
    with RegistryClient(server.url) as client:
        client.push(tar, "bench/app", "v1")


def push_skopeo(tar: Path, server: RegistryServer) -> None:
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "-q",
            "--dest-tls-verify=false",
            f"docker-archive:{tar}",
            f"docker://{server.host}/bench/app:v1",
        ],
        check=True,
    )


def push_curl(script: Path, server: RegistryServer) -> None:
    subprocess.run(["bash", str(script), server.url], check=True)


def curl_script(tar: Path, work: Path) -> Path:
    """Extract the blobs and write a shell script that pushes them with curl."""
    with tarfile.open(tar) as t:
        entry = json.load(t.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = t.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
        (work / "config").write_bytes(config)
        layers = []
        for n, name in enumerate(entry["Layers"]):
            with t.extractfile(name) as src, open(work / f"layer{n}", "wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst, 1 << 20)
            layers.append(work / f"layer{n}")
    blobs = [*layers, work / "config"]
    digests = {blob: file_digest(blob) for blob in blobs}
    lines = ["set -eu", 'R="$1"']
    for blob in blobs:
        lines += [
            'loc=$(curl -sSf -X POST -D - -o /dev/null "$R/v2/bench/app/blobs/uploads/" '
            "| tr -d '\\r' | sed -n 's/^[Ll]ocation: //p')",
            'case "$loc" in http*) ;; *) loc="$R$loc";; esac',
            'curl -sSf -X PUT -H "Content-Type: application/octet-stream" '
            f'--data-binary @{blob} "$loc&digest={digests[blob]}" -o /dev/null',
        ]
    manifest = build_manifest(
        MANIFEST,
        BlobInfo(digests[work / "config"], (work / "config").stat().st_size, ""),
        [BlobInfo(digests[p], p.stat().st_size, DOCKER_LAYER) for p in layers],
    )
    (work / "manifest.json").write_bytes(manifest)
    lines.append(
        f'curl -sSf -X PUT -H "Content-Type: {MANIFEST}" '
        f'--data-binary @{work / "manifest.json"} "$R/v2/bench/app/manifests/v1" -o /dev/null'
    )
    script = work / "push.sh"
    script.write_text("\n".join(lines) + "\n")
    return script


def main() -> None:
    args = options(__doc__.splitlines()[0])

    with tempfile.TemporaryDirectory(prefix="registryv2-bench-") as tmp:
        work = Path(tmp)
        tar = bench_archive(work, args)
        (work / "curl").mkdir()
        script = curl_script(tar, work / "curl")
        tools: dict[str, Callable[[RegistryServer], None]] = {
            "registryv2": lambda s: push_registryv2(tar, s),
            "skopeo": lambda s: push_skopeo(tar, s),
            "curl": lambda s: push_curl(script, s),
        }
        size = tar.stat().st_size
        print_header("archive", size, args.layers, args.rounds)
        servers: dict[int, RegistryServer] = {}
        for name, push in tools.items():

            def start(n: int, name: str = name) -> None:
                servers[n] = RegistryServer(work / f"reg-{name}-{n}")

            def stop(n: int, name: str = name) -> None:
                servers.pop(n).stop()
                shutil.rmtree(work / f"reg-{name}-{n}", ignore_errors=True)

            def run(n: int, push: Callable[[RegistryServer], None] = push) -> None:
                push(servers[n])

            time_rounds(name, size, args.rounds, run, start, stop)


if __name__ == "__main__":
    main()
