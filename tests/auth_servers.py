"""Peers for the auth tests: a certificate authority, htpasswd files, and a token server."""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .servers import free_port, require


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey | None,
    ca: bool,
) -> x509.Certificate:
    import ipaddress

    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


class CertificateAuthority:
    """A CA of the test's own, a server certificate for 127.0.0.1 and localhost, and client
    certificates on demand."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._key = ca_key = _key()
        self.ca = _cert("registryv2 test CA", ca_key, None, None, ca=True)
        server_key = _key()
        server = _cert("127.0.0.1", server_key, self.ca, ca_key, ca=False)
        self.ca_pem = root / "ca.pem"
        self.ca_pem.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))
        self.cert = root / "server.pem"
        self.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        self.key = root / "server.key"
        self.key.write_bytes(_pem_key(server_key))


def htpasswd_file(path: Path, users: dict[str, str]) -> Path:
    """An htpasswd file with bcrypt hashes, written by apache2-utils' htpasswd."""
    lines = []
    for user, password in users.items():
        done = subprocess.run(
            [require("htpasswd"), "-Bbn", user, password],
            capture_output=True,
            text=True,
            check=True,
        )
        lines.append(done.stdout.strip())
    path.write_text("\n".join(lines) + "\n")
    return path


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token server for a registry in ``auth: token`` mode.

    Anonymous callers get pull only; known users get what they ask, but nothing on the
    repositories in ``denied``. Tokens are JWTs signed
    with a test key whose certificate the registry trusts (``rootcertbundle``) and carried in
    the ``x5c`` header. ``lifetime`` is the JWT's real life; ``advertised`` what the answer's
    ``expires_in`` claims (to test a token the registry rejects before the client expects).
    """

    service = "registryv2-test"
    issuer = "registryv2-test-issuer"

    def __init__(self, root: Path, users: dict[str, str]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.lifetime = 300
        self.advertised = 300
        self.requests: list[dict[str, list[str]]] = []
        self.denied: set[str] = set()  # repositories no one may touch
        self._key = _key()
        self._cert = _cert("token signer", self._key, None, None, ca=True)
        self.cert_pem = root / "token.pem"
        self.cert_pem.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                server.requests.append(query)
                user = server.authenticate(self.headers.get("Authorization"))
                if user is False:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps(
                    {
                        "token": server.issue(user, query.get("scope", [])),
                        "expires_in": server.advertised,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def registry_config(self) -> dict[str, object]:
        return {
            "auth": {
                "token": {
                    "realm": self.realm,
                    "service": self.service,
                    "issuer": self.issuer,
                    "rootcertbundle": str(self.cert_pem),
                }
            }
        }

    def authenticate(self, header: str | None) -> str | Literal[False] | None:
        """The user name, None for anonymous, False for wrong credentials."""
        if not header:
            return None
        user, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        return user if self.users.get(user) == password else False

    def issue(self, user: str | None, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = (
                scope.split(":")[0],
                ":".join(scope.split(":")[1:-1]),
                scope.split(":")[-1],
            )
            allowed = actions.split(",") if user else [a for a in actions.split(",") if a == "pull"]
            if name in self.denied:
                allowed = []
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "iat": now,
            "nbf": now - 5,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        der = self._cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def stop(self) -> None:
        self.httpd.shutdown()


def client_certificate(ca: CertificateAuthority, name: str) -> tuple[bytes, bytes]:
    """A client certificate signed by ``ca``, and its key, as PEM."""
    key = _key()
    cert = _cert(name, key, ca.ca, ca._key, ca=False)
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)
