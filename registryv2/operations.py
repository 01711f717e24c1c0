"""The jobs on images and registries: push, pull and copy over the one copy path, and the
registry jobs on full references.

Two levels, one above the other:

- **One registry** (:class:`~registryv2.registry.Registry`): push an image or an archive,
  compressing layers on the way if asked; pull images into an archive.
  :class:`~registryv2.client.RegistryClient` offers these as its own methods.
- **Full references and places** (``host/repository:tag``, ``oci:DIR:v1``, ``app.tar``), which
  may span several registries: push, pull, copy, tag, list, inspect, resolve, delete. The module
  API and the CLI both call these, each with its own way to connect to a registry:
  ``connect(endpoint)`` returns a new :class:`~registryv2.registry.Registry` for an endpoint
  such as ``localhost:15000``, ``https://ghcr.io`` or ``registry-1.docker.io``; these functions
  close what they open. References are read as docker reads them, and each registry is reached
  through its mirror when it has one (:mod:`registryv2.mirrors`).

Every job that moves an image is a few lines over :mod:`registryv2.imagecopy`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .archive import ImageArchive
from .compress import CompressionMemory
from .engine import TransferEngine
from .exceptions import NO_ORIGINAL_TAGS, ValidationError
from .image import Blob, Image
from .imagecopy import (
    Connect,
    Places,
    Selection,
    copy_places,
    open_destination,
    plan_image,
    registry_names,
    resolve,
    transfer,
)
from .journal import default_state_dir
from .manifest import parse_manifest
from .mirrors import load_mirrors, registry_endpoint
from .models import BlobInfo, CopyResult, ImageInspect, ManifestInfo, Platform, PushResult
from .places import Entry, Place, PlannedImage, Referral, RegistryImage, parse_place
from .reference import Reference, is_tag, registry_of, registry_reference
from .referrals import remove_from_fallback
from .registry import Registry
from .remote import RegistryDestination, RegistrySource

# -- one registry ------------------------------------------------------------------------------


class OneImage:
    """One :class:`~registryv2.image.Image` (config, layers, manifest) as an image source."""

    label = "image"
    home = None

    def __init__(self, image: Image) -> None:
        self.image = image
        self._manifest = parse_manifest(image.manifest_bytes, image.manifest_media_type)
        self._blobs = {blob.digest: blob for blob in image.blobs}

    def entries(self) -> list[Entry]:
        """The image, under its tags."""
        return [Entry(self._manifest, self.image.tags)]

    def manifest(self, digest: str) -> ManifestInfo:
        """The image's manifest: it has no other."""
        if digest != self._manifest.digest:
            raise ValidationError(f"the image has no manifest {digest}")
        return self._manifest

    def blob(self, info: BlobInfo) -> Blob:
        """A blob of the image."""
        return self._blobs[info.digest]

    def referrers(self, digest: str, artifact_type: str | None = None) -> list[Referral]:
        """An image alone has none."""
        return []

    def close(self) -> None:
        """Nothing to release."""


def _pushed(plans: Sequence[PlannedImage], results: Sequence[CopyResult]) -> list[PushResult]:
    """One :class:`PushResult` per tag put."""
    pushed = []
    for planned, result in zip(plans, results, strict=True):
        for name in planned.names:
            repository, _, tag = name.rpartition(":")
            pushed.append(PushResult(repository, tag, result.digest, result.blobs))
    return pushed


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
    if not tags:
        raise ValidationError("push needs at least one tag")
    source = OneImage(image)
    names = tuple(f"{repository}:{tag}" for tag in tags)
    plans = [plan_image(source, source.entries()[0], names, Selection())]
    if compress is not None:
        memory = memory or compression_memory(registry)
    results = transfer(
        plans, RegistryDestination(registry), registry.engine, compress=compress, memory=memory
    )
    return _pushed(plans, results)


def compression_memory(registry: Registry) -> CompressionMemory:
    """Where what layers compressed to is kept for ``registry``: its state directory.

    Example:
        >>> compression_memory(registry).directory  # doctest: +SKIP
        PosixPath('/home/al/.cache/registryv2/compressed')
    """
    return CompressionMemory(Path(registry.config.state_dir or default_state_dir()) / "compressed")


def _push_entries(
    registry: Registry,
    archive: ImageArchive,
    entries: Sequence[Entry],
    repository: str | None,
    tag: str | None,
    all_tags: bool,
    compress: str | None,
    memory: CompressionMemory | None,
) -> list[PushResult]:
    namer = registry_names(repository, tag, all_tags)
    plans = [
        plan_image(archive, entry, names, Selection())
        for entry in entries
        for names in namer(entry)
    ]
    if compress is not None:
        memory = memory or compression_memory(registry)
    results = transfer(
        plans, RegistryDestination(registry), registry.engine, compress=compress, memory=memory
    )
    return _pushed(plans, results)


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
    """Push an image of an archive or a layout (a path, or ``oci:DIR:NAME``,
    ``docker-archive:FILE:NAME``...) under ``repository:tag``: see
    :meth:`RegistryClient.push <registryv2.client.RegistryClient.push>`.

    Example:
        >>> push_tar(registry, "app.tar", "team/app", "v1").digest  # doctest: +SKIP
        'sha256:...'
    """
    place = parse_place(tar_path, output=True)
    if isinstance(place, RegistryImage):
        raise ValidationError(f"{tar_path}: push takes an archive or a layout here")
    if place.ref and image and place.ref != image:
        raise ValidationError(f"{place}: names an image already; give image= or the name")
    image = image or place.ref
    with ImageArchive.open(place.path) as archive:
        if image is None and repository is None and tag is None and archive.tags:
            # Neither given: the archive's first tag chooses the image, and names it.
            image = archive.tags[0]
        entry = archive.select_entry(image)
        if image is not None and image in entry.names:
            entry = Entry(entry.manifest, (image, *(n for n in entry.names if n != image)))
        return _push_entries(registry, archive, [entry], repository, tag, False, compress, memory)[
            0
        ]


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
    with ImageArchive.open(tar_path) as archive:
        entries = [e for e in archive.entries() if e.names]
        if not entries:
            raise ValidationError(
                f"{NO_ORIGINAL_TAGS}: {archive.path} has no tags to push; give a repository"
            )
        return _push_entries(registry, archive, entries, None, None, True, compress, memory)


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
    if not texts:
        raise ValidationError("pull needs at least one reference")
    selection = Selection(platform=platform)
    here = registry.transport.registry
    with Places(_no_registry) as places:
        destination, namer = open_destination(parse_place(output_path, output=True), places, False)
        plans = []
        for text in texts:
            repository, identifier = _split(text)
            source = RegistrySource(registry, repository, f"{here}/{repository}", [identifier])
            for entry in source.entries():
                plans += [plan_image(source, entry, n, selection) for n in namer(entry)]
        results = transfer(plans, destination, registry.engine)
    return _images(results)


def copy_in(
    registry: Registry,
    repository: str,
    identifier: str,
    target_repository: str,
    target_tag: str,
    *,
    source: Registry | None = None,
) -> PushResult:
    """Copy an image or a whole index into ``target_repository:target_tag`` of ``registry``:
    see :meth:`RegistryClient.copy <registryv2.client.RegistryClient.copy>`.

    Example:
        >>> copy_in(registry, "team/app", "v1", "mirror/app", "v1").digest  # doctest: +SKIP
        'sha256:...'
    """
    origin = source or registry
    name = f"{origin.transport.registry}/{repository}"
    reader = RegistrySource(origin, repository, name, [identifier])
    names = (f"{target_repository}:{target_tag}",)
    plans = [plan_image(reader, e, names, Selection(all_platforms=True)) for e in reader.entries()]
    results = transfer(plans, RegistryDestination(registry), registry.engine)
    return _pushed(plans, results)[0]


def _no_registry(endpoint: str) -> Registry:
    raise ValidationError(f"{endpoint}: this job writes into files, not into a registry")


def _images(results: Sequence[CopyResult]) -> list[ImageInspect]:
    return [r.image for r in results if r.image is not None]


def _split(text: str) -> tuple[str, str]:
    """``repository:tag`` or ``repository@digest`` -> (repository, identifier)."""
    ref = Reference.parse(text)
    if ref.registry is not None:
        raise ValidationError(
            f"invalid reference {text!r}: give repository:tag, the registry is the client's"
        )
    return ref.repository, ref.identifier


# -- full references ---------------------------------------------------------------------------


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


def push(
    source: str | os.PathLike[str] | Place,
    target: str,
    connect: Connect,
    selection: Selection | None = None,
    *,
    compress: str | None = None,
    engine: Callable[[], TransferEngine] | None = None,
    form: str | None = None,
) -> list[CopyResult]:
    """Push an archive or a layout (any place) to ``target``: a reference (one image, one tag),
    or with ``all_tags`` a registry or a repository (every image under every name it carries).

    A reference without a tag takes the image's own (``latest`` when it has none).
    ``compress`` is as for :func:`push_image`.

    Example:
        >>> push("oci:build/out:v1", "localhost:15000/team/app", Registry)  # doctest: +SKIP
    """
    selection = selection or Selection()
    if not selection.all_tags:
        ref, _ = resolve(target, default_tag=None)
        if ref.digest:
            raise ValidationError(f"invalid reference {target!r}: push to a tag, not a digest")
    memory = CompressionMemory(default_state_dir() / "compressed") if compress else None
    return copy_places(
        [source],
        target,
        connect,
        selection,
        compress=compress,
        memory=memory,
        engine=engine,
        form=form,
    )


def pull(
    references: Sequence[str],
    output: str | os.PathLike[str] | Place,
    connect: Connect,
    selection: Selection | None = None,
    engine: Callable[[], TransferEngine] | None = None,
    form: str | None = None,
) -> list[CopyResult]:
    """Write the images of ``references`` (from one registry or several) into one place: an
    archive (the default for a path), a layout, or standard output (``-``).

    Example:
        >>> pull(["localhost:15000/app:v1"], "app.tar", Registry)  # doctest: +SKIP
    """
    if not references:
        raise ValidationError("pull needs at least one reference")
    for text in references:
        if not isinstance(text, str) or text.startswith(
            ("oci:", "oci-archive:", "docker-archive:")
        ):
            raise ValidationError(f"pull takes references: {text!r} is not one (use copy)")
    return copy_places(
        [f"docker://{t}" if not t.startswith("docker://") else t for t in references],
        output,
        connect,
        selection,
        output=True,
        engine=engine,
        form=form,
    )


def copy(
    source: str | os.PathLike[str] | Place,
    target: str | os.PathLike[str] | Place,
    connect: Connect,
    selection: Selection | None = None,
    engine: Callable[[], TransferEngine] | None = None,
    form: str | None = None,
) -> list[CopyResult]:
    """Copy an image, or a whole index, from any place to any other, keeping its digest.

    Without a platform, a whole index is copied (as crane and regctl do); ``all_tags`` copies
    every tag of a repository, or every image of an archive or layout.

    Example:
        >>> copy("a.example/app:v1", "oci:out:v1", Registry)  # doctest: +SKIP
    """
    selection = selection or Selection()
    if selection.platform is None:
        selection = dataclasses.replace(selection, all_platforms=True)
    return copy_places([source], target, connect, selection, engine=engine, form=form)


def tag_image(source_ref: str, new_tags: str | Sequence[str], connect: Connect) -> list[PushResult]:
    """Put the manifest of ``source_ref`` under each of ``new_tags`` in the same repository;
    no blob moves. A new tag is a tag (``stable``) or a whole reference in the same repository
    (``localhost:15000/app:stable``), as ``docker tag`` users write it.

    Example:
        >>> tag_image("localhost:15000/app:v1", ["stable"], Registry)[0].tag  # doctest: +SKIP
        'stable'
    """
    tags = [new_tags] if isinstance(new_tags, str) else list(new_tags)
    if not tags:
        raise ValidationError("tag needs at least one new tag")
    with _connected(source_ref, connect) as (source, registry):
        wanted = [_new_tag(source, text) for text in tags]
        manifest = registry.get_manifest(source.repository, source.identifier)
        return [
            PushResult(
                source.repository,
                tag,
                registry.put_manifest(source.repository, tag, manifest.raw, manifest.media_type),
                (),
            )
            for tag in wanted
        ]


def _new_tag(source: Reference, text: str) -> str:
    """The tag ``text`` gives, which must stay in ``source``'s repository."""
    if is_tag(text):
        return text
    try:
        ref = registry_reference(text, default_tag=None)
    except ValidationError:
        ref = None
    if ref is None or ref.tag is None or ref.digest:
        raise ValidationError(
            f"invalid tag {text!r}: a tag is letters, digits, '_', '.' and '-', or a whole "
            "reference with a tag in the same repository"
        )
    if (ref.registry, ref.repository) != (source.registry, source.repository):
        raise ValidationError(
            f"{text!r} is in another repository than {source.registry}/{source.repository}; "
            "tag stays in one repository (to copy into another, use copy)"
        )
    return ref.tag


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
        # An artifact (a signature, an SBOM) has no platform or creation time to show.
        if not manifest.is_artifact and (not manifest.is_index or platform is not None):
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
    """Delete the manifest a reference points at (and so every tag on it); what went. A
    referrer deleted leaves its subject's fallback index too; what refers to the manifest
    stays (``registryv2 rm --referrers`` deletes it as well).

    Example:
        >>> delete("localhost:15000/app:v1", Registry).digest  # doctest: +SKIP
        'sha256:...'
    """
    planned = planned or plan_deletion(text, connect)
    with _connected(text, connect) as (ref, registry):
        manifest = registry.get_manifest(ref.repository, planned.digest)
        registry.delete_image_by_digest(ref.repository, planned.digest)
        if manifest.subject is not None:
            subject = manifest.subject.digest
            remove_from_fallback(registry, ref.repository, subject, [planned.digest])
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
