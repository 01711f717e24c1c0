"""Where images live: the places a copy reads from and writes to, named as skopeo names them.

A *place* is a registry reference, an archive (``docker-archive:``, ``oci-archive:``), an OCI
image layout directory (``oci:``) or standard output (``-``). :func:`parse_place` reads the
strings; :class:`OCILayout`, :class:`OCIArchive`, :class:`DockerArchive` and
:class:`RegistryImage` are the same places as objects. Every place is opened as an
:class:`ImageSource` (its top-level images and indexes, any manifest by digest, blobs as
streams) or as an :class:`ImageDestination` (blobs moved in, manifests put, commit), and the
one copy path (:mod:`registryv2.imagecopy`) moves images between any two of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from .exceptions import ValidationError
from .image import Blob, Uploadable
from .models import BlobInfo, BlobResult, ManifestInfo

# skopeo's transport names, and ours for a registry.
DOCKER = "docker"
DOCKER_ARCHIVE = "docker-archive"
OCI_ARCHIVE = "oci-archive"
OCI = "oci"
STDIO = "-"


@dataclass(frozen=True)
class RegistryImage:
    """An image (or index) in a registry: ``host/repository:tag`` or ``...@sha256:...``.

    Example:
        >>> str(RegistryImage("localhost:15000/team/app:v1"))
        'localhost:15000/team/app:v1'
    """

    reference: str

    def __str__(self) -> str:
        return self.reference


@dataclass(frozen=True)
class _FilePlace:
    path: str
    ref: str | None = None
    transport = ""

    def __str__(self) -> str:
        text = f"{self.transport}:{self.path}" if self.transport else self.path
        return f"{text}:{self.ref}" if self.ref else text


@dataclass(frozen=True)
class DockerArchive(_FilePlace):
    """A ``docker save`` archive (``docker-archive:PATH[:REF]``); ``-`` is standard output
    (or input). ``ref`` picks an image by one of its tags (``nginx:alpine``), or names the
    image written.

    Example:
        >>> str(DockerArchive("app.tar", "app:v1"))
        'docker-archive:app.tar:app:v1'
    """

    transport = DOCKER_ARCHIVE


@dataclass(frozen=True)
class OCIArchive(_FilePlace):
    """A tarred OCI image layout (``oci-archive:PATH[:REF]``), as ``skopeo copy`` writes it;
    ``ref`` is the ``org.opencontainers.image.ref.name`` of the image.

    Example:
        >>> str(OCIArchive("app.tar", "v1"))
        'oci-archive:app.tar:v1'
    """

    transport = OCI_ARCHIVE


@dataclass(frozen=True)
class OCILayout(_FilePlace):
    """An OCI image layout directory (``oci:DIR[:REF]``), as BuildKit, skopeo, oras and
    cosign write them; ``ref`` is the ``org.opencontainers.image.ref.name`` of the image.

    Example:
        >>> str(OCILayout("build/out", "v1"))
        'oci:build/out:v1'
    """

    transport = OCI


@dataclass(frozen=True)
class AnyArchive(_FilePlace):
    """A file given by its path alone: a docker or OCI archive, told apart by its contents.

    Example:
        >>> str(AnyArchive("app.tar"))
        'app.tar'
    """


Place = RegistryImage | DockerArchive | OCIArchive | OCILayout | AnyArchive

_PREFIXES: dict[str, type[DockerArchive] | type[OCIArchive] | type[OCILayout]] = {
    DOCKER_ARCHIVE: DockerArchive,
    OCI_ARCHIVE: OCIArchive,
    OCI: OCILayout,
}


def parse_place(text: str | os.PathLike[str] | Place, *, output: bool = False) -> Place:
    """Read where an image is: a place object as it is, or a string as skopeo writes it.

    ``docker://REF`` and a reference are a registry; ``docker-archive:PATH[:REF]``,
    ``oci-archive:PATH[:REF]`` and ``oci:DIR[:REF]`` name files (the path ends at the first
    colon); ``-`` is standard output. A bare path is a directory (an OCI layout) when it is one
    or ends with ``/``, else a file when it exists, starts with ``/`` or ``.``, or ends with
    ``.tar``, ``.tgz`` or ``.tar.gz``; anything else is a registry reference. With ``output``
    (where a pull writes) a bare name is always a file.

    Example:
        >>> parse_place("oci:build/out:v1")
        OCILayout(path='build/out', ref='v1')
        >>> parse_place("localhost:15000/app:v1")
        RegistryImage(reference='localhost:15000/app:v1')
    """
    if isinstance(text, RegistryImage | DockerArchive | OCIArchive | OCILayout | AnyArchive):
        return text
    text = os.fspath(text)
    if not text:
        raise ValidationError("an empty place: give a reference, a path, or oci:DIR")
    if text == STDIO:
        return DockerArchive(STDIO)
    transport, colon, rest = text.partition(":")
    if colon and transport == DOCKER:
        if not rest.startswith("//") or not rest[2:]:
            raise ValidationError(f"invalid place {text!r}: write docker://HOST/REPOSITORY:TAG")
        return RegistryImage(rest[2:])
    if colon and transport in _PREFIXES:
        path, _, ref = rest.partition(":")
        if not path:
            raise ValidationError(f"invalid place {text!r}: {transport}: needs a path")
        return _PREFIXES[transport](path, ref or None)
    if text.endswith("/") or os.path.isdir(text):
        return OCILayout(text)
    if output or os.path.exists(text) or _looks_like_path(text):
        return AnyArchive(text)
    return RegistryImage(text)


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", ".", "~")) or text.endswith((".tar", ".tgz", ".tar.gz"))


@dataclass(frozen=True)
class Entry:
    """A top-level image or index of a place, with the names it goes by there.

    ``names`` are references or tags as the place writes them (``nginx:alpine``,
    ``docker.io/library/nginx:alpine``, ``v1``); ``aliases`` are other names that choose it
    (a layout's short ``org.opencontainers.image.ref.name`` beside containerd's full name).
    """

    manifest: ManifestInfo
    names: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default=(), repr=False)


# cosign's tags beside an image, named for its digest: sha256-<hex>.sig, .att, .sbom.
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
# The tags referrers go under: the fallback tag, and cosign's beside it.
REFERRER_TAG = re.compile(r"^sha256-[a-f0-9]{64}(?:\.sig|\.att|\.sbom)?$")


def fallback_tag(digest: str) -> str:
    """The tag that lists a manifest's referrers where a registry has no referrers API
    (OCI distribution 1.1): ``sha256-<hex>``.

    Example:
        >>> fallback_tag("sha256:" + "ab" * 32)[:12]
        'sha256-ababa'
    """
    return digest.replace(":", "-", 1)


@dataclass(frozen=True)
class Referral:
    """A referrer of a manifest, as a place lists it: a descriptor, and where it was found.

    ``tag`` is set for one found under a tag of its own (cosign's ``sha256-<hex>.sig``): it is
    copied under that tag. ``via`` says how it was found: ``api`` (the referrers API),
    ``fallback`` (the ``sha256-<hex>`` tag's index), ``tag`` (cosign's tags) or ``layout``.
    """

    digest: str
    size: int
    media_type: str
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    tag: str | None = None
    via: str = "api"


class ImageSource(Protocol):
    """What a copy reads: a place's top-level entries, any manifest by digest, blobs."""

    label: str

    @property
    def home(self) -> tuple[str, str] | None:
        """The registry and repository the source is, when it is one (to mount from)."""

    def entries(self) -> list[Entry]:
        """The images and indexes the place holds at its top level, in its order."""

    def manifest(self, digest: str) -> ManifestInfo:
        """A manifest or index the place holds, by digest (checked)."""

    def blob(self, info: BlobInfo) -> Blob:
        """A blob the place holds, to open as a stream (not checked here: the mover hashes)."""

    def referrers(self, digest: str, artifact_type: str | None = None) -> list[Referral]:
        """What refers to the manifest ``digest`` there (signatures, SBOMs, attestations);
        only those of ``artifact_type`` when given."""

    def close(self) -> None:
        """Release what the source holds open."""


class BlobMover(Protocol):
    """What a local destination asks of the transfer engine: copy blobs into writers, in
    parallel, each checked against its digest."""

    def download_blobs(
        self, pending: Sequence[tuple[str, Blob]], open_target: Callable[[Blob], BinaryIO]
    ) -> list[BlobResult]:
        """Copy each blob into the writer ``open_target`` gives it."""


@dataclass
class PlannedImage:
    """One image or index on its way: the manifest to put, the manifests below it (children
    first), the distinct blobs of every image in it, and the names it goes under."""

    manifest: ManifestInfo
    children: list[ManifestInfo]
    blobs: list[Blob]
    names: tuple[str, ...]
    # Where progress says the blobs come from (``host/repository`` or a path).
    origin: str = ""
    # The registry and repository the blobs are in, when the source is a registry: a
    # destination in the same registry mounts them from there.
    home: tuple[str, str] | None = None
    # Set for a push that compresses layers on the way: what goes up instead of ``blobs``.
    uploads: list[Uploadable] | None = None
    # The image manifest described to the user (the image itself, or the platform's of an
    # index), and its config, read while planning.
    image_manifest: ManifestInfo | None = None
    config: bytes | None = field(default=None, repr=False)
    # A referrer: the digest of the manifest it refers to, and the tag it goes under when it
    # has one of its own (cosign's); it is put after what it refers to.
    subject: str | None = None
    referral: Referral | None = None


class ImageDestination(Protocol):
    """What a copy writes to: a registry repository, an archive, a layout, a stream."""

    label: str

    def begin(self, images: Sequence[PlannedImage]) -> None:
        """Get ready for these images (check names, lay out a file); nothing is final yet."""

    def scope(self, image: PlannedImage) -> str:
        """Which images share a batch of blobs (a registry's repository; one for a file)."""

    def move_blobs(self, images: Sequence[PlannedImage], mover: BlobMover) -> dict[str, BlobResult]:
        """Bring in every blob of ``images`` (one scope), in parallel; results by key."""

    def put_manifests(self, image: PlannedImage, manifest: bytes, media_type: str) -> list[str]:
        """Put the children of ``image``, then ``manifest`` under each of its names; where
        each name went, as the user would write it."""

    def referrer_names(self, subject: PlannedImage, referral: Referral) -> tuple[str, ...]:
        """The names a referrer of ``subject`` goes under here (its tag, or none)."""

    def commit(self) -> None:
        """Make everything written visible, at once where the place allows."""

    def abort(self) -> None:
        """Leave the place as it was before :meth:`begin` (what can be undone is)."""
