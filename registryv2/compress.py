"""Compressing layers on push: gzip or zstd, streamed as the upload reads, remembered after.

A layer the archive holds uncompressed (``docker save`` writes them so) can go up compressed:
``gzip`` as ``docker push`` sends it, ``zstd`` in an OCI manifest. The compressed bytes are
made as the upload reads them, a megabyte at a time (no temporary file, memory bounded); their
digest and size are known once the last byte is sent, and the manifest is built from them. The
config is unchanged: its ``rootfs.diff_ids`` name the uncompressed layers, as they must.

Compression is deterministic (same encoder, level and input pieces give the same bytes), so a
resumed upload re-makes the bytes it needs. The digest each layer compressed to is remembered
in the state directory: the next push of the same archive asks the registry for that digest
and, finding it, sends nothing.

gzip uses ISA-L (the ``isal`` package): at its level 1 it compresses layers at several times
zlib-ng's speed with a smaller output, which is what keeps a compressing push ahead of the
wire on fast links.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from .exceptions import ValidationError
from .image import Blob, Image, read_full
from .manifest import (
    DOCKER_FOREIGN_LAYER_GZIP,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    build_manifest,
)
from .models import BlobInfo

logger = logging.getLogger(__name__)

Compression = Literal["gzip", "zstd"]
COMPRESSIONS: tuple[Compression, ...] = ("gzip", "zstd")
_PIECE = 1024 * 1024  # input fed to the encoder at a time: fixed, so the output is too
_GZIP_LEVEL = 1  # ISA-L's levels run 0-3; 1 is its fast default
_ZSTD_LEVEL = 3  # zstd's default


class _Encoder(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


def _encoder(algorithm: Compression) -> _Encoder:
    if algorithm == "gzip":
        from isal import isal_zlib

        return isal_zlib.compressobj(_GZIP_LEVEL, isal_zlib.DEFLATED, 16 + 15)
    import zstandard

    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compressobj()


def encoder_id(algorithm: Compression) -> str:
    """Which encoder, version and level make the bytes: remembered digests hold for it alone.

    Example:
        >>> encoder_id("gzip").startswith("gzip-isal-")
        True
    """
    if algorithm == "gzip":
        import isal

        return f"gzip-isal-{isal.__version__}-{_GZIP_LEVEL}"
    import zstandard

    return f"zstd-{zstandard.__version__}-{_ZSTD_LEVEL}"


def check_compression(value: str | None) -> Compression | None:
    """``None``, or one of :data:`COMPRESSIONS`; anything else is a ``ValidationError``.

    Example:
        >>> check_compression("zstd")
        'zstd'
    """
    if value is None or value in COMPRESSIONS:
        return value
    raise ValidationError(f"unknown compression {value!r}: choose gzip or zstd")


def is_compressed(media_type: str) -> bool:
    """Whether a layer of this media type is stored compressed already.

    Example:
        >>> is_compressed("application/vnd.oci.image.layer.v1.tar+zstd")
        True
    """
    return media_type.endswith(("gzip", "zstd"))


class CompressingReader(io.RawIOBase):
    """The compressed form of ``source``, made as it is read; ``consumed`` counts the source
    bytes read so far (what progress reports)."""

    def __init__(self, source: BinaryIO, algorithm: Compression) -> None:
        super().__init__()
        self._source = source
        self._encoder = _encoder(algorithm)
        self._out = bytearray()
        self._done = False
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while len(self._out) < len(buffer) and not self._done:
            data = read_full(self._source, _PIECE)
            if data:
                self.consumed += len(data)
                self._out += self._encoder.compress(data)
            else:
                self._out += self._encoder.flush()
                self._done = True
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        del self._out[:n]
        return n

    def close(self) -> None:
        self._source.close()
        super().close()


@dataclass(frozen=True)
class CompressedBlob:
    """A layer to push compressed: its digest and size are known once all of it is read.

    ``remembered`` is the digest and size the same layer compressed to before (from
    :class:`CompressionMemory`): the registry is asked for it first.
    """

    original: Blob
    algorithm: Compression
    media_type: str
    remembered: BlobInfo | None = None

    @property
    def key(self) -> str:
        """The uncompressed digest and the compression."""
        return f"{self.algorithm}:{self.original.digest}"

    @property
    def digest(self) -> str | None:
        """The remembered digest, to ask the registry for; None when never compressed here."""
        return self.remembered.digest if self.remembered else None

    @property
    def size(self) -> None:
        """Unknown until compressed."""
        return None

    @property
    def label(self) -> str:
        """Progress names the layer by its uncompressed digest."""
        return self.original.digest

    @property
    def total(self) -> int:
        """Progress counts the uncompressed bytes."""
        return self.original.size

    def progress(self, reader: BinaryIO | None, offset: int) -> int:
        """The uncompressed bytes consumed so far."""
        return reader.consumed if isinstance(reader, CompressingReader) else 0

    def open(self) -> BinaryIO:
        """A fresh compressing reader over the layer."""
        return CompressingReader(self.original.open(), self.algorithm)  # type: ignore[return-value]

    def verify(self, length: int, hexdigest: str) -> str:
        """The digest of the compressed bytes: whatever they hash to."""
        return "sha256:" + hexdigest


class CompressionMemory:
    """What each uncompressed layer compressed to, kept in ``directory`` (one small file per
    layer and encoder), so that pushing it again sends nothing."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._warned = False

    def _path(self, algorithm: Compression, digest: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{encoder_id(algorithm)}-{digest.removeprefix('sha256:')}"

    def recall(self, algorithm: Compression, digest: str) -> BlobInfo | None:
        """The compressed digest and size of the layer ``digest``, if remembered."""
        path = self._path(algorithm, digest)
        try:
            doc = json.loads(path.read_text()) if path else None
            return BlobInfo(str(doc["digest"]), int(doc["size"])) if doc else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remember(self, algorithm: Compression, digest: str, compressed: BlobInfo) -> None:
        """Keep what the layer ``digest`` compressed to; best effort."""
        path = self._path(algorithm, digest)
        if path is None:
            return
        doc = json.dumps({"digest": compressed.digest, "size": compressed.size})
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as f:
                f.write(doc)
            os.replace(f.name, path)
        except OSError as e:
            if not self._warned:
                self._warned = True
                logger.warning("cannot remember compressed digests in %s (%s)", path.parent, e)


def manifest_type(image: Image, algorithm: Compression) -> str:
    """The manifest flavour of ``image`` pushed with ``algorithm``: zstd needs OCI's."""
    return OCI_MANIFEST if algorithm == "zstd" else str(image.manifest_media_type)


def _layer_type(media_type: str, manifest: str) -> str:
    """A stored-compressed layer's media type in the manifest flavour ``manifest``."""
    if manifest == OCI_MANIFEST and media_type == DOCKER_LAYER_GZIP:
        return OCI_LAYER_GZIP
    if manifest == OCI_MANIFEST and media_type == DOCKER_FOREIGN_LAYER_GZIP:
        return "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    return media_type


def compressed_layers(
    image: Image, algorithm: Compression, memory: CompressionMemory
) -> list[Blob | CompressedBlob]:
    """The layers to upload: each uncompressed one as a :class:`CompressedBlob`, the others
    (compressed already) as they are stored.

    Example:
        >>> compressed_layers(image, "gzip", CompressionMemory(None))  # doctest: +SKIP
        [CompressedBlob(original=Blob(...), algorithm='gzip', ...)]
    """
    manifest = manifest_type(image, algorithm)
    if algorithm == "gzip":
        media_type = DOCKER_LAYER_GZIP if manifest == DOCKER_MANIFEST else OCI_LAYER_GZIP
    else:
        media_type = OCI_LAYER_ZSTD
    layers: list[Blob | CompressedBlob] = []
    for layer in image.layers:
        if is_compressed(layer.info.media_type):
            layers.append(layer)
        else:
            remembered = memory.recall(algorithm, layer.digest)
            layers.append(CompressedBlob(layer, algorithm, media_type, remembered))
    return layers


def compressed_manifest(
    image: Image,
    algorithm: Compression,
    layers: Sequence[Blob | CompressedBlob],
    pushed: Sequence[BlobInfo],
) -> tuple[bytes, str]:
    """The manifest for ``image`` whose ``layers`` went up as ``pushed``; and its media type.

    Example:
        >>> compressed_manifest(image, "zstd", layers, pushed)[1]  # doctest: +SKIP
        'application/vnd.oci.image.manifest.v1+json'
    """
    manifest = manifest_type(image, algorithm)
    infos = [
        BlobInfo(
            info.digest,
            info.size,
            layer.media_type
            if isinstance(layer, CompressedBlob)
            else _layer_type(layer.info.media_type, manifest),
        )
        for layer, info in zip(layers, pushed, strict=True)
    ]
    return build_manifest(manifest, image.config.info, infos), manifest
