"""registryv2 sync beside skopeo sync: a set of images kept in step from one registry to another.

Run by ``python -m bench.bench --only sync`` (:mod:`bench.bench` runs every case).

The source registry holds ``--sync-images`` (40) repositories ``app-NN`` of three tags each:
``1.0`` is one image, ``1.1`` and ``latest`` another. Every image has the same three base
layers (a few MB of this machine's /usr files) and one layer of its own (about 0.7 MB), all
gzipped as ``docker push`` sends them; it is filled once, untimed. One YAML lists the
repositories with an empty tag list (every tag), as a mirror's list would.

Each round, each tool gets a fresh empty destination registry and syncs the list into it from
the same command line (``--src yaml --dest docker``): the **first** sync. Then each syncs again
into its own, now full, destination: the **re-run**, with nothing changed. registryv2 keeps its
state directory between the two, as a user's would. Through a slower link, one proxy stands in
front of the source and one in front of each destination. After the first sync of the first
round both destinations are checked (untimed) to hold every tag at the source's digest.
"""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.bench import Measure, _add, _layer, image_config, registryv2, timed
from bench.links import LOOPBACK, RTT_40MS, Link, LinkProxy
from registryv2 import RegistryClient
from tests.archives import file_digest, sha256
from tests.servers import RegistryServer

BASE_LAYERS = (4_000_000, 3_000_000, 2_000_000)
OWN_LAYER = 700_000
TAGS = ("1.0", "1.1", "latest")
TOOLS = ("registryv2", "skopeo")
PHASES = ("first", "re-run")
PEAK_MB = 150  # registryv2's peak resident size over the whole run must stay under this


@dataclass(frozen=True)
class SyncCase:
    title: str
    link: Link
    targets: dict[str, float]  # phase -> the ratio to skopeo registryv2 must stay under


TARGETS = {"first": 0.5, "re-run": 0.2}
SYNC_CASES = [
    SyncCase("sync, images x 3 tags", LOOPBACK, TARGETS),
    SyncCase("sync, images x 3 tags", RTT_40MS, TARGETS),
]


def build_sync_archive(path: Path, images: int, files: Iterator[Path]) -> Path:
    """One ``docker save`` archive of two images per repository (``app-NN:1.0``;
    ``app-NN:1.1`` and ``app-NN:latest``), every image on the same base layers."""
    work = path.parent / (path.name + ".layers")
    work.mkdir()
    layers: dict[str, Path] = {}  # diff ID -> layer tar

    def layer(size: int) -> str:
        tar = work / f"{len(layers)}.tar"
        _layer(tar, files, size)
        digest = file_digest(tar)
        layers[digest] = tar
        return digest

    base = [layer(size) for size in BASE_LAYERS]
    entries, configs = [], {}
    for n in range(images):
        for tags in ((TAGS[0],), TAGS[1:]):
            diff_ids = [*base, layer(OWN_LAYER)]
            config = image_config(diff_ids)
            name = sha256(config)[7:] + ".json"
            configs[name] = config
            entries.append(
                {
                    "Config": name,
                    "RepoTags": [f"app-{n:02d}:{tag}" for tag in tags],
                    "Layers": [f"{d[7:]}/layer.tar" for d in diff_ids],
                }
            )
    with tarfile.open(path, "w") as tar:
        for digest, layer_tar in layers.items():
            tar.add(str(layer_tar), arcname=f"{digest[7:]}/layer.tar")
        for name, config in configs.items():
            _add(tar, name, config)
        _add(tar, "manifest.json", json.dumps(entries).encode())
    shutil.rmtree(work)
    return path


def fill_source(work: Path, images: int, files: Iterator[Path]) -> RegistryServer:
    """The source registry, holding every tag (gzipped layers, pushed once, untimed)."""
    archive = build_sync_archive(work / "sync.tar", images, files)
    source = RegistryServer(work / "sync-source")
    try:
        with RegistryClient(source.url) as client:
            client.push_all_tags(archive, compress="gzip")
    except BaseException:
        source.stop()
        raise
    finally:
        archive.unlink()
    return source


def _digests(url: str, images: int, repository: str = "") -> dict[str, str | None]:
    """Every tag's manifest digest in the registry at ``url`` (None: missing)."""
    found = {}
    with RegistryClient(url) as client:
        for n in range(images):
            for tag in TAGS:
                head = client.head_manifest(f"{repository}app-{n:02d}", tag)
                found[f"app-{n:02d}:{tag}"] = head.digest if head else None
    return found


def _command(tool: str, yaml: Path, destination: str) -> list[str]:
    if tool == "registryv2":
        args = ["sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false"]
        return registryv2(*args, str(yaml), destination)
    return [
        "skopeo", "--insecure-policy", "sync", "--src", "yaml", "--dest", "docker",
        "--dest-tls-verify=false", str(yaml), destination,
    ]  # fmt: skip


def run_sync_case(
    case: SyncCase, source: RegistryServer, images: int, work: Path, rounds: int
) -> dict[str, dict[str, Measure]]:
    """Medians per phase and tool; the peak is registryv2's over both phases."""
    results = {phase: {tool: Measure() for tool in TOOLS} for phase in PHASES}
    expected = _digests(source.url, images)
    with LinkProxy(source.host, case.link) as source_proxy:
        source_host = source.host if case.link.direct else source_proxy.host
        yaml = work / "sync.yml"
        # JSON is YAML.
        listing: dict[str, list[str]] = {f"app-{n:02d}": [] for n in range(images)}
        yaml.write_text(json.dumps({source_host: {"tls-verify": False, "images": listing}}))
        for n in range(rounds):
            servers: dict[str, RegistryServer] = {}
            proxies: dict[str, LinkProxy] = {}
            states: dict[str, Path] = {}
            try:
                for tool in TOOLS:
                    servers[tool] = RegistryServer(work / f"sync-{tool}-{n}")
                    proxies[tool] = LinkProxy(servers[tool].host, case.link)
                    states[tool] = Path(tempfile.mkdtemp(dir=work, prefix="state-"))
                for phase in PHASES:
                    for tool in TOOLS:  # interleaved: a slow spell hits both alike
                        host = servers[tool].host if case.link.direct else proxies[tool].host
                        seconds, peak = timed(
                            _command(tool, yaml, f"{host}/mirror"),
                            {"XDG_CACHE_HOME": str(states[tool])},
                            stderr=work / f"sync-{tool}.log",
                        )
                        results[phase][tool].seconds.append(seconds)
                        results[phase][tool].peak_kib = max(results[phase][tool].peak_kib, peak)
                        if n == 0 and phase == "first":
                            there = _digests(servers[tool].url, images, "mirror/")
                            if there != expected:
                                missing = [t for t in expected if there[t] != expected[t]]
                                sys.exit(f"bench: {tool} sync left {len(missing)} tags out of step")
            finally:
                for proxy in proxies.values():
                    proxy.close()
                for tool, server in servers.items():
                    server.stop()
                    shutil.rmtree(work / f"sync-{tool}-{n}", ignore_errors=True)
                for state in states.values():
                    shutil.rmtree(state, ignore_errors=True)
    return results


def report_sync(case: SyncCase, images: int, results: dict[str, dict[str, Measure]]) -> list[str]:
    """Rows as :func:`bench.bench.report` writes them: the ratio to skopeo against each phase's
    target, and registryv2's peak over the whole run against :data:`PEAK_MB`."""
    rows = []
    peak = max(results[phase]["registryv2"].peak_kib for phase in PHASES) / 1024
    for phase in PHASES:
        title = case.title.replace("images", str(images)) + f": {phase}"
        ours = results[phase]["registryv2"].median
        for tool, measure in results[phase].items():
            ratio = target = ""
            if tool == "registryv2":
                met = peak < PEAK_MB
                target = f"peak < {PEAK_MB} MB {'met' if met else 'MISSED'}"
            else:
                ratio = f"{ours / measure.median:.2f}"
                met = ours / measure.median <= case.targets[phase]
                target = f"<= {case.targets[phase]:.2f} {'met' if met else 'MISSED'}"
            rows.append(
                f"| {title} | {case.link.name} | {tool} | {measure.median:.2f} | "
                f"{measure.peak_kib / 1024:.0f} | {ratio} | {target} |"
            )
    return rows
