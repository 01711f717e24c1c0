"""Registries behind TLS with their own CA, with htpasswd, and in token mode."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import urllib3

from registryv2 import AuthenticationError, RegistryClient, RegistryError
from registryv2.transport import speaks_tls

from .archives import sha256, simple_image, write_legacy
from .auth_servers import CertificateAuthority, TokenServer, htpasswd_file
from .servers import RegistryServer, skopeo, skopeo_pull_dir
from .terminal import Terminal

pytestmark = pytest.mark.integration

USERS = {"alice": "wonder land:42"}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory, ca: CertificateAuthority
) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("tls-registry")
    users = htpasswd_file(root / "htpasswd", USERS)
    server = RegistryServer(
        root, {"auth": {"htpasswd": {"realm": "test", "path": str(users)}}}, tls=(ca.cert, ca.key)
    )
    yield server
    server.stop()


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


def docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, user: str, password: str
) -> Path:
    directory = tmp_path / "docker-config"
    directory.mkdir()
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


def test_push_and_list_with_credentials_from_docker_config(
    tls_registry: RegistryServer,
    ca: CertificateAuthority,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docker_config(tmp_path, monkeypatch, tls_registry.host, "alice", USERS["alice"])
    image = simple_image()
    tar = write_legacy(tmp_path / "a.tar", [image])
    with RegistryClient(tls_registry.host, ca_bundle=str(ca.ca_pem)) as client:
        result = client.push(tar, "secure/app", "v1")
        assert client.list_tags("secure/app") == ["v1"]
        assert "secure/app" in client.list_repositories()
    assert client.transport.base_url.startswith("https://")
    # skopeo, trusting the same CA, pulls what we pushed.
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(ca.ca_pem.read_bytes())
    out = skopeo(
        "inspect",
        f"--cert-dir={certs}",
        f"--creds=alice:{USERS['alice']}",
        f"docker://{tls_registry.host}/secure/app:v1",
    )
    assert json.loads(out)["Digest"] == result.digest


def test_wrong_password_is_a_clear_authentication_error(
    tls_registry: RegistryServer,
    ca: CertificateAuthority,
    tmp_path: Path,
) -> None:
    tar = write_legacy(tmp_path / "a.tar", [simple_image()])
    with (
        RegistryClient(
            tls_registry.host, ca_bundle=str(ca.ca_pem), username="alice", password="not-it"
        ) as client,
        pytest.raises(AuthenticationError) as err,
    ):
        client.push(tar, "secure/app", "bad")
    assert "refused the credentials of 'alice'" in str(err.value)
    assert "not-it" not in str(err.value)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "registryv2",
            "push",
            str(tar),
            f"{tls_registry.host}/x:y",
            "--ca-cert",
            str(ca.ca_pem),
            "--username",
            "alice",
            "--password-stdin",
        ],
        input="not-it\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "refused the credentials of 'alice'" in done.stderr
    assert "not-it" not in done.stderr + done.stdout


def test_no_credentials_says_what_to_do(
    tls_registry: RegistryServer,
    ca: CertificateAuthority,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # an empty docker config directory
    with (
        RegistryClient(tls_registry.host, ca_bundle=str(ca.ca_pem)) as client,
        pytest.raises(AuthenticationError, match="needs credentials"),
    ):
        client.list_repositories()


def test_untrusted_certificate_is_refused_unless_told_otherwise(
    tls_registry: RegistryServer,
    ca: CertificateAuthority,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creds: dict[str, Any] = {"username": "alice", "password": USERS["alice"]}
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    with (
        RegistryClient(tls_registry.host, **creds) as client,
        pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.list_repositories()
    with RegistryClient(tls_registry.host, insecure=True, **creds) as client:
        assert isinstance(client.list_repositories(), list)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.ca_pem))
    with RegistryClient(tls_registry.host, **creds) as client:
        assert isinstance(client.list_repositories(), list)


@pytest.mark.parametrize("trust", ["REQUESTS_CA_BUNDLE", "ca_bundle"])
def test_trusted_certificates_are_loaded_once_for_all_connections(
    tls_registry: RegistryServer,
    ca: CertificateAuthority,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trust: str,
) -> None:
    # A bundle as large as a system's: loading it takes tens of ms, which every worker's
    # connection used to pay again.
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + ca.ca_pem.read_bytes())
    options: dict[str, Any] = {"username": "alice", "password": USERS["alice"], "workers": 4}
    if trust == "ca_bundle":
        options["ca_bundle"] = str(bundle)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    else:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    loads = count_calls(monkeypatch, ssl.SSLContext, "load_verify_locations")
    connections = count_calls(monkeypatch, urllib3.connection.HTTPSConnection, "connect")
    tar = write_legacy(tmp_path / "a.tar", [simple_image(n_layers=8)])
    with RegistryClient(tls_registry.host, **options) as client:
        digest = client.push(tar, "once/app", trust).digest
        assert client.get_manifest("once/app", trust).digest == digest
    assert len(connections) > 2
    assert loads == [str(bundle)]


def test_the_scheme_of_a_loopback_host_is_told_by_a_handshake_alone(
    tls_registry: RegistryServer,
    registry: RegistryServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert speaks_tls(tls_registry.host, (5, 5)) is True
    assert speaks_tls(registry.host, (5, 5)) is False
    # A plain http registry never needs the trusted certificates: none are loaded.
    loads = count_calls(monkeypatch, ssl.SSLContext, "load_verify_locations")
    defaults = count_calls(monkeypatch, ssl.SSLContext, "load_default_certs")
    tar = write_legacy(tmp_path / "a.tar", [simple_image()])
    with RegistryClient(registry.host) as client:
        digest = client.push(tar, "probe/app", "v1").digest
        assert client.transport.base_url == f"http://{registry.host}"
    assert (loads, defaults) == ([], [])
    assert skopeo_pull_dir(f"{registry.host}/probe/app:v1", tmp_path / "dir")["digest"] == digest


def count_calls(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[Any]:
    """Record the first argument (or the instance) of every call of ``cls.name``."""
    seen: list[Any] = []
    original = getattr(cls, name)

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(args[0] if args else kwargs.get("cafile", self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, recording)
    return seen


def test_token_mode_anonymous_pulls_authenticated_pushes(
    token_registry: RegistryServer,
    token_server: TokenServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no stored credentials
    image = simple_image()
    tar = write_legacy(tmp_path / "a.tar", [image])
    with RegistryClient(token_registry.url, username="alice", password=USERS["alice"]) as client:
        digest = client.push(tar, "tok/app", "v1").digest
    with RegistryClient(token_registry.url) as anonymous:
        manifest = anonymous.get_manifest("tok/app", "v1")
        assert manifest.digest == digest
        assert anonymous.get_image_info("tok/app", "v1").id == sha256(image.config())
        with pytest.raises(AuthenticationError):
            anonymous.push(tar, "tok/app", "anon")
    scopes = [q.get("scope") for q in token_server.requests]
    assert ["repository:tok/app:pull"] in scopes
    assert ["repository:tok/app:pull,push"] in scopes


def test_a_netrc_file_is_never_read(
    token_registry: RegistryServer,
    token_server: TokenServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests would send these with every request (and after every redirect) and put them in
    # place of the registry's token: the token server refuses them, so any use fails the test.
    netrc = tmp_path / "netrc"
    netrc.write_text("default login mallory password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no stored credentials
    tar = write_legacy(tmp_path / "a.tar", [simple_image()])
    with RegistryClient(token_registry.url, username="alice", password=USERS["alice"]) as client:
        digest = client.push(tar, "tok/netrc", "v1").digest
    with RegistryClient(token_registry.url) as anonymous:
        assert anonymous.get_manifest("tok/netrc", "v1").digest == digest
    assert "mallory" not in token_server.users  # the test's premise: those credentials fail


def test_expired_token_is_refreshed(
    token_registry: RegistryServer, token_server: TokenServer, tmp_path: Path
) -> None:
    tar = write_legacy(tmp_path / "a.tar", [simple_image()])
    # The registry allows 60 s of clock skew past "exp": this JWT is accepted for about 5 s...
    token_server.lifetime = -55
    token_server.advertised = 300  # ...though the token server says it lasts 5 minutes
    try:
        with RegistryClient(
            token_registry.url, username="alice", password=USERS["alice"]
        ) as client:
            client.push(tar, "tok/refresh", "v1")
            before = len(token_server.requests)
            assert client.list_tags("tok/refresh") == ["v1"]
            assert len(token_server.requests) == before  # cached
            time.sleep(6)
            assert client.list_tags("tok/refresh") == ["v1"]
            assert len(token_server.requests) == before + 1  # rejected, fetched anew
    finally:
        token_server.lifetime = token_server.advertised = 300


def test_login_saves_what_docker_and_skopeo_read_and_logout_removes_it(
    tls_registry: RegistryServer,
    ca: CertificateAuthority,
    tmp_path: Path,
) -> None:
    config_dir = tmp_path / "docker"
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}

    def cli(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "registryv2", *args],
            input=password,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    host, ca_cert = tls_registry.host, str(ca.ca_pem)
    login = ("login", host, "-u", "alice", "--password-stdin", "--ca-cert", ca_cert)
    bad = cli(*login, password="wrong\n")
    assert bad.returncode == 1 and "refused the credentials of 'alice'" in bad.stderr
    assert not (config_dir / "config.json").exists()

    good = cli(*login, password=USERS["alice"] + "\n")
    assert good.returncode == 0, good.stderr
    config = config_dir / "config.json"
    entry = json.loads(config.read_text())["auths"][host]
    assert base64.b64decode(entry["auth"]).decode() == f"alice:{USERS['alice']}"
    assert config.stat().st_mode & 0o777 == 0o600
    assert USERS["alice"] not in good.stdout + good.stderr

    tar = write_legacy(tmp_path / "a.tar", [simple_image()])
    pushed = cli("push", "-q", str(tar), f"{host}/login/app:v1", "--ca-cert", ca_cert)
    assert pushed.returncode == 0, pushed.stderr
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(ca.ca_pem.read_bytes())
    out = skopeo(
        "inspect", f"--cert-dir={certs}", f"--authfile={config}", f"docker://{host}/login/app:v1"
    )
    assert json.loads(out)["Digest"] == pushed.stdout.strip()

    done = cli("logout", host)
    assert done.returncode == 0 and f"Removed credentials for {host}" in done.stdout
    assert json.loads(config.read_text())["auths"] == {}
    done = cli("logout", host, "--json")
    assert json.loads(done.stdout) == {"registry": host, "removed": False}
    done = cli(*login, "--json", password=USERS["alice"] + "\n")
    assert json.loads(done.stdout) == {
        "registry": host,
        "username": "alice",
        "stored_in": str(config),
    }
    assert USERS["alice"] not in done.stdout
    cli("logout", host)
    again = cli("push", str(tar), f"{host}/login/app:v2", "--ca-cert", ca_cert)
    assert again.returncode == 1 and "needs credentials" in again.stderr


def test_login_asks_for_the_password_on_a_terminal(
    tls_registry: RegistryServer,
    ca: CertificateAuthority,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    host = tls_registry.host
    with Terminal("login", host, "-u", "alice", "--ca-cert", str(ca.ca_pem)) as terminal:
        terminal.wait_for("Password for alice:")
        terminal.press(USERS["alice"], "Enter")
        screen = terminal.wait_for("EXIT=")
    assert "EXIT=0" in screen and f"Login succeeded; credentials for {host}" in screen
    assert USERS["alice"] not in screen  # not echoed
    entry = json.loads((tmp_path / "docker" / "config.json").read_text())["auths"][host]
    assert base64.b64decode(entry["auth"]).decode() == f"alice:{USERS['alice']}"


def test_a_copy_within_a_token_registry_mounts_every_blob(
    token_registry: RegistryServer, tmp_path: Path
) -> None:
    """A mount's ``from`` goes as a query parameter: the token must cover pull on it too."""
    image = simple_image(seed="token-copy")
    tar = write_legacy(tmp_path / "a.tar", [image])
    with RegistryClient(token_registry.url, username="alice", password=USERS["alice"]) as client:
        client.push(tar, "team/origin", "v1")
        result = client.copy("team/origin", "v1", "team/copy", "v1")
    assert {b.action for b in result.blobs} == {"mounted"}
