"""The blob-info cache: a push into a new repository mounts what an earlier run pushed or
pulled elsewhere in the same registry, and falls back to sending when the mount is refused."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from registryv2 import RegistryClient, RegistryConfig, blobcache
from registryv2.blobcache import BlobInfoCache

from .archives import SampleImage, layer_tar, sha256, write_legacy
from .auth_servers import TokenServer
from .proxies import FaultyProxy
from .servers import RegistryServer, skopeo_pull_dir

HOST = "127.0.0.1:5000"
USERS = {"alice": "wonder land:42"}


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def big_image(seed: str) -> SampleImage:
    """Two layers of 3 MiB: a resend is easy to tell from a manifest."""
    return SampleImage(
        layers=[
            layer_tar({f"{seed}-{i}.bin": os.urandom(3 << 20), "same.txt": b"x"}) for i in range(2)
        ],
        tags=[f"example.com/{seed}:v1"],
    )


def cli_push(tar: Path, reference: str) -> dict[str, Any]:
    """``registryv2 --json push`` in a process of its own: nothing shared in memory."""
    done = subprocess.run(
        [sys.executable, "-m", "registryv2", "--json", "push", str(tar), reference],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pushed: dict[str, Any] = json.loads(done.stdout)["pushed"][0]
    return pushed


def layer_actions(pushed: dict[str, Any], image: SampleImage) -> list[str]:
    actions = {b["digest"]: b["action"] for b in pushed["blobs"]}
    return [actions[sha256(layer)] for layer in image.layers]


# -- the cache file on its own ---------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache's clock ticks once per note: which is newer never depends on timer luck."""
    ticks = iter(range(1_700_000_000, 1_800_000_000))
    monkeypatch.setattr(blobcache, "time", SimpleNamespace(time=lambda: float(next(ticks))))


def test_what_one_process_saw_another_finds(tmp_path: Path) -> None:
    first = BlobInfoCache.at(tmp_path)
    first.note(HOST, digest(1), "team/app")
    first.note("127.0.0.1:5001", digest(2), "team/app")
    first.save()
    assert stat.S_IMODE(os.stat(tmp_path / "blobs.json").st_mode) == 0o600
    second = BlobInfoCache.at(tmp_path)
    assert second.mount_source(HOST, digest(1), "team/new") == "team/app"
    # Never the repository pushed into, never another registry's repository.
    assert second.mount_source(HOST, digest(1), "team/app") is None
    assert second.mount_source(HOST, digest(2), "team/new") is None
    assert second.mount_source("127.0.0.1:5001", digest(2), "team/new") == "team/app"


def test_the_repository_seen_last_is_mounted_from(tmp_path: Path, clock: None) -> None:
    cache = BlobInfoCache.at(tmp_path)
    for repository in ["a/one", "a/two", "a/three"]:
        cache.note(HOST, digest(1), repository)
    cache.save()
    assert BlobInfoCache.at(tmp_path).mount_source(HOST, digest(1), "a/new") == "a/three"
    assert BlobInfoCache.at(tmp_path).mount_source(HOST, digest(1), "a/three") == "a/two"


def test_the_cache_keeps_the_newest_blobs_and_repositories_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: None
) -> None:
    monkeypatch.setattr(blobcache, "MAX_BLOBS", 10)
    cache = BlobInfoCache.at(tmp_path)
    for n in range(25):
        cache.note(HOST, digest(n), "team/app")
    for n in range(blobcache.MAX_REPOSITORIES + 3):
        cache.note(HOST, digest(24), f"team/r{n}")
    cache.save()
    kept = json.loads((tmp_path / "blobs.json").read_text())["registries"][HOST]
    assert sorted(kept) == [digest(n) for n in range(15, 25)]
    newest = [f"team/r{n}" for n in range(3, blobcache.MAX_REPOSITORIES + 3)]
    assert sorted(kept[digest(24)]) == sorted(newest)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe not json",
        b'{"version": 1, "registries": ' * 50_000,
        b"[1, 2]",
        b'{"version": 99, "registries": {}}',
        json.dumps(
            {
                "version": 1,
                "registries": {
                    HOST: {
                        digest(1): {"../../etc": 1.0, "team/app": "yesterday", "ok/repo": True},
                        "sha256:not-a-digest": {"team/app": 1.0},
                        digest(2): ["team/app"],
                    },
                    "evil host/x": {digest(3): {"team/app": 1.0}},
                },
            }
        ).encode(),
    ],
    ids=["empty", "not-json", "deep", "a-list", "other-version", "wrong-entries"],
)
def test_a_damaged_cache_is_ignored_then_replaced(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "blobs.json").write_bytes(content)
    cache = BlobInfoCache.at(tmp_path)
    for n in (1, 2, 3):
        assert cache.mount_source(HOST, digest(n), "team/new") is None
    assert cache.mount_source("evil host/x", digest(3), "team/new") is None
    cache.note(HOST, digest(4), "team/app")
    cache.save()
    doc = json.loads((tmp_path / "blobs.json").read_text())
    assert doc["version"] == 1 and list(doc["registries"]) == [HOST]
    assert doc["registries"][HOST].keys() == {digest(4)}
    assert doc["registries"][HOST][digest(4)].keys() == {"team/app"}


def test_an_unreadable_cache_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "blobs.json").mkdir()  # a directory where the file should be
    cache = BlobInfoCache.at(tmp_path)
    assert cache.mount_source(HOST, digest(1), "team/new") is None
    cache.note(HOST, digest(1), "team/app")
    cache.save()  # cannot be written: only a hint lost
    assert cache.mount_source(HOST, digest(1), "team/new") == "team/app"
    assert [p.name for p in tmp_path.iterdir()] == ["blobs.json"]  # no temporary file left


_WRITER = """
import sys
from registryv2.blobcache import BlobInfoCache
cache = BlobInfoCache.at(sys.argv[1])
for n in range(200):
    cache.note("127.0.0.1:5000", "sha256:%064x" % (int(sys.argv[2]) * 1000 + n), "team/app")
    cache.save()
"""


def test_processes_writing_at_once_never_leave_a_damaged_file(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(i)]) for i in range(4)
    ]
    for writer in writers:
        assert writer.wait(120) == 0
    doc = json.loads((tmp_path / "blobs.json").read_text())
    found = doc["registries"][HOST]
    # Additions may be lost to a writer that read before another wrote, but each save writes
    # all its writer knows: the last one's 200 at least.
    assert 200 <= len(found) <= 800
    assert set(found) <= {digest(i * 1000 + n) for i in range(4) for n in range(200)}
    assert all(list(held) == ["team/app"] for held in found.values())
    assert [p.name for p in tmp_path.iterdir()] == ["blobs.json"]


# -- against a real registry -----------------------------------------------------------------


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultyProxy]:
    with FaultyProxy(registry.host) as p:
        yield p


def test_a_second_push_into_a_new_repository_sends_no_layer_byte(
    registry: RegistryServer, repo: str, proxy: FaultyProxy, tmp_path: Path
) -> None:
    image = big_image("mount-across-runs")
    tar = write_legacy(tmp_path / "app.tar", [image])
    first = cli_push(tar, f"{proxy.host}/{repo}/first:v1")
    assert layer_actions(first, image) == ["uploaded", "uploaded"]
    assert proxy.uploaded > 6 << 20
    proxy.requests.clear()
    proxy.uploaded = 0

    second = cli_push(tar, f"{proxy.host}/{repo}/second:v1")  # a new process, a new client
    assert layer_actions(second, image) == ["mounted", "mounted"]
    assert second["bytes_uploaded"] == 0
    assert proxy.seen("PATCH") == [] and proxy.seen("PUT", "/blobs/") == []
    # The manifest, and nothing else, crossed the proxy.
    assert proxy.uploaded < 2048
    mounts = proxy.seen("POST")
    source = f"from={repo}/first".replace("/", "%2F")
    assert len(mounts) == 3 and all(m.path.endswith(source) for m in mounts)
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}/second:v1", tmp_path / "out")
    assert pulled["digest"] == second["digest"]
    assert [x["digest"] for x in pulled["layers"]] == [sha256(x) for x in image.layers]


def test_a_pulled_image_pushed_elsewhere_in_the_registry_is_mounted(
    registry: RegistryServer, repo: str, proxy: FaultyProxy, tmp_path: Path
) -> None:
    image = big_image("mount-after-pull")
    tar = write_legacy(tmp_path / "app.tar", [image])
    with RegistryClient(proxy.url, state_dir=str(tmp_path / "elsewhere")) as client:
        client.push(tar, f"{repo}/origin", "v1")
    # This cache never saw the push: it learns where the layers are from the pull.
    with RegistryClient(proxy.url) as client:
        client.pull(f"{repo}/origin:v1", tmp_path / "pulled.tar")
    proxy.requests.clear()
    with RegistryClient(proxy.url) as client:
        result = client.push(tmp_path / "pulled.tar", f"{repo}/copy", "v1")
    layers = {b.digest: b.action for b in result.blobs}
    assert [layers[sha256(x)] for x in image.layers] == ["mounted", "mounted"]
    assert proxy.seen("PATCH") == []


def test_a_mount_the_registry_refuses_goes_on_as_the_upload_it_opened(
    registry: RegistryServer,
    repo: str,
    proxy: FaultyProxy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    image = big_image("mount-refused")
    tar = write_legacy(tmp_path / "app.tar", [image])
    with RegistryClient(proxy.url) as client:
        client.push(tar, f"{repo}/first", "v1")
    proxy.requests.clear()
    # The cache still names first, which no longer holds the first layer.
    gone = sha256(image.layers[0])
    requests.delete(f"{registry.url}/v2/{repo}/first/blobs/{gone}", timeout=10).raise_for_status()

    caplog.set_level(logging.INFO, logger="registryv2")
    with RegistryClient(proxy.url) as client:
        result = client.push(tar, f"{repo}/second", "v1")
    layers = {b.digest: b for b in result.blobs}
    assert layers[gone].action == "uploaded" and layers[gone].bytes_moved == len(image.layers[0])
    assert layers[sha256(image.layers[1])].action == "mounted"
    # One POST per blob: the refused mount's upload was used, not a second one.
    assert len(proxy.seen("POST")) == 3
    assert all("mount=" in r.path for r in proxy.seen("POST"))
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]  # silently
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}/second:v1", tmp_path / "out")
    assert [x["digest"] for x in pulled["layers"]] == [sha256(x) for x in image.layers]


# -- with a token registry: the mount needs pull on its source -----------------------------


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    server = TokenServer(tmp_path_factory.mktemp("token"), USERS)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer
) -> Iterator[RegistryServer]:
    server = RegistryServer(
        tmp_path_factory.mktemp("token-registry"), token_server.registry_config()
    )
    yield server
    server.stop()


def test_a_token_registry_mounts_with_pull_on_the_source_and_keeps_no_credential(
    token_registry: RegistryServer, token_server: TokenServer, repo: str, tmp_path: Path
) -> None:
    image = big_image("token-mount")
    tar = write_legacy(tmp_path / "app.tar", [image])
    login = RegistryConfig(token_registry.url, username="alice", password=USERS["alice"])
    with RegistryClient(login) as client:
        client.push(tar, f"{repo}/first", "v1")
    token_server.requests.clear()
    with RegistryClient(login) as client:
        result = client.push(tar, f"{repo}/second", "v1")
    assert {b.action for b in result.blobs} == {"mounted"}
    asked = {scope for query in token_server.requests for scope in query.get("scope", [])}
    assert f"repository:{repo}/first:pull" in asked
    cache = (Path(os.environ["XDG_CACHE_HOME"]) / "registryv2" / "blobs.json").read_text()
    # Hosts, digests and repository paths only: no user, no password, no token (a JWT's "eyJ").
    assert "alice" not in cache and USERS["alice"] not in cache and "eyJ" not in cache


def test_a_mount_whose_source_the_credentials_cannot_read_falls_back_to_sending(
    token_registry: RegistryServer, token_server: TokenServer, repo: str, tmp_path: Path
) -> None:
    image = big_image("token-denied")
    tar = write_legacy(tmp_path / "app.tar", [image])
    login = RegistryConfig(token_registry.url, username="alice", password=USERS["alice"])
    with RegistryClient(login) as client:
        client.push(tar, f"{repo}/private", "v1")
    token_server.denied.add(f"{repo}/private")
    token_server.requests.clear()
    try:
        with RegistryClient(login) as client:
            result = client.push(tar, f"{repo}/public", "v1")
    finally:
        token_server.denied.discard(f"{repo}/private")
    layers = {b.digest: b.action for b in result.blobs}
    assert [layers[sha256(x)] for x in image.layers] == ["uploaded", "uploaded"]
    asked = {scope for query in token_server.requests for scope in query.get("scope", [])}
    assert f"repository:{repo}/private:pull" in asked  # the mount was tried, and refused
