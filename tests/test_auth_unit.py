"""Challenge parsing, docker config lookups and the redirect rule, without a registry."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import responses

from registryv2 import AuthenticationError, BlobInfo, RegistryClient
from registryv2.auth import parse_challenges, scopes_for
from registryv2.credentials import Credentials, config_host, load_docker_credentials
from registryv2.manifest import sha256_digest


def test_challenge_with_quoted_commas() -> None:
    [c] = parse_challenges(
        'Bearer realm="https://auth.io/token",service="reg.io",'
        'scope="repository:a/b:pull,push repository:c:pull"'
    )
    assert c.scheme == "bearer"
    assert c.params == {
        "realm": "https://auth.io/token",
        "service": "reg.io",
        "scope": "repository:a/b:pull,push repository:c:pull",
    }


def test_several_challenges_and_odd_spacing() -> None:
    found = parse_challenges(
        'Basic realm="Registry Realm" , Bearer realm="https://a,b/t", '
        'service=svc ,error="invalid_token"'
    )
    assert [c.scheme for c in found] == ["basic", "bearer"]
    assert found[0].params == {"realm": "Registry Realm"}
    assert found[1].params == {"realm": "https://a,b/t", "service": "svc", "error": "invalid_token"}


def test_escaped_quotes_and_empty_header() -> None:
    assert parse_challenges(r'Bearer realm="a\"b"')[0].params["realm"] == 'a"b'
    assert parse_challenges("") == []


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("localhost:5000", "localhost:5000"),
        ("https://reg.example.com", "reg.example.com"),
        ("http://reg.example.com:8080/v2/", "reg.example.com:8080"),
        ("reg.example.com/some/path", "reg.example.com"),
    ],
)
def test_config_keys_match_hosts_as_docker_does(key: str, host: str) -> None:
    assert config_host(key) == host


def write_config(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


def test_auths_basic_and_identity_token(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {
                    "auth": base64.b64encode(b"hub:pw:with:colons").decode()
                },
                "localhost:5000": {"identitytoken": "refresh-me"},
            }
        },
    )
    assert load_docker_credentials("docker.io", path) == Credentials("hub", "pw:with:colons")
    assert load_docker_credentials("localhost:5000", path) == Credentials(
        identity_token="refresh-me"
    )
    assert load_docker_credentials("other.io", path) is None
    assert load_docker_credentials("x", tmp_path / "missing.json") is None


def test_a_broken_config_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(AuthenticationError, match=str(path)):
        load_docker_credentials("x", path)


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A docker-credential-fake on PATH that knows one host, and logs what it was asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-fake"
    script.write_text(
        '#!/bin/sh\nread host\necho "$1 $host" >> "$(dirname "$0")/asked"\n'
        'case "$host" in\n'
        '  helped.io) echo \'{"Username": "bob", "Secret": "from-helper"}\' ;;\n'
        '  token.io) echo \'{"Username": "<token>", "Secret": "idtok"}\' ;;\n'
        "  *) echo 'credentials not found in native keychain'; exit 1 ;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_cred_helpers_then_auths_then_creds_store(tmp_path: Path, helper: Path) -> None:
    path = write_config(
        tmp_path,
        {
            "credHelpers": {"helped.io": "fake"},
            "auths": {"plain.io": {"auth": base64.b64encode(b"al:pw").decode()}},
            "credsStore": "fake",
        },
    )
    assert load_docker_credentials("helped.io", path) == Credentials("bob", "from-helper")
    assert load_docker_credentials("plain.io", path) == Credentials("al", "pw")
    assert load_docker_credentials("token.io", path) == Credentials(identity_token="idtok")
    assert load_docker_credentials("unknown.io", path) is None
    assert (helper / "asked").read_text().split("\n")[:3] == [
        "get helped.io",
        "get token.io",
        "get unknown.io",
    ]


def test_scopes_follow_the_request() -> None:
    assert scopes_for("GET", "https://r/v2/_catalog?n=5") == {"registry:catalog:*"}
    assert scopes_for("HEAD", "https://r/v2/a/b/blobs/sha256:x") == {"repository:a/b:pull"}
    assert scopes_for("PUT", "https://r/v2/a/manifests/v1") == {"repository:a:pull,push"}
    assert scopes_for("DELETE", "https://r/v2/a/manifests/sha256:x") == {"repository:a:delete"}
    assert scopes_for("GET", "https://r/v2/") == frozenset()


def test_repr_and_errors_never_show_secrets() -> None:
    creds = Credentials("alice", "hunter2", "idtok-secret")
    assert "hunter2" not in repr(creds) and "idtok-secret" not in repr(creds)
    with RegistryClient("localhost:1", username="alice", password="hunter2") as client:
        assert "hunter2" not in repr(client) + repr(client.config) + repr(client.transport.auth)


@responses.activate
def test_authorization_is_not_sent_to_another_host_on_redirect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests itself would add a netrc's credentials to any request, and again after a redirect.
    (tmp_path / "netrc").write_text("default login mallory password netrc-secret\n")
    (tmp_path / "netrc").chmod(0o600)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    config = b'{"architecture": "amd64"}'
    digest = sha256_digest(config)
    blob = f"https://registry.test/v2/app/blobs/{digest}"
    responses.get(blob, status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    responses.get(blob, status=307, headers={"Location": "https://storage.test/obj?sig=1"})
    storage = responses.get(re.compile(r"https://storage\.test/obj.*"), body=config)
    with RegistryClient("https://registry.test", username="u", password="p") as client:
        info = BlobInfo(digest, len(config), "application/vnd.oci.image.config.v1+json")
        assert client.get_blob_bytes("app", info) == config
    registry_calls = [c for c in responses.calls if "registry.test" in str(c.request.url)]
    basic = "Basic " + base64.b64encode(b"u:p").decode()
    assert registry_calls[-1].request.headers["Authorization"] == basic
    assert storage.call_count == 1
    assert "Authorization" not in storage.calls[0].request.headers


@responses.activate
def test_identity_token_uses_the_refresh_token_grant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, {"auths": {"registry.test": {"identitytoken": "refresh-123"}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    tags = "https://registry.test/v2/app/tags/list"
    responses.get(
        tags,
        status=401,
        headers={
            "WWW-Authenticate": 'Bearer realm="https://auth.test/token",service="registry.test"'
        },
    )
    token = responses.post(
        "https://auth.test/token", json={"access_token": "acc-1", "expires_in": 300}
    )
    ok = responses.get(tags, json={"name": "app", "tags": ["v1"]})
    with RegistryClient("https://registry.test") as client:
        assert client.list_tags("app") == ["v1"]
    form = dict(p.split("=", 1) for p in token.calls[0].request.body.split("&"))
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "refresh-123"
    assert form["service"] == "registry.test"
    assert form["scope"] == "repository%3Aapp%3Apull"
    assert ok.calls[-1].request.headers["Authorization"] == "Bearer acc-1"
