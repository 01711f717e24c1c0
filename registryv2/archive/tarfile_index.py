"""Random access to the members of a tar archive on disk, without extracting it.

The archive is scanned once for its headers; afterwards each regular file is a byte range of the
archive file, read with ``os.pread`` so that many threads can stream different members at once
and no member is ever held in memory whole. A gzip-compressed archive is read in place too:
each member is inflated from a checkpoint kept during the scan (``gzip_index.py``), with no
temporary file. Only regular files are opened (a FIFO or a device is refused, never waited on).
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass, field
from types import TracebackType

from ..exceptions import (
    INVALID_TAR,
    TAR_NOT_FOUND,
    TAR_UNREADABLE,
    ArchiveNotFoundError,
    TarReadError,
)
from ..image import BlobStream
from .gzip_index import Checkpoint, GzipMemberReader, GzipScanner

_MAX_LINK_DEPTH = 32


@dataclass(frozen=True)
class Member:
    """A regular file inside the archive: where its bytes start (uncompressed) and how many
    there are; in a gzip archive, where to start inflating to reach them."""

    name: str
    offset: int
    size: int
    checkpoint: Checkpoint | None = field(default=None, repr=False, compare=False)


def clean_name(name: str) -> str:
    name = posixpath.normpath(name.lstrip("/"))
    return "" if name == "." else name


class SectionReader(BlobStream):
    """A read-only, seekable view of ``size`` bytes at ``offset`` of a file."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        super().__init__(size)
        self._fd = os.open(path, os.O_RDONLY)
        self._offset = offset

    def read(self, size: int | None = -1) -> bytes:
        # One allocation per call: pread's own buffer is returned, not copied into another.
        left = self.size - self._pos
        want = left if size is None or size < 0 else min(size, left)
        if want <= 0:
            return b""
        data = os.pread(self._fd, want, self._offset + self._pos)
        if not data:
            raise TarReadError("archive ended before the member did (truncated archive)")
        self._pos += len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class TarIndex:
    """The regular files of one tar archive, by name, with links resolved.

    Example:
        >>> with TarIndex.open("app.tar") as tar:  # doctest: +SKIP
        ...     manifest = tar.read("manifest.json")
    """

    def __init__(self, label: str, fd: int, compressed: bool) -> None:
        self.label = label
        self._path = label
        self._files: dict[str, Member] = {}
        self._links: dict[str, str] = {}
        with os.fdopen(fd, "rb") as raw:
            scanner = GzipScanner(fd, label, os.fstat(fd).st_size) if compressed else None
            try:
                # A gzip stream is read once, in order ("r|"); a plain tar is seeked through.
                with tarfile.open(fileobj=scanner or raw, mode="r|" if scanner else "r:") as tar:
                    self._scan(tar, scanner)
            except tarfile.ReadError as e:
                raise TarReadError(f"{INVALID_TAR}: {label}: not a tar archive ({e})") from None
            except (tarfile.TarError, EOFError) as e:
                raise TarReadError(f"{INVALID_TAR}: {label}: damaged tar archive ({e})") from None
            except TarReadError as e:
                raise TarReadError(f"{INVALID_TAR}: {label}: {e}") from None
        if not self._files:
            raise TarReadError(f"{INVALID_TAR}: {label}: the archive holds no files")

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> TarIndex:
        """Index the tar archive at ``path``, plain or gzip-compressed."""
        label = os.fspath(path)
        try:
            # Non-blocking, so that a FIFO is refused below instead of waited on.
            fd = os.open(label, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise ArchiveNotFoundError(f"{TAR_NOT_FOUND}: {label}") from None
        except IsADirectoryError:
            raise TarReadError(
                f"{TAR_UNREADABLE}: {label}: is a directory, not an image archive"
            ) from None
        except OSError as e:
            raise TarReadError(f"{TAR_UNREADABLE}: {label}: cannot read ({e.strerror})") from None
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise TarReadError(
                    f"{TAR_UNREADABLE}: {label}: is a directory, not an image archive"
                )
            if not stat.S_ISREG(mode):
                raise TarReadError(
                    f"{INVALID_TAR}: {label}: not a regular file, not an image archive"
                )
            magic = os.pread(fd, 2, 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(label, fd, compressed=magic == b"\x1f\x8b")

    def _scan(self, tar: tarfile.TarFile, scanner: GzipScanner | None) -> None:
        for info in tar:
            name = clean_name(info.name)
            if not name:
                continue
            if info.isreg():
                checkpoint = scanner.checkpoint_before(info.offset_data) if scanner else None
                self._files[name] = Member(name, info.offset_data, info.size, checkpoint)
            elif info.issym():
                target = posixpath.join(posixpath.dirname(name), info.linkname)
                self._links[name] = clean_name(target)
            elif info.islnk():
                self._links[name] = clean_name(info.linkname)

    def __enter__(self) -> TarIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: members are opened, and closed, one by one."""

    def __contains__(self, name: str) -> bool:
        try:
            self.member(name)
        except TarReadError:
            return False
        return True

    def member(self, name: str) -> Member:
        """The regular file ``name`` refers to, following symbolic and hard links."""
        path = clean_name(name)
        for _ in range(_MAX_LINK_DEPTH):
            if path.startswith("../") or path == "..":
                raise TarReadError(f"{self.label}: {name!r} points outside the archive")
            if path in self._files:
                return self._files[path]
            if path not in self._links:
                raise TarReadError(f"{self.label}: no file {name!r} in the archive")
            path = self._links[path]
        raise TarReadError(f"{self.label}: {name!r} is a loop of links")

    def open_member(self, name: str) -> io.RawIOBase:
        """Open one member for streaming."""
        m = self.member(name)
        if m.checkpoint is not None:
            return GzipMemberReader(self._path, m.checkpoint, m.offset, m.size)
        return SectionReader(self._path, m.offset, m.size)

    def read(self, name: str, limit: int = 64 * 1024 * 1024) -> bytes:
        """Read a small member (a JSON document) whole; larger than ``limit`` is an error."""
        m = self.member(name)
        if m.size > limit:
            raise TarReadError(f"{self.label}: {name!r} is {m.size} bytes, too large for metadata")
        with self.open_member(name) as f:
            return f.read()

    def head(self, name: str, n: int = 8) -> bytes:
        """The first ``n`` bytes of a member (enough to recognise its compression)."""
        with self.open_member(name) as f:
            return f.read(n)
