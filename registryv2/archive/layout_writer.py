"""Writing into an OCI image layout directory: blobs added once, ``index.json`` replaced whole.

A layout is written file by file, in parallel, with no tar in between. Writing into a layout
that exists adds to it, as skopeo and oras do: a blob already there is not written again; a new
blob is written to a temporary name in the layout's directory and renamed into ``blobs/`` only
once every blob of the copy has been checked against its digest; ``index.json`` is then read,
changed and replaced (written to a temporary name, synced, renamed) while the directory is
locked (``flock``), so two writers never lose each other's entries. An entry named as a new one
is replaced; the others are kept. A crash at any point leaves the previous ``index.json``, and
every blob it names, as they were: the layout stays readable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from ..exceptions import ArchiveWriteError, TarReadError, ValidationError
from ..image import Blob
from ..manifest import MAX_MANIFEST_SIZE, OCI_INDEX, load_json, parse_manifest
from ..models import BlobResult
from ..places import BlobMover, PlannedImage, Referral
from .layout import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    LAYOUT_VERSIONS,
    OCI_LAYOUT,
    blob_path,
)
from .writer import _File, _Slot, index_entries


def _name_of(annotations: Any) -> str | None:
    """What an ``index.json`` entry is called: containerd's full name, else its ``ref.name``."""
    if not isinstance(annotations, dict):
        return None
    for key in (ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME):
        value = annotations.get(key)
        if isinstance(value, str) and value:
            return value
    return None


class LayoutWriter:
    """An OCI image layout directory being added to: an image destination.

    Example:
        >>> writer = LayoutWriter("build/out")  # doctest: +SKIP
        >>> writer.begin([planned]); writer.move_blobs([planned], engine)  # doctest: +SKIP
        >>> writer.put_manifests(planned, raw, media_type); writer.commit()  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = self.label = os.fspath(path)
        self._created = False
        self._pending: dict[str, tuple[str, Blob]] = {}  # blobs to write, by digest
        self._present: dict[str, Blob] = {}  # blobs the layout holds already
        self._temps: dict[str, tuple[str, _File, _Slot]] = {}  # digest -> temp path, file, slot
        self._manifests: dict[str, bytes] = {}  # digest -> bytes, to write at commit
        self._entries: list[dict[str, Any]] = []  # index.json entries to add
        self._check_place()

    def __str__(self) -> str:
        return f"oci:{self.path}"

    # -- before ------------------------------------------------------------------------------

    def _check_place(self) -> None:
        """Refuse, before anything is read or moved, a path that is not a layout to write."""
        path = self.path
        if os.path.lexists(path) and not os.path.isdir(path):
            raise ValidationError(f"output {path!r} exists and is not a directory")
        if os.path.isdir(path):
            names = set(os.listdir(path))
            if names and "oci-layout" not in names:
                raise ValidationError(
                    f"output {path!r} exists and is neither empty nor an OCI image layout "
                    "(no oci-layout file); give an empty or new directory"
                )
            if "oci-layout" in names:
                self._check_existing()
            return
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ValidationError(f"output {path!r}: directory {parent!r} does not exist")

    def begin(self, images: Sequence[PlannedImage]) -> None:
        """Check the directory again (it may have changed), create it if new, and note which
        blobs it lacks."""
        path = self.path
        self._check_place()
        if not os.path.isdir(path):
            try:
                os.mkdir(path)
            except OSError as e:
                raise ArchiveWriteError(f"{path}: cannot create ({e.strerror})") from None
            self._created = True
        try:
            os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        except OSError as e:
            raise ArchiveWriteError(f"{path}: cannot write ({e.strerror})") from None
        for image in images:
            for blob in image.blobs:
                if blob.digest in self._pending or blob.digest in self._present:
                    continue
                if self._holds(blob.digest, blob.size):
                    self._present[blob.digest] = blob
                else:
                    self._pending[blob.digest] = (image.origin, blob)

    def _check_existing(self) -> None:
        try:
            with open(os.path.join(self.path, "oci-layout"), "rb") as f:
                doc = load_json(f.read(64 * 1024), f"{self.path}: oci-layout", 64 * 1024)
        except OSError as e:
            raise TarReadError(f"{self.path}: cannot read oci-layout ({e.strerror})") from None
        version = doc.get("imageLayoutVersion") if isinstance(doc, dict) else None
        if version not in LAYOUT_VERSIONS:
            raise TarReadError(
                f"{self.path}: oci-layout says imageLayoutVersion {version!r}; only "
                f"{', '.join(sorted(LAYOUT_VERSIONS))} is known"
            )
        self._read_index()  # an index.json we could not rewrite is refused before any byte

    def _holds(self, digest: str, size: int) -> bool:
        """Whether the layout has a file of the right size for ``digest`` (trusted, as skopeo
        and oras trust a layout's blobs: their names are their digests)."""
        try:
            return os.stat(os.path.join(self.path, blob_path(digest))).st_size == size
        except OSError:
            return False

    # -- blobs -------------------------------------------------------------------------------

    def scope(self, image: PlannedImage) -> str:
        """One batch for the whole layout."""
        return ""

    def blob_writer(self, blob: Blob) -> BinaryIO:
        """A temporary file for ``blob``'s bytes, renamed into ``blobs/`` at the commit."""
        temp = os.path.join(self.path, f".{blob.digest[7:19]}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as e:
            raise ArchiveWriteError(f"{self.path}: cannot write ({e.strerror})") from None
        file = _File(self.path, fd)
        try:
            # Its whole size at once, as an archive's slot has: no extending on every write.
            os.ftruncate(fd, blob.size)
        except OSError as e:
            file.close()
            os.unlink(temp)
            raise ArchiveWriteError(f"{self.path}: cannot write ({e.strerror})") from None
        slot = _Slot(file, 0, self._pending[blob.digest][0], blob)
        self._temps[blob.digest] = (temp, file, slot)
        return slot  # type: ignore[return-value]

    def move_blobs(self, images: Sequence[PlannedImage], mover: BlobMover) -> dict[str, BlobResult]:
        """Write the blobs the layout lacks, each to its own file, in parallel."""
        results = {
            r.digest: r
            for r in mover.download_blobs(list(self._pending.values()), self.blob_writer)
        }
        for digest, blob in self._present.items():
            results[digest] = BlobResult(digest, blob.size, "exists", 0)
        return results

    def put_manifests(self, image: PlannedImage, manifest: bytes, media_type: str) -> list[str]:
        """Keep the manifests to write, and the ``index.json`` entries to add, for the commit."""
        for child in image.children:
            self._manifests[child.digest] = child.raw
        planned = image
        if manifest != image.manifest.raw:
            planned = dataclasses.replace(image, manifest=parse_manifest(manifest, media_type))
        self._manifests[planned.manifest.digest] = manifest
        self._entries += index_entries(planned)
        if not image.names:
            return [f"{self}@{planned.manifest.digest}"]
        return [f"{self}:{name}" for name in image.names]

    def referrer_names(self, subject: PlannedImage, referral: Referral) -> tuple[str, ...]:
        """Its own tag (cosign's), or none: found through its subject."""
        return (referral.tag,) if referral.tag else ()

    # -- commit ------------------------------------------------------------------------------

    def commit(self) -> None:
        """Blobs into place, then ``index.json`` replaced under the directory's lock.

        Every file is synced before it is renamed into place, and the syncs of one step run at
        once: the disk then commits them together, three flushes for the whole layout (as an
        archive takes two) instead of one per file.
        """
        blobs = os.path.join(self.path, "blobs", "sha256")
        staged: list[tuple[str, str]] = []  # temporary file -> where it goes
        try:
            for digest, (_, _, slot) in self._temps.items():
                if slot.written != slot.blob.size:
                    raise ArchiveWriteError(f"{self.path}: blob {digest} not written in full")
            for digest, raw in self._manifests.items():
                final = os.path.join(self.path, blob_path(digest))
                if not self._holds(digest, len(raw)):
                    staged.append((self._stage(final, raw), final))
            _all_at_once(
                [file.sync for _, file, _ in self._temps.values()]
                + [functools.partial(_sync, temp) for temp, _ in staged]
            )
            for digest, (temp, file, _) in self._temps.items():
                file.close()
                os.replace(temp, os.path.join(self.path, blob_path(digest)))
            self._temps.clear()
            for temp, final in staged:
                os.replace(temp, final)
            staged.clear()
            with self._locked():
                index = self._read_index()
                index["manifests"] = self._merged(index.get("manifests") or [])
                index.setdefault("schemaVersion", 2)
                index.setdefault("mediaType", OCI_INDEX)
                layout = os.path.join(self.path, "oci-layout")
                if not os.path.exists(layout):
                    staged.append((self._stage(layout, OCI_LAYOUT), layout))
                raw = json.dumps(index, separators=(",", ":")).encode()
                path = os.path.join(self.path, "index.json")
                staged.append((self._stage(path, raw), path))
                # The blobs' names made durable, and the new index.json's bytes, at once.
                _all_at_once(
                    [functools.partial(_sync, blobs)]
                    + [functools.partial(_sync, temp) for temp, _ in staged]
                )
                for temp, final in staged:  # index.json last
                    os.replace(temp, final)
                staged.clear()
                _sync(self.path)
        except OSError as e:
            raise ArchiveWriteError(f"{self.path}: cannot write ({e.strerror})") from None
        finally:
            for temp, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(temp)

    def _merged(self, existing: list[Any]) -> list[Any]:
        """The entries there are, less those named as a new one, then the new ones."""
        names = {_name_of(e.get("annotations")) for e in self._entries} - {None}
        unnamed = {e["digest"] for e in self._entries if not _name_of(e.get("annotations"))}
        kept = [
            e
            for e in existing
            if not isinstance(e, dict)
            or (
                _name_of(e.get("annotations")) not in names
                and not (e.get("digest") in unnamed and not _name_of(e.get("annotations")))
            )
        ]
        return kept + self._entries

    def _read_index(self) -> dict[str, Any]:
        path = os.path.join(self.path, "index.json")
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_MANIFEST_SIZE + 1)
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        except OSError as e:
            raise TarReadError(f"{path}: cannot read ({e.strerror})") from None
        doc = load_json(raw, path, MAX_MANIFEST_SIZE)
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
            raise TarReadError(f"{path}: not an image index (no list of manifests)")
        return doc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    @staticmethod
    def _stage(path: str, data: bytes) -> str:
        """``data`` in a temporary file beside ``path`` (not synced yet); its name."""
        temp = f"{path}.{secrets.token_hex(4)}.part"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            os.unlink(temp)
            raise
        os.close(fd)
        return temp

    def abort(self) -> None:
        """Remove the temporary files (and the directory, when this copy made it)."""
        for temp, file, _ in self._temps.values():
            file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        self._temps.clear()
        if self._created:
            for leftover in (os.path.join("blobs", "sha256"), "blobs", ""):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(self.path, leftover))


def _all_at_once(steps: Sequence[Callable[[], object]]) -> None:
    """Run ``steps`` (syncs) in parallel; the first error, once all have ended."""
    if len(steps) <= 1:
        for step in steps:
            step()
        return
    with ThreadPoolExecutor(min(len(steps), 16), thread_name_prefix="registryv2-fsync") as pool:
        for future in [pool.submit(step) for step in steps]:
            future.result()


def _sync(path: str) -> None:
    """A file's bytes, or a directory's names, on the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
