"""Pull speed: registryv2, skopeo and curl pulling the same image, side by side, in one run.

Usage: python -m bench.pull_bench [--size-mb 256] [--layers 4] [--rounds 3]

One registry holds the image. registryv2 and skopeo each write a docker archive of it; curl is
the floor: one GET per blob into a file, one blob after another as a shell script would, with
no archive around them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.common import bench_archive, options, print_header, time_rounds
from registryv2 import RegistryClient
from tests.servers import RegistryServer


def pull_registryv2(server: RegistryServer, out: Path) -> None:
    with RegistryClient(server.url) as client:
        client.pull("bench/app:v1", out / "app.tar")


def pull_skopeo(server: RegistryServer, out: Path) -> None:
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "-q",
            "--src-tls-verify=false",
            f"docker://{server.host}/bench/app:v1",
            f"docker-archive:{out / 'app.tar'}:bench/app:v1",
        ],
        check=True,
    )


def curl_script(server: RegistryServer, work: Path) -> Path:
    """A shell script fetching the manifest and then every blob with curl, into its argument."""
    with RegistryClient(server.url) as client:
        manifest = client.get_manifest("bench/app", "v1")
    assert manifest.config is not None
    base = f"{server.url}/v2/bench/app"
    lines = [
        "set -eu",
        f'curl -sSf -H "Accept: {manifest.media_type}" "{base}/manifests/v1" -o "$1/manifest"',
    ]
    for blob in [manifest.config, *manifest.layers]:
        lines.append(f'curl -sSf "{base}/blobs/{blob.digest}" -o "$1/{blob.digest[7:]}"')
    script = work / "pull.sh"
    script.write_text("\n".join(lines) + "\n")
    return script


def main() -> None:
    args = options(__doc__.splitlines()[0])

    with tempfile.TemporaryDirectory(prefix="registryv2-bench-") as tmp:
        work = Path(tmp)
        tar = bench_archive(work, args)
        size = tar.stat().st_size
        server = RegistryServer(work / "registry")
        try:
            with RegistryClient(server.url) as client:
                client.push(tar, "bench/app", "v1")
            tar.unlink()
            script = curl_script(server, work)
            tools = {
                "registryv2": lambda out: pull_registryv2(server, out),
                "skopeo": lambda out: pull_skopeo(server, out),
                "curl": lambda out: subprocess.run(["bash", str(script), str(out)], check=True),
            }
            out = work / "out"
            print_header("image", size, args.layers, args.rounds)
            for name, pull in tools.items():

                def run(n: int, pull: Callable[[Path], object] = pull) -> None:
                    pull(out)

                time_rounds(
                    name,
                    size,
                    args.rounds,
                    run,
                    before=lambda n: out.mkdir(),
                    after=lambda n: shutil.rmtree(out),
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
