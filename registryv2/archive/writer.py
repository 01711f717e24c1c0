"""Writing image archives in docker 25+'s layout, which ``docker load`` and OCI tools both read.

The archive is an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``) plus, for
a docker archive, the ``manifest.json`` docker reads (an ``oci-archive`` has none). Every blob's
size is known from its descriptor, so the whole tar is laid out before a byte of a layer
arrives: each blob gets a fixed slot in the file, and the writers of
:meth:`ArchiveWriter.blob_writer` fill their slots in parallel with ``os.pwrite``. Nothing is
buffered or copied twice. :class:`StreamWriter` writes the same archive to a pipe, in order, a
blob at a time (``registryv2 pull -o - | docker load``). This module knows nothing of
registries.

An archive file is written to a temporary file beside the target and renamed onto it only once
every slot is full; on any error the temporary file goes and the target path is left as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import secrets
import shutil
import tarfile
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any, BinaryIO

from ..exceptions import ArchiveWriteError, CancelledError, RegistryV2Error, ValidationError
from ..image import Blob
from ..manifest import OCI_INDEX, host_platform
from ..models import BlobResult, ManifestInfo
from ..places import BlobMover, PlannedImage, Referral
from .layout import OCI_LAYOUT, blob_path, name_annotations

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

    def __init__(self, file: _File, offset: int, origin: str, blob: Blob) -> None:
        super().__init__()
        self._file = file
        self._offset = offset
        self.origin = origin
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


def index_entries(image: PlannedImage) -> list[dict[str, Any]]:
    """The ``index.json`` entries of one image: one per name (with its annotations), or one
    without; a referrer's carries its ``artifactType`` and annotations, as a referrers index
    does, and a name only when it has a tag of its own (cosign's).

    Example:
        >>> index_entries(planned)[0]["annotations"]  # doctest: +SKIP
        {'io.containerd.image.name': 'docker.io/library/nginx:alpine', ...}
    """
    m = image.manifest
    descriptor: dict[str, Any] = {"mediaType": m.media_type, "digest": m.digest, "size": m.size}
    if image.subject is not None:
        if m.artifact_type:
            descriptor["artifactType"] = m.artifact_type
        if m.annotations and not image.names:
            descriptor["annotations"] = dict(m.annotations)
    if not image.names:
        return [descriptor]
    return [{**descriptor, "annotations": name_annotations(name)} for name in image.names]


def index_document(images: Sequence[PlannedImage]) -> bytes:
    """``index.json`` for ``images``: their entries (:func:`index_entries`), in order.

    Example:
        >>> json.loads(index_document([planned]))["manifests"][0]["digest"]  # doctest: +SKIP
        'sha256:...'
    """
    entries = [entry for image in images for entry in index_entries(image)]
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return json.dumps(doc, separators=(",", ":")).encode()


def _docker_image(image: PlannedImage) -> ManifestInfo | None:
    """The image docker loads for ``image``: itself, or an index's for this machine."""
    if not image.manifest.is_index:
        return image.manifest
    images = [m for m in image.children if not m.is_index]
    here = host_platform()
    for entry in image.manifest.manifests:
        p = entry.platform
        if p and (p.os, p.architecture) == (here.os, here.architecture):
            chosen = [m for m in images if m.digest == entry.digest]
            if chosen:
                return chosen[0]
    return images[0] if images else None


def _docker_tags(names: tuple[str, ...]) -> list[str]:
    """The names docker can load as tags: references with a tag (not a bare ``v1``)."""
    return [n for n in names if ":" in n.rsplit("/", 1)[-1] and "@" not in n]


def manifest_json(images: Sequence[PlannedImage]) -> bytes:
    """docker's ``manifest.json`` for ``images`` (paths into ``blobs/``), with their tags.

    Example:
        >>> json.loads(manifest_json([planned]))[0]["RepoTags"]  # doctest: +SKIP
        ['app:v1']
    """
    docs = []
    for image in images:
        if image.subject is not None:
            continue  # a signature, an SBOM: never an image to load
        manifest = _docker_image(image)
        if manifest is None or manifest.config is None:
            continue
        docs.append(
            {
                "Config": blob_path(manifest.config.digest),
                "RepoTags": _docker_tags(image.names),
                "Layers": [blob_path(layer.digest) for layer in manifest.layers],
            }
        )
    return json.dumps(docs, separators=(",", ":")).encode()


def merged(images: Sequence[PlannedImage]) -> list[PlannedImage]:
    """One entry per manifest, with every name any of them had, in order.

    Example:
        >>> [i.names for i in merged([a_v1, a_latest])]  # doctest: +SKIP
        [('app:v1', 'app:latest')]
    """
    by_digest: dict[str, PlannedImage] = {}
    for image in images:
        earlier = by_digest.get(image.manifest.digest)
        if earlier is None:
            by_digest[image.manifest.digest] = dataclasses.replace(image)
        else:
            earlier.names += tuple(n for n in image.names if n not in earlier.names)
    return list(by_digest.values())


def archive_files(
    images: Sequence[PlannedImage], docker: bool
) -> tuple[list[tuple[str, bytes]], dict[str, tuple[str, Blob]]]:
    """What an archive of ``images`` holds: the files known now (metadata and manifests), and
    the blobs still to come, by digest, each with where it comes from."""
    files = [("oci-layout", OCI_LAYOUT), ("index.json", index_document(images))]
    if docker:
        files.append(("manifest.json", manifest_json(images)))
    known: dict[str, bytes] = {}
    blobs: dict[str, tuple[str, Blob]] = {}
    for image in images:
        for manifest in (*image.children, image.manifest):
            known[manifest.digest] = manifest.raw
        for blob in image.blobs:
            blobs.setdefault(blob.digest, (image.origin, blob))
    files += [(blob_path(d), data) for d, data in known.items()]
    return files, {d: b for d, b in blobs.items() if d not in known}


class ArchiveWriter:
    """An archive being written, docker's (``manifest.json`` too) or OCI's: an image
    destination that commits only when every blob is in.

    Manifests are written at once; :attr:`pending` lists the blobs whose bytes must still be
    written through :meth:`blob_writer` before the archive commits.

    Example:
        >>> with ArchiveWriter("app.tar") as archive:  # doctest: +SKIP
        ...     archive.begin([planned])
        ...     archive.move_blobs([planned], engine)
    """

    def __init__(self, path: str | os.PathLike[str], *, docker: bool = True) -> None:
        self.path = self.label = os.fspath(path)
        self.docker = docker
        self._temp = ""
        self._file: _File | None = None
        self._slots: dict[str, _Slot] = {}
        self._check_place()

    def _check_place(self) -> str:
        """Refuse a path that cannot take the archive; the directory it goes in."""
        target = self.path
        if os.path.isdir(target):
            raise ValidationError(f"output {target!r} is a directory; give a file name")
        directory = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(directory):
            raise ValidationError(f"output {target!r}: directory {directory!r} does not exist")
        return directory

    def begin(self, images: Sequence[PlannedImage]) -> None:
        """Lay out the archive of ``images`` in a temporary file beside the path.

        An archive that would not fit in the free space there is refused before a byte is
        moved.
        """
        target = self.path
        directory = self._check_place()
        if not images:
            raise ValidationError(f"output {target!r}: no image to write")
        temp = os.path.join(directory, f".{os.path.basename(target)}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as e:
            raise ArchiveWriteError(
                f"{target}: cannot write in {directory} ({e.strerror})"
            ) from None
        self._temp, self._file = temp, _File(target, fd)
        try:
            files, blobs = archive_files(merged(images), self.docker)
            self._slots, size = _lay_out(self._file, files, blobs)
            missing = sum(slot.blob.size for slot in self._slots.values())
            free = shutil.disk_usage(directory).free
            if missing > free:
                raise ArchiveWriteError(
                    f"{target}: the archive needs {size} bytes; only {free} are free in {directory}"
                )
        except BaseException:
            self.abort()
            raise

    @property
    def pending(self) -> tuple[tuple[str, Blob], ...]:
        """The blobs :meth:`blob_writer` still has to take, each with where it comes from."""
        return tuple((slot.origin, slot.blob) for slot in self._slots.values())

    def blob_writer(self, blob: Blob) -> BinaryIO:
        """A writer for ``blob``'s bytes (from the start); whoever writes checks their digest."""
        return self._slots[blob.digest]  # type: ignore[return-value]

    def scope(self, image: PlannedImage) -> str:
        """One batch for the whole archive."""
        return ""

    def move_blobs(self, images: Sequence[PlannedImage], mover: BlobMover) -> dict[str, BlobResult]:
        """Download every blob into its slot, in parallel."""
        results = mover.download_blobs(self.pending, self.blob_writer)
        return {r.digest: r for r in results}

    def put_manifests(self, image: PlannedImage, manifest: bytes, media_type: str) -> list[str]:
        """Nothing to put: the manifests went in with the layout; where each name went."""
        return [f"{self}:{name}" for name in image.names] or [str(self)]

    def referrer_names(self, subject: PlannedImage, referral: Referral) -> tuple[str, ...]:
        """Its own tag (cosign's), or none: found through its subject."""
        return (referral.tag,) if referral.tag else ()

    def __str__(self) -> str:
        return f"{'docker' if self.docker else 'oci'}-archive:{self.path}"

    def commit(self) -> None:
        """Check every blob arrived whole, then move the archive onto its path."""
        assert self._file is not None
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
        if self._file is not None:
            self._file.close()
        if self._temp:
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


def _lay_out(
    file: _File, files: list[tuple[str, bytes]], blobs: dict[str, tuple[str, Blob]]
) -> tuple[dict[str, _Slot], int]:
    """Write headers and known contents; a slot for each blob still to come, and the size."""
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
    for digest, (origin, blob) in blobs.items():
        put(_header(blob_path(digest), blob.size))
        slots[digest] = _Slot(file, offset, origin, blob)
        offset += _padded(blob.size)
    # Two zero blocks end a tar; the file is extended with zeros to a whole record.
    size = _padded(offset + 2 * _BLOCK, tarfile.RECORDSIZE)
    try:
        os.ftruncate(file.fd, size)
    except OSError as e:
        raise ArchiveWriteError(f"{file.path}: cannot write ({e.strerror})") from None
    return slots, size


class _StreamedBlob(io.RawIOBase):
    """One blob's member of a streamed tar: its header first, its bytes, then the padding."""

    def __init__(self, writer: StreamWriter, blob: Blob) -> None:
        super().__init__()
        self._writer = writer
        self._blob = blob
        self._written = 0
        writer.emit(_header(blob_path(blob.digest), blob.size))

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self._written + len(view) > self._blob.size:
            raise RegistryV2Error(f"blob {self._blob.digest}: more than {self._blob.size} bytes")
        self._writer.emit(view)
        self._written += len(view)
        return len(view)

    def close(self) -> None:
        if not self.closed and self._written == self._blob.size:
            self._writer.emit(b"\0" * (_padded(self._blob.size) - self._blob.size))
        super().close()


class StreamWriter:
    """A docker archive written to a stream (standard output), in order: the layout first,
    then each blob, one at a time, as it arrives. Memory holds one read buffer.

    What was written cannot be taken back: a failure leaves a truncated tar, which
    ``docker load`` refuses.

    Example:
        >>> writer = StreamWriter(sys.stdout.buffer)  # doctest: +SKIP
    """

    label = "-"

    def __init__(self, stream: BinaryIO, *, docker: bool = True) -> None:
        self._stream = stream
        self.docker = docker
        self._pending: list[tuple[str, Blob]] = []

    def emit(self, data: bytes | memoryview) -> None:
        """Write bytes to the stream; a reader gone is an error that stops the copy."""
        try:
            self._stream.write(data)
        except (BrokenPipeError, ValueError, OSError) as e:
            raise ArchiveWriteError(f"standard output: cannot write ({e})") from None

    def begin(self, images: Sequence[PlannedImage]) -> None:
        """Write the layout (everything but the blobs still to come)."""
        if not images:
            raise ValidationError("output '-': no image to write")
        files, blobs = archive_files(merged(images), self.docker)
        for directory in ("blobs/", "blobs/sha256/"):
            self.emit(_header(directory, 0, directory=True))
        for name, data in files:
            self.emit(_header(name, len(data)))
            self.emit(data + b"\0" * (_padded(len(data)) - len(data)))
        self._pending = list(blobs.values())

    def scope(self, image: PlannedImage) -> str:
        """One batch for the whole stream."""
        return ""

    def move_blobs(self, images: Sequence[PlannedImage], mover: BlobMover) -> dict[str, BlobResult]:
        """Move the blobs one after another: the tar is written in order."""
        results: dict[str, BlobResult] = {}
        for origin, blob in self._pending:
            for result in mover.download_blobs([(origin, blob)], self._open):
                results[result.digest] = result
        return results

    def _open(self, blob: Blob) -> BinaryIO:
        return _StreamedBlob(self, blob)  # type: ignore[return-value]

    def put_manifests(self, image: PlannedImage, manifest: bytes, media_type: str) -> list[str]:
        """Nothing to put: the manifests went first; where each name went."""
        return [f"-:{name}" for name in image.names] or ["-"]

    def referrer_names(self, subject: PlannedImage, referral: Referral) -> tuple[str, ...]:
        """Its own tag (cosign's), or none: found through its subject."""
        return (referral.tag,) if referral.tag else ()

    def commit(self) -> None:
        """End the tar and flush."""
        self.emit(b"\0" * (tarfile.RECORDSIZE))
        try:
            self._stream.flush()
        except (BrokenPipeError, ValueError, OSError) as e:
            raise ArchiveWriteError(f"standard output: cannot write ({e})") from None

    def abort(self) -> None:
        """Nothing can be taken back from a stream."""
