"""registryv2 beside skopeo and curl: the same archives, in one run, on four kinds of link.

Usage: python -m bench.bench [--rounds 3] [--size-mb 204] [--small-layers 24] [--only NAME]

Every round of a push goes into a registry of its own with empty storage (and registryv2 gets
an empty state directory), so no tool finds blobs already there. Pulls read one registry
holding the image, its layers gzipped as docker push sends them (skopeo unpacks them for its
archive; registryv2 and docker keep them as they are). Each tool runs as its own process
(registryv2 through its command line, as a user would run it), timed from start to exit; the
peak resident size of its largest process is sampled from /proc (VmHWM). Links other than
loopback are proxies (:mod:`bench.links`).

curl is the wire's floor: for a push, one monolithic PUT per blob from layer files extracted
beforehand (untimed), all blobs at once; for a pull, one GET per blob into plain files, all at
once, then ``sync`` (registryv2 syncs its archive before renaming it into place).

The table gives medians over the rounds and the ratio of registryv2's median to each other
tool's (below 1.0: registryv2 is faster), beside the target for that case.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import inspect
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.links import (
    LOOPBACK,
    PER_CONNECTION_400MBIT,
    RTT_40MS,
    UPLINK_200MBIT,
    Link,
    LinkProxy,
)
from registryv2 import BlobInfo, RegistryClient
from registryv2.manifest import DOCKER_LAYER, DOCKER_MANIFEST, build_manifest
from tests.archives import file_digest, sha256
from tests.servers import RegistryServer

REPO = "bench/app"


# -- archives of real files ----------------------------------------------------------------------


def _system_files() -> Iterator[Path]:
    """Regular files of this machine's /usr: content that compresses as real layers do."""
    for root in ("/usr/lib", "/usr/share", "/usr/bin"):
        for dirpath, _, names in os.walk(root):
            for name in sorted(names):
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink():
                    yield path


def _layer(path: Path, files: Iterator[Path], size: int) -> None:
    """A layer tar of about ``size`` bytes of real files."""
    written = 0
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        while written < size:
            source = next(files)
            info = tar.gettarinfo(str(source), arcname=str(source).lstrip("/"))
            if info.size > size - written:
                continue
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with open(source, "rb") as f:
                tar.addfile(info, f)
            written += info.size + 512
            if size - written < 4096:
                break


def image_config(diff_ids: list[str]) -> bytes:
    """The config of a linux/amd64 image of these layers."""
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()


def build_archive(path: Path, layer_sizes: list[int], files: Iterator[Path]) -> Path:
    """A ``docker save`` archive (legacy layout) of ``bench/app:v1`` with these layers."""
    work = path.parent / (path.name + ".layers")
    work.mkdir()
    layers = []
    for n, size in enumerate(layer_sizes):
        _layer(work / f"{n}.tar", files, size)
        layers.append(work / f"{n}.tar")
    diff_ids = [file_digest(p) for p in layers]
    config = image_config(diff_ids)
    config_name = sha256(config)[7:] + ".json"
    with tarfile.open(path, "w") as tar:
        names = []
        for digest, layer in zip(diff_ids, layers, strict=True):
            tar.add(str(layer), arcname=f"{digest[7:]}/layer.tar")
            names.append(f"{digest[7:]}/layer.tar")
        _add(tar, config_name, config)
        manifest = [{"Config": config_name, "RepoTags": [f"{REPO}:v1"], "Layers": names}]
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    shutil.rmtree(work)
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


# -- running a tool ----------------------------------------------------------------------------


SETTLE = 1.0  # seconds for the machine to settle between runs (untimed)


@dataclass
class Measure:
    seconds: list[float] = field(default_factory=list)
    peak_kib: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def timed(
    command: list[str], env: dict[str, str] | None = None, stderr: Path | None = None
) -> tuple[float, int]:
    """Run ``command``; its wall time, and the peak resident size (KiB) of the largest process
    it ran (itself or a child: curl under bash). Data earlier steps left for the disk to write
    is written first, untimed: no tool pays for another's. ``stderr``: a file for what the
    command says there (shown if it fails)."""
    os.sync()
    # And what the kernel does after (freeing the blocks of the files the last run's output
    # held, a few hundred MB): measured, the run just after skopeo's paid 0.15 s for it.
    time.sleep(SETTLE)
    start = time.perf_counter()
    errors = open(stderr, "wb") if stderr else None  # noqa: SIM115
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=errors
    )
    peak = 0
    while process.poll() is None:
        # VmHWM is each process's own peak (the kernel's rusage would count this process's
        # peak too, carried over through fork and exec).
        peak = max([peak, *(_peak_kib(pid) for pid in _tree(process.pid))])
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    if errors is not None:
        errors.close()
    if process.returncode != 0:
        said = stderr.read_text(errors="replace")[-2000:] if stderr else ""
        raise SystemExit(f"{said}bench: {' '.join(command)} failed ({process.returncode})")
    return elapsed, peak


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, as /proc lists them now."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        # A process may end while it is looked at: what is gone has no children to list.
        with contextlib.suppress(OSError):
            for task in list(Path(f"/proc/{current}/task").glob("*/children")):
                with contextlib.suppress(OSError):
                    todo += [int(child) for child in task.read_text().split()]
    return found


def _peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def registryv2(*args: str) -> list[str]:
    return [sys.executable, "-m", "registryv2", *args]


def skopeo(*args: str) -> list[str]:
    return ["skopeo", "--insecure-policy", "copy", "-q", *args]


def curl_push_script(tar: Path, work: Path) -> Path:
    """Extract the blobs; a script pushing them at once with curl (one PUT each), then the
    manifest, to the registry given as its argument."""
    work.mkdir()
    with tarfile.open(tar) as t:
        entry = json.load(t.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        (work / "config").write_bytes(t.extractfile(entry["Config"]).read())  # type: ignore[union-attr]
        layers = []
        for n, name in enumerate(entry["Layers"]):
            with t.extractfile(name) as src, open(work / f"layer{n}", "wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst, 1 << 20)
            layers.append(work / f"layer{n}")
    blobs = [*layers, work / "config"]
    digests = {blob: file_digest(blob) for blob in blobs}
    lines = ["set -eu", 'R="$1"']
    for blob in blobs:
        lines.append(
            "( loc=$(curl -sSf -X POST -D - -o /dev/null "
            f'"$R/v2/{REPO}/blobs/uploads/" | tr -d "\\r" | sed -n "s/^[Ll]ocation: //p"); '
            'case "$loc" in http*) ;; *) loc="$R$loc";; esac; '
            'curl -sSf -X PUT -H "Content-Type: application/octet-stream" '
            f'--data-binary @{blob} "$loc&digest={digests[blob]}" -o /dev/null ) &'
        )
    lines.append("wait")
    manifest = build_manifest(
        DOCKER_MANIFEST,
        BlobInfo(digests[work / "config"], (work / "config").stat().st_size, ""),
        [BlobInfo(digests[p], p.stat().st_size, DOCKER_LAYER) for p in layers],
    )
    (work / "manifest.json").write_bytes(manifest)
    lines.append(
        f'curl -sSf -X PUT -H "Content-Type: {DOCKER_MANIFEST}" '
        f'--data-binary @{work / "manifest.json"} "$R/v2/{REPO}/manifests/v1" -o /dev/null'
    )
    script = work / "push.sh"
    script.write_text("\n".join(lines) + "\n")
    return script


def curl_pull_script(url: str, work: Path) -> Path:
    """A script fetching the manifest, then every blob at once, into its argument; then sync."""
    with RegistryClient(url) as client:
        manifest = client.get_manifest(REPO, "v1")
    assert manifest.config is not None
    lines = ["set -eu", 'R="$1"; D="$2"']
    lines.append(
        f'curl -sSf -H "Accept: {manifest.media_type}" "$R/v2/{REPO}/manifests/v1" -o "$D/m"'
    )
    for blob in [manifest.config, *manifest.layers]:
        lines.append(f'curl -sSf "$R/v2/{REPO}/blobs/{blob.digest}" -o "$D/{blob.digest[7:]}" &')
    lines += ["wait", 'sync "$D"/*']
    script = work / "pull.sh"
    script.write_text("\n".join(lines) + "\n")
    return script


# -- the cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    title: str
    kind: str  # push or pull
    archive: str  # which archive: single or small
    link: Link
    tools: tuple[str, ...]
    targets: dict[str, float]  # the other tool -> the ratio registryv2 must stay under
    compress: str | None = None
    # Where registryv2 (and skopeo) push from or pull into: the archive, or an OCI layout
    # directory ("registryv2 archive" is then registryv2 on the archive, for comparison).
    place: str = "archive"


CASES = [
    Case("push, one large layer", "push", "single", LOOPBACK, ("registryv2", "skopeo", "curl"),
         {"curl": 1.10}),
    Case("push, one large layer", "push", "single", RTT_40MS, ("registryv2", "skopeo"),
         {"skopeo": 0.80}),
    Case("push --compress gzip", "push", "single", LOOPBACK, ("registryv2", "skopeo"),
         {"skopeo": 0.60}, "gzip"),
    Case("push --compress gzip", "push", "single", UPLINK_200MBIT, ("registryv2", "skopeo"),
         {"skopeo": 0.70}, "gzip"),
    Case("push, small layers", "push", "small", LOOPBACK, ("registryv2", "skopeo"),
         {"skopeo": 1.0}),
    Case("push, small layers", "push", "small", RTT_40MS, ("registryv2", "skopeo"),
         {"skopeo": 0.70}),
    Case("pull, one large layer", "pull", "single", LOOPBACK, ("registryv2", "skopeo", "curl"),
         {"skopeo": 0.30, "curl": 1.0}),
    Case("pull, one large layer", "pull", "single", PER_CONNECTION_400MBIT, ("registryv2", "curl"),
         {"curl": 0.40}),
    Case("push from a layout", "push", "single", LOOPBACK,
         ("registryv2", "registryv2 archive", "skopeo"), {"registryv2 archive": 1.0}, None,
         "layout"),
    Case("push from a layout", "push", "single", RTT_40MS,
         ("registryv2", "registryv2 archive", "skopeo"), {"registryv2 archive": 1.0}, None,
         "layout"),
    Case("pull into a layout", "pull", "single", LOOPBACK,
         ("registryv2", "registryv2 archive", "skopeo"), {"registryv2 archive": 1.0}, None,
         "layout"),
    Case("pull into a layout", "pull", "single", RTT_40MS,
         ("registryv2", "registryv2 archive", "skopeo"), {"registryv2 archive": 1.0}, None,
         "layout"),
]  # fmt: skip


def run_case(case: Case, archives: dict[str, Path], work: Path, rounds: int) -> dict[str, Measure]:
    tar = archives[case.archive]
    results = {tool: Measure() for tool in case.tools}
    curl_script = None
    if case.kind == "push" and "curl" in case.tools:
        curl_script = curl_push_script(tar, work / f"curl-{case.archive}")
    source = RegistryServer(work / "source") if case.kind == "pull" else None
    try:
        if source is not None:
            # Gzipped, as images in registries are: what docker push sends.
            with RegistryClient(source.url) as client:
                client.push(tar, REPO, "v1", compress="gzip")
            curl_script = curl_pull_script(source.url, work)
        for n in range(rounds):
            # Interleaved, so that a slow spell of the machine hits all alike, and in turn:
            # the run just after another tool's pays for what it left behind (measured: 0.15 s
            # of 0.8 s after skopeo's 200 MB layout), so each tool takes each place alike.
            turn = n % len(case.tools)
            for tool in case.tools[turn:] + case.tools[:turn]:
                server = source or RegistryServer(work / f"registry-{tool}-{n}")
                try:
                    with LinkProxy(server.host, case.link) as proxy:
                        host = server.host if case.link.direct else proxy.host
                        seconds, peak = run_tool(case, tool, tar, host, curl_script, work)
                finally:
                    if source is None:
                        server.stop()
                        shutil.rmtree(work / f"registry-{tool}-{n}", ignore_errors=True)
                results[tool].seconds.append(seconds)
                results[tool].peak_kib = max(results[tool].peak_kib, peak)
    finally:
        if source is not None:
            source.stop()
            shutil.rmtree(work / "source", ignore_errors=True)
    return results


def layout_of(tar: Path) -> Path:
    """The archive's image as an OCI layout directory beside it (made once, untimed)."""
    layout = tar.with_suffix(".layout")
    if not layout.exists():
        # OCI manifests: skopeo 1.9 reads no other kind from a layout.
        subprocess.run(
            registryv2("copy", "--format", "oci", str(tar), f"oci:{layout}:v1"), check=True
        )
    return layout


def run_tool(
    case: Case, tool: str, tar: Path, host: str, curl_script: Path | None, work: Path
) -> tuple[float, int]:
    ref = f"{host}/{REPO}:v1"
    state = Path(tempfile.mkdtemp(dir=work, prefix="state-"))
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    env = {"XDG_CACHE_HOME": str(state)}
    try:
        if case.place == "layout":
            layout = f"oci:{layout_of(tar)}:v1"
            if case.kind == "push":
                source = {"registryv2": layout, "registryv2 archive": str(tar)}.get(tool)
                if source:
                    return timed(registryv2("push", source, ref), env)
                return timed(skopeo("--dest-tls-verify=false", layout, f"docker://{ref}"))
            if tool == "registryv2":
                return timed(registryv2("pull", ref, "-o", f"oci:{out / 'layout'}:v1"), env)
            if tool == "registryv2 archive":
                return timed(registryv2("pull", ref, "-o", str(out / "app.tar")), env)
            return timed(
                skopeo("--src-tls-verify=false", f"docker://{ref}", f"oci:{out / 'layout'}:v1")
            )
        if case.kind == "push":
            if tool == "registryv2":
                compress = ["--compress", case.compress] if case.compress else []
                return timed(
                    registryv2("push", *compress, str(tar), ref), {"XDG_CACHE_HOME": str(state)}
                )
            if tool == "skopeo":
                return timed(
                    skopeo("--dest-tls-verify=false", f"docker-archive:{tar}", f"docker://{ref}")
                )
            assert curl_script is not None
            return timed(["bash", str(curl_script), f"http://{host}"])
        if tool == "registryv2":
            return timed(
                registryv2("pull", ref, "-o", str(out / "app.tar")), {"XDG_CACHE_HOME": str(state)}
            )
        if tool == "skopeo":
            return timed(
                skopeo(
                    "--src-tls-verify=false",
                    f"docker://{ref}",
                    f"docker-archive:{out / 'app.tar'}:{REPO}:v1",
                )
            )
        assert curl_script is not None
        return timed(["bash", str(curl_script), f"http://{host}", str(out)])
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


# -- the report ----------------------------------------------------------------------------------


def report(case: Case, results: dict[str, Measure]) -> list[str]:
    ours = results["registryv2"].median
    rows = []
    for tool, measure in results.items():
        ratio = target = ""
        if tool != "registryv2":
            ratio = f"{ours / measure.median:.2f}"
            if tool in case.targets:
                met = ours / measure.median <= case.targets[tool]
                target = f"<= {case.targets[tool]:.2f} {'met' if met else 'MISSED'}"
        rows.append(
            f"| {case.title} | {case.link.name} | {tool} | {measure.median:.2f} | "
            f"{measure.peak_kib / 1024:.0f} | {ratio} | {target} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=204, help="the large layer's size")
    parser.add_argument("--small-layers", type=int, default=24)
    parser.add_argument("--sync-images", type=int, default=40, help="repositories to sync")
    parser.add_argument("--only", help="run the cases whose title or link contains this")
    args = parser.parse_args()
    for tool in ("docker-registry", "skopeo", "curl"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is not installed (bash .ci/setup installs it)")
    from bench.sync import SYNC_CASES, fill_source, report_sync, run_sync_case

    def chosen(title: str, link: Link) -> bool:
        return not args.only or args.only in f"{title} {link.name}"

    cases = [c for c in CASES if chosen(c.title, c.link)]
    sync_cases = [c for c in SYNC_CASES if chosen(c.title, c.link)]
    # Start as an installed package does: with its bytecode compiled (pip compiles it on
    # install; a checkout run with PYTHONDONTWRITEBYTECODE would compile it on every start).
    compileall.compile_dir(Path(inspect.getfile(RegistryClient)).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="registryv2-bench-") as tmp:
        work = Path(tmp)
        files = _system_files()
        sizes = {"single": [args.size_mb * 1_000_000], "small": [1_000_000] * args.small_layers}
        archives = {}
        for name in dict.fromkeys(c.archive for c in cases):  # only those the cases use
            archives[name] = build_archive(work / f"{name}.tar", sizes[name], files)
            size = archives[name].stat().st_size
            print(f"{name}: {size / 1e6:.0f} MB archive", file=sys.stderr)
        lines = [
            f"medians of {args.rounds} rounds; ratio = registryv2's time / the tool's",
            "",
            "| case | link | tool | median s | peak RSS MB | ratio | target |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for case in cases:
            print(f"running: {case.title}, {case.link.name}", file=sys.stderr)
            if case.place == "layout":
                layout_of(archives[case.archive])
            lines += report(case, run_case(case, archives, work, args.rounds))
        if sync_cases:
            print(f"filling the sync source: {args.sync_images} images x 3 tags", file=sys.stderr)
            source = fill_source(work, args.sync_images, files)
            try:
                for sync_case in sync_cases:
                    print(f"running: {sync_case.title}, {sync_case.link.name}", file=sys.stderr)
                    results = run_sync_case(sync_case, source, args.sync_images, work, args.rounds)
                    lines += report_sync(sync_case, args.sync_images, results)
            finally:
                source.stop()
        print("\n".join(lines))


if __name__ == "__main__":
    main()
