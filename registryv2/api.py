"""Blocking counterparts of ``registry-api-v2-client``'s functions, same names and arguments.

Each builds a :class:`~registryv2.client.RegistryClient`, makes one call and closes it. Hold a
client yourself for many calls, credentials or tuning.
"""

from __future__ import annotations

import os

from .client import RegistryClient
from .models import DEFAULT_TIMEOUT, ImageInspect, ManifestInfo


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


def list_repositories(registry_url: str, timeout: float = 10) -> list[str]:
    """Every repository of the registry, across all catalog pages, in the registry's order.

    Example:
        >>> list_repositories("localhost:15000")  # doctest: +SKIP
        ['nginx', 'team/app']
    """
    with RegistryClient(registry_url, timeout=timeout) as client:
        return client.list_repositories()


def list_tags(registry_url: str, repository: str, timeout: float = 10) -> list[str]:
    """Every tag of ``repository``, across all pages; ``NotFoundError`` if it does not exist.

    Example:
        >>> list_tags("localhost:15000", "team/app")  # doctest: +SKIP
        ['latest', 'v1']
    """
    with RegistryClient(registry_url, timeout=timeout) as client:
        return client.list_tags(repository)


def get_manifest(
    registry_url: str, repository: str, reference: str, timeout: float = 10
) -> ManifestInfo:
    """The manifest or index at ``reference`` (a tag or digest).

    Example:
        >>> get_manifest("localhost:15000", "team/app", "v1").layers[0].size  # doctest: +SKIP
        3145728
    """
    with RegistryClient(registry_url, timeout=timeout) as client:
        return client.get_manifest(repository, reference)


def get_image_info(
    registry_url: str,
    repository: str,
    reference: str,
    timeout: float = 10,
    *,
    platform: str | None = None,
) -> ImageInspect:
    """Manifest and config of an image: architecture, os, created, size, layers, labels, env.

    Example:
        >>> get_image_info("localhost:15000", "team/app", "v1").architecture  # doctest: +SKIP
        'amd64'
    """
    with RegistryClient(registry_url, timeout=timeout) as client:
        return client.get_image_info(repository, reference, platform)


def delete_image(registry_url: str, repository: str, tag: str, timeout: float = 10) -> bool:
    """Delete the manifest ``tag`` points at: every tag pointing at it goes too.

    Needs a registry with deletes enabled (``UnsupportedError`` otherwise).

    Example:
        >>> delete_image("localhost:15000", "team/app", "v1")  # doctest: +SKIP
        True
    """
    with RegistryClient(registry_url, timeout=timeout) as client:
        return client.delete_image(repository, tag)


def delete_image_by_digest(
    registry_url: str, repository: str, digest: str, timeout: float = 10
) -> bool:
    """Delete a manifest by its digest, and every tag pointing at it.

    Example:
        >>> delete_image_by_digest("localhost:15000", "team/app", "sha256:...")  # doctest: +SKIP
        True
    """
    with RegistryClient(registry_url, timeout=timeout) as client:
        return client.delete_image_by_digest(repository, digest)
