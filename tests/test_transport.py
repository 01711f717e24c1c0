from __future__ import annotations

import pytest

from registryv2 import RegistryConfig, ValidationError
from registryv2.transport import Transport, is_loopback, split_registry_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("localhost:15000", (None, "localhost:15000")),
        ("http://localhost:15000", ("http", "localhost:15000")),
        ("https://ghcr.io/", ("https", "ghcr.io")),
        ("https://reg.example.com:8443/v2/", ("https", "reg.example.com:8443")),
        ("[::1]:5000", (None, "[::1]:5000")),
    ],
)
def test_split_registry_url(url: str, expected: tuple[str | None, str]) -> None:
    assert split_registry_url(url) == expected


@pytest.mark.parametrize(
    "url", ["ftp://x", "", "http://", "https://a.io/some/path", "user:pw@host", "a b"]
)
def test_split_registry_url_rejects(url: str) -> None:
    with pytest.raises(ValidationError):
        split_registry_url(url)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1", True),
        ("127.9.9.9:1", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("10.0.0.1:5000", False),
        ("ghcr.io", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plain_http_to_a_remote_host_needs_insecure() -> None:
    with pytest.raises(ValidationError, match="insecure"):
        Transport(RegistryConfig("http://registry.example.com"))
    assert (
        Transport(RegistryConfig("http://registry.example.com", insecure=True)).base_url
        == "http://registry.example.com"
    )


def test_remote_hosts_default_to_https_without_a_probe() -> None:
    assert (
        Transport(RegistryConfig("registry.example.com")).base_url == "https://registry.example.com"
    )


def test_password_is_not_in_repr() -> None:
    config = RegistryConfig("r.io", username="alice", password="s3cret-pw")
    assert "s3cret-pw" not in repr(config)
    assert "alice" in repr(config)
