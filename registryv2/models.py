"""The frozen dataclasses registryv2 takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .events import BlobAction
from .exceptions import ValidationError
from .retry import RetryPolicy

DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024
# Transfers are bound by the network, not the CPU; docker uploads 5 layers at a time too.
# Each worker holds one chunk in memory, so this also bounds a push's memory.
DEFAULT_WORKERS = 5
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
        insecure: allow plain http and skip certificate verification.
        workers: blobs moved in parallel.
        chunk_size: bytes sent per upload request (the registry's ``OCI-Chunk-Min-Length``
            raises it when larger).

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
    chunk_size: int = DEFAULT_CHUNK_SIZE
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    resume: bool = True
    state_dir: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, not {self.chunk_size}")
        if self.timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("timeouts must be positive")


@dataclass(frozen=True)
class BlobInfo:
    """A content descriptor: what a manifest says about one blob.

    Example:
        >>> BlobInfo("sha256:" + "0" * 64, 2, "application/vnd.oci.image.config.v1+json").size
        2
    """

    digest: str
    size: int
    media_type: str


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
    """One entry of an image index (manifest list)."""

    digest: str
    size: int
    media_type: str
    platform: Platform | None


@dataclass(frozen=True)
class ManifestInfo:
    """A manifest as the registry holds it.

    For an image manifest ``config`` and ``layers`` are set; for an index (manifest list)
    ``manifests`` lists its platforms. ``raw`` is the exact bytes, whose sha256 is ``digest``.

    Example:
        >>> info = get_manifest("localhost:15000", "app", "v1")  # doctest: +SKIP
        >>> info.is_index, info.layers[0].media_type  # doctest: +SKIP
        (False, 'application/vnd.docker.image.rootfs.diff.tar.gzip')
    """

    digest: str
    media_type: str
    size: int
    schema_version: int
    config: BlobInfo | None = None
    layers: tuple[BlobInfo, ...] = ()
    manifests: tuple[PlatformManifest, ...] = ()
    raw: bytes = field(default=b"", repr=False)

    @property
    def is_index(self) -> bool:
        """True for an image index or Docker manifest list."""
        return self.config is None


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image's config blob people ask about."""

    architecture: str | None = None
    os: str | None = None
    variant: str | None = None
    created: str | None = None
    author: str | None = None
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str | None = None
    user: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()
    diff_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, doc: Any) -> ImageConfig:
        """Read the fields from a parsed config blob (Docker or OCI image config).

        A field of the wrong shape (``Labels: 5``, a non-string in ``Env``) is a
        ``ValidationError`` naming it; absent fields are None or empty.

        Example:
            >>> ImageConfig.from_json({"architecture": "amd64", "os": "linux"}).os
            'linux'
        """
        if not isinstance(doc, dict):
            raise ValidationError("an image config is a JSON object")
        run = _field(doc, "config", dict) or {}
        rootfs = _field(doc, "rootfs", dict) or {}
        return cls(
            architecture=_field(doc, "architecture", str),
            os=_field(doc, "os", str),
            variant=_field(doc, "variant", str),
            created=_field(doc, "created", str),
            author=_field(doc, "author", str),
            env=_strings(run, "Env") or (),
            entrypoint=_strings(run, "Entrypoint"),
            cmd=_strings(run, "Cmd"),
            working_dir=_field(run, "WorkingDir", str) or None,
            user=_field(run, "User", str) or None,
            labels=_string_map(run, "Labels"),
            exposed_ports=tuple(sorted(_field(run, "ExposedPorts", dict) or {})),
            diff_ids=_strings(rootfs, "diff_ids") or (),
        )


def _field(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc.get(key)
    if value is not None and not isinstance(value, kind):
        raise ValidationError(f"config field {key} is {type(value).__name__}, not {kind.__name__}")
    return value


def _strings(doc: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = _field(doc, key, list)
    if value is None:
        return None
    if not all(isinstance(v, str) for v in value):
        raise ValidationError(f"config field {key} holds something other than strings")
    return tuple(value)


def _string_map(doc: dict[str, Any], key: str) -> dict[str, str]:
    value = _field(doc, key, dict) or {}
    if not all(isinstance(v, str) for v in value.values()):
        raise ValidationError(f"config field {key} holds something other than strings")
    return dict(value)


@dataclass(frozen=True)
class LayerInfo:
    """One layer of an image: how it is stored, and the digest of its uncompressed tar."""

    digest: str
    size: int
    media_type: str
    diff_id: str | None = None


@dataclass(frozen=True)
class ImageInspect:
    """An image's manifest and config together, from an archive or a registry.

    Attributes:
        tags: the archive's tags for the image, or the reference it was read from.
        manifest_digest: the manifest's digest, when the image has a manifest.
        config_digest: the config blob's digest (docker's "image ID").
        media_type: the manifest's media type, when known.
        config: architecture, os, env, entrypoint, labels and the rest.
        layers: the layers, base first.
        size: bytes of the config plus every layer as stored.

    Example:
        >>> info = inspect_docker_tar("app.tar")  # doctest: +SKIP
        >>> info.config.architecture, len(info.layers)  # doctest: +SKIP
        ('amd64', 3)
    """

    tags: tuple[str, ...]
    config_digest: str
    config: ImageConfig
    layers: tuple[LayerInfo, ...]
    size: int
    manifest_digest: str | None = None
    media_type: str | None = None

    @classmethod
    def of(
        cls,
        tags: tuple[str, ...],
        config: ImageConfig,
        config_blob: BlobInfo,
        layers: tuple[BlobInfo, ...],
        manifest_digest: str | None = None,
        media_type: str | None = None,
    ) -> ImageInspect:
        """Pair each layer with its diff_id from the config, and total the sizes.

        Example:
            >>> cfg = BlobInfo("sha256:" + "0" * 64, 2, "application/json")
            >>> ImageInspect.of(("a:1",), ImageConfig(), cfg, ()).size
            2
        """
        diff_ids = config.diff_ids
        return cls(
            tags=tags,
            config_digest=config_blob.digest,
            config=config,
            layers=tuple(
                LayerInfo(
                    x.digest, x.size, x.media_type, diff_ids[n] if n < len(diff_ids) else None
                )
                for n, x in enumerate(layers)
            ),
            size=config_blob.size + sum(x.size for x in layers),
            manifest_digest=manifest_digest,
            media_type=media_type,
        )

    @property
    def architecture(self) -> str | None:
        """Shortcut for ``config.architecture``."""
        return self.config.architecture

    @property
    def os(self) -> str | None:
        """Shortcut for ``config.os``."""
        return self.config.os


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
