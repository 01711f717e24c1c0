"""Blocking counterparts of ``registry-api-v2-client``'s functions, same names and arguments.

Each builds a :class:`~registryv2.client.RegistryClient`, makes one call and closes it. Hold a
client yourself for many calls, credentials or tuning.
"""

from __future__ import annotations

import os

from .client import RegistryClient
from .models import DEFAULT_TIMEOUT


def check_registry_connectivity(registry_url: str, timeout: float = 10) -> bool:
    """True when the registry answers ``/v2/`` with 200 or 401; ``RegistryError`` otherwise.

    Example:
        >>> check_registry_connectivity("http://localhost:15000")  # doctest: +SKIP
        True
    """
    with RegistryClient(registry_url, timeout=timeout) as client:
        return client.ping()


def push_docker_tar(
    tar_path: str | os.PathLike[str],
    registry_url: str,
    repository: str | None = None,
    tag: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    image: str | None = None,
) -> str:
    """Push a ``docker save`` archive; return the manifest digest.

    Missing repository and tag come from the archive's first tag, the tag defaulting to
    ``latest``. In an archive of several images, ``image`` chooses one (an archive tag).

    Example:
        >>> push_docker_tar("app.tar", "localhost:15000", "team/app", "v1")  # doctest: +SKIP
        'sha256:...'
    """
    with RegistryClient(registry_url, timeout=timeout) as client:
        return client.push(tar_path, repository, tag, image=image).digest


def push_docker_tar_with_original_tags(
    tar_path: str | os.PathLike[str], registry_url: str, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """Push an archive under its first original tag (``nginx:alpine`` -> ``nginx:alpine``).

    Example:
        >>> push_docker_tar_with_original_tags("nginx.tar", "localhost:15000")  # doctest: +SKIP
        'sha256:...'
    """
    return push_docker_tar(tar_path, registry_url, None, None, timeout)


def push_docker_tar_with_all_original_tags(
    tar_path: str | os.PathLike[str], registry_url: str, timeout: float = DEFAULT_TIMEOUT
) -> list[str]:
    """Push an archive under every one of its original tags; one digest per tag, in order.

    Each blob is uploaded once; other repositories mount it.

    Example:
        >>> push_docker_tar_with_all_original_tags("app.tar", "localhost:15000")  # doctest: +SKIP
        ['sha256:...', 'sha256:...']
    """
    with RegistryClient(registry_url, timeout=timeout) as client:
        return [result.digest for result in client.push_all_tags(tar_path)]
