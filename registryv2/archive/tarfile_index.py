"""Random access to the members of a tar archive on disk, without extracting it.

The archive is scanned once for its headers; afterwards each regular file is a byte range of the
archive file, read with ``os.pread`` so that many threads can stream different members at once
and no member is ever held in memory whole. A gzip-compressed archive is first decompressed to a
temporary file (there is no random access into a gzip stream), which is removed on ``close()``.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from types import TracebackType

from ..exceptions import TarReadError

_COPY_BUFFER = 1024 * 1024
_MAX_LINK_DEPTH = 32


@dataclass(frozen=True)
class Member:
    """A regular file inside the archive: where its bytes start and how many there are."""

    name: str
    offset: int
    size: int


def _clean(name: str) -> str:
    name = posixpath.normpath(name.lstrip("/"))
    return "" if name == "." else name


class SectionReader(io.RawIOBase):
    """A read-only, seekable view of ``size`` bytes at ``offset`` of a file."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self._offset = offset
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = min(max(0, base + pos), self._size)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        # One allocation per call: pread's own buffer is returned, not copied into another.
        left = self._size - self._pos
        want = left if size is None or size < 0 else min(size, left)
        if want <= 0:
            return b""
        data = os.pread(self._fd, want, self._offset + self._pos)
        if not data:
            raise TarReadError("archive ended before the member did (truncated archive)")
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

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

    def __init__(self, label: str, tar_path: str, temporary: bool) -> None:
        self.label = label
        self._tar_path = tar_path
        self._temporary = temporary
        self._files: dict[str, Member] = {}
        self._links: dict[str, str] = {}
        try:
            self._scan()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> TarIndex:
        """Index the tar archive at ``path``, decompressing it first if it is gzip-compressed."""
        label = os.fspath(path)
        try:
            with open(label, "rb") as f:
                magic = f.read(2)
        except FileNotFoundError:
            raise TarReadError(f"{label}: no such file") from None
        except IsADirectoryError:
            raise TarReadError(f"{label}: is a directory, not an image archive") from None
        except OSError as e:
            raise TarReadError(f"{label}: cannot read ({e.strerror})") from None
        if magic != b"\x1f\x8b":
            return cls(label, label, temporary=False)
        fd, tmp = tempfile.mkstemp(prefix="registryv2-", suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as out, gzip.open(label, "rb") as src:
                shutil.copyfileobj(src, out, _COPY_BUFFER)
        except (OSError, EOFError, zlib.error) as e:
            os.unlink(tmp)
            raise TarReadError(f"{label}: cannot decompress gzip archive ({e})") from None
        except BaseException:
            os.unlink(tmp)
            raise
        return cls(label, tmp, temporary=True)

    def _scan(self) -> None:
        try:
            with tarfile.open(self._tar_path, mode="r:") as tar:
                for info in tar:
                    name = _clean(info.name)
                    if not name:
                        continue
                    if info.isreg():
                        self._files[name] = Member(name, info.offset_data, info.size)
                    elif info.issym():
                        target = posixpath.join(posixpath.dirname(name), info.linkname)
                        self._links[name] = _clean(target)
                    elif info.islnk():
                        self._links[name] = _clean(info.linkname)
        except tarfile.ReadError as e:
            raise TarReadError(f"{self.label}: not a tar archive ({e})") from None
        except (tarfile.TarError, EOFError) as e:
            raise TarReadError(f"{self.label}: damaged tar archive ({e})") from None
        if not self._files:
            raise TarReadError(f"{self.label}: the archive holds no files")

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
        """Remove the decompressed copy, if one was made."""
        if self._temporary and os.path.exists(self._tar_path):
            os.unlink(self._tar_path)

    def __contains__(self, name: str) -> bool:
        try:
            self.member(name)
        except TarReadError:
            return False
        return True

    def member(self, name: str) -> Member:
        """The regular file ``name`` refers to, following symbolic and hard links."""
        path = _clean(name)
        for _ in range(_MAX_LINK_DEPTH):
            if path.startswith("../") or path == "..":
                raise TarReadError(f"{self.label}: {name!r} points outside the archive")
            if path in self._files:
                return self._files[path]
            if path not in self._links:
                raise TarReadError(f"{self.label}: no file {name!r} in the archive")
            path = self._links[path]
        raise TarReadError(f"{self.label}: {name!r} is a loop of links")

    def open_member(self, name: str) -> SectionReader:
        """Open one member for streaming."""
        m = self.member(name)
        return SectionReader(self._tar_path, m.offset, m.size)

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
