"""Transfers that finish through faults: resets, 503s, 429s, stalls, a killed registry, hung ports.

Faults come from the fault proxy in front of a real registry (tests/proxies.py); skopeo checks
what arrived. Byte counts are the proxy's: what crossed the wire, failed requests included.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from registryv2 import (
    ImageArchive,
    RegistryClient,
    RegistryError,
    RetryPolicy,
    TransferEvent,
    check_registry_connectivity,
    delete_image,
    get_image_info,
    get_manifest,
    inspect_docker_tar,
    list_repositories,
    list_tags,
    pull_docker_tar,
    push_docker_tar,
    validate_docker_tar,
)

from .archives import simple_image, write_big_legacy, write_legacy
from .nginx import Nginx
from .proxies import FAST, FaultyProxy, Link, Seen, SilentServer
from .servers import RegistryServer, run_cli, skopeo_pull_dir, skopeo_to_dir
from .terminal import Terminal

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120 MB image of four incompressible layers."""
    path = tmp_path_factory.mktemp("big") / "big.tar"
    return write_big_legacy(path, "big:v1", [40 * MiB, 30 * MiB, 30 * MiB, 20 * MiB])


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry of this test's own, which it may kill and start again."""
    server = RegistryServer(tmp_path / "registry")
    yield server
    if server.process.poll() is None:
        server.stop()


def blob_bytes(archive: Path) -> int:
    """Bytes of every blob of the archive's image: what a push must send at least once."""
    with ImageArchive.open(archive) as opened:
        return opened.select().size


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# -- resets, busy answers and stalls, for a push and a pull --------------------------------------


def every_fault(proxy: FaultyProxy, reset_every: int) -> None:
    """A bad day: a stalled answer, 503s for a while, a 429 with Retry-After, then resets."""
    proxy.stall(1, 4.0)
    proxy.refuse(3, 503)
    proxy.refuse(1, 429, {"Retry-After": "1"})
    proxy.reset_every(reset_every)


def test_a_push_through_every_fault_resumes_instead_of_restarting(
    registry: RegistryServer, repo: str, big_archive: Path, tmp_path: Path
) -> None:
    events: list[TransferEvent] = []
    size = blob_bytes(big_archive)
    with FaultyProxy(registry.host) as proxy:
        every_fault(proxy, 4)  # resets: every 4th upload request, halfway through its body
        retry = RetryPolicy(initial_delay=0.05)
        client = RegistryClient(proxy.url, timeout=2, retry=retry, progress=events.append)
        with client:
            result = client.push(big_archive, repo, "v1")
    reasons = [e.message for e in events if e.kind == "retry"]
    assert any("did not answer within 2s" in r for r in reasons)
    assert sum("HTTP 503" in r for r in reasons) == 3
    assert sum("HTTP 429" in r for r in reasons) == 1
    broken = [r for r in reasons if "connection to" in r and "broke" in r]
    assert len(broken) >= 2, "the proxy should have broken several uploads"
    # Resumed from where the registry stood: only the broken halves of segments (at most 8
    # chunks each here) were sent twice; starting over would send whole layers again.
    assert size < proxy.uploaded < 1.4 * size
    # Each break was followed by a question (GET on the upload), never a blind repeat.
    assert len(proxy.seen("GET", "/blobs/uploads/")) >= len(broken)
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")
    assert pulled["digest"] == result.digest


def test_a_link_that_keeps_resetting_behind_nginx_costs_little(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    """A 60 MB image through a link that resets every 8 MiB, into nginx (which buffers, so the
    registry never sees a cut request and every upload resumes): once the link has broken, the
    segments stay a small share of what it carries between breaks."""
    tar = write_big_legacy(tmp_path / "three.tar", "three:v1", [24 * MiB, 20 * MiB, 16 * MiB])
    size = blob_bytes(tar)
    with Nginx(registry.host, tmp_path / "nginx") as nginx, Link(nginx.host) as link:
        link.reset_every = 8 * MiB
        retry = RetryPolicy(initial_delay=0.05)
        with RegistryClient(link.url, retry=retry) as client:
            digest = client.push(tar, repo, "v1").digest
        assert link.resets >= 6
        # Segments that grow back to a second of sending lose most of one at every reset.
        assert link.uploaded < 1.2 * size
    assert skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")["digest"] == digest


def test_a_link_that_keeps_cutting_uploads_into_the_registry_ends_in_one_line(
    own_registry: RegistryServer, tmp_path: Path
) -> None:
    """Straight into the registry, every cut PATCH makes it drop the upload, and a link that
    resets every 8 MiB never lets a 48 MiB layer through: the push gives up after a few starts
    from zero that get no further, saying what to try."""
    tar = write_big_legacy(tmp_path / "one.tar", "one:v1", [48 * MiB])
    layer = blob_bytes(tar)
    with Link(own_registry.host, reset_every=8 * MiB) as link:
        started = time.monotonic()
        done = run_cli("push", "--retries", "3", str(tar), f"{link.host}/one:v1", timeout=120)
        took = time.monotonic() - started
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert "the link keeps cutting uploads" in line and "--chunk-size" in line, line
    assert "buffers requests" in line
    assert took < 60 and link.uploaded < 3 * layer
    # The uploads left are the ones the registry itself refused to go on with (after a cut it
    # answers 404 and cannot be made to delete them); none the client walked away from.
    dropped = (own_registry.root / "registry.log").read_text().count("upload resumed at wrong")
    assert 0 < open_uploads(own_registry, "one") == dropped <= 8


def test_a_pull_through_every_fault_resumes_with_range(
    registry: RegistryServer, repo: str, big_archive: Path, tmp_path: Path
) -> None:
    digest = push_docker_tar(big_archive, registry.url, repo, "v1")
    size = blob_bytes(big_archive)
    out = tmp_path / "pulled.tar"
    with FaultyProxy(registry.host) as proxy:
        every_fault(proxy, 2)  # resets: every other blob download, halfway through
        # The manifest, asked for first, meets five faults in a row: allow it more attempts.
        retry = RetryPolicy(attempts=8, initial_delay=0.001, max_delay=0.01)
        pull_docker_tar(out, proxy.url, repo, "v1", timeout=2, retry=retry)
        ranged = [r for r in proxy.requests if r.range]
    assert len(ranged) >= 2
    assert proxy.downloaded < 1.2 * size
    # skopeo reads the archive and checks every blob against its digest.
    read = skopeo_to_dir(f"docker-archive:{out}", tmp_path / "read")
    assert inspect_docker_tar(out).manifest_digest == digest
    assert [layer["size"] for layer in read["layers"]] == [
        layer.size for layer in inspect_docker_tar(big_archive).layers
    ]


def test_503s_and_a_429_with_retry_after_are_waited_out(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    events: list[TransferEvent] = []
    with FaultyProxy(registry.host) as proxy:
        proxy.refuse(3, 503)
        proxy.refuse(1, 429, {"Retry-After": "1"})
        started = time.monotonic()
        retry = RetryPolicy(initial_delay=0.05)
        with RegistryClient(proxy.url, retry=retry, progress=events.append) as client:
            digest = client.push(tar, repo, "v1").digest
        took = time.monotonic() - started
        proxy.refuse(2, 503)
        out = tmp_path / "out.tar"
        pull_docker_tar(out, proxy.url, repo, "v1", retry=FAST)
    assert took >= 1.0  # the registry asked for a second: it got it
    messages = [e.message for e in events if e.kind == "retry"]
    assert sum("HTTP 503" in m for m in messages) == 3
    assert [e.delay for e in events if e.kind == "retry" and "HTTP 429" in e.message] == [1.0]
    assert skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "skopeo")["digest"] == digest
    assert validate_docker_tar(out)


def test_a_registry_killed_mid_pull_is_a_clear_error_after_spaced_retries(
    own_registry: RegistryServer, big_archive: Path, tmp_path: Path
) -> None:
    push_docker_tar(big_archive, own_registry.url, "big", "v1")
    out = tmp_path / "out.tar"
    out.write_bytes(b"an older archive")
    events: list[TransferEvent] = []
    with FaultyProxy(own_registry.host) as proxy:
        proxy.throttle = 0.002

        def crash_mid_stream() -> None:
            while proxy.downloaded < 10 * MiB:
                time.sleep(0.01)
            own_registry.kill()

        threading.Thread(target=crash_mid_stream, daemon=True).start()
        retry = RetryPolicy(attempts=4, initial_delay=0.2, max_delay=0.2)
        client = RegistryClient(proxy.url, retry=retry, progress=events.append)
        with client, pytest.raises(RegistryError) as err:
            client.pull("big:v1", out)
    message = str(err.value)
    assert "\n" not in message and proxy.host in message and "gave up after 4" in message
    retries = [e for e in events if e.kind == "retry"]
    assert retries and all(0 <= e.delay <= 0.2 for e in retries)
    assert out.read_bytes() == b"an older archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tar", "registry"]


def test_a_stalled_request_is_given_up_and_retried(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    with FaultyProxy(registry.host) as proxy:
        proxy.stall(2, 5.0)  # longer than the read timeout below
        started = time.monotonic()
        push_docker_tar(tar, proxy.url, repo, "v1", timeout=1, retry=FAST)
        proxy.stall(1, 5.0)
        pull_docker_tar(tmp_path / "out.tar", proxy.url, repo, "v1", timeout=1, retry=FAST)
        took = time.monotonic() - started
    assert took < 10
    assert validate_docker_tar(tmp_path / "out.tar")


# -- resume across runs ---------------------------------------------------------------------------


def quiet(proxy: FaultyProxy) -> int:
    """The bytes uploaded through ``proxy`` once the last run's are all in: a process that
    stopped mid-request leaves its socket's buffered bytes to arrive after it."""
    while True:
        before = proxy.uploaded
        time.sleep(0.3)
        if proxy.uploaded == before:
            return before


def kill_when(server: RegistryServer, proxy: FaultyProxy, uploaded: int) -> Callable[[Seen], None]:
    """Kill the registry before the first request forwarded after ``uploaded`` bytes arrived."""

    def hook(request: Seen) -> None:
        if proxy.uploaded >= uploaded and server.process.poll() is None:
            server.kill()

    return hook


def test_a_push_cut_off_by_a_registry_crash_continues_on_the_next_run(
    own_registry: RegistryServer, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "one.tar", "one:v1", [48 * MiB])
    size = blob_bytes(tar)
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    with FaultyProxy(own_registry.host) as proxy:
        proxy.throttle = 0.002  # about 30 MB/s: the crash comes in the middle of the layer
        proxy.before_forward = kill_when(own_registry, proxy, 20 * MiB)
        ref = f"{proxy.host}/one:v1"
        first = run_cli("push", "--retries", "2", str(tar), ref, env=env, timeout=300)
        assert first.returncode == 1
        line = one_line(first.stderr)
        assert line.startswith("registryv2: error: ") and proxy.host in line
        assert "gave up after 2 attempts" in line
        assert len(list((cache / "registryv2" / "uploads").glob("*.json"))) == 1

        own_registry.start()
        proxy.before_forward = None
        proxy.throttle = 0
        sent_before = quiet(proxy)
        second = run_cli("push", "-q", str(tar), ref, env=env, timeout=300)
        assert second.returncode == 0, second.stderr
        sent_again = proxy.uploaded - sent_before
    # The second run continued the one layer from the registry's offset (at least the first
    # segment, one chunk, went through before the crash; the segment in flight is lost):
    # starting over would send all of it.
    assert sent_again < size - 4 * MiB
    assert list((cache / "registryv2" / "uploads").glob("*.json")) == []
    pulled = skopeo_pull_dir(f"{own_registry.host}/one:v1", tmp_path / "out")
    assert pulled["digest"] == second.stdout.strip()
    assert pulled["layers"][0]["size"] == size - pulled["config"]["size"]


def open_uploads(server: RegistryServer, repository: str) -> int:
    """Uploads the registry keeps on disk for ``repository``: those holding bytes (a cancelled
    one leaves at most an empty folder behind)."""
    uploads = server.root / "data/docker/registry/v2/repositories" / repository / "_uploads"
    return len(list(uploads.glob("*/data")))


def interrupt(link: Link, args: list[str], env: dict[str, str], at: int, signum: int) -> str:
    """Run ``registryv2 ARGS``, send it ``signum`` once ``at`` bytes crossed the link, and
    check that it stops within the two seconds an interrupt is given; its stderr."""
    command = [sys.executable, "-m", "registryv2", *args]
    child = subprocess.Popen(command, env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while link.uploaded < at and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.01)
    child.send_signal(signum)
    stopped = time.monotonic()
    _, stderr = child.communicate(timeout=30)
    assert time.monotonic() - stopped < 2, "an interrupt must take effect within two seconds"
    assert child.returncode == 128 + signum, stderr
    return stderr


@pytest.mark.parametrize("front", ["registry", "nginx"])
def test_a_push_interrupted_twice_on_a_slow_link_loses_nothing(
    registry: RegistryServer, repo: str, tmp_path: Path, front: str
) -> None:
    """Ctrl-C, then SIGTERM, each in the middle of a streamed PATCH through a 2 MB/s link:
    each run ends its request where it stands and keeps what the registry confirmed, so the
    third run sends what is left, whether or not a buffering proxy stands in front."""
    tar = write_big_legacy(tmp_path / "one.tar", "one:v1", [24 * MiB])
    layer = blob_bytes(tar)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    journal = tmp_path / "cache" / "registryv2" / "uploads"
    with contextlib.ExitStack() as stack:
        upstream = registry.host
        if front == "nginx":
            upstream = stack.enter_context(Nginx(registry.host, tmp_path / "nginx")).host
        link = stack.enter_context(Link(upstream, rate=2_000_000))
        push = ["push", str(tar), f"{link.host}/{repo}:v1"]
        for signum, share, said in (
            (signal.SIGINT, 0.25, "interrupted"),
            (signal.SIGTERM, 0.5, "terminated"),
        ):
            stderr = interrupt(link, push, env, int(share * layer), signum)
            assert one_line(stderr) == f"registryv2: {said}"
            assert len(list(journal.glob("*.json"))) == 1
        link.rate = 0
        before = link.uploaded
        done = run_cli("-q", *push, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        sent = link.uploaded - before
    # Half the layer went in the first two runs; starting over anywhere would send it again.
    assert sent < 0.6 * layer
    assert not list(journal.glob("*.json"))
    assert open_uploads(registry, repo) == 0
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")
    assert pulled["digest"] == done.stdout.strip().rsplit("@", 1)[-1]


def test_without_resume_an_interrupted_push_cancels_its_uploads(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "one.tar", "one:v1", [30 * MiB])
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    with FaultyProxy(registry.host) as proxy:
        proxy.throttle = 0.016  # 4 MB/s: one chunk per PATCH, the interrupt lands in one
        ref = f"{proxy.host}/{repo}:v1"
        command = [sys.executable, "-m", "registryv2", "push", "--no-resume", str(tar), ref]
        child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        while proxy.uploaded < 8 * MiB and child.poll() is None:
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=30)
        assert child.returncode == 130
        assert len(proxy.seen("DELETE", "/blobs/uploads/")) == 1
    assert not list((cache / "registryv2" / "uploads").glob("*.json"))  # no journal entry
    assert open_uploads(registry, repo) == 0


def test_a_rerun_whose_upload_the_registry_dropped_says_so_in_one_line(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "one.tar", "one:v1", [24 * MiB])
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    with Link(registry.host, rate=8_000_000) as link:
        push = ["push", str(tar), f"{link.host}/{repo}:v1"]
        interrupt(link, push, env, 12 * MiB, signal.SIGINT)
        # What the registry's purge does to an upload a week old.
        uploads = registry.root / "data/docker/registry/v2/repositories" / repo / "_uploads"
        shutil.rmtree(uploads)
        link.rate = 0
        done = run_cli("-q", *push, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    line = one_line(done.stderr)
    assert line.startswith("registryv2: warning: uploading sha256:")
    assert line.endswith("an earlier push left; sending the blob again from the start")
    assert skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")["layers"]


def test_the_rate_after_a_resume_counts_only_this_runs_bytes(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    """The total line's rate and ETA, on a terminal, when the push continues half a layer that
    an interrupted run left: the link's rate, not the bytes held already over the time taken."""
    tar = write_big_legacy(tmp_path / "one.tar", "one:v1", [48 * MiB])
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    with Link(registry.host, rate=8_000_000) as link:
        push = ["push", str(tar), f"{link.host}/{repo}:v1"]
        interrupt(link, push, env, 24 * MiB, signal.SIGINT)
        link.rate = 4_000_000
        before = link.uploaded
        with mock.patch.dict(os.environ, env), Terminal(*push) as terminal:
            while link.uploaded - before < 8 * MiB:
                time.sleep(0.02)
            screen = terminal.wait_for("Pushing:")
            link.rate = 0
            final = terminal.wait_for("EXIT=", timeout=60)
    total = re.search(
        r"Pushing: \d+/\d+ blobs, ([\d.]+) MiB of ([\d.]+) MiB, ([\d.]+) (\w+)/s ETA (\d+)s",
        screen,
    )
    assert total, screen
    done, planned, eta = float(total.group(1)), float(total.group(2)), int(total.group(5))
    assert done > 24  # the kept half shows as done
    assert total.group(4) in ("KiB", "MiB")
    rate = float(total.group(3)) * (1 if total.group(4) == "MiB" else 1 / 1024)
    link_rate = 4_000_000 / MiB
    assert rate < 1.25 * link_rate, screen  # the link's 3.8 MiB/s, not 24 MiB more
    assert eta >= 0.7 * (planned - done) / link_rate, screen
    assert "EXIT=0" in final


# -- a port that accepts and never answers ----------------------------------------------------


TWICE = RetryPolicy(attempts=2, initial_delay=0.001, max_delay=0.01)
HUNG_CALLS: list[tuple[str, Callable[[str], Any]]] = [
    ("connectivity", lambda url: check_registry_connectivity(url, 1, retry=TWICE)),
    ("list_repositories", lambda url: list_repositories(url, 1, retry=TWICE)),
    ("list_tags", lambda url: list_tags(url, "team/app", 1, retry=TWICE)),
    ("get_manifest", lambda url: get_manifest(url, "team/app", "v1", 1, retry=TWICE)),
    ("get_image_info", lambda url: get_image_info(url, "team/app", "v1", 1, retry=TWICE)),
    ("delete_image", lambda url: delete_image(url, "team/app", "v1", 1, retry=TWICE)),
]


@pytest.mark.parametrize("scheme", ["", "http://"])
@pytest.mark.parametrize(("name", "call"), HUNG_CALLS, ids=[n for n, _ in HUNG_CALLS])
def test_a_registry_that_never_answers_is_one_clear_error_in_bounded_time(
    scheme: str, name: str, call: Callable[[str], Any]
) -> None:
    with SilentServer() as silent:
        started = time.monotonic()
        with pytest.raises(RegistryError) as err:
            call(scheme + silent.host)
        took = time.monotonic() - started
    message = str(err.value)
    assert "\n" not in message and silent.host in message
    assert "did not answer within 1s" in message and "gave up after 2 attempts" in message
    assert err.value.transient
    # Two attempts of one second each (the https probe of a bare host included), tiny waits.
    assert 1.8 < took < 4, took


@pytest.mark.parametrize("command", ["push", "pull"])
def test_cli_against_a_registry_that_never_answers(command: str, tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    with SilentServer() as silent:
        ref = f"{silent.host}/team/app:v1"
        args = [str(tar), ref] if command == "push" else [ref, "-o", str(tmp_path / "o.tar")]
        started = time.monotonic()
        done = run_cli(command, "--timeout", "1", "--retries", "2", *args, timeout=300)
        took = time.monotonic() - started
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert f"{silent.host} did not answer within 1s" in line and "gave up after 2" in line
    assert took < 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.tar"]


# -- many threads and processes ---------------------------------------------------------------


def test_eight_threads_share_one_client_and_each_blob_goes_up_once(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    shared = write_big_legacy(tmp_path / "shared.tar", "shared:v1", [12 * MiB, 6 * MiB])
    others = [
        write_legacy(tmp_path / f"other{n}.tar", [simple_image(seed=str(n))]) for n in range(4)
    ]
    jobs = [(shared, f"{repo}/same", f"t{n}") for n in range(4)]
    jobs += [(tar, f"{repo}/other{n}", "v1") for n, tar in enumerate(others)]
    results: dict[int, Any] = {}
    errors: list[BaseException] = []
    with FaultyProxy(registry.host) as proxy, RegistryClient(proxy.url, workers=4) as client:
        start = threading.Barrier(len(jobs))

        def push(n: int, tar: Path, repository: str, tag: str) -> None:
            start.wait()
            try:
                results[n] = client.push(tar, repository, tag)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=push, args=(n, *job)) for n, job in enumerate(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
    shared_digests = {results[n].digest for n in range(4)}
    assert len(shared_digests) == 1
    uploaded = [b.digest for r in results.values() for b in r.blobs if b.action == "uploaded"]
    assert len(uploaded) == len(set(uploaded))  # each blob uploaded by one thread only
    assert proxy.uploaded < blob_bytes(shared) * 1.05 + sum(blob_bytes(t) for t in others)
    for n in range(4):
        assert list_tags(registry.url, f"{repo}/same") and results[n].digest in shared_digests
    pulled = skopeo_pull_dir(f"{registry.host}/{repo}/same:t3", tmp_path / "out")
    assert pulled["digest"] == shared_digests.pop()


def test_eight_threads_pushing_one_image_send_each_blob_once(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "one.tar", "one:v1", [10 * MiB, 6 * MiB, 3 * MiB])
    size = blob_bytes(tar)
    with FaultyProxy(registry.host) as proxy, RegistryClient(proxy.url, workers=4) as client:
        start = threading.Barrier(8)
        digests: list[str] = []

        def push(n: int) -> None:
            start.wait()
            digests.append(client.push(tar, repo, f"t{n}").digest)

        threads = [threading.Thread(target=push, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert len(digests) == 8 and len(set(digests)) == 1
    assert size <= proxy.uploaded < size + 64 * 1024  # each blob once: no second upload
    assert len(proxy.seen("POST", "/blobs/uploads/")) == 4  # three layers and the config


def test_two_processes_push_the_same_image_at_once(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "same.tar", "same:v1", [24 * MiB, 8 * MiB])
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "registryv2", "push", "-q", "--chunk-size", str(MiB)]
    command.append(str(tar))
    children = [
        subprocess.Popen(
            [*command, f"{registry.host}/{repo}:p{n}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    digests = {out.strip() for out, _ in outputs}
    assert len(digests) == 1
    for n in range(2):
        pulled = skopeo_pull_dir(f"{registry.host}/{repo}:p{n}", tmp_path / f"out{n}")
        assert pulled["digest"] in digests
