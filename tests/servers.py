"""Real peers for the integration tests: the CNCF distribution registry, skopeo and docker."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import requests


class Closing:
    """A test helper that is its own context manager: leaving ``with`` closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The Debian package of each peer whose name differs from its command's.
_PACKAGES = {"nginx": "nginx-light"}


def require(binary: str) -> str:
    # Daemons live in sbin, which a user's PATH may leave out.
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        # Integration tests never skip: a missing peer is a broken setup, said plainly.
        raise RuntimeError(
            f"{binary} is not installed (Debian: apt-get install {_PACKAGES.get(binary, binary)})"
        )
    return path


class RegistryServer:
    """``docker-registry serve`` on a free loopback port with its own storage directory;
    ``tls`` a certificate and key to serve https with, ``client_cas`` a PEM file of authorities
    whose client certificate every connection must show (mutual TLS)."""

    def __init__(
        self,
        root: Path,
        extra: dict[str, Any] | None = None,
        tls: tuple[Path, Path] | None = None,
        client_cas: Path | None = None,
    ) -> None:
        self.root = root
        self.mutual_tls = client_cas is not None
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        http: dict[str, Any] = {"addr": self.host, "secret": "test-secret"}
        if tls:
            http["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
            if client_cas is not None:
                http["tls"]["clientcas"] = [str(client_cas)]
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(root / "data")},
                "delete": {"enabled": True},
            },
            "http": http,
        }
        for key, value in (extra or {}).items():
            config[key] = value
        root.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: no need for a YAML writer.
        (root / "config.yml").write_text(json.dumps(config))
        self.start()

    def start(self) -> None:
        """Start the registry (again, after :meth:`kill`: same port, storage and secret)."""
        self.log = open(self.root / "registry.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [require("docker-registry"), "serve", str(self.root / "config.yml")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def kill(self) -> None:
        """Kill the registry as a crash would (SIGKILL), in the middle of whatever it does."""
        self.process.kill()
        self.process.wait(10)
        self.log.close()

    def _wait(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("registry exited: " + (self.root / "registry.log").read_text())
            try:
                if self.mutual_tls:  # no client certificate here: listening is enough
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                else:
                    requests.get(self.url + "/v2/", timeout=1, verify=False)
                return
            except (requests.ConnectionError, OSError):
                time.sleep(0.05)
        raise RuntimeError("registry did not start within 20s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``registryv2 ARGS`` as a user runs it, in a process of its own; never raises for its
    exit status."""
    return subprocess.run(
        [sys.executable, "-m", "registryv2", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def skopeo(*args: str) -> str:
    """Run skopeo with TLS verification off for our plain-http loopback registries."""
    command = [require("skopeo"), "--insecure-policy", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def skopeo_to_dir(source: str, dest: Path, *options: str) -> dict[str, Any]:
    """``skopeo copy SOURCE dir:DEST``, then check every blob against the manifest.

    Returns the manifest as skopeo stored it, with its ``digest`` and the parsed ``config``
    added.
    """
    skopeo("copy", *options, source, f"dir:{dest}")
    raw = (dest / "manifest.json").read_bytes()
    manifest = json.loads(raw)
    for desc in [manifest["config"], *manifest["layers"]]:
        blob = dest / desc["digest"].split(":", 1)[1]
        data = blob.read_bytes()
        assert len(data) == desc["size"], f"{desc['digest']}: size {len(data)} != {desc['size']}"
        assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]
    manifest["digest"] = "sha256:" + hashlib.sha256(raw).hexdigest()
    manifest["config"]["parsed"] = json.loads((dest / manifest["config"]["digest"][7:]).read_text())
    return dict(manifest)


def skopeo_pull_dir(reference: str, dest: Path) -> dict[str, Any]:
    """Pull docker://REFERENCE from a plain-http registry into a dir: layout, checked."""
    return skopeo_to_dir(f"docker://{reference}", dest, "--src-tls-verify=false")


def push_index(url: str, repository: str, tag: str, archives: dict[str, Path]) -> bytes:
    """Push one single-platform archive per architecture, then an OCI index of them under tag.

    Returns the index bytes as put.
    """
    from registryv2 import RegistryClient

    entries = []
    with RegistryClient(url) as client:
        for arch, archive in archives.items():
            manifest = client.get_manifest(
                repository, client.push(archive, repository, arch).digest
            )
            entries.append(
                {
                    "mediaType": manifest.media_type,
                    "digest": manifest.digest,
                    "size": manifest.size,
                    "platform": {"os": "linux", "architecture": arch},
                }
            )
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": entries,
            }
        ).encode()
        client.put_manifest(repository, tag, index, "application/vnd.oci.image.index.v1+json")
    return index


class DockerDaemon:
    """The docker daemon: the one running, or ``dockerd`` started here (as root) and stopped."""

    def __init__(self, root: Path) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        if self._answers():
            return
        if shutil.which("dockerd") is None or os.geteuid() != 0:
            raise DockerUnavailable(
                "no docker daemon runs, and none can be started here (install docker.io, run as "
                "root)"
            )
        self.log = open(root / "dockerd.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["dockerd", "--host", "unix:///var/run/docker.sock"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dockerd did not start: " + (root / "dockerd.log").read_text())
            time.sleep(0.5)

    @staticmethod
    def _answers() -> bool:
        if shutil.which("docker") is None:
            return False
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False)
        return done.returncode == 0

    def run(self, *args: str, timeout: float = 300) -> str:
        """``docker ARGS``; its output, or an AssertionError with what docker said."""
        done = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.log.close()


class DockerUnavailable(RuntimeError):
    """No docker daemon runs and none can be started on this machine."""
