"""What can be learnt from an image archive without a registry: its manifest, tags, images,
and whether it is sound.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ..exceptions import DigestMismatchError, RegistryV2Error, TarReadError, ValidationError
from ..image import Image
from ..manifest import sniff_compression
from ..models import ImageInspect
from ..reference import normalize_archive_tag
from .reader import ImageArchive

_BUFFER = 1024 * 1024


def verify_image(image: Image, label: str) -> None:
    """Read every blob of ``image`` and check it against its digest and size.

    An uncompressed layer is also checked against its diff_id in the config.
    Raises ``TarReadError`` or ``DigestMismatchError`` naming the archive and the blob, and
    ``ValidationError`` for a config that is not an image config.
    """
    inspect = image.inspect()
    if len(inspect.config.diff_ids) != len(image.layers):
        raise TarReadError(
            f"{label}: config lists {len(inspect.config.diff_ids)} diff_ids for "
            f"{len(image.layers)} layers"
        )
    for n, blob in enumerate(image.blobs):
        h = hashlib.sha256()
        size = 0
        with blob.open() as f:
            head = b""
            while chunk := f.read(_BUFFER):
                head = head or chunk[:8]
                h.update(chunk)
                size += len(chunk)
        digest = "sha256:" + h.hexdigest()
        if size != blob.size or digest != blob.digest:
            raise DigestMismatchError(
                f"{label}: blob {blob.digest} holds {size} bytes with digest {digest}"
            )
        is_layer = n < len(image.layers)
        if is_layer and sniff_compression(head) == "none" and digest != inspect.config.diff_ids[n]:
            raise DigestMismatchError(
                f"{label}: layer {n} has digest {digest}, "
                f"but the config says {inspect.config.diff_ids[n]}"
            )


def validate_docker_tar(tar_path: str | os.PathLike[str]) -> bool:
    """True when the archive is readable and every blob matches its digest; never raises.

    Example:
        >>> validate_docker_tar("app.tar")  # doctest: +SKIP
        True
    """
    try:
        with ImageArchive.open(tar_path) as archive:
            for image in archive.images:
                verify_image(image, archive.path)
    except (RegistryV2Error, OSError):
        return False
    return True


def inspect_docker_tar(
    tar_path: str | os.PathLike[str], *, image: str | None = None
) -> ImageInspect:
    """Describe an archive's image: tags, config (architecture, os, env...) and layers.

    With several images in the archive, the first is described unless ``image`` chooses.

    Example:
        >>> info = inspect_docker_tar("app.tar")  # doctest: +SKIP
        >>> info.architecture, [layer.size for layer in info.layers]  # doctest: +SKIP
        ('amd64', [3145728, 1024])
    """
    with ImageArchive.open(tar_path) as archive:
        chosen = archive.select(image) if image is not None else archive.images[0]
        try:
            return chosen.inspect()
        except ValidationError as e:
            raise TarReadError(f"{archive.path}: {e}") from None


def get_tar_manifest(tar_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The archive's ``manifest.json`` entries (``Config``, ``RepoTags``, ``Layers``).

    A bare OCI archive has no ``manifest.json``; its entries are made from ``index.json``.

    Example:
        >>> get_tar_manifest("app.tar")[0]["RepoTags"]  # doctest: +SKIP
        ['app:v1']
    """
    with ImageArchive.open(tar_path) as archive:
        return archive.entries


def extract_original_tags(tar_path: str | os.PathLike[str]) -> list[str]:
    """Every tag in the archive, as written there (``docker.io/library/nginx:alpine``).

    Example:
        >>> extract_original_tags("nginx.tar")  # doctest: +SKIP
        ['nginx:alpine', 'nginx:1.25-alpine']
    """
    with ImageArchive.open(tar_path) as archive:
        return archive.tags


def get_primary_tag(tar_path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """The first tag as ``(repository, tag)`` to push under, or None if there is none.

    The registry host and Docker Hub's ``library/`` are dropped. As in ``registry-api-v2-client``,
    an unreadable archive also gives None; use :func:`inspect_docker_tar` to learn why.

    Example:
        >>> get_primary_tag("nginx.tar")  # doctest: +SKIP
        ('nginx', 'alpine')
    """
    try:
        tags = extract_original_tags(tar_path)
        return normalize_archive_tag(tags[0]) if tags else None
    except (TarReadError, ValidationError):
        return None
