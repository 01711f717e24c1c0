"""An image as the engine sees it: a config blob and layer blobs, each able to open its bytes.

Archive readers and the registry client (for pull and copy) produce :class:`Image`; the transfer
engine and the archive writer consume it, whatever its source.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from .exceptions import DigestMismatchError, ValidationError
from .manifest import MAX_CONFIG_SIZE, build_manifest, load_json, sha256_digest
from .models import BlobInfo, ImageInspect


def read_full(reader: BinaryIO, size: int) -> bytes:
    """Read exactly ``size`` bytes, or fewer only at the end of ``reader``.

    Example:
        >>> read_full(io.BytesIO(b"abc"), 2)
        b'ab'
    """
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        data = reader.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


class BlobStream(io.RawIOBase):
    """A read-only stream of ``size`` bytes that can seek: what :meth:`Blob.open` gives.

    Subclasses read from ``self._pos`` and may override :meth:`_move` to follow a seek.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        target = min(max(0, base + pos), self.size)
        if target != self._pos:
            self._move(target)
        return self._pos

    def _move(self, target: int) -> None:
        self._pos = target

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass(frozen=True)
class Blob:
    """A descriptor plus a way to read its bytes from the start.

    ``open()`` returns a fresh binary reader; each call is independent, so several threads may
    read different blobs (or the same one) at once.
    """

    info: BlobInfo
    opener: Callable[[], BinaryIO] = field(repr=False, compare=False)
    # Opens bytes [start, end) alone, where the source can (a registry): for ranged downloads.
    range_opener: Callable[[int, int], BinaryIO] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def digest(self) -> str:
        """The blob's ``sha256:`` digest."""
        return self.info.digest

    @property
    def size(self) -> int:
        """The blob's size in bytes."""
        return self.info.size

    @property
    def key(self) -> str:
        """What identifies the upload of these bytes: the digest."""
        return self.info.digest

    @property
    def label(self) -> str:
        """The digest progress events name."""
        return self.info.digest

    @property
    def total(self) -> int:
        """The bytes progress events count to."""
        return self.info.size

    def progress(self, reader: BinaryIO | None, offset: int) -> int:
        """How far along ``offset`` bytes sent are, in :attr:`total`'s units: the offset."""
        return offset

    def open(self) -> BinaryIO:
        """Open the blob's bytes for reading."""
        return self.opener()

    def verify(self, length: int, hexdigest: str) -> str:
        """Check that ``length`` bytes hashing to ``hexdigest`` are this blob; its digest.

        Raises ``DigestMismatchError`` saying which differs.

        Example:
            >>> blob.verify(blob.size, hashlib.sha256(data).hexdigest())  # doctest: +SKIP
            'sha256:...'
        """
        digest = "sha256:" + hexdigest
        if length != self.size:
            raise DigestMismatchError(
                f"blob {self.digest}: source gave {length} bytes, expected {self.size}"
            )
        if digest != self.digest:
            raise DigestMismatchError(f"blob {self.digest}: the bytes have digest {digest}")
        return digest


class Uploadable(Protocol):
    """What the upload protocol needs of a blob: a :class:`Blob`, or bytes made on the way
    (a compressed layer) whose digest and size are known only once they are all read."""

    @property
    def key(self) -> str:
        """Identifies these bytes before they are read (the journal and the engine use it)."""

    @property
    def digest(self) -> str | None:
        """The digest, when known before reading."""

    @property
    def size(self) -> int | None:
        """The size, when known before reading."""

    @property
    def label(self) -> str:
        """The digest progress events name."""

    @property
    def total(self) -> int:
        """The bytes progress events count to."""

    def progress(self, reader: BinaryIO | None, offset: int) -> int:
        """How far along ``offset`` bytes read from ``reader`` are, in :attr:`total`'s units."""

    def open(self) -> BinaryIO:
        """A fresh reader of the bytes, from the start."""

    def verify(self, length: int, hexdigest: str) -> str:
        """Check ``length`` bytes hashing to ``hexdigest``; the digest to commit."""


@dataclass(frozen=True)
class Image:
    """One image: config, layers (base first), the tags it carries and, when the source had
    one, the exact manifest bytes describing it (pushed verbatim so its digest is kept).
    ``repository`` says where it comes from (``host/repository``), as progress events name it.
    """

    config: Blob
    layers: tuple[Blob, ...]
    tags: tuple[str, ...] = ()
    manifest: bytes | None = field(default=None, repr=False)
    manifest_media_type: str | None = None
    config_bytes: bytes = field(default=b"", repr=False)
    repository: str = ""

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Layers first, then the config: the order a registry wants them before the manifest."""
        return (*self.layers, self.config)

    @property
    def manifest_bytes(self) -> bytes:
        """The manifest to push or save: the source's own bytes, else one built for the blobs."""
        return self.manifest or build_manifest(
            str(self.manifest_media_type), self.config.info, [layer.info for layer in self.layers]
        )

    @property
    def size(self) -> int:
        """Bytes of the config plus every layer as stored."""
        return self.config.size + sum(layer.size for layer in self.layers)

    def inspect(self) -> ImageInspect:
        """Tags, config (architecture, os, env...), layers with their diff_ids, and sizes.

        Raises ``ValidationError`` when the config is not an image config.

        Example:
            >>> archive.select().inspect().architecture  # doctest: +SKIP
            'amd64'
        """
        where = f"config {self.config.digest}"
        try:
            return ImageInspect.of(
                self.tags,
                load_json(self.config_bytes, where, MAX_CONFIG_SIZE),
                self.config.info,
                [layer.info for layer in self.layers],
                sha256_digest(self.manifest) if self.manifest else None,
                self.manifest_media_type,
            )
        except ValidationError as e:
            raise ValidationError(f"{where} is not a valid image config ({e})") from None
