"""The jobs that join archives and registries, and the same jobs on full references.

Two levels, one above the other:

- **One registry** (:class:`~registryv2.registry.Registry`): push an image or an archive,
  compressing layers on the way if asked; pull images into an archive; save images into an
  archive. :class:`~registryv2.client.RegistryClient` offers these as its own methods.
- **Full references** (``host/repository:tag``), which may span several registries: push an
  archive, pull into one archive, copy between registries, tag, list, inspect, resolve, delete.
  The module API and the CLI both call these, each with its own way to connect to a registry:
  ``connect(endpoint)`` returns a new :class:`~registryv2.registry.Registry` for an endpoint
  such as ``localhost:15000``, ``https://ghcr.io`` or ``registry-1.docker.io``; these functions
  close what they open. References are read as docker reads them (:func:`registry_reference`),
  and each registry is reached through its mirror when it has one (:mod:`registryv2.mirrors`).

This module is the only one that imports both :mod:`registryv2.archive` and
:mod:`registryv2.registry`; neither of them imports the other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .archive import ImageArchive
from .archive.targets import target_for, targets_for_all_tags
from .archive.writer import ArchiveWriter
from .compress import (
    CompressedBlob,
    CompressionMemory,
    check_compression,
    compressed_layers,
    compressed_manifest,
)
from .exceptions import ValidationError
from .image import Image
from .journal import default_state_dir
from .mirrors import endpoint_for, load_mirrors, registry_endpoint
from .models import BlobInfo, ImageInspect, ManifestInfo, Platform, PushResult
from .reference import Reference, is_tag, normalize_archive_tag, registry_of, registry_reference
from .registry import Registry

Connect = Callable[[str], Registry]

# -- one registry ------------------------------------------------------------------------------


def push_image(
    registry: Registry,
    image: Image,
    repository: str,
    tags: Sequence[str],
    *,
    compress: str | None = None,
    memory: CompressionMemory | None = None,
) -> list[PushResult]:
    """Push one image into ``repository`` under each of ``tags``.

    ``compress`` (``"gzip"`` or ``"zstd"``) compresses the layers stored uncompressed on the
    way; None keeps every layer byte for byte (and the image's digest). Every blob is confirmed
    before the manifest goes up. ``memory`` keeps what layers compressed to (default:
    :func:`compression_memory` of ``registry``).

    Example:
        >>> with ImageArchive.open("app.tar") as archive:  # doctest: +SKIP
        ...     push_image(registry, archive.select(), "team/app", ["v1"], compress="gzip")
    """
    algorithm = check_compression(compress)
    if algorithm is None:
        return registry.push_image(image, repository, tags)
    registry.check_target(repository, tags)
    memory = memory or compression_memory(registry)
    layers = compressed_layers(image, algorithm, memory)
    uploads = [*layers, image.config]
    blobs = tuple(registry.engine.push_blobs(repository, uploads))
    # One result per distinct key, in the order of first appearance.
    by_key = dict(zip(dict.fromkeys(b.key for b in uploads), blobs, strict=True))
    pushed = [BlobInfo(by_key[b.key].digest, by_key[b.key].size) for b in layers]
    for layer, info in zip(layers, pushed, strict=True):
        if isinstance(layer, CompressedBlob):
            memory.remember(algorithm, layer.original.digest, info)
    manifest, media_type = compressed_manifest(image, algorithm, layers, pushed)
    return registry.put_manifests(repository, tags, manifest, media_type, blobs)


def compression_memory(registry: Registry) -> CompressionMemory:
    """Where what layers compressed to is kept for ``registry``: its state directory.

    Example:
        >>> compression_memory(registry).directory  # doctest: +SKIP
        PosixPath('/home/al/.cache/registryv2/compressed')
    """
    return CompressionMemory(Path(registry.config.state_dir or default_state_dir()) / "compressed")


def push_tar(
    registry: Registry,
    tar_path: str | os.PathLike[str],
    repository: str | None = None,
    tag: str | None = None,
    *,
    image: str | None = None,
    compress: str | None = None,
    memory: CompressionMemory | None = None,
) -> PushResult:
    """Push an image of an archive under ``repository:tag``: see
    :meth:`RegistryClient.push <registryv2.client.RegistryClient.push>`.

    Example:
        >>> push_tar(registry, "app.tar", "team/app", "v1").digest  # doctest: +SKIP
        'sha256:...'
    """
    with ImageArchive.open(tar_path) as archive:
        target = target_for(archive, repository, tag, image)
        pushed = push_image(
            registry, target.image, target.repository, target.tags, compress=compress, memory=memory
        )
        return pushed[0]


def push_tar_all_tags(
    registry: Registry,
    tar_path: str | os.PathLike[str],
    *,
    compress: str | None = None,
    memory: CompressionMemory | None = None,
) -> list[PushResult]:
    """Push every image of an archive under every one of its own tags, in the archive's order:
    see :meth:`RegistryClient.push_all_tags <registryv2.client.RegistryClient.push_all_tags>`.

    Example:
        >>> [r.tag for r in push_tar_all_tags(registry, "app.tar")]  # doctest: +SKIP
        ['v1', 'latest']
    """
    memory = memory or compression_memory(registry)
    with ImageArchive.open(tar_path) as archive:
        results = {
            (result.repository, result.tag): result
            for target in targets_for_all_tags(archive)
            for result in push_image(
                registry,
                target.image,
                target.repository,
                target.tags,
                compress=compress,
                memory=memory,
            )
        }
        return [results[normalize_archive_tag(t)] for t in archive.tags]


def save_images(
    images: Sequence[Image], output_path: str | os.PathLike[str], registry: Registry
) -> list[ImageInspect]:
    """Write ``images`` into one docker 25+ archive at ``output_path``, their blobs downloaded
    by ``registry``'s engine straight into their place in the file.

    The archive appears whole or not at all. Returns what was written, one entry per image.

    Example:
        >>> save_images([registry.image("team/app", "v1")], "app.tar", registry)  # doctest: +SKIP
    """
    with ArchiveWriter.create(output_path, images) as archive:
        registry.engine.download_blobs(archive.pending, archive.blob_writer)
    return [image.inspect() for image in images]


def pull_tar(
    registry: Registry,
    references: str | Sequence[str],
    output_path: str | os.PathLike[str],
    *,
    platform: str | Platform | None = None,
) -> list[ImageInspect]:
    """Write images of one registry into one archive: see
    :meth:`RegistryClient.pull <registryv2.client.RegistryClient.pull>`.

    Example:
        >>> pull_tar(registry, ["team/app:v1"], "images.tar")  # doctest: +SKIP
    """
    texts = [references] if isinstance(references, str) else list(references)
    images = [registry.image(*_split(text), platform) for text in texts]
    return save_images(images, output_path, registry)


def _split(text: str) -> tuple[str, str]:
    """``repository:tag`` or ``repository@digest`` -> (repository, identifier)."""
    ref = Reference.parse(text)
    if ref.registry is not None:
        raise ValidationError(
            f"invalid reference {text!r}: give repository:tag, the registry is the client's"
        )
    return ref.repository, ref.identifier


# -- full references ---------------------------------------------------------------------------


def resolve(text: str, *, default_tag: str | None = "latest") -> tuple[Reference, str]:
    """A reference, and the endpoint to reach its registry (its mirror, if it has one).

    Example:
        >>> resolve("nginx:alpine")[1]
        'registry-1.docker.io'
    """
    ref = registry_reference(text, default_tag=default_tag)
    return ref, endpoint_for(ref, load_mirrors())


@contextlib.contextmanager
def _connected(
    text: str, connect: Connect, default_tag: str | None = "latest"
) -> Iterator[tuple[Reference, Registry]]:
    ref, endpoint = resolve(text, default_tag=default_tag)
    with connect(endpoint) as registry:
        yield ref, registry


@contextlib.contextmanager
def _connected_registry(host: str, connect: Connect) -> Iterator[Registry]:
    with connect(registry_endpoint(registry_of(host), load_mirrors())) as registry:
        yield registry


def push_archive(
    tar_path: str | os.PathLike[str],
    target: str,
    connect: Connect,
    *,
    image: str | None = None,
    all_tags: bool = False,
    compress: str | None = None,
) -> list[PushResult]:
    """Push an archive to ``target``: a reference (one image, one tag), or with ``all_tags`` a
    registry (every image of the archive under every tag it carries).

    A reference without a tag takes the tag of the image's first archive tag, as
    :func:`push_docker_tar` does; ``latest`` when it has none. ``compress`` is as for
    :func:`push_image`.

    Example:
        >>> push_archive("app.tar", "localhost:15000/team/app", Registry)  # doctest: +SKIP
    """
    if all_tags:
        with _connected_registry(target, connect) as registry:
            return push_tar_all_tags(registry, tar_path, compress=compress)
    ref, endpoint = resolve(target, default_tag=None)
    if ref.digest:
        raise ValidationError(f"invalid reference {target!r}: push to a tag, not a digest")
    with connect(endpoint) as registry:
        return [
            push_tar(registry, tar_path, ref.repository, ref.tag, image=image, compress=compress)
        ]


def pull_images(
    references: Sequence[str],
    output_path: str | os.PathLike[str],
    connect: Connect,
    platform: str | Platform | None = None,
) -> list[ImageInspect]:
    """Write the images of ``references`` (from one registry or several) into one archive.

    Example:
        >>> pull_images(["localhost:15000/app:v1"], "app.tar", Registry)  # doctest: +SKIP
    """
    if not references:
        raise ValidationError("pull needs at least one reference")
    resolved = [resolve(text) for text in references]
    with contextlib.ExitStack() as stack:
        registries: dict[str, Registry] = {}
        for _, endpoint in resolved:
            if endpoint not in registries:
                registries[endpoint] = stack.enter_context(connect(endpoint))
        images = [
            # Tagged as the user named it (docker's short form for Docker Hub), not by where
            # it was fetched from (a mirror, registry-1.docker.io).
            dataclasses.replace(
                registries[endpoint].image(ref.repository, ref.identifier, platform),
                tags=() if ref.digest else (ref.familiar,),
            )
            for ref, endpoint in resolved
        ]
        return save_images(images, output_path, registries[resolved[0][1]])


def copy_image(source_ref: str, target_ref: str, connect: Connect) -> PushResult:
    """Copy an image or index from ``source_ref`` to ``target_ref``, keeping its digest.

    Example:
        >>> copy_image("a.example/app:v1", "b.example/app:v1", Registry)  # doctest: +SKIP
    """
    source, source_endpoint = resolve(source_ref)
    target, target_endpoint = resolve(target_ref)
    if target.digest or target.tag is None:
        raise ValidationError(f"invalid target {target_ref!r}: copy to a tag, not a digest")
    with contextlib.ExitStack() as stack:
        target_registry = stack.enter_context(connect(target_endpoint))
        source_registry = (
            target_registry
            if source_endpoint == target_endpoint
            else stack.enter_context(connect(source_endpoint))
        )
        return target_registry.copy(
            source.repository,
            source.identifier,
            target.repository,
            target.tag,
            source=source_registry,
        )


def copy_repository(source_repo: str, target_repo: str, connect: Connect) -> list[PushResult]:
    """Copy every tag of a repository into another, each keeping its digest.

    Example:
        >>> copy_repository("a.example/app", "b.example/app", Registry)  # doctest: +SKIP
    """
    source, source_endpoint = resolve(source_repo, default_tag=None)
    target, _ = resolve(target_repo, default_tag=None)
    for ref, text in ((source, source_repo), (target, target_repo)):
        if ref.tag or ref.digest:
            raise ValidationError(f"invalid repository {text!r}: copying every tag, give no tag")
    with connect(source_endpoint) as registry:
        tags = registry.list_tags(source.repository)
    return [copy_image(f"{source_repo}:{tag}", f"{target_repo}:{tag}", connect) for tag in tags]


def tag_image(source_ref: str, new_tags: str | Sequence[str], connect: Connect) -> str:
    """Put the manifest of ``source_ref`` under each of ``new_tags`` in the same repository.

    Example:
        >>> tag_image("localhost:15000/app:v1", ["stable"], Registry)  # doctest: +SKIP
        'sha256:...'
    """
    tags = [new_tags] if isinstance(new_tags, str) else list(new_tags)
    for new_tag in tags:
        if not is_tag(new_tag):
            raise ValidationError(
                f"invalid tag {new_tag!r}: a tag is letters, digits, '_', '.' and '-' "
                "(to copy into another repository, use copy)"
            )
    if not tags:
        raise ValidationError("tag needs at least one new tag")
    with _connected(source_ref, connect) as (source, registry):
        digests = {registry.tag(source.repository, source.identifier, t) for t in tags}
    return digests.pop()


def list_repositories_of(host: str, connect: Connect) -> list[str]:
    """Every repository of the registry ``host`` (``host[:port]``).

    Example:
        >>> list_repositories_of("localhost:15000", Registry)  # doctest: +SKIP
        ['team/app']
    """
    with _connected_registry(host, connect) as registry:
        return registry.list_repositories()


def list_tags_of(repository_ref: str, connect: Connect) -> list[str]:
    """Every tag of the repository ``repository_ref`` names (a tag in it is ignored).

    Example:
        >>> list_tags_of("localhost:15000/team/app", Registry)  # doctest: +SKIP
        ['v1', 'latest']
    """
    with _connected(repository_ref, connect, default_tag=None) as (ref, registry):
        return registry.list_tags(ref.repository)


@dataclass(frozen=True)
class Inspection:
    """What a reference points at: the manifest as stored, and the image it describes (for an
    index, the image of the platform asked for, if one was)."""

    reference: str
    manifest: ManifestInfo
    image: ImageInspect | None


def inspect_reference(
    text: str, connect: Connect, platform: str | Platform | None = None
) -> Inspection:
    """The manifest at a reference, and the image: config, layers; for an index, its platforms
    (and the image of ``platform`` when given).

    Example:
        >>> inspect_reference("localhost:15000/app:v1", Registry).image.os  # doctest: +SKIP
        'linux'
    """
    with _connected(text, connect) as (ref, registry):
        manifest = registry.get_manifest(ref.repository, ref.identifier)
        image = None
        if not manifest.is_index or platform is not None:
            image = registry.get_image_info(ref.repository, ref.identifier, platform)
    return Inspection(str(ref), manifest, image)


def digest_of(text: str, connect: Connect) -> str:
    """The digest of the manifest a reference points at.

    Example:
        >>> digest_of("localhost:15000/app:v1", Registry)  # doctest: +SKIP
        'sha256:...'
    """
    with _connected(text, connect) as (ref, registry):
        return _digest_in(registry, ref)


def _digest_in(registry: Registry, ref: Reference) -> str:
    """The digest of the manifest ``ref`` points at in ``registry`` (checked when given)."""
    if ref.digest:
        return registry.get_manifest(ref.repository, ref.digest).digest
    return registry.resolve_digest(ref.repository, str(ref.tag))


@dataclass(frozen=True)
class Deletion:
    """A manifest to delete, and every tag that goes with it."""

    repository: str
    digest: str
    tags: tuple[str, ...]


def plan_deletion(text: str, connect: Connect) -> Deletion:
    """What deleting a reference deletes: its manifest, and every tag pointing at it.

    Example:
        >>> plan_deletion("localhost:15000/app:v1", Registry).tags  # doctest: +SKIP
        ('v1', 'latest')
    """
    with _connected(text, connect) as (ref, registry):
        digest = _digest_in(registry, ref)
        tags = tuple(
            sorted(
                tag
                for tag in registry.list_tags(ref.repository)
                if registry.resolve_digest(ref.repository, tag) == digest
            )
        )
    return Deletion(f"{ref.registry}/{ref.repository}", digest, tags)


def delete(text: str, connect: Connect, planned: Deletion | None = None) -> Deletion:
    """Delete the manifest a reference points at (and so every tag on it); what went.

    Example:
        >>> delete("localhost:15000/app:v1", Registry).digest  # doctest: +SKIP
        'sha256:...'
    """
    planned = planned or plan_deletion(text, connect)
    with _connected(text, connect) as (ref, registry):
        registry.delete_image_by_digest(ref.repository, planned.digest)
    return planned


def check_registry(host: str, connect: Connect) -> str:
    """Check that the registry ``host`` is usable (logging in if it asks); its endpoint.

    Example:
        >>> check_registry("localhost:15000", Registry)  # doctest: +SKIP
        'localhost:15000'
    """
    with _connected_registry(host, connect) as registry:
        registry.ping()
        return registry.transport.base_url
