"""Writing image archives in docker 25+'s layout, which ``docker load`` and OCI tools both read.

The archive is an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``) plus the
``manifest.json`` docker reads. Every blob's size is known from its descriptor, so the whole tar
is laid out before a byte of a layer arrives: each layer gets a fixed slot in the file, and the
writers of :meth:`ArchiveWriter.blob_writer` fill their slots in parallel with ``os.pwrite``
(the pull's downloads do, in :mod:`registryv2.operations`). Nothing is buffered or copied twice.
This module knows nothing of registries.

The archive is written to a temporary file beside the target and renamed onto it only once every
slot is full; on any error the temporary file goes and the target path is left as it was.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import tarfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO

from ..exceptions import ArchiveWriteError, CancelledError, RegistryV2Error, ValidationError
from ..image import Blob, Image
from ..manifest import OCI_INDEX, sha256_digest
from .layout import OCI_LAYOUT, blob_path, tag_annotations

_BLOCK = tarfile.BLOCKSIZE
# Bytes written between two background write-backs of the file.
_FLUSH_EVERY = 32 * 1024 * 1024


def _padded(size: int, unit: int = _BLOCK) -> int:
    return -(-size // unit) * unit


def _header(name: str, size: int, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0  # the same images give the same archive, byte for byte
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.mode = 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class _File:
    """The temporary file being written: writes after it was closed are refused, not misdirected
    (a late worker must never write into whatever file reuses the descriptor).

    Every 32 MiB written, a thread writes the file back to disk (``fdatasync``) while the
    downloads go on, so that the final ``fsync`` waits only for the rest.
    """

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.lock = threading.Lock()
        self._unflushed = 0
        self._flusher: threading.Thread | None = None
        self._flush_error: OSError | None = None

    def pwrite(self, data: memoryview, offset: int) -> int:
        with self.lock:
            if self.fd < 0:
                raise CancelledError(f"{self.path}: already abandoned")
            try:
                n = os.pwrite(self.fd, data, offset)
            except OSError as e:
                raise ArchiveWriteError(f"{self.path}: cannot write ({e.strerror})") from None
            self._unflushed += n
            if self._unflushed >= _FLUSH_EVERY and not (self._flusher and self._flusher.is_alive()):
                self._unflushed = 0
                # Its own descriptor: the file may be closed (abandoned) while it runs.
                self._flusher = threading.Thread(
                    target=self._write_back, args=(os.dup(self.fd),), daemon=True
                )
                self._flusher.start()
            return n

    def _write_back(self, fd: int) -> None:
        try:
            os.fdatasync(fd)
        except OSError as e:
            # Reported once, to this descriptor only: sync() raises it.
            self._flush_error = e
        finally:
            os.close(fd)

    def sync(self) -> None:
        """Everything written is on disk: waits for the write-back in progress, then fsyncs."""
        if self._flusher is not None:
            self._flusher.join()
        with self.lock:
            os.fsync(self.fd)
        if self._flush_error is not None:
            raise self._flush_error

    def pread(self, size: int, offset: int) -> bytes:
        with self.lock:
            if self.fd < 0:
                raise CancelledError(f"{self.path}: already abandoned")
            return os.pread(self.fd, size, offset)

    def close(self) -> None:
        with self.lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


class _Slot(io.RawIOBase):
    """Where one blob's bytes go: ``size`` bytes at ``offset`` of the archive, written in order
    (:meth:`write`) or by ranges at their positions (:meth:`write_at`)."""

    def __init__(self, file: _File, offset: int, repository: str, blob: Blob) -> None:
        super().__init__()
        self._file = file
        self._offset = offset
        self.repository = repository
        self.blob = blob
        self.written = 0  # bytes written in all, wherever
        self._next = 0  # where write() goes on
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = self.write_at(data, self._next)
        self._next += n
        return n

    def write_at(self, data: Any, position: int) -> int:
        """Write ``data`` at ``position`` of the blob (ranges fetched at once land apart)."""
        view = memoryview(data).cast("B")
        if position + len(view) > self.blob.size:
            raise RegistryV2Error(f"blob {self.blob.digest}: more than {self.blob.size} bytes")
        while view:
            n = self._file.pwrite(view, self._offset + position)
            position += n
            view = view[n:]
            with self._lock:
                self.written += n
        return len(data)

    def read_at(self, size: int, position: int) -> bytes:
        """Read back up to ``size`` bytes written at ``position`` of the blob."""
        return self._file.pread(min(size, self.blob.size - position), self._offset + position)


@dataclass
class _Entry:
    """One image of the archive: its manifest, its blobs and every tag it carries."""

    image: Image
    manifest: bytes
    tags: list[str]


class ArchiveWriter:
    """A docker 25+ archive being written; a context manager that commits on success.

    Manifests and configs known up front are written at once; :attr:`pending` lists the blobs
    whose bytes must still be written through :meth:`blob_writer` before the archive commits.

    Example:
        >>> with ArchiveWriter.create("app.tar", [image]) as archive:  # doctest: +SKIP
        ...     engine.download_blobs(archive.pending, archive.blob_writer)
    """

    def __init__(self, path: str, temp: str, file: _File, slots: dict[str, _Slot]) -> None:
        self.path = path
        self._temp = temp
        self._file = file
        self._slots = slots

    @property
    def pending(self) -> tuple[tuple[str, Blob], ...]:
        """The blobs :meth:`blob_writer` still has to take, each with its image's repository."""
        return tuple((slot.repository, slot.blob) for slot in self._slots.values())

    def blob_writer(self, blob: Blob) -> BinaryIO:
        """A writer for ``blob``'s bytes (from the start); whoever writes checks their digest."""
        return self._slots[blob.digest]  # type: ignore[return-value]

    @classmethod
    def create(cls, path: str | os.PathLike[str], images: Sequence[Image]) -> ArchiveWriter:
        """Lay out an archive of ``images`` in a temporary file beside ``path``.

        Images with the same manifest are written once, with all their tags. An archive that
        would not fit in the free space there is refused before a byte is downloaded.
        """
        target = os.fspath(path)
        if os.path.isdir(target):
            raise ValidationError(f"output {target!r} is a directory; give a file name")
        directory = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(directory):
            raise ValidationError(f"output {target!r}: directory {directory!r} does not exist")
        if not images:
            raise ValidationError(f"output {target!r}: no image to write")
        temp = os.path.join(directory, f".{os.path.basename(target)}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as e:
            raise ArchiveWriteError(
                f"{target}: cannot write in {directory} ({e.strerror})"
            ) from None
        file = _File(target, fd)
        try:
            slots, size = _lay_out(file, _entries(images))
            missing = sum(slot.blob.size for slot in slots.values())
            free = shutil.disk_usage(directory).free
            if missing > free:
                raise ArchiveWriteError(
                    f"{target}: the archive needs {size} bytes; only {free} are free in {directory}"
                )
        except BaseException:
            file.close()
            os.unlink(temp)
            raise
        return cls(target, temp, file, slots)

    def commit(self) -> None:
        """Check every blob arrived whole, then move the archive onto its path."""
        short = [s.blob.digest for s in self._slots.values() if s.written != s.blob.size]
        if short:
            raise RegistryV2Error(f"{self.path}: blobs not written in full: {', '.join(short)}")
        try:
            self._file.sync()
            self._file.close()
            os.replace(self._temp, self.path)
        except OSError as e:
            raise ArchiveWriteError(f"{self.path}: cannot write ({e.strerror})") from None

    def abort(self) -> None:
        """Remove the temporary file; the target path is untouched."""
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


def _entries(images: Sequence[Image]) -> list[_Entry]:
    by_manifest: dict[bytes, _Entry] = {}
    for image in images:
        manifest = image.manifest_bytes
        entry = by_manifest.setdefault(manifest, _Entry(image, manifest, []))
        entry.tags += [t for t in image.tags if t not in entry.tags]
    return list(by_manifest.values())


def _metadata(entries: list[_Entry]) -> list[tuple[str, bytes]]:
    """``oci-layout``, ``index.json`` (an entry per tag) and docker's ``manifest.json``."""
    index: list[dict[str, Any]] = []
    docker: list[dict[str, Any]] = []
    for entry in entries:
        image = entry.image
        descriptor = {
            "mediaType": image.manifest_media_type,
            "digest": sha256_digest(entry.manifest),
            "size": len(entry.manifest),
        }
        index += [{**descriptor, "annotations": tag_annotations(t)} for t in entry.tags] or [
            descriptor
        ]
        docker.append(
            {
                "Config": blob_path(image.config.digest),
                "RepoTags": entry.tags,
                "Layers": [blob_path(layer.digest) for layer in image.layers],
            }
        )
    index_doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}
    return [
        ("oci-layout", OCI_LAYOUT),
        ("index.json", json.dumps(index_doc, separators=(",", ":")).encode()),
        ("manifest.json", json.dumps(docker, separators=(",", ":")).encode()),
    ]


def _lay_out(file: _File, entries: list[_Entry]) -> tuple[dict[str, _Slot], int]:
    """Write headers and known contents; a slot for each blob still to come, and the size."""
    known: dict[str, bytes] = {}
    blobs: dict[str, tuple[str, Blob]] = {}
    for entry in entries:
        image = entry.image
        known[sha256_digest(entry.manifest)] = entry.manifest
        if image.config_bytes:
            known[image.config.digest] = image.config_bytes
        for blob in image.blobs:
            blobs.setdefault(blob.digest, (image.repository, blob))
    files = _metadata(entries) + [(blob_path(d), data) for d, data in known.items()]
    offset = 0

    def put(data: bytes) -> None:
        nonlocal offset
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += file.pwrite(view[done:], offset + done)
        offset += _padded(len(data))

    for directory in ("blobs/", "blobs/sha256/"):
        put(_header(directory, 0, directory=True))
    for name, data in files:
        put(_header(name, len(data)))
        put(data)
    slots: dict[str, _Slot] = {}
    for digest, (repository, blob) in blobs.items():
        if digest in known:
            continue
        put(_header(blob_path(digest), blob.size))
        slots[digest] = _Slot(file, offset, repository, blob)
        offset += _padded(blob.size)
    # Two zero blocks end a tar; the file is extended with zeros to a whole record.
    size = _padded(offset + 2 * _BLOCK, tarfile.RECORDSIZE)
    try:
        os.ftruncate(file.fd, size)
    except OSError as e:
        raise ArchiveWriteError(f"{file.path}: cannot write ({e.strerror})") from None
    return slots, size
