from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import DockerDaemon, DockerUnavailable, RegistryServer


@pytest.fixture(autouse=True)
def upload_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test keeps its own upload journal: nothing leaks into ~/.cache or between tests."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "registryv2" / "uploads"


@pytest.fixture(autouse=True)
def certs_d(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test has its own certs.d, empty: this machine's /etc/docker/certs.d never counts."""
    directory = tmp_path_factory.mktemp("certs") / "certs.d"
    directory.mkdir()
    monkeypatch.setenv("REGISTRYV2_CERTS_D", str(directory))
    return directory


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """One open registry for the session (deletes on, catalog pages of 50)."""
    server = RegistryServer(tmp_path_factory.mktemp("registry"), {"catalog": {"maxentries": 50}})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A second registry, to copy between two."""
    server = RegistryServer(tmp_path_factory.mktemp("other-registry"))
    yield server
    server.stop()


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name of this test's own, so tests sharing a registry never collide."""
    return "t/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")


@pytest.fixture(scope="session")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """The docker daemon, started if it is not running. Skipped only where none can start
    (docker.io not installed, or not root): .ci/setup installs it, so CI never skips."""
    try:
        daemon = DockerDaemon(tmp_path_factory.mktemp("docker"))
    except DockerUnavailable as e:
        pytest.skip(str(e))
    yield daemon
    daemon.stop()
