"""An image as the engine sees it: a config blob and layer blobs, each able to open its bytes.

Archive readers produce :class:`Image`; the transfer engine and manifest builder consume it. A
future registry source (for ``copy``) produces the same shape, so nothing downstream changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from .models import BlobInfo


@dataclass(frozen=True)
class Blob:
    """A descriptor plus a way to read its bytes from the start.

    ``open()`` returns a fresh binary reader; each call is independent, so several threads may
    read different blobs (or the same one) at once.
    """

    info: BlobInfo
    opener: Callable[[], BinaryIO] = field(repr=False, compare=False)

    @property
    def digest(self) -> str:
        """The blob's ``sha256:`` digest."""
        return self.info.digest

    @property
    def size(self) -> int:
        """The blob's size in bytes."""
        return self.info.size

    def open(self) -> BinaryIO:
        """Open the blob's bytes for reading."""
        return self.opener()


@dataclass(frozen=True)
class Image:
    """One image: config, layers (base first), the tags it carries and, when the source had
    one, the exact manifest bytes describing it (pushed verbatim so its digest is kept).
    """

    config: Blob
    layers: tuple[Blob, ...]
    tags: tuple[str, ...] = ()
    manifest: bytes | None = field(default=None, repr=False)
    manifest_media_type: str | None = None
    config_bytes: bytes = field(default=b"", repr=False)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Layers first, then the config: the order a registry wants them before the manifest."""
        return (*self.layers, self.config)

    @property
    def size(self) -> int:
        """Bytes of the config plus every layer as stored."""
        return self.config.size + sum(layer.size for layer in self.layers)
