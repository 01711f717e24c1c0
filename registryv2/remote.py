"""A registry as a place: an image source and an image destination over one :class:`Registry`.

:class:`RegistrySource` reads a repository's images (by tag or digest), its manifests and its
blobs as streams; :class:`RegistryDestination` pushes blobs into a repository (each checked,
mounted when the same registry holds it elsewhere, resumed across runs) and puts the manifests,
children before parents, and the top one under its tags only once every blob is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .image import Blob, Uploadable
from .models import BlobResult, ManifestInfo
from .places import BlobMover, Entry, PlannedImage
from .reference import is_digest
from .registry import Registry, check_repository


class RegistrySource:
    """The images of one repository of a registry, as a copy reads them.

    ``name`` is the repository as the user wrote its registry (``nginx``,
    ``localhost:15000/team/app``): the names of the entries are made from it.

    Example:
        >>> name = "localhost:15000/team/app"
        >>> source = RegistrySource(registry, "team/app", name, ["v1"])  # doctest: +SKIP
        >>> source.entries()[0].names  # doctest: +SKIP
        ('localhost:15000/team/app:v1',)
    """

    def __init__(
        self, registry: Registry, repository: str, name: str, identifiers: Sequence[str] | None
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.name = name
        self.identifiers = identifiers  # None: every tag
        self.label = f"{registry.transport.registry}/{repository}"
        self.home = (registry.transport.registry, repository)

    def entries(self) -> list[Entry]:
        """The manifest at each identifier (every tag when none was given), named by it."""
        identifiers = self.identifiers
        if identifiers is None:
            identifiers = self.registry.list_tags(self.repository)
        return [
            Entry(
                self.registry.get_manifest(self.repository, identifier),
                () if is_digest(identifier) else (f"{self.name}:{identifier}",),
            )
            for identifier in identifiers
        ]

    def manifest(self, digest: str) -> ManifestInfo:
        """A manifest of the repository by digest (checked against it)."""
        return self.registry.get_manifest(self.repository, digest)

    def blob(self, info: object) -> Blob:
        """A blob of the repository, streamed (and resumed) when opened."""
        return self.registry.blob(self.repository, info)  # type: ignore[arg-type]

    def close(self) -> None:
        """Nothing to release: the registry belongs to whoever opened it."""


@dataclass(frozen=True)
class Target:
    """Where one image goes in a registry: a repository, and the tags there."""

    repository: str
    tags: tuple[str, ...]


class RegistryDestination:
    """A registry being pushed to: each image goes to one repository under its tags.

    The images' names are ``repository:tag`` in this registry.

    Example:
        >>> destination = RegistryDestination(registry)  # doctest: +SKIP
    """

    def __init__(self, registry: Registry, display: str | None = None) -> None:
        self.registry = registry
        self.display = display or registry.transport.registry
        self.label = self.display

    def __str__(self) -> str:
        return self.display

    @staticmethod
    def target(image: PlannedImage) -> Target:
        """The repository and tags of ``image``'s names (all in one repository)."""
        repository = ""
        tags: list[str] = []
        for name in image.names:
            repo, _, tag = name.rpartition(":")
            repository = repository or repo
            tags.append(tag)
        return Target(repository, tuple(tags))

    def begin(self, images: Sequence[PlannedImage]) -> None:
        """Refuse, before any byte moves, a repository or tag that cannot be pushed to."""
        for image in images:
            target = self.target(image)
            for tag in target.tags:
                check_repository(target.repository, tag)

    def scope(self, image: PlannedImage) -> str:
        """Images going to one repository share one batch of blobs."""
        return self.target(image).repository

    def move_blobs(self, images: Sequence[PlannedImage], mover: BlobMover) -> dict[str, BlobResult]:
        """Push every blob of ``images`` into their repository, in one parallel batch; blobs
        this registry holds in the source's repository are mounted from there."""
        repository = self.scope(images[0])
        here = self.registry.transport.registry
        uploads: list[Uploadable] = []
        for image in images:
            if image.home is not None and image.home[0] == here and image.home[1] != repository:
                for blob in image.blobs:
                    self.registry.engine.remember(blob.digest, image.home[1])
            uploads += image.uploads if image.uploads is not None else image.blobs
        unique = list({u.key: u for u in uploads}.values())
        results = self.registry.engine.push_blobs(repository, unique)
        return {u.key: r for u, r in zip(unique, results, strict=True)}

    def put_manifests(self, image: PlannedImage, manifest: bytes, media_type: str) -> list[str]:
        """Children by digest (a registry checks an index's entries are there), then the
        manifest under each tag."""
        target = self.target(image)
        # Children before parents: image.children is in that order.
        for child in image.children:
            self.registry.put_manifest(target.repository, child.digest, child.raw, child.media_type)
        for tag in target.tags:
            self.registry.put_manifest(target.repository, tag, manifest, media_type)
        return [f"{self.display}/{target.repository}:{tag}" for tag in target.tags]

    def commit(self) -> None:
        """Nothing more: a tag is in place once its manifest is put."""

    def abort(self) -> None:
        """Nothing to undo: no manifest went up before every blob was there."""
