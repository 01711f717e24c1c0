"""docker's and skopeo's certs.d: a registry's own CA and client certificate found without
options; an untrusted certificate says how to trust it; --insecure says so once, in one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registryv2 import RegistryClient, RegistryError, ValidationError
from registryv2.credentials import certs_d_roots, host_certificates

from .archives import sha256, simple_image, write_legacy
from .auth_servers import CertificateAuthority, client_certificate
from .servers import RegistryServer, run_cli, skopeo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory, ca: CertificateAuthority
) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path_factory.mktemp("tls-registry"), tls=(ca.cert, ca.key))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_registry(
    tmp_path_factory: pytest.TempPathFactory, ca: CertificateAuthority
) -> Iterator[RegistryServer]:
    """A registry that serves only clients showing a certificate its CA signed."""
    server = RegistryServer(
        tmp_path_factory.mktemp("mtls-registry"), tls=(ca.cert, ca.key), client_cas=ca.ca_pem
    )
    yield server
    server.stop()


def trust(certs_d: Path, host: str, ca: CertificateAuthority) -> Path:
    directory = certs_d / host
    directory.mkdir()
    (directory / "ca.crt").write_bytes(ca.ca_pem.read_bytes())
    return directory


def test_the_ca_in_certs_d_is_trusted_without_options(
    tls_registry: RegistryServer, ca: CertificateAuthority, certs_d: Path, tmp_path: Path
) -> None:
    trust(certs_d, tls_registry.host, ca)
    image = simple_image(seed="certs-d")
    tar = write_legacy(tmp_path / "a.tar", [image])
    with RegistryClient(tls_registry.host) as client:  # a loopback host, no scheme: as docker
        digest = client.push(tar, "certs/app", "v1").digest
        assert client.transport.base_url == f"https://{tls_registry.host}"
    done = run_cli("tags", f"{tls_registry.host}/certs/app")
    assert (done.returncode, done.stdout, done.stderr) == (0, "v1\n", "")
    # skopeo, reading the same directory, pulls what went up.
    inspected = skopeo(
        "inspect",
        f"--cert-dir={certs_d / tls_registry.host}",
        f"docker://{tls_registry.host}/certs/app:v1",
    )
    assert digest in inspected and sha256(image.stored_layers()[0]) in inspected


def test_a_client_certificate_in_certs_d_opens_a_mutual_tls_registry(
    mtls_registry: RegistryServer, ca: CertificateAuthority, certs_d: Path, tmp_path: Path
) -> None:
    tar = write_legacy(tmp_path / "a.tar", [simple_image(seed="mtls")])
    directory = trust(certs_d, mtls_registry.host, ca)
    # The CA alone is not enough: the registry wants to see who we are.
    with RegistryClient(mtls_registry.host) as client, pytest.raises(RegistryError) as err:
        client.list_tags("mtls/app")
    assert mtls_registry.host in str(err.value) and "TLS failed" in str(err.value)
    assert f"wants a client certificate it trusts: put it and its key in {directory}" in str(
        err.value
    )
    cert, key = client_certificate(ca, "registryv2 client")
    (directory / "client.cert").write_bytes(cert)
    (directory / "client.key").write_bytes(key)
    with RegistryClient(mtls_registry.host) as client:
        digest = client.push(tar, "mtls/app", "v1").digest
        assert client.get_manifest("mtls/app", "v1").digest == digest
    done = run_cli("digest", f"{mtls_registry.host}/mtls/app:v1")
    assert (done.returncode, done.stdout.strip()) == (0, digest), done.stderr


def test_an_untrusted_certificate_names_the_host_and_how_to_trust_it(
    tls_registry: RegistryServer, certs_d: Path
) -> None:
    with RegistryClient(tls_registry.host) as client, pytest.raises(RegistryError) as err:
        client.list_tags("certs/app")
    message = str(err.value)
    assert "\n" not in message and tls_registry.host in message
    for remedy in ["--ca-cert", str(certs_d / tls_registry.host / "ca.crt"), "--insecure"]:
        assert remedy in message, message
    done = run_cli("tags", f"{tls_registry.host}/certs/app")
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr.count("\n") == 1 and "--ca-cert" in done.stderr and "--insecure" in done.stderr
    )


def test_insecure_says_so_once_in_one_line_of_ours(
    tls_registry: RegistryServer, tmp_path: Path
) -> None:
    tar = write_legacy(tmp_path / "a.tar", [simple_image(n_layers=4, seed="insecure")])
    done = run_cli("--insecure", "push", str(tar), f"{tls_registry.host}/insecure/app:v1")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("registryv2: warning: --insecure: certificates are not checked")
    assert "InsecureRequestWarning" not in done.stderr and "urllib3" not in done.stderr
    copied = run_cli(
        "--insecure",
        "copy",
        f"{tls_registry.host}/insecure/app:v1",
        f"{tls_registry.host}/insecure/copy:v1",
    )
    assert copied.returncode == 0 and copied.stderr.count("\n") == 1, copied.stderr


def test_certs_d_is_where_docker_and_skopeo_look(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRYV2_CERTS_D")
    roots = [str(p) for p in certs_d_roots()]
    assert roots[-2:] == ["/etc/containers/certs.d", "/etc/docker/certs.d"]
    assert roots[0].endswith("/.config/containers/certs.d")


def test_the_first_directory_naming_the_registry_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for root in (first, second):
        (root / "r:5000").mkdir(parents=True)
        (root / "r:5000" / f"{root.name}.crt").write_text("x")
    found = host_certificates("r:5000", [tmp_path / "none", first, second])
    assert found is not None and found.authorities == (first / "r:5000" / "a.crt",)
    assert host_certificates("other:5000", [first, second]) is None


@pytest.mark.parametrize(
    ("files", "complaint"),
    [
        (["client.cert"], "client.cert: a client certificate without its key client.key"),
        (["client.key"], "client.key: a key without its client certificate client.cert"),
    ],
)
def test_a_half_client_certificate_is_one_clear_error(
    certs_d: Path, files: list[str], complaint: str
) -> None:
    (certs_d / "127.0.0.1:1").mkdir()
    for name in files:
        (certs_d / "127.0.0.1:1" / name).write_text("x")
    with pytest.raises(ValidationError, match=complaint):
        RegistryClient("127.0.0.1:1")
    done = run_cli("tags", "127.0.0.1:1/x")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and complaint in done.stderr
