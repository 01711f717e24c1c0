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
from .manifest import parse_manifest, sha256_digest
from .models import BlobInfo, BlobResult, ManifestInfo
from .places import REFERRER_TAG, BlobMover, Entry, PlannedImage, Referral
from .reference import is_digest
from .referrals import RepositoryReferrers, add_to_fallback
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
        self,
        registry: Registry,
        repository: str,
        name: str,
        identifiers: Sequence[str] | None,
        referrers: RepositoryReferrers | None = None,
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.name = name
        self.identifiers = identifiers  # None: every tag
        self.label = f"{registry.transport.registry}/{repository}"
        self.home = (registry.transport.registry, repository)
        self.skip_referrer_tags = False
        # Shared by sources of one repository, so that its tags are listed once.
        self._referrers = referrers or RepositoryReferrers(registry, repository)

    def entries(self) -> list[Entry]:
        """The manifest at each identifier (every tag when none was given, less the tags
        referrers go under when they travel with their images), named by it."""
        identifiers = self.identifiers
        if identifiers is None:
            identifiers = self.registry.list_tags(self.repository)
            if self.skip_referrer_tags:
                identifiers = [t for t in identifiers if not REFERRER_TAG.match(t)]
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

    def blob(self, info: BlobInfo) -> Blob:
        """A blob of the repository, streamed (and resumed) when opened."""
        return self.registry.blob(self.repository, info)

    def referrers(self, digest: str, artifact_type: str | None = None) -> list[Referral]:
        """What refers to ``digest`` in the repository (the referrers API or its fallback tag,
        and cosign's tags)."""
        return self._referrers.of(digest, artifact_type)

    def close(self) -> None:
        """Nothing to release: the registry belongs to whoever opened it."""


@dataclass(frozen=True)
class Target:
    """Where one image goes in a registry: a repository, and the tags there."""

    repository: str
    tags: tuple[str, ...]


class RegistryDestination:
    """A registry being pushed to: each image goes to one repository under its tags.

    The images' names are ``repository:tag`` in this registry (``repository@digest`` for a
    referrer put by digest alone). A referrer the registry does not index itself (no
    ``OCI-Subject`` in its answer) is listed in its subject's fallback index at the commit.

    Example:
        >>> destination = RegistryDestination(registry)  # doctest: +SKIP
    """

    def __init__(self, registry: Registry, display: str | None = None) -> None:
        self.registry = registry
        self.display = display or registry.transport.registry
        self.label = self.display
        # (repository, subject) -> referrers to list in the subject's fallback index
        self._fallback: dict[tuple[str, str], list[ManifestInfo]] = {}

    def __str__(self) -> str:
        return self.display

    @staticmethod
    def target(image: PlannedImage) -> Target:
        """The repository and tags of ``image``'s names (all in one repository)."""
        repository = ""
        tags: list[str] = []
        for name in image.names:
            if "@" in name:
                repository = repository or name.split("@", 1)[0]
                continue
            repo, _, tag = name.rpartition(":")
            repository = repository or repo
            tags.append(tag)
        return Target(repository, tuple(tags))

    def begin(self, images: Sequence[PlannedImage]) -> None:
        """Refuse, before any byte moves, a repository or tag that cannot be pushed to."""
        for image in images:
            target = self.target(image)
            check_repository(target.repository)
            for tag in target.tags:
                check_repository(target.repository, tag)

    def scope(self, image: PlannedImage) -> str:
        """Images going to one repository share one batch of blobs."""
        return self.target(image).repository

    def referrer_names(self, subject: PlannedImage, referral: Referral) -> tuple[str, ...]:
        """Into the subject's repository: under its own tag (cosign's), else by digest."""
        repository = self.target(subject).repository
        if referral.tag:
            return (f"{repository}:{referral.tag}",)
        return (f"{repository}@{referral.digest}",)

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
        manifest under each tag (by digest when it has none)."""
        target = self.target(image)
        repository = target.repository
        # Children before parents: image.children is in that order.
        for child in image.children:
            self.registry.put_manifest(repository, child.digest, child.raw, child.media_type)
        digest = sha256_digest(manifest)
        identifiers = target.tags or (digest,)
        for identifier in identifiers:
            if image.subject and not target.tags:
                taken = self.registry.put_referrer(
                    repository, identifier, manifest, media_type, image.subject
                )
                if not taken:
                    self._fallback.setdefault((repository, image.subject), []).append(
                        parse_manifest(manifest, media_type)
                    )
            else:
                self.registry.put_manifest(repository, identifier, manifest, media_type)
        if not target.tags:
            return [f"{self.display}/{repository}@{digest}"]
        return [f"{self.display}/{repository}:{tag}" for tag in target.tags]

    def commit(self) -> None:
        """List the referrers the registry did not index in their subjects' fallback
        indexes (each read, extended and put back once)."""
        for (repository, subject), referrers in self._fallback.items():
            add_to_fallback(self.registry, repository, subject, referrers)
        self._fallback.clear()

    def abort(self) -> None:
        """Nothing to undo: no manifest went up before every blob was there."""
