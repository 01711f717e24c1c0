"""Random access into a gzip-compressed archive, without decompressing it to disk.

A gzip stream can only be read from its start, but zlib's inflater can be copied. While the tar
headers are scanned (one pass over the stream), :class:`GzipScanner` keeps a few recent
:class:`Checkpoint`\\ s: the compressed offset, the uncompressed offset it corresponds to, and a
copy of the inflater there. Each member found is paired with the last checkpoint before its
data, and :class:`GzipMemberReader` later restarts inflating from that checkpoint: reading a
layer costs one pass over its own compressed bytes (plus at most a few MiB skipped), with no
temporary file and memory bounded by a checkpoint per member.

The scan stops at the tar's end-of-archive block, so trailing bytes are never inflated, and
refuses an archive that inflates to more than :data:`MAX_RATIO` times its size (a gzip bomb).
"""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass

from ..exceptions import TarReadError
from ..image import BlobStream

# Deflate reaches about 1000:1 on zeros; image archives rarely pass 10:1.
MAX_RATIO = 100
_RATIO_GRACE = 64 * 1024 * 1024  # small archives may inflate more
_IN_PIECE = 64 * 1024
_OUT_PIECE = 1024 * 1024
_CHECKPOINT_EVERY = 4 * 1024 * 1024
_GZIP = 16 + zlib.MAX_WBITS


@dataclass(frozen=True)
class Checkpoint:
    """Where inflating can start again: input and output offsets, and the inflater there."""

    compressed: int
    uncompressed: int
    inflater: zlib._Decompress
    pending: bytes  # compressed input the inflater had not consumed yet


class _Inflater:
    """Inflates a gzip file (several concatenated members allowed) from a checkpoint."""

    def __init__(self, fd: int, start: Checkpoint) -> None:
        self._fd = fd
        self._inflater = start.inflater.copy()
        self._pending = start.pending
        self.compressed = start.compressed
        self.uncompressed = start.uncompressed
        self.finished = False

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.compressed, self.uncompressed, self._inflater.copy(), self._pending)

    def inflate(self, limit: int) -> bytes:
        """Up to ``limit`` more uncompressed bytes; ``b""`` only at the end of the stream."""
        while not self.finished:
            data = self._pending
            if not data:
                data = os.pread(self._fd, _IN_PIECE, self.compressed)
                self.compressed += len(data)
                if not data:
                    if not self._inflater.eof:
                        raise TarReadError(
                            "cannot decompress: the gzip data ends early (truncated)"
                        )
                    self.finished = True
                    break
            try:
                out = self._inflater.decompress(data, max(1, limit))
            except zlib.error as e:
                raise TarReadError(f"cannot decompress the gzip data ({e})") from None
            self._pending = self._inflater.unconsumed_tail
            if self._inflater.eof:
                # Past a member's end the rest of the input is in unused_data alone; CPython
                # may leave a copy of it in unconsumed_tail too, which must not be fed again.
                rest = self._inflater.unused_data
                while len(rest) < 2:  # enough to tell whether another member follows
                    more = os.pread(self._fd, _IN_PIECE, self.compressed)
                    if not more:
                        break
                    self.compressed += len(more)
                    rest += more
                self._pending = b""
                if rest.startswith(b"\x1f\x8b"):
                    self._inflater = zlib.decompressobj(_GZIP)  # another gzip member follows
                    self._pending = rest
                else:
                    self.finished = True  # anything after the last member is ignored
            if out:
                self.uncompressed += len(out)
                return out
        return b""


def start() -> Checkpoint:
    """The checkpoint at the very start of a gzip file."""
    return Checkpoint(0, 0, zlib.decompressobj(_GZIP), b"")


class GzipScanner(io.RawIOBase):
    """The uncompressed bytes of a gzip file, read once from the start (for ``tarfile``), keeping
    recent checkpoints so members found can be read again later.

    Example:
        >>> scanner = GzipScanner(fd, "app.tar.gz", os.fstat(fd).st_size)  # doctest: +SKIP
        >>> with tarfile.open(fileobj=scanner, mode="r|") as tar: ...  # doctest: +SKIP
    """

    def __init__(self, fd: int, label: str, compressed_size: int) -> None:
        super().__init__()
        self._label = label
        self._limit = max(_RATIO_GRACE, MAX_RATIO * compressed_size)
        self._inflater = _Inflater(fd, start())
        self._buffer = b""
        self._checkpoints = [self._inflater.checkpoint()]
        self.position = 0  # uncompressed bytes handed to the reader

    def readable(self) -> bool:
        return True

    def checkpoint_before(self, offset: int) -> Checkpoint:
        """The latest checkpoint at or before uncompressed ``offset`` (a member just found)."""
        return max(
            (c for c in self._checkpoints if c.uncompressed <= offset),
            key=lambda c: c.uncompressed,
        )

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        if not self._buffer:
            inflater = self._inflater
            last = self._checkpoints[-1].uncompressed
            if inflater.uncompressed - last >= _CHECKPOINT_EVERY:
                # A member's data may start just before the position reached (tarfile reads
                # ahead a little): keep the last few checkpoints, not only the latest.
                self._checkpoints = [*self._checkpoints[-2:], inflater.checkpoint()]
            self._buffer = inflater.inflate(max(want, _OUT_PIECE))
            if inflater.uncompressed > self._limit:
                raise TarReadError(
                    f"{self._label}: inflates to more than {MAX_RATIO} times its size; refusing "
                    "what looks like a gzip bomb (decompress it yourself if it is genuine)"
                )
        n = min(want, len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        self.position += n
        return n


class GzipMemberReader(BlobStream):
    """``size`` bytes at uncompressed ``offset`` of a gzip file, inflated from ``checkpoint``.

    Forward-only; a seek backwards starts again from the checkpoint.
    """

    def __init__(self, path: str, checkpoint: Checkpoint, offset: int, size: int) -> None:
        super().__init__(size)
        self._fd = os.open(path, os.O_RDONLY)
        self._checkpoint = checkpoint
        self._offset = offset
        self._inflater = _Inflater(self._fd, checkpoint)
        self._buffer = b""

    def _move(self, target: int) -> None:
        if target < self._pos:
            self._inflater = _Inflater(self._fd, self._checkpoint)
            self._buffer = b""
            self._pos = 0
        while self._pos < target:
            self._pos += len(self.read(min(_OUT_PIECE, target - self._pos)))

    def read(self, size: int | None = -1) -> bytes:
        left = self.size - self._pos
        want = left if size is None or size < 0 else min(size, left)
        parts: list[bytes] = []
        got = 0
        while got < want:
            if not self._buffer:
                self._buffer = self._next(want - got)
            piece = self._buffer[: want - got]
            self._buffer = self._buffer[len(piece) :]
            parts.append(piece)
            got += len(piece)
        self._pos += got
        return b"".join(parts)

    def _next(self, want: int) -> bytes:
        """The next inflated bytes of the member, after skipping to its start."""
        start = self._offset + self._pos
        while True:
            before = self._inflater.uncompressed
            out = self._inflater.inflate(max(want, _OUT_PIECE))
            if not out:
                raise TarReadError("archive ended before the member did (truncated archive)")
            if before + len(out) > start:
                return out[max(0, start - before) :]

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
