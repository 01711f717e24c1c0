"""What an image archive says without a registry: its manifest, tags, images, soundness."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ..exceptions import (
    BAD_CONFIG,
    BLOB_MISMATCH,
    INVALID_TAR,
    ArchiveNotFoundError,
    DigestMismatchError,
    RegistryError,
    TarReadError,
    ValidationError,
    begin_with,
)
from ..image import Image
from ..manifest import load_json, parse_platform, select_platform, sniff_compression
from ..models import ImageInspect, Platform
from ..places import Entry
from ..reference import parse_repository_tag
from .reader import METADATA_LIMIT, ImageArchive
from .tarfile_index import TarIndex

_BUFFER = 1024 * 1024


def verify_image(image: Image, label: str) -> None:
    """Read every blob of ``image`` and check it against its digest and size.

    An uncompressed layer is also checked against its diff_id in the config, when the config
    lists diff_ids (one without is pushed as it is, so it is valid here too).
    Raises ``TarReadError`` or ``DigestMismatchError`` naming the archive and the blob, and
    ``ValidationError`` for a config that is not an image config.
    """
    diff_ids = image.inspect().rootfs_layers
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
                f"{BLOB_MISMATCH}: {label}: blob {blob.digest} holds {size} bytes with digest "
                f"{digest}"
            )
        is_layer = n < len(image.layers)
        if is_layer and diff_ids and sniff_compression(head) == "none" and digest != diff_ids[n]:
            raise DigestMismatchError(
                f"{BLOB_MISMATCH}: {label}: layer {n} has digest {digest}, but the config says "
                f"{diff_ids[n]}"
            )


def validate_docker_tar(tar_path: str | os.PathLike[str]) -> bool:
    """True when the archive is readable, every image in it is one we would push, and every
    blob matches its digest.

    Raises ``ValidationError`` (an ``ArchiveNotFoundError``) only for a path that does not
    exist, as ``registry-api-v2-client`` does; any other problem gives False.

    Example:
        >>> validate_docker_tar("app.tar")  # doctest: +SKIP
        True
    """
    try:
        verify_docker_tar(tar_path)
    except ArchiveNotFoundError:
        raise
    except (RegistryError, OSError):
        return False
    return True


def verify_docker_tar(tar_path: str | os.PathLike[str], name: str | None = None) -> None:
    """Check an archive or a layout as :func:`validate_docker_tar` does, raising what is wrong
    with it (``TarReadError``, ``DigestMismatchError``) instead of returning False. With
    ``name``, only the image (or every image of the index) that name chooses.

    Example:
        >>> verify_docker_tar("app.tar")  # doctest: +SKIP
    """
    with ImageArchive.open(tar_path) as archive:
        if name is None:
            images = archive.images
        else:
            entry = archive.select_entry(name)
            images = [
                archive.image_of(m, entry.names)
                for m in archive.walk(entry.manifest)
                if not m.is_index
            ]
        for image in images:
            try:
                verify_image(image, archive.path)
            except ValidationError as e:
                if isinstance(e, TarReadError):
                    raise
                raise TarReadError(f"{BAD_CONFIG}: {archive.path}: {e}") from None


def inspect_docker_tar(
    tar_path: str | os.PathLike[str], *, image: str | None = None
) -> ImageInspect:
    """Describe an archive's image: tags, config (architecture, os, env...) and layers.

    With several images in the archive, the first is described unless ``image`` chooses.
    A file that is not an image archive is a ``ValidationError`` (a ``TarReadError``).

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
            raise TarReadError(f"{BAD_CONFIG}: {archive.path}: {e}") from None


def inspect_entry(
    path: str | os.PathLike[str],
    name: str | None = None,
    platform: str | Platform | None = None,
) -> tuple[Entry, ImageInspect | None]:
    """An image or index of an archive or a layout (the one ``name`` chooses, else the first),
    and the image it describes: itself, or the image of ``platform`` of an index (None for an
    index without one).

    Example:
        >>> entry, info = inspect_entry("build/out", "v1")  # doctest: +SKIP
        >>> entry.names, info.architecture  # doctest: +SKIP
        (('v1',), 'amd64')
    """
    with ImageArchive.open(path) as archive:
        entry = archive.select_entry(name) if name else archive.entries()[0]
        chosen = entry.manifest
        if chosen.is_index and platform is not None:
            wanted = parse_platform(platform) if isinstance(platform, str) else platform
            where = f"{archive.path}: {', '.join(entry.names) or chosen.digest}"
            chosen = archive.manifest(select_platform(chosen, wanted, where).digest)
        if chosen.is_index:
            return entry, None
        tags = entry.names if chosen is entry.manifest else ()
        try:
            return entry, archive.image_of(chosen, tags).inspect()
        except ValidationError as e:
            if isinstance(e, TarReadError):
                raise
            raise TarReadError(f"{BAD_CONFIG}: {archive.path}: {e}") from None


def get_tar_manifest(tar_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The archive's ``manifest.json`` entries (``Config``, ``RepoTags``, ``Layers``), as written.

    Each entry's config and layers must be in the archive; nothing else is read (a config that
    is not JSON does not matter here). A bare OCI archive has no ``manifest.json``: its
    entries are made from ``index.json``.

    Example:
        >>> get_tar_manifest("app.tar")[0]["RepoTags"]  # doctest: +SKIP
        ['app:v1']
    """
    with TarIndex.open(tar_path) as tar:
        if "manifest.json" in tar:
            try:
                return _manifest_json_entries(tar)
            except TarReadError as e:
                raise e.retitled(begin_with(INVALID_TAR, str(e))) from None
    with ImageArchive.open(tar_path) as archive:
        return archive.manifest_entries


def _manifest_json_entries(tar: TarIndex) -> list[dict[str, Any]]:
    entries = _metadata(tar, "manifest.json")
    if not isinstance(entries, list) or not entries:
        raise TarReadError(f"{tar.label}: manifest.json lists no images")
    for n, entry in enumerate(entries):
        names = entry.get("Layers") if isinstance(entry, dict) else None
        config = entry.get("Config") if isinstance(entry, dict) else None
        if not isinstance(config, str) or not isinstance(names, list):
            raise TarReadError(f"{tar.label}: manifest.json entry {n} is malformed")
        for name in [config, *names]:
            tar.member(str(name))  # raises, naming what is missing
    return entries


def extract_original_tags(tar_path: str | os.PathLike[str]) -> list[str]:
    """The tags ``docker save`` wrote for the archive's first image, as written there.

    Read from ``manifest.json`` (its first entry's ``RepoTags``), else from the legacy
    ``repositories`` file; ``[]`` for an archive with neither, or without tags. Only the
    archive's metadata is read: a broken config or layer does not matter here. A path that does
    not exist raises ``ArchiveNotFoundError`` (a ``FileNotFoundError``).

    Example:
        >>> extract_original_tags("nginx.tar")  # doctest: +SKIP
        ['nginx:alpine', 'nginx:1.25-alpine']
    """
    try:
        with TarIndex.open(tar_path) as tar:
            for read in (_tags_from_manifest_json, _tags_from_repositories):
                tags = read(tar)
                if tags:
                    return tags
    except ArchiveNotFoundError:
        raise
    except TarReadError:
        pass
    return []


def _tags_from_manifest_json(tar: TarIndex) -> list[str]:
    if "manifest.json" not in tar:
        return []
    entries = _metadata(tar, "manifest.json")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return []
    tags = entries[0].get("RepoTags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def _tags_from_repositories(tar: TarIndex) -> list[str]:
    if "repositories" not in tar:
        return []
    repositories = _metadata(tar, "repositories")
    if not isinstance(repositories, dict):
        return []
    return [
        f"{name}:{tag}"
        for name, tags in repositories.items()
        if isinstance(tags, dict)
        for tag in tags
    ]


def _metadata(tar: TarIndex, name: str) -> Any:
    try:
        return load_json(tar.read(name, METADATA_LIMIT), f"{tar.label}: {name}", METADATA_LIMIT)
    except ValidationError:
        return None


def get_primary_tag(tar_path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """The archive's first tag split by :func:`parse_repository_tag`, or None if it has none.

    As in ``registry-api-v2-client``, the registry host stays in the repository
    (``localhost:5000/app:v1`` gives ``("localhost:5000/app", "v1")``); a push normalizes it.

    Example:
        >>> get_primary_tag("nginx.tar")  # doctest: +SKIP
        ('nginx', 'alpine')
    """
    tags = extract_original_tags(tar_path)
    return parse_repository_tag(tags[0]) if tags else None
