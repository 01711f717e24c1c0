"""The frozen dataclasses registryv2 takes and returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .events import BlobAction
from .exceptions import ValidationError
from .retry import RetryPolicy

DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024
# Transfers are bound by the network, not the CPU; docker uploads 5 layers at a time too.
# Each worker holds one chunk in memory, so this also bounds a push's memory.
DEFAULT_WORKERS = 5
# Blobs of one chunk or less are mostly round trips: they run up to this many times as wide.
SMALL_BLOB_WIDTH = 4
# registry-api-v2-client's: 10 s to connect, 300 s for a transfer to answer.
DEFAULT_TIMEOUT = 300.0
DEFAULT_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class RegistryConfig:
    """How to reach one registry.

    Attributes:
        url: ``http://host:port``, ``https://host``, or a bare ``host[:port]`` (https, except for
            loopback hosts, which try https and fall back to http as docker does).
        timeout: seconds without a byte from the registry before a request is given up as
            stalled (and retried); the read timeout.
        connect_timeout: seconds to wait for a connection to open.
        retry: how failed requests are retried (:class:`~registryv2.retry.RetryPolicy`).
        resume: keep the location of each unfinished upload in a state file, so that a push
            interrupted (Ctrl-C, a crash, a lost machine) continues where it stopped when run
            again; off, unfinished uploads are cancelled.
        state_dir: where those state files go (default ``$XDG_CACHE_HOME/registryv2``, else
            ``~/.cache/registryv2``).
        username: user name for registries that ask for credentials.
        password: password or token; never shown by ``repr()``.
        ca_bundle: a PEM file of certificate authorities to trust for this registry.
        cert_dir: a directory of certificates for this registry, used instead of its
            ``certs.d`` one (``*.crt`` authorities, a ``*.cert`` and ``*.key`` client pair), as
            skopeo's ``--cert-dir``.
        auth_file: a docker config file to read credentials from, instead of
            ``~/.docker/config.json`` (skopeo's ``--authfile``).
        insecure: allow plain http and skip certificate verification.
        workers: large blobs moved in parallel (and ranges fetched at once of one large blob);
            blobs of one chunk or less, mostly round trips, run up to four times as wide.
        chunk_size: None (the default) streams each blob in requests that grow while the link
            holds, read and hashed 5 MiB at a time; a number sends one request per chunk of
            that many bytes (the registry's ``OCI-Chunk-Min-Length`` raises it when larger).

    Example:
        >>> RegistryConfig("localhost:15000", workers=4).workers
        4
    """

    url: str
    timeout: float = DEFAULT_TIMEOUT
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    insecure: bool = False
    workers: int = DEFAULT_WORKERS
    chunk_size: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    resume: bool = True
    state_dir: str | None = None
    cert_dir: str | None = None
    auth_file: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, not {self.chunk_size}")
        if self.timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("timeouts must be positive")

    @property
    def base_url(self) -> str:
        """The URL without a trailing slash, as ``registry-api-v2-client`` gives it.

        Example:
            >>> RegistryConfig("http://localhost:15000/").base_url
            'http://localhost:15000'
        """
        return self.url.rstrip("/")


@dataclass(frozen=True)
class BlobInfo:
    """A content descriptor: what a manifest says about one blob.

    Example:
        >>> BlobInfo("sha256:" + "0" * 64, 2, "application/vnd.oci.image.config.v1+json").size
        2
    """

    digest: str
    size: int
    media_type: str = "application/octet-stream"

    @property
    def digest_short(self) -> str:
        """The first 12 hex digits of the digest, as docker shows IDs.

        Example:
            >>> BlobInfo("sha256:0123456789abcdef", 1).digest_short
            '0123456789ab'
        """
        return self.digest.split(":", 1)[-1][:12]


@dataclass(frozen=True)
class Platform:
    """The platform an image runs on, as an image index lists it.

    Example:
        >>> str(Platform("linux", "arm64", "v8"))
        'linux/arm64/v8'
    """

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)


@dataclass(frozen=True)
class PlatformManifest:
    """One entry of an image index (manifest list); in a referrers index, a referrer with its
    ``artifact_type`` and ``annotations``."""

    digest: str
    size: int
    media_type: str
    platform: Platform | None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ManifestInfo:
    """A manifest as the registry holds it.

    For an image manifest ``config`` and ``layers`` are set; for an index (manifest list)
    ``manifests`` lists its platforms. ``raw`` is the exact bytes, whose sha256 is ``digest``.
    The first fields, in their order, are ``registry-api-v2-client``'s.

    Example:
        >>> info = RegistryClient("localhost:15000").get_manifest("app", "v1")  # doctest: +SKIP
        >>> info.is_index, info.layers[0].media_type  # doctest: +SKIP
        (False, 'application/vnd.docker.image.rootfs.diff.tar.gzip')
    """

    schema_version: int
    media_type: str
    config: BlobInfo | None = None
    layers: tuple[BlobInfo, ...] = ()
    digest: str = ""
    size: int = 0
    manifests: tuple[PlatformManifest, ...] = ()
    raw: bytes = field(default=b"", repr=False)
    # OCI 1.1: what the manifest refers to (a signature's image), what kind of artifact it is
    # (``artifactType``, else an artifact's config media type), and its annotations.
    subject: BlobInfo | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_index(self) -> bool:
        """True for an image index or Docker manifest list."""
        return self.config is None

    @property
    def total_size(self) -> int:
        """Bytes of the config plus every layer (0 for an index)."""
        return (self.config.size if self.config else 0) + sum(x.size for x in self.layers)

    @property
    def is_artifact(self) -> bool:
        """True for an artifact rather than a runnable image: it has an ``artifactType``
        (its own, or a config that is not an image config) or refers to a ``subject``."""
        return bool(self.artifact_type or self.subject)


# Docker's time for "no time": what docker shows for an image without a creation date.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


class _Dumpable:
    """``model_dump()``, as the pydantic models of ``registry-api-v2-client`` have it."""

    def model_dump(self) -> dict[str, Any]:
        """The fields as a dict (nested models too).

        Example:
            >>> ImageConfig(architecture="amd64").model_dump()["architecture"]
            'amd64'
        """
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class ImageConfig(_Dumpable):
    """The parts of an image's config blob people ask about, as ``registry-api-v2-client``
    names them (``variant`` is registryv2's addition).

    Example:
        >>> ImageConfig.from_json({"config": {"Cmd": ["sh"]}}).cmd
        ['sh']
    """

    architecture: str = ""
    os: str = ""
    created: datetime = ZERO_TIME
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str | None = None
    exposed_ports: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    diff_ids: list[str] = field(default_factory=list)
    variant: str | None = None

    @classmethod
    def from_json(cls, doc: Any) -> ImageConfig:
        """Read the fields from a parsed config blob (Docker or OCI image config).

        A field of the wrong shape (``Labels: 5``, a non-string in ``Env``) is a
        ``ValidationError`` naming it; absent fields are empty. ``created`` is docker's zero
        time (0001-01-01) when absent or unreadable.

        Example:
            >>> ImageConfig.from_json({"architecture": "amd64", "os": "linux"}).os
            'linux'
        """
        if not isinstance(doc, dict):
            raise ValidationError("an image config is a JSON object")
        run = _field(doc, "config", dict) or {}
        rootfs = _field(doc, "rootfs", dict) or {}
        return cls(
            architecture=_field(doc, "architecture", str) or "",
            os=_field(doc, "os", str) or "",
            created=parse_time(_field(doc, "created", str)),
            cmd=_strings(run, "Cmd"),
            entrypoint=_strings(run, "Entrypoint"),
            env=_strings(run, "Env"),
            user=_field(run, "User", str) or "",
            working_dir=_field(run, "WorkingDir", str) or None,
            exposed_ports=dict(_field(run, "ExposedPorts", dict) or {}),
            labels=_string_map(run, "Labels"),
            diff_ids=_strings(rootfs, "diff_ids"),
            variant=_field(doc, "variant", str) or None,
        )


def parse_time(text: str | None) -> datetime:
    """An image's ``created`` time; docker's zero time when absent or unreadable.

    Example:
        >>> parse_time("2025-01-15T10:30:45.123456789Z").microsecond
        123456
    """
    if not text:
        return ZERO_TIME
    try:
        # Python reads nanoseconds (docker writes them) down to microseconds.
        when = datetime.fromisoformat(text)
    except ValueError:
        return ZERO_TIME
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _field(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc.get(key)
    if value is not None and not isinstance(value, kind):
        raise ValidationError(f"config field {key} is {type(value).__name__}, not {kind.__name__}")
    return value


def _strings(doc: dict[str, Any], key: str) -> list[str]:
    value = _field(doc, key, list) or []
    if not all(isinstance(v, str) for v in value):
        raise ValidationError(f"config field {key} holds something other than strings")
    return list(value)


def _string_map(doc: dict[str, Any], key: str) -> dict[str, str]:
    value = _field(doc, key, dict) or {}
    if not all(isinstance(v, str) for v in value.values()):
        raise ValidationError(f"config field {key} holds something other than strings")
    return dict(value)


@dataclass(frozen=True)
class LayerInfo(_Dumpable):
    """One layer of an image: how it is stored, and (registryv2's addition) the digest of its
    uncompressed tar."""

    digest: str
    size: int
    media_type: str
    created: datetime | None = None
    created_by: str | None = None
    diff_id: str | None = None


@dataclass(frozen=True)
class ImageInspect(_Dumpable):
    """An image's manifest and config together, from an archive or a registry, with the fields
    of ``registry-api-v2-client``'s ``ImageInspect``.

    Attributes:
        id: the config blob's digest (docker's image ID).
        repo_tags: the archive's tags for the image, or the reference it was read from.
        repo_digests: ``repository@digest`` where the image came from a registry.
        created: when the image was built (docker's zero time if unknown).
        config: architecture, os, env, cmd, labels and the rest.
        layers: the layers, base first.
        size: bytes of every layer as stored; ``virtual_size`` the same.
        rootfs_layers: the config's diff_ids.
        manifest_digest: registryv2's addition: the manifest's digest, when there is one.
        media_type: registryv2's addition: the manifest's media type, when known.

    Example:
        >>> info = inspect_docker_tar("app.tar")  # doctest: +SKIP
        >>> info.config.architecture, len(info.layers)  # doctest: +SKIP
        ('amd64', 3)
    """

    id: str
    created: datetime
    config: ImageConfig
    architecture: str
    os: str
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    parent: str | None = None
    comment: str = ""
    layers: list[LayerInfo] = field(default_factory=list)
    size: int = 0
    virtual_size: int = 0
    author: str = ""
    rootfs_type: str = "layers"
    rootfs_layers: list[str] = field(default_factory=list)
    manifest_digest: str | None = None
    media_type: str | None = None

    @classmethod
    def of(
        cls,
        tags: Sequence[str],
        doc: Any,
        config_blob: BlobInfo,
        layers: Sequence[BlobInfo],
        manifest_digest: str | None = None,
        media_type: str | None = None,
        repo_digests: Sequence[str] = (),
    ) -> ImageInspect:
        """Build it from a parsed config document and the manifest's descriptors.

        Raises ``ValidationError`` when the config is not an image config.

        Example:
            >>> cfg = BlobInfo("sha256:" + "0" * 64, 2, "application/json")
            >>> ImageInspect.of(["a:1"], {"os": "linux"}, cfg, []).os
            'linux'
        """
        config = ImageConfig.from_json(doc)
        rootfs = _field(doc, "rootfs", dict) or {}
        diff_ids = config.diff_ids
        size = sum(x.size for x in layers)
        return cls(
            id=config_blob.digest,
            created=config.created,
            config=config,
            architecture=config.architecture,
            os=config.os,
            repo_tags=list(tags),
            repo_digests=list(repo_digests),
            comment=_field(doc, "comment", str) or "",
            layers=[
                LayerInfo(
                    x.digest,
                    x.size,
                    x.media_type,
                    diff_id=diff_ids[n] if n < len(diff_ids) else None,
                )
                for n, x in enumerate(layers)
            ],
            size=size,
            virtual_size=size,
            author=_field(doc, "author", str) or "",
            rootfs_type=_field(rootfs, "type", str) or "layers",
            rootfs_layers=list(diff_ids),
            manifest_digest=manifest_digest,
            media_type=media_type,
        )


@dataclass(frozen=True)
class BlobResult:
    """What the transfer engine did with one blob, and how many bytes it moved."""

    digest: str
    size: int
    action: BlobAction
    bytes_moved: int


@dataclass(frozen=True)
class PushResult:
    """The outcome of pushing one image under one tag.

    Example:
        >>> result = client.push("app.tar", "team/app:v1")  # doctest: +SKIP
        >>> result.digest, result.bytes_uploaded  # doctest: +SKIP
        ('sha256:...', 31457280)
    """

    repository: str
    tag: str
    digest: str
    blobs: tuple[BlobResult, ...]

    @property
    def bytes_uploaded(self) -> int:
        """Blob bytes this push sent (0 when the registry had every blob)."""
        return sum(b.bytes_moved for b in self.blobs)


@dataclass(frozen=True)
class CopyResult:
    """The outcome of copying one image (or a whole index) to one place.

    Attributes:
        source: where it came from, as written (``localhost:15000/team/app:v1``,
            ``oci:build/out:v1``).
        destination: where it went, one entry per name it was put under
            (``mirror.example.com/team/app:v1``, ``oci:out:v1``, ``docker-archive:app.tar``).
        digest: the manifest's digest there (the source's: manifests are copied byte for
            byte, unless layers were compressed on the way).
        media_type: the manifest's media type (an index's, when a whole index was copied).
        blobs: what happened to each blob (exists, mounted, uploaded, downloaded).
        image: the image copied (for an index, the image for this machine's platform, or its
            first), as :class:`ImageInspect`; None when not read.

    Example:
        >>> result = copy("oci:build/out:v1", "localhost:15000/team/app:v1")  # doctest: +SKIP
        >>> result.digest, result.bytes_moved  # doctest: +SKIP
        ('sha256:...', 31457280)
    """

    source: str
    destination: tuple[str, ...]
    digest: str
    media_type: str
    blobs: tuple[BlobResult, ...] = ()
    image: ImageInspect | None = field(default=None, repr=False)

    @property
    def bytes_moved(self) -> int:
        """Blob bytes this copy moved (0 when the destination had every blob)."""
        return sum(b.bytes_moved for b in self.blobs)


@dataclass(frozen=True)
class Referrer:
    """Something that refers to an image: a signature, an SBOM, an attestation, with what
    refers to it in turn.

    Attributes:
        digest: the referrer's manifest digest.
        media_type: its manifest's media type.
        artifact_type: what it is (``application/spdx+json``...), when it says.
        size: its manifest's size.
        annotations: its annotations, as listed.
        found: how it was found: ``api`` (the referrers API), ``fallback`` (the
            ``sha256-<hex>`` tag's index), ``tag`` (cosign's tags) or ``layout``.
        tag: the tag it goes under, for cosign's (``sha256-<hex>.sig``).
        referrers: what refers to this referrer (a signature of an SBOM).

    Example:
        >>> [r.artifact_type for r in referrers("localhost:15000/app:v1")]  # doctest: +SKIP
        ['application/spdx+json']
    """

    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    found: str = "api"
    tag: str | None = None
    referrers: tuple[Referrer, ...] = ()

    def walk(self) -> list[Referrer]:
        """This referrer and every one below it, depth first.

        Example:
            >>> len(signature.walk())  # doctest: +SKIP
            1
        """
        return [self, *(r for child in self.referrers for r in child.walk())]
