"""Credentials, found and kept the way docker finds and keeps them.

Explicit credentials win; otherwise docker's config file (``$DOCKER_CONFIG/config.json`` or
``~/.docker/config.json``): the host's ``credHelpers`` entry, then ``auths`` (``auth`` base64 or
``identitytoken``), then the ``credsStore`` helper. ``login`` stores and ``logout`` erases there.

A registry's certificates are found as docker and skopeo find them, in a ``certs.d`` directory
named after the registry (``/etc/docker/certs.d/registry.internal:5000/``): ``*.crt`` are
authorities to trust, a ``*.cert`` with its ``*.key`` a client certificate (mutual TLS).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .exceptions import AuthenticationError, ValidationError
from .reference import DOCKER_HUB_HOSTS

DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
CERTS_D_VARIABLE = "REGISTRYV2_CERTS_D"


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity (refresh) token. Secrets stay out of ``repr``."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


def config_host(key: str) -> str:
    """The ``host[:port]`` a docker config ``auths`` key names.

    Example:
        >>> config_host("https://index.docker.io/v1/"), config_host("localhost:5000")
        ('docker.io', 'localhost:5000')
    """
    host = urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
    return "docker.io" if host in DOCKER_HUB_HOSTS else host


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _call_helper(helper: str, action: str, payload: str) -> subprocess.CompletedProcess[str]:
    """Run ``docker-credential-<helper> <action>`` with ``payload`` on its standard input."""
    try:
        return subprocess.run(
            [f"docker-credential-{helper}", action],
            input=payload,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AuthenticationError(f"credential helper docker-credential-{helper}: {e}") from None


def _run_helper(helper: str, host: str) -> Credentials | None:
    done = _call_helper(helper, "get", host)
    if done.returncode != 0:
        return None  # "credentials not found" is an exit status, not an error
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        raise AuthenticationError(
            f"credential helper docker-credential-{helper} gave no JSON for {host}"
        ) from None
    user, secret = str(doc.get("Username", "")), str(doc.get("Secret", ""))
    if user == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(user, secret)


def load_docker_credentials(registry: str, path: Path | None = None) -> Credentials | None:
    """Credentials for ``registry`` from docker's config file, as docker finds them.

    ``credHelpers`` for the host first, then ``auths`` (``auth`` base64 and ``identitytoken``),
    then the ``credsStore`` helper.

    Example:
        >>> load_docker_credentials("localhost:5000")  # doctest: +SKIP
        Credentials(username='alice', identity_token=...)
    """
    path = path or docker_config_path()
    doc = _read_config(path)
    host = config_host(registry)
    helper_key = DOCKER_HUB_CONFIG_KEY if host == "docker.io" else host
    for key, helper in (doc.get("credHelpers") or {}).items():
        if config_host(key) == host:
            return _run_helper(str(helper), helper_key)
    for key, entry in (doc.get("auths") or {}).items():
        if config_host(key) != host or not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            return Credentials(identity_token=str(entry["identitytoken"]))
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise AuthenticationError(
                    f"{path}: the auth entry for {key} is not base64"
                ) from None
            return Credentials(user, password)
    if doc.get("credsStore"):
        return _run_helper(str(doc["credsStore"]), helper_key)
    return None


def _config_key(registry: str) -> str:
    host = config_host(registry)
    return DOCKER_HUB_CONFIG_KEY if host == "docker.io" else host


def _read_config(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise AuthenticationError(f"{path}: cannot read docker config ({e})") from None
    if not isinstance(doc, dict):
        raise AuthenticationError(f"{path}: docker config is not a JSON object")
    return doc


def _write_config(path: Path, doc: dict[str, Any]) -> None:
    # Written whole to a private temporary file, then renamed: never half a config.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent="\t")
    os.replace(tmp, path)


def _helper_for(doc: dict[str, Any], host: str) -> str | None:
    for key, helper in (doc.get("credHelpers") or {}).items():
        if config_host(key) == host:
            return str(helper)
    return str(doc["credsStore"]) if doc.get("credsStore") else None


def _change_helper(helper: str, action: str, payload: str) -> None:
    done = _call_helper(helper, action, payload)
    if done.returncode != 0:
        reason = (done.stdout or done.stderr).strip().splitlines()[:1] or ["failed"]
        raise AuthenticationError(
            f"credential helper docker-credential-{helper} {action}: {reason[0]}"
        )


def store_docker_credentials(
    registry: str, credentials: Credentials, path: Path | None = None
) -> Path:
    """Save credentials where docker keeps them: the host's helper, or ``auths`` in the file.

    Example:
        >>> store_docker_credentials("localhost:5000", Credentials("al", "pw"))  # doctest: +SKIP
        PosixPath('/root/.docker/config.json')
    """
    path = path or docker_config_path()
    doc = _read_config(path)
    key = _config_key(registry)
    helper = _helper_for(doc, config_host(registry))
    if helper:
        _change_helper(
            helper,
            "store",
            json.dumps(
                {"ServerURL": key, "Username": credentials.username, "Secret": credentials.password}
            ),
        )
        return path
    auths = doc.setdefault("auths", {})
    for old in [k for k in auths if config_host(k) == config_host(registry)]:
        del auths[old]
    raw = f"{credentials.username}:{credentials.password}".encode()
    auths[key] = {"auth": base64.b64encode(raw).decode()}
    _write_config(path, doc)
    return path


def erase_docker_credentials(registry: str, path: Path | None = None) -> bool:
    """Forget the credentials docker keeps for ``registry``; False if there were none.

    Example:
        >>> erase_docker_credentials("localhost:5000")  # doctest: +SKIP
        True
    """
    path = path or docker_config_path()
    doc = _read_config(path)
    helper = _helper_for(doc, config_host(registry))
    if helper:
        _change_helper(helper, "erase", _config_key(registry))
        return True
    auths = doc.get("auths") or {}
    found = [k for k in auths if config_host(k) == config_host(registry)]
    for key in found:
        del auths[key]
    if found:
        _write_config(path, doc)
    return bool(found)


def certs_d_roots() -> list[Path]:
    """The ``certs.d`` directories, searched in order: ``$REGISTRYV2_CERTS_D`` (several
    separated by ``:``) if set; else containers' (``~/.config/containers/certs.d``,
    ``/etc/containers/certs.d``), then docker's (``/etc/docker/certs.d``), as skopeo searches.

    Example:
        >>> certs_d_roots()[-1]  # doctest: +SKIP
        PosixPath('/etc/docker/certs.d')
    """
    chosen = os.environ.get(CERTS_D_VARIABLE)
    if chosen is not None:
        return [Path(p) for p in chosen.split(os.pathsep) if p]
    return [
        Path.home() / ".config" / "containers" / "certs.d",
        Path("/etc/containers/certs.d"),
        Path("/etc/docker/certs.d"),
    ]


@dataclass(frozen=True)
class HostCertificates:
    """What a registry's ``certs.d`` directory holds: authorities to trust, a client certificate.

    Example:
        >>> host_certificates("registry.internal:5000")  # doctest: +SKIP
        HostCertificates(directory=PosixPath('/etc/docker/certs.d/registry.internal:5000'), ...)
    """

    directory: Path
    authorities: tuple[Path, ...] = ()
    client: tuple[Path, Path] | None = None  # the certificate, and its key


def host_certificates(
    registry: str, roots: Sequence[Path] | None = None
) -> HostCertificates | None:
    """The certificates for ``registry`` (``host[:port]``) in the first of ``roots`` (default
    :func:`certs_d_roots`) that has a directory for it; None when none has.

    ``*.crt`` files are authorities; each ``name.cert`` needs its ``name.key`` and the other
    way round (a ``ValidationError`` otherwise, as docker refuses them); the first pair is the
    client certificate.
    """
    for root in certs_d_roots() if roots is None else roots:
        directory = root / registry
        if directory.is_dir():
            return directory_certificates(directory)
    return None


def directory_certificates(directory: Path) -> HostCertificates:
    """The certificates in one directory (a registry's ``certs.d`` entry, or a
    ``--cert-dir``): ``*.crt`` authorities, ``name.cert`` with ``name.key`` client pairs.

    Example:
        >>> directory_certificates(Path("/etc/docker/certs.d/registry:5000"))  # doctest: +SKIP
    """
    if not directory.is_dir():
        raise ValidationError(f"{directory}: no such certificate directory")
    try:
        files = sorted(p for p in directory.iterdir() if p.is_file())
    except OSError as e:
        raise ValidationError(
            f"{directory}: cannot read the registry's certificates ({e})"
        ) from None
    pairs: list[tuple[Path, Path]] = []
    for cert in (f for f in files if f.suffix == ".cert"):
        key = cert.with_suffix(".key")
        if key not in files:
            raise ValidationError(f"{cert}: a client certificate without its key {key.name}")
        pairs.append((cert, key))
    for key in (f for f in files if f.suffix == ".key"):
        if key.with_suffix(".cert") not in files:
            raise ValidationError(
                f"{key}: a key without its client certificate {key.with_suffix('.cert').name}"
            )
    authorities = tuple(f for f in files if f.suffix == ".crt")
    return HostCertificates(directory, authorities, pairs[0] if pairs else None)
