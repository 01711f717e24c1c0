"""Registry mirrors: a registry's name mapped to another place to reach it.

As docker's ``registry-mirrors`` and containers' ``registries.conf`` do, an air-gapped site can
send every ``docker.io/...`` reference to its own registry: the reference stays as people write
it (``docker.io/library/busybox:1``) and the repository keeps its path (``library/busybox``);
only where the registry is reached changes. Every operation on that registry goes to the
mirror, pushes included.

The map comes from ``REGISTRYV2_MIRRORS`` (``docker.io=http://10.0.0.5:5000,ghcr.io=mirror:5000``)
and from the file ``$XDG_CONFIG_HOME/registryv2/mirrors`` (else ``~/.config/...``), one
``registry = mirror`` per line, ``#`` starting a comment; the variable wins for a registry both
name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .exceptions import ValidationError
from .reference import DOCKER_HUB, DOCKER_HUB_ENDPOINT, DOCKER_HUB_HOSTS, Reference
from .transport import split_registry_url

ENVIRONMENT_VARIABLE = "REGISTRYV2_MIRRORS"


def mirrors_file() -> Path:
    """``$XDG_CONFIG_HOME/registryv2/mirrors``, else ``~/.config/registryv2/mirrors``.

    Example:
        >>> mirrors_file().name
        'mirrors'
    """
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "registryv2" / "mirrors"


def _canonical(registry: str) -> str:
    return DOCKER_HUB if registry in DOCKER_HUB_HOSTS else registry


def _entries(text: str, separator: str, where: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw in text.split(separator):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        name, equals, mirror = (part.strip() for part in entry.partition("="))
        if not equals or not name or not mirror:
            raise ValidationError(f"{where}: {entry!r} is not registry=mirror")
        split_registry_url(mirror)  # a mirror is a registry URL: refuse anything else now
        found[_canonical(name)] = mirror.rstrip("/")
    return found


def load_mirrors(
    environ: Mapping[str, str] | None = None, path: Path | None = None
) -> dict[str, str]:
    """The mirror map: registry name -> where to reach it instead.

    Example:
        >>> load_mirrors({"REGISTRYV2_MIRRORS": "docker.io=http://10.0.0.5:5000"})
        {'docker.io': 'http://10.0.0.5:5000'}
    """
    environ = os.environ if environ is None else environ
    path = path or mirrors_file()
    mirrors: dict[str, str] = {}
    try:
        mirrors.update(_entries(path.read_text(), "\n", str(path)))
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ValidationError(f"{path}: cannot read ({e.strerror})") from None
    mirrors.update(_entries(environ.get(ENVIRONMENT_VARIABLE, ""), ",", ENVIRONMENT_VARIABLE))
    return mirrors


def registry_endpoint(registry: str, mirrors: Mapping[str, str] | None = None) -> str:
    """Where to reach ``registry`` (``[scheme://]host[:port]``): its mirror if it has one,
    ``registry-1.docker.io`` for Docker Hub, else itself.

    Example:
        >>> registry_endpoint("docker.io", {})
        'registry-1.docker.io'
        >>> registry_endpoint("https://127.0.0.1:5000", {})
        'https://127.0.0.1:5000'
    """
    scheme, host = split_registry_url(registry)
    mirrors = load_mirrors() if mirrors is None else mirrors
    mirror = mirrors.get(_canonical(host))
    if mirror:
        return mirror
    if host in DOCKER_HUB_HOSTS:
        host = DOCKER_HUB_ENDPOINT
    return f"{scheme}://{host}" if scheme else host


def endpoint_for(ref: Reference, mirrors: Mapping[str, str] | None = None) -> str:
    """Where to reach the registry of ``ref``: its mirror if it has one, else its endpoint.

    Example:
        >>> from registryv2.reference import registry_reference
        >>> endpoint_for(registry_reference("busybox"), {"docker.io": "http://10.0.0.5:5000"})
        'http://10.0.0.5:5000'
    """
    registry = f"{ref.scheme}://{ref.registry}" if ref.scheme else str(ref.registry)
    return registry_endpoint(registry, mirrors)
