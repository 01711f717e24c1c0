"""The files of an OCI image layout directory, read as the members of an archive are.

:class:`DirectoryStore` answers what :class:`~registryv2.archive.tarfile_index.TarIndex`
answers for a tar (is a file there, how large, open it as a stream, read a small one whole), so
that one reader serves layouts in a tar and layouts on disk. Only regular files inside the
directory are read: a name with ``..``, or a symbolic link that leads out of the layout, is
refused, as is a FIFO or a device.
"""

from __future__ import annotations

import io
import os
import stat
from types import TracebackType

from ..exceptions import ArchiveNotFoundError, TarReadError
from .tarfile_index import Member, SectionReader, clean_name


class DirectoryStore:
    """The regular files under one directory, by their path relative to it.

    Example:
        >>> with DirectoryStore.open("build/out") as layout:  # doctest: +SKIP
        ...     index = layout.read("index.json")
    """

    def __init__(self, label: str, root: str) -> None:
        self.label = label
        self._root = root

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> DirectoryStore:
        """The directory at ``path``; ``TarReadError`` when it is not one."""
        label = os.fspath(path)
        if not os.path.exists(label):
            raise ArchiveNotFoundError(f"{label}: no such directory")
        if not os.path.isdir(label):
            raise TarReadError(f"{label}: not a directory")
        return cls(label, os.path.realpath(label))

    def __enter__(self) -> DirectoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: files are opened, and closed, one by one."""

    def __contains__(self, name: str) -> bool:
        try:
            self.member(name)
        except TarReadError:
            return False
        return True

    def member(self, name: str) -> Member:
        """The regular file ``name`` (following links that stay inside the layout)."""
        path = clean_name(name)
        if not path or path == ".." or path.startswith("../"):
            raise TarReadError(f"{self.label}: {name!r} points outside the layout")
        real = os.path.realpath(os.path.join(self._root, path))
        if os.path.commonpath([real, self._root]) != self._root:
            raise TarReadError(f"{self.label}: {name!r} is a link that leaves the layout")
        try:
            info = os.stat(real)
        except FileNotFoundError:
            raise TarReadError(f"{self.label}: no file {name!r} in the layout") from None
        except OSError as e:
            raise TarReadError(f"{self.label}: cannot read {name!r} ({e.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            raise TarReadError(f"{self.label}: {name!r} is not a regular file")
        return Member(real, 0, info.st_size)

    def open_member(self, name: str) -> io.RawIOBase:
        """Open one file for streaming."""
        m = self.member(name)
        try:
            return SectionReader(m.name, 0, m.size)
        except OSError as e:
            raise TarReadError(f"{self.label}: cannot read {name!r} ({e.strerror})") from None

    def read(self, name: str, limit: int = 64 * 1024 * 1024) -> bytes:
        """Read a small file (a JSON document) whole; larger than ``limit`` is an error."""
        m = self.member(name)
        if m.size > limit:
            raise TarReadError(f"{self.label}: {name!r} is {m.size} bytes, too large for metadata")
        with self.open_member(name) as f:
            return f.read()

    def head(self, name: str, n: int = 8) -> bytes:
        """The first ``n`` bytes of a file."""
        with self.open_member(name) as f:
            return f.read(n)
