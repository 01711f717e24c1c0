"""``registryv2 sync``: a set of images kept in step, beside skopeo sync, against real registries.

Every sync here runs as the command a user types (a subprocess), except where the API is the
point. Registries are fresh per test where the test needs them empty; proxies in front of them
count what crossed: a sync with nothing changed must cost only tag lists and HEADs.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

import registryv2
from registryv2.synchronize import Access, SyncReport

from .archives import simple_image, write_legacy
from .proxies import FaultyProxy, Seen
from .referrers import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    SPDX,
    cosign_signature,
    descriptor_of,
    fallback_tag,
    get_manifest,
    oci_referrer,
    put_blob,
    put_manifest,
    sha256,
)
from .servers import Closing, RegistryServer, free_port, push_index, run_cli, skopeo

pytestmark = pytest.mark.integration

ACCEPT = ", ".join(
    [
        OCI_INDEX,
        OCI_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


# -- helpers ---------------------------------------------------------------------------------


def sync(*args: str) -> dict[str, Any]:
    """``registryv2 --json sync ARGS``, which must succeed; its report."""
    done = run_cli("--json", "sync", *args)
    assert done.returncode == 0, done.stderr + done.stdout
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    """Destination -> status, from a ``--json`` report."""
    return {image["destination"]: image["status"] for image in report["images"]}


def push_image(url: str, repo: str, tag: str | None, seed: str) -> str:
    """A small one-layer OCI image pushed with plain HTTP (a few KB) under ``tag`` (None: by
    digest only); its manifest digest."""
    # gzip layers, as registries hold them: skopeo would compress a plain tar, changing digests
    image = simple_image(tag=f"x/{repo}:{tag}", n_layers=1, seed=seed, compression=["gzip"])
    config = image.config()
    put_blob(url, repo, config)
    for layer in image.stored_layers():
        put_blob(url, repo, layer)
    manifest = image.oci_manifest()
    assert json.loads(manifest)["config"]["mediaType"] == OCI_CONFIG
    put_manifest(url, repo, tag or sha256(manifest), manifest, OCI_MANIFEST)
    return sha256(manifest)


def head_digest(url: str, repo: str, reference: str) -> str | None:
    got = requests.head(
        f"{url}/v2/{repo}/manifests/{reference}", headers={"Accept": ACCEPT}, timeout=30
    )
    if got.status_code == 404:
        return None
    assert got.status_code == 200, (repo, reference, got.status_code)
    return got.headers["Docker-Content-Digest"]


def contents(url: str) -> dict[str, dict[str, str]]:
    """Repository -> tag -> manifest digest: what a registry holds (catalog, tag lists, HEADs)."""
    catalog = requests.get(f"{url}/v2/_catalog?n=1000", timeout=30).json()
    found: dict[str, dict[str, str]] = {}
    for repo in catalog["repositories"] or []:
        tags = requests.get(f"{url}/v2/{repo}/tags/list", timeout=30).json()["tags"] or []
        found[repo] = {}
        for tag in tags:
            digest = head_digest(url, repo, tag)
            assert digest is not None
            found[repo][tag] = digest
    return found


def fresh(tmp_path: Path, name: str) -> RegistryServer:
    return RegistryServer(tmp_path / name)


@pytest.fixture
def servers() -> Iterator[list[Closing | RegistryServer]]:
    """Registries and proxies this test starts; stopped (or closed) at its end."""
    started: list[Closing | RegistryServer] = []
    yield started
    for server in reversed(started):
        if isinstance(server, RegistryServer):
            server.stop()
        else:
            server.close()


def start(servers: list[Closing | RegistryServer], tmp_path: Path, name: str) -> RegistryServer:
    server = fresh(tmp_path, name)
    servers.append(server)
    return server


def proxy(servers: list[Closing | RegistryServer], upstream: str) -> FaultyProxy:
    front = FaultyProxy(upstream)
    servers.append(front)
    return front


def blob_requests(front: FaultyProxy) -> list[Seen]:
    return [r for r in front.requests if "/blobs/" in r.path]


def manifest_gets(front: FaultyProxy) -> list[Seen]:
    return front.seen("GET", "/manifests/")


@dataclass
class Source:
    """A source registry with three repositories of three tags each: digests by (repo, tag)."""

    server: RegistryServer
    digests: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.server.host


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    server = RegistryServer(tmp_path_factory.mktemp("sync-source"))
    found = Source(server)
    for repo in ("c/multi", "c/other", "c/all"):
        for tag in ("v1", "v2", "latest"):
            found.digests[repo, tag] = push_image(server.url, repo, tag, f"{repo}:{tag}")
    yield found
    server.stop()


def sync_yaml(path: Path, host: str, digest: str) -> Path:
    """The list both tools read: a tag and a digest, a regex, and an empty list (every tag)."""
    path.write_text(
        f"""\
{host}:
  tls-verify: false
  images:
    c/multi:
      - v1
      - "{digest}"
    c/all: []
  images-by-tag-regex:
    c/other: ^v[0-9]+$
"""
    )
    return path


# -- 1: the same result as skopeo sync -------------------------------------------------------


def test_the_same_yaml_gives_what_skopeo_sync_gives(
    source: Source, servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    theirs, ours = start(servers, tmp_path, "theirs"), start(servers, tmp_path, "ours")
    v2 = source.digests["c/multi", "v2"]
    listing = sync_yaml(tmp_path / "sync.yml", source.host, v2)
    common: tuple[str, ...] = ("--src", "yaml", "--dest", "docker", "--dest-tls-verify=false")
    common += (str(listing),)
    skopeo("sync", *common, f"{theirs.host}/mirror")
    report = sync(*common, f"{ours.host}/mirror")

    expected = {
        "mirror/multi": {"v1": source.digests["c/multi", "v1"]},
        "mirror/all": {t: source.digests["c/all", t] for t in ("v1", "v2", "latest")},
        "mirror/other": {t: source.digests["c/other", t] for t in ("v1", "v2")},
    }
    assert contents(theirs.url) == expected
    assert contents(ours.url) == expected
    # The digest entry arrives by digest, untagged, in both.
    assert head_digest(theirs.url, "mirror/multi", v2) == v2
    assert head_digest(ours.url, "mirror/multi", v2) == v2
    assert report["copied"] == 7 and report["failed"] == 0
    assert statuses(report)[f"{ours.host}/mirror/multi@{v2}"] == "copied"
    text = run_cli("sync", *common, f"{ours.host}/mirror").stdout
    assert f"up-to-date  {ours.host}/mirror/multi@{v2}\n" in text  # its digest said once
    assert f"up-to-date  {ours.host}/mirror/multi:v1@{source.digests['c/multi', 'v1']}\n" in text

    # A whole repository, and one tag of it, with --src docker.
    flags = ["--src", "docker", "--dest", "docker"]
    flags += ["--src-tls-verify=false", "--dest-tls-verify=false"]
    for server, run in ((theirs, lambda *a: skopeo("sync", *a)), (ours, sync)):
        run(*flags, f"{source.host}/c/all", f"{server.host}/whole")
        run(*flags, f"{source.host}/c/other:latest", f"{server.host}/one")
    assert contents(theirs.url) == contents(ours.url)
    assert contents(ours.url)["whole/all"] == expected["mirror/all"]
    assert contents(ours.url)["one/other"] == {"latest": source.digests["c/other", "latest"]}


def test_a_signed_repository_synced_whole_is_what_skopeo_makes_of_it_and_stays_in_step(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    # The referrers' tags are tags like any other to skopeo: the fallback index (of artifacts,
    # of no platform) and cosign's .sig. registryv2 copies the index as it is; skopeo 1.9.3
    # (even with --preserve-digests) takes the index's one manifest and tags that instead.
    src = start(servers, tmp_path, "src")
    theirs, ours = start(servers, tmp_path, "theirs"), start(servers, tmp_path, "ours")
    digests = {tag: push_image(src.url, "team/app", tag, f"signed{tag}") for tag in ("v1", "v2")}
    subject = descriptor_of(src.url, "team/app", "v1")
    cosign_signature(src.url, "team/app", digests["v1"], f"{src.host}/team/app")
    sbom = oci_referrer(src.url, "team/app", subject, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
    flags = ("--src", "docker", "--dest", "docker", "--src-tls-verify=false")
    skopeo("sync", *flags, "--dest-tls-verify=false", "--preserve-digests", f"{src.host}/team/app",
           f"{theirs.host}/m")  # fmt: skip
    first = sync(*flags, f"{src.host}/team/app", f"{ours.host}/m")
    assert first["copied"] == 4
    held = contents(src.url)["team/app"]
    assert contents(ours.url) == {"m/app": held}
    index = fallback_tag(digests["v1"])
    assert contents(theirs.url) == {"m/app": {**held, index: sha256(sbom)}}
    again = sync(*flags, f"{src.host}/team/app", f"{ours.host}/m")
    assert set(statuses(again).values()) == {"up-to-date"}, again


def test_append_suffix_names_every_tag_with_it(
    source: Source, servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    # skopeo 1.9.3 has no --append-suffix: registryv2 alone, as newer skopeo names them.
    dest = start(servers, tmp_path, "dest")
    listing = sync_yaml(tmp_path / "sync.yml", source.host, source.digests["c/multi", "v2"])
    report = sync(
        "--src", "yaml", "--dest", "docker", "--append-suffix", "-mirrored",
        str(listing), f"{dest.host}/m",
    )  # fmt: skip
    found = contents(dest.url)
    assert found["m/multi"] == {"v1-mirrored": source.digests["c/multi", "v1"]}
    assert set(found["m/all"]) == {"v1-mirrored", "v2-mirrored", "latest-mirrored"}
    assert set(found["m/other"]) == {"v1-mirrored", "v2-mirrored"}
    # A digest has no tag to suffix.
    assert f"{dest.host}/m/multi@{source.digests['c/multi', 'v2']}" in statuses(report)
    # The suffixed tags are what a re-run compares against: all up to date.
    again = sync(
        "--src", "yaml", "--dest", "docker", "--append-suffix", "-mirrored",
        str(listing), f"{dest.host}/m",
    )  # fmt: skip
    assert set(statuses(again).values()) == {"up-to-date"}


# -- 2: a second run moves nothing -----------------------------------------------------------


def test_a_second_run_costs_only_tag_lists_and_heads_and_a_changed_tag_moves_alone(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    src, dest = start(servers, tmp_path, "src"), start(servers, tmp_path, "dest")
    for repo in ("team/a", "team/b"):
        for tag in ("1", "2", "3"):
            push_image(src.url, repo, tag, f"{repo}{tag}")
    src_front, dest_front = proxy(servers, src.host), proxy(servers, dest.host)
    listing = tmp_path / "sync.yml"
    listing.write_text(
        f"{src_front.host}:\n  images:\n    team/a: []\n    team/b: ['1', '2', '3']\n"
    )
    args = ("--src", "yaml", "--dest", "docker", str(listing), f"{dest_front.host}/mirror")
    first = sync(*args)
    assert first["copied"] == 6
    assert dest_front.seen("PUT", "/manifests/")  # the proxies do see the traffic

    for front in (src_front, dest_front):
        front.requests.clear()
    second = sync(*args)
    assert second["copied"] == 0 and second["up_to_date"] == 6
    for front in (src_front, dest_front):
        assert blob_requests(front) == []
        assert manifest_gets(front) == []
        assert front.seen("PUT") == front.seen("POST") == front.seen("PATCH") == []
        others = [
            r for r in front.requests if r.method == "GET" and not r.path.endswith("/tags/list")
        ]
        assert all(r.path in ("/v2/", "/v2") for r in others), others
    # One HEAD per tag on each side; one tag list, of the repository listed whole.
    assert len(src_front.seen("HEAD", "/manifests/")) == 6
    assert len(dest_front.seen("HEAD", "/manifests/")) == 6
    assert [r.path for r in src_front.seen("GET", "/tags/list")] == ["/v2/team/a/tags/list"]

    # One tag re-pushed with new content: only it moves.
    changed = push_image(src.url, "team/b", "2", "new content")
    for front in (src_front, dest_front):
        front.requests.clear()
    third = sync(*args)
    moved = {d: s for d, s in statuses(third).items() if s != "up-to-date"}
    assert moved == {f"{dest_front.host}/mirror/b:2": "copied"}
    puts = [r.path for r in dest_front.seen("PUT", "/manifests/")]
    assert puts == ["/v2/mirror/b/manifests/2"]
    assert head_digest(dest.url, "mirror/b", "2") == changed
    assert [r.path for r in manifest_gets(src_front)] == ["/v2/team/b/manifests/2"]


# -- 3: killed mid-sync, then run again ------------------------------------------------------


def test_killed_mid_sync_a_rerun_completes_and_finished_images_cost_only_heads(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    src, dest = start(servers, tmp_path, "src"), start(servers, tmp_path, "dest")
    tags = [f"t{n:02d}" for n in range(12)]
    digests = {tag: push_image(src.url, "big/set", tag, f"set-{tag}") for tag in tags}
    src_front, dest_front = proxy(servers, src.host), proxy(servers, dest.host)

    def slow_manifests(seen: Seen) -> None:  # each image takes a while to finish
        if seen.method == "PUT" and "/manifests/" in seen.path:
            time.sleep(0.4)

    dest_front.before_forward = slow_manifests
    args = ["sync", "--src", "docker", "--dest", "docker", "--workers", "1"]
    args += [f"{src_front.host}/big/set", f"{dest_front.host}/mirror"]
    process = subprocess.Popen(
        [sys.executable, "-m", "registryv2", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len([t for t in tags if head_digest(dest.url, "mirror/set", t)]) < 3:
            assert process.poll() is None, "the sync ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    time.sleep(0.5)  # let a manifest PUT the proxy still held land (or not)
    finished = [t for t in tags if head_digest(dest.url, "mirror/set", t) == digests[t]]
    assert 3 <= len(finished) < len(tags)

    dest_front.before_forward = None
    for front in (src_front, dest_front):
        front.requests.clear()
    report = sync(*args[1:])
    assert report["failed"] == 0
    assert contents(dest.url)["mirror/set"] == digests
    by_tag = {d.rpartition(":")[2]: s for d, s in statuses(report).items()}
    for tag in finished:
        assert by_tag[tag] == "up-to-date", tag
        assert not [r for r in dest_front.requests if r.path.endswith(f"/manifests/{tag}")
                    and r.method != "HEAD"], tag  # fmt: skip
        assert [r.method for r in src_front.requests if r.path.endswith(f"/manifests/{tag}")] == [
            "HEAD"
        ]
    assert {by_tag[t] for t in tags if t not in finished} == {"copied"}


# -- 4: the air gap: a bundle, a layout, and back --------------------------------------------


def test_a_bundle_carries_every_tag_and_its_referrers_to_a_second_registry(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    src, dest = start(servers, tmp_path, "src"), start(servers, tmp_path, "dest")
    digests = {tag: push_image(src.url, "team/app", tag, f"app{tag}") for tag in ("v1", "v2")}
    subject = descriptor_of(src.url, "team/app", "v1")
    signature = cosign_signature(src.url, "team/app", digests["v1"], f"{src.host}/team/app")
    sbom = oci_referrer(src.url, "team/app", subject, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
    listing = tmp_path / "sync.yml"
    listing.write_text(f"{src.host}:\n  images:\n    team/app: [v1, v2]\n")
    bundle = tmp_path / "bundle.tar"

    out = sync(
        "--src", "yaml", "--dest", "docker-archive", "--referrers", str(listing), str(bundle)
    )
    assert out["copied"] == 2
    back = sync("--src", "docker-archive", "--dest", "docker", "--referrers", str(bundle),
                f"{dest.host}/mirror")  # fmt: skip
    assert back["failed"] == 0
    held = contents(dest.url)["mirror/app"]
    sig = fallback_tag(digests["v1"]) + ".sig"
    assert held == {"v1": digests["v1"], "v2": digests["v2"], sig: sha256(signature),
                    fallback_tag(digests["v1"]): held[fallback_tag(digests["v1"])]}  # fmt: skip
    assert get_manifest(dest.url, "mirror/app", sig) == signature
    assert get_manifest(dest.url, "mirror/app", sha256(sbom)) == sbom
    # The fallback index is the destination's own, listing the SBOM.
    index = json.loads(get_manifest(dest.url, "mirror/app", fallback_tag(digests["v1"])) or b"{}")
    assert [m["digest"] for m in index["manifests"]] == [sha256(sbom)]
    assert index["manifests"][0]["artifactType"] == SPDX

    # A second hop of the same bundle finds everything there.
    again = sync("--src", "docker-archive", "--dest", "docker", "--referrers", str(bundle),
                 f"{dest.host}/mirror")  # fmt: skip
    assert again["failed"] == 0 and again["bytes_moved"] == 0


def test_referrers_are_synced_and_a_second_run_finds_them_in_step(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    src, dest = start(servers, tmp_path, "src"), start(servers, tmp_path, "dest")
    digests = {tag: push_image(src.url, "team/app", tag, f"ref{tag}") for tag in ("v1", "v2")}
    subject = descriptor_of(src.url, "team/app", "v1")
    signature = cosign_signature(src.url, "team/app", digests["v1"], f"{src.host}/team/app")
    sbom = oci_referrer(src.url, "team/app", subject, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
    src_front = proxy(servers, src.host)
    listing = tmp_path / "sync.yml"
    listing.write_text(f"{src_front.host}:\n  images:\n    team/app: [v1, v2]\n")
    args = ("--src", "yaml", "--dest", "docker", "--referrers", str(listing), f"{dest.host}/m")
    assert sync(*args)["copied"] == 2
    assert get_manifest(dest.url, "m/app", fallback_tag(digests["v1"]) + ".sig") == signature
    assert get_manifest(dest.url, "m/app", sha256(sbom)) == sbom

    src_front.requests.clear()
    again = sync(*args)
    assert set(statuses(again).values()) == {"up-to-date"}, again
    assert blob_requests(src_front) == []
    # Only the fallback index is read (the destination keeps its own, written its own way).
    fallback = f"/v2/team/app/manifests/{fallback_tag(digests['v1'])}"
    assert [r.path for r in manifest_gets(src_front)] == [fallback]

    # A new referrer of v1: v1 is out of step, and the referrer arrives.
    attestation = oci_referrer(src.url, "team/app", subject, "application/vnd.in-toto+json", b"{}")
    third = sync(*args)
    assert statuses(third)[f"{dest.host}/m/app:v1"] == "copied"
    assert statuses(third)[f"{dest.host}/m/app:v2"] == "up-to-date"
    assert get_manifest(dest.url, "m/app", sha256(attestation)) == attestation


@pytest.mark.parametrize("kind", ["docker-archive", "oci"])
def test_an_image_synced_by_digest_crosses_the_air_gap(
    servers: list[Closing | RegistryServer], tmp_path: Path, kind: str
) -> None:
    src, dest = start(servers, tmp_path, "src"), start(servers, tmp_path, "dest")
    push_image(src.url, "team/app", "v1", "tagged")
    untagged = push_image(src.url, "team/app", None, "untagged")  # by digest only
    listing = tmp_path / "sync.yml"
    listing.write_text(f"{src.host}:\n  images:\n    team/app: [v1, '{untagged}']\n")
    place = tmp_path / ("bundle.tar" if kind == "docker-archive" else "layout")
    assert sync("--src", "yaml", "--dest", kind, str(listing), str(place))["copied"] == 2
    sync("--src", kind, "--dest", "docker", str(place), f"{dest.host}/mirror")
    assert head_digest(dest.url, "mirror/app", untagged) == untagged


def test_a_layout_destination_and_back_and_a_second_sync_into_it_is_up_to_date(
    source: Source, servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    dest = start(servers, tmp_path, "dest")
    layout = tmp_path / "layout"
    whole = f"{source.host}/c/all"
    first = sync("--src", "docker", "--dest", "oci", whole, str(layout))
    assert first["copied"] == 3
    again = sync("--src", "docker", "--dest", "oci", whole, str(layout))
    assert set(statuses(again).values()) == {"up-to-date"}, again
    sync("--src", "oci", "--dest", "docker", str(layout), f"{dest.host}/back")
    expected = {t: source.digests["c/all", t] for t in ("v1", "v2", "latest")}
    assert contents(dest.url) == {"back/all": expected}
    # skopeo reads the layout too, each tag under its digest.
    for tag, digest in expected.items():
        raw = subprocess.run(
            ["skopeo", "inspect", "--raw", f"oci:{layout}:{tag}"],
            capture_output=True,
            check=True,
        ).stdout
        assert sha256(raw) == digest


# -- 5: shards -------------------------------------------------------------------------------


def test_three_shards_together_are_the_unsharded_sync_and_share_nothing(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    src = start(servers, tmp_path, "src")
    sharded, whole = start(servers, tmp_path, "sharded"), start(servers, tmp_path, "whole")
    for repo in ("s/a", "s/b", "s/c"):
        for n in range(4):
            push_image(src.url, repo, f"{n}", f"{repo}{n}")
    listing = tmp_path / "sync.yml"
    listing.write_text(f"{src.host}:\n  images:\n    s/a: []\n    s/b: []\n    s/c: []\n")
    base = ["--json", "sync", "--src", "yaml", "--dest", "docker", str(listing)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "registryv2", *base, f"{sharded.host}/m", "--shard", f"{k}/3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(3)
    ]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    full = sync("--src", "yaml", "--dest", "docker", str(listing), f"{whole.host}/m")

    def names(report: dict[str, Any], host: str) -> list[str]:
        return [i["destination"].removeprefix(host) for i in report["images"]]

    shares = [names(r, sharded.host) for r in reports]
    every = [name for share in shares for name in share]
    assert len(every) == len(set(every)) == 12  # nothing twice
    assert sorted(every) == sorted(names(full, whole.host))
    assert all(shares), shares  # each shard had a share of 12 (not guaranteed, but fixed here)
    assert contents(sharded.url) == contents(whole.url)
    assert sum(r["copied"] for r in reports) == 12


# -- 6: a registry answering like Docker Hub -------------------------------------------------


class HubLikeFront(Closing):
    """A loopback front answering like Docker Hub: every answer says ``ratelimit-limit`` and
    ``ratelimit-remaining``; a manifest GET counts as a pull (a HEAD never does); after
    ``allow`` pulls the next ``refusals`` manifest GETs get 429 with ``Retry-After: 1`` and
    ``ratelimit-remaining: 0``, then pulls pass again."""

    LIMIT = 100

    def __init__(self, upstream: str, allow: int, refusals: int) -> None:
        self.upstream = upstream
        self.pulls = 0
        self.refused = 0
        self.allow = allow
        self.refusals = refusals
        self.heads = 0
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                front.handle(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def remaining(self) -> int:
        return max(0, self.LIMIT - self.pulls)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        pull = request.command == "GET" and "/manifests/" in request.path
        with self._lock:
            if request.command == "HEAD":
                self.heads += 1
            refuse = pull and self.pulls >= self.allow and self.refused < self.refusals
            if refuse:
                self.refused += 1
            elif pull:
                self.pulls += 1
            remaining = 0 if refuse else self.remaining()
        limits = {
            "ratelimit-limit": f"{self.LIMIT};w=21600",
            "ratelimit-remaining": f"{remaining};w=21600",
        }
        if refuse:
            request.send_response(429)
            for key, value in {**limits, "Retry-After": "1", "Content-Length": "0"}.items():
                request.send_header(key, value)
            request.end_headers()
            return
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "connection"}
        upstream = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            upstream.request(request.command, request.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        request.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                request.send_header(key, value)
        for key, value in limits.items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)


def hub_sync(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> tuple[HubLikeFront, RegistryServer, tuple[str, ...]]:
    src, dest = start(servers, tmp_path, "src"), start(servers, tmp_path, "dest")
    for tag in ("1", "2", "3", "4", "5"):
        push_image(src.url, "library/app", tag, f"hub{tag}")
    hub = HubLikeFront(src.host, allow=2, refusals=3)
    servers.append(hub)
    args = ("--src", "docker", "--dest", "docker", f"{hub.host}/library/app", f"{dest.host}/m")
    return hub, dest, args


def test_a_docker_hub_rate_limit_is_waited_for_and_heads_never_count(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    hub, dest, args = hub_sync(servers, tmp_path)
    done = run_cli("--json", "sync", *args)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["copied"] == 5 and report["failed"] == 0
    assert hub.refused == 3  # the limit was hit, and waited out
    assert set(contents(dest.url)["m/app"]) == {"1", "2", "3", "4", "5"}

    # Nothing changed: HEADs only, which Docker Hub does not count.
    pulls, heads = hub.pulls, hub.heads
    again = sync(*args)
    assert again["up_to_date"] == 5
    assert hub.pulls == pulls and hub.heads == heads + 5


def test_waiting_for_a_docker_hub_rate_limit_is_said(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    hub, _, args = hub_sync(servers, tmp_path)
    done = run_cli("sync", *args)
    assert done.returncode == 0, done.stderr
    assert hub.refused == 3
    assert "rate limit" in done.stderr.lower(), done.stderr


# -- 7: bad input ----------------------------------------------------------------------------


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command says: exit 2, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("r:\n  images:\n    a: [v1\n  b: 2\n", ":4: not valid YAML"),
        ("r:\n  images:\n    a: [v1]\n  image-by-tag: {}\n", ":4: r: image-by-tag: unknown key"),
        ("r:\n  images-by-tag-regex:\n    a: '^v[0-9'\n", ":3: r: images-by-tag-regex: a: invalid"),
        ("r:\n  images-by-semver:\n    a: '>= 1.x.x.x'\n", ":3: r: images-by-semver: a: invalid"),
        ("r:\n  images:\n    a: [v1, 'no:tag']\n", ":3: r: images: a: 'no:tag' is neither"),
    ],
)  # fmt: skip
def test_a_bad_sync_list_is_one_line_naming_file_line_and_field(
    tmp_path: Path, text: str, said: str
) -> None:
    listing = tmp_path / "sync.yml"
    listing.write_text(text)
    line = refused(
        run_cli("sync", "--src", "yaml", "--dest", "docker", str(listing), "localhost:1/m")
    )
    assert f"{listing}{said}" in line, line


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--src", "yaml", "--dest", "docker", "--shard", "3/3"), "invalid shard '3/3'"),
        (("--src", "dir", "--dest", "docker"), "'dir' is not one of"),
        (("--src", "yaml", "--dest", "docker", "--shard", "1"), "invalid shard '1'"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    listing = tmp_path / "sync.yml"
    listing.write_text("localhost:5000:\n  images:\n    a: [v1]\n")
    line = refused(run_cli("sync", *args, str(listing), "localhost:1/m"))
    assert said in line, line


def test_a_source_registry_down_fails_alone_with_keep_going(
    source: Source, servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    dest = start(servers, tmp_path, "dest")
    down = f"127.0.0.1:{free_port()}"
    listing = tmp_path / "sync.yml"
    listing.write_text(
        f"{down}:\n  images:\n    gone/app: []\n{source.host}:\n  images:\n    c/multi: [v1]\n"
    )
    done = run_cli("--json", "--retries", "1", "sync", "--src", "yaml", "--dest", "docker",
               "--keep-going", str(listing), f"{dest.host}/m")  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert report["copied"] == 1 and report["failed"] == 1
    failed = [i for i in report["images"] if i["status"] == "failed"]
    assert failed[0]["source"] == f"{down}/gone/app" and failed[0]["error"]
    assert contents(dest.url) == {"m/multi": {"v1": source.digests["c/multi", "v1"]}}

    # Without --keep-going: the same failure stops the run, one line, exit 1.
    done = run_cli("--retries", "1", "sync", "--src", "yaml", "--dest", "docker", str(listing),
               f"{dest.host}/other")  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert down in done.stderr


# -- 8: a dry run ----------------------------------------------------------------------------


def test_a_dry_run_prints_the_plan_and_moves_nothing(
    source: Source, servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    dest = start(servers, tmp_path, "dest")
    dest_front = proxy(servers, dest.host)
    listing = sync_yaml(tmp_path / "sync.yml", source.host, source.digests["c/multi", "v2"])
    done = run_cli("sync", "--dry-run", "--src", "yaml", "--dest", "docker", str(listing),
               f"{dest_front.host}/mirror")  # fmt: skip
    assert done.returncode == 0, done.stderr
    planned = [line for line in done.stdout.splitlines() if line.startswith("would sync")]
    assert len(planned) == 7
    assert f"would sync  {source.host}/c/all:v2 -> {dest_front.host}/mirror/all:v2" in planned
    assert "dry run" in done.stdout
    assert contents(dest.url) == {}
    assert dest_front.requests == []  # the destination is not even asked


# -- 9: multi-platform indexes ---------------------------------------------------------------


def test_all_copies_the_index_and_one_platform_is_remembered_for_the_next_run(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    src, dest = start(servers, tmp_path, "src"), start(servers, tmp_path, "dest")
    archives = {
        arch: write_legacy(
            tmp_path / f"{arch}.tar",
            [simple_image(f"x/multi:{arch}", 1, seed=f"multi-{arch}", architecture=arch)],
        )
        for arch in ("amd64", "arm64")
    }
    index = json.loads(push_index(src.url, "team/multi", "v1", archives))
    index_digest = head_digest(src.url, "team/multi", "v1")
    amd64 = next(
        m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == "amd64"
    )
    src_front = proxy(servers, src.host)
    whole = f"{src_front.host}/team/multi:v1"

    sync("--src", "docker", "--dest", "docker", "--all", whole, f"{dest.host}/all")
    assert head_digest(dest.url, "all/multi", "v1") == index_digest
    for child in index["manifests"]:
        assert head_digest(dest.url, "all/multi", child["digest"]) == child["digest"]

    one = ("--src", "docker", "--dest", "docker", "--platform", "linux/amd64", whole)
    first = sync(*one, f"{dest.host}/one")
    assert first["images"][0]["digest"] == amd64
    assert head_digest(dest.url, "one/multi", "v1") == amd64
    src_front.requests.clear()
    second = sync(*one, f"{dest.host}/one")
    assert statuses(second) == {f"{dest.host}/one/multi:v1": "up-to-date"}
    assert manifest_gets(src_front) == [] and blob_requests(src_front) == []
    assert len(src_front.seen("HEAD", "/manifests/")) == 1


def test_without_all_the_host_platform_arrives(
    servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    src, dest = start(servers, tmp_path, "src"), start(servers, tmp_path, "dest")
    from registryv2.manifest import host_platform

    here = str(host_platform()).split("/")[1]
    arches = sorted({here, "s390x"})
    archives = {
        arch: write_legacy(
            tmp_path / f"{arch}.tar",
            [simple_image(f"x/multi:{arch}", 1, seed=f"multi-{arch}", architecture=arch)],
        )
        for arch in arches
    }
    index = json.loads(push_index(src.url, "team/multi", "v1", archives))
    mine = next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == here)
    sync("--src", "docker", "--dest", "docker", f"{src.host}/team/multi:v1", f"{dest.host}/m")
    assert head_digest(dest.url, "m/multi", "v1") == mine


# -- 10: the API -----------------------------------------------------------------------------


def test_the_api_takes_a_dict_and_reports(
    source: Source, servers: list[Closing | RegistryServer], tmp_path: Path
) -> None:
    dest = start(servers, tmp_path, "dest")
    doc = {source.host: {"images": {"c/multi": ["v1", "v2"]}, "tls-verify": False}}
    report = registryv2.sync(doc, f"{dest.host}/mirror")
    assert isinstance(report, SyncReport)
    assert (report.copied, report.up_to_date, report.failed, report.ok) == (2, 0, 0, True)
    assert report.bytes_moved > 0
    assert [i.destination for i in report.images] == [
        f"{dest.host}/mirror/multi:v1",
        f"{dest.host}/mirror/multi:v2",
    ]
    assert report.images[0].digest == source.digests["c/multi", "v1"]
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert (data["copied"], data["up_to_date"], data["failed"]) == (2, 0, 0)
    assert data["images"][1]["status"] == "copied"

    again = registryv2.sync(
        doc, f"{dest.host}/mirror", destination_access=Access(tls_verify=False), shard="0/1"
    )
    assert (again.copied, again.up_to_date) == (0, 2)
    assert again.bytes_moved == 0
    assert "0 copied, 2 up to date, 0 failed" in again.summary()
    planned = registryv2.sync(doc, f"{dest.host}/other", dry_run=True)
    assert [i.status for i in planned.images] == ["planned", "planned"]
    assert contents(dest.url).keys() == {"mirror/multi"}
    assert os.environ.get("XDG_CACHE_HOME")  # the state (platform choices) stays in the test's
