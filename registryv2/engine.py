"""The threaded transfer engine: moves blobs between a source and a registry in parallel.

One ``ThreadPoolExecutor`` per client runs one job per blob. A push job asks the registry whether
it has the blob (HEAD), mounts it from another repository of the registry where one is known to
hold it, and otherwise uploads it: one PUT for a blob that fits in a chunk, else POST, PATCH per
chunk and a closing PUT. The sha256 is computed over the bytes as they are sent, and the closing
PUT names the digest computed, so a source whose digest is only known at the end (compression on
the fly) is an addition, and a source whose bytes do not match its digest is refused before the
registry commits anything. Every job reports :class:`TransferEvent` to an optional callback.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import BinaryIO, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .exceptions import DigestMismatchError, RegistryError, RegistryV2Error
from .image import Blob
from .models import BlobAction, BlobResult
from .transport import Transport, blob_url_path

OCTET_STREAM = {"Content-Type": "application/octet-stream"}
_COPY_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class TransferEvent:
    """Progress of one blob: ``start``, then ``progress`` after each chunk, then ``done``."""

    kind: Literal["start", "progress", "done"]
    repository: str
    digest: str
    size: int
    bytes_done: int
    action: BlobAction | None = None


ProgressCallback = Callable[[TransferEvent], None]


@dataclass(frozen=True)
class _UploadSession:
    """Where the registry takes this upload's bytes, and how many to send per request."""

    location: str
    chunk_size: int


class _Cancelled(RegistryV2Error):
    """Raised inside a job when another job failed and the push is being abandoned."""


def _with_query(location: str, **params: str) -> str:
    # Upload locations carry their own state in the query; add to it, never replace it.
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _read_full(reader: BinaryIO, size: int) -> bytes:
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        data = reader.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


class TransferEngine:
    """Moves blobs in parallel over one :class:`Transport`.

    Attributes:
        known_blobs: digest -> a repository of this registry known to hold it; filled by every
            job, and used to mount instead of upload.

    Example:
        >>> engine = TransferEngine(transport, workers=4)  # doctest: +SKIP
        >>> results = engine.push_blobs("team/app", image.blobs)  # doctest: +SKIP
    """

    def __init__(
        self,
        transport: Transport,
        workers: int,
        chunk_size: int,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.transport = transport
        self.workers = workers
        self.chunk_size = chunk_size
        self.progress = progress
        self.known_blobs: dict[str, str] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def close(self) -> None:
        """Stop the worker threads."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="registryv2")
            return self._pool

    def _emit(self, event: TransferEvent) -> None:
        if self.progress is not None:
            self.progress(event)

    def _run(self, jobs: Sequence[Callable[[threading.Event], BlobResult]]) -> list[BlobResult]:
        """Run every job on the pool; their results in order, or the first real error.

        When one job fails the others see ``cancel`` set and stop at their next chunk. Whatever
        ends the wait (a failed job, Ctrl-C), no job outlives this call: callers may then
        release what the jobs write to.
        """
        cancel = threading.Event()
        pool = self._executor()
        futures: list[Future[BlobResult]] = [pool.submit(job, cancel) for job in jobs]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            if not all(f.done() for f in futures):
                cancel.set()
                for f in futures:
                    f.cancel()
                wait(futures)
        errors = [f.exception() for f in futures if not f.cancelled() and f.exception()]
        real = [e for e in errors if not isinstance(e, _Cancelled)]
        if real:
            raise real[0]  # type: ignore[misc]
        return [f.result() for f in futures]

    def push_blobs(self, repository: str, blobs: Sequence[Blob]) -> list[BlobResult]:
        """Make sure the registry holds every blob in ``repository``.

        Returns one result per distinct digest, in the order given. When one blob fails, the
        others stop at their next chunk, their unfinished uploads are cancelled, and the first
        error is raised: the caller must not put a manifest then.
        """
        unique = {blob.digest: blob for blob in blobs}.values()
        return self._run([functools.partial(self._push_one, repository, blob) for blob in unique])

    def download_blobs(
        self, sources: Sequence[tuple[str, Blob]], open_target: Callable[[Blob], BinaryIO]
    ) -> list[BlobResult]:
        """Copy blobs into targets in parallel, checking each one's size and sha256 on the way.

        ``sources`` pairs each blob with where it comes from (for progress events);
        ``open_target(blob)`` gives a writer for its bytes. One result per distinct digest, in
        order. A blob whose bytes do not match its digest raises ``DigestMismatchError``.

        Example:
            >>> engine.download_blobs([("team/app", layer)], open_slot)  # doctest: +SKIP
        """
        unique = {blob.digest: (source, blob) for source, blob in sources}.values()
        return self._run(
            [
                functools.partial(self._download_one, source, blob, open_target)
                for source, blob in unique
            ]
        )

    def _download_one(
        self,
        source: str,
        blob: Blob,
        open_target: Callable[[Blob], BinaryIO],
        cancel: threading.Event,
    ) -> BlobResult:
        self._emit(TransferEvent("start", source, blob.digest, blob.size, 0))
        hasher = hashlib.sha256()
        done = 0
        with blob.open() as reader, open_target(blob) as target:
            while data := reader.read(min(_COPY_BUFFER, blob.size - done)):
                if cancel.is_set():
                    raise _Cancelled(f"downloading {blob.digest}")
                hasher.update(data)
                target.write(data)
                done += len(data)
                self._emit(TransferEvent("progress", source, blob.digest, blob.size, done))
        self._check(blob, hasher, done)
        self._emit(TransferEvent("done", source, blob.digest, blob.size, done, "downloaded"))
        return BlobResult(blob.digest, blob.size, "downloaded", done)

    def has_blob(self, repository: str, digest: str) -> bool:
        """Ask the registry whether ``repository`` holds ``digest``."""
        response = self.transport.request(
            "HEAD",
            blob_url_path(repository, digest),
            what=f"checking blob {digest} in {repository}",
            expect=(200, 404),
        )
        return response.status_code == 200

    def _push_one(self, repository: str, blob: Blob, cancel: threading.Event) -> BlobResult:
        digest = blob.digest
        self._emit(TransferEvent("start", repository, digest, blob.size, 0))
        if self.has_blob(repository, digest):
            return self._done(repository, blob, "exists", 0)
        mount_from = self.known_blobs.get(digest)
        if mount_from == repository:
            mount_from = None
        upload = self._start_upload(repository, digest, mount_from)
        if upload is None:
            return self._done(repository, blob, "mounted", 0)
        try:
            sent = self._upload(repository, upload, blob, cancel)
        except BaseException:
            self._abandon(upload.location)
            raise
        return self._done(repository, blob, "uploaded", sent)

    def _done(self, repository: str, blob: Blob, action: BlobAction, sent: int) -> BlobResult:
        self.known_blobs[blob.digest] = repository
        self._emit(TransferEvent("done", repository, blob.digest, blob.size, blob.size, action))
        return BlobResult(blob.digest, blob.size, action, sent)

    def _start_upload(
        self, repository: str, digest: str, mount_from: str | None
    ) -> _UploadSession | None:
        """POST a new upload (or a mount); the upload session, or None if mounted."""
        params = {"mount": digest, "from": mount_from} if mount_from else None
        response = self.transport.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            what=f"starting upload of {digest} to {repository}",
            expect=(201, 202),
            params=params,
        )
        if response.status_code == 201:
            return None
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                f"starting upload of {digest} to {repository}: the registry gave no Location",
                status=response.status_code,
            )
        # Registries may demand larger chunks than ours (OCI distribution spec 1.1).
        min_length = response.headers.get("OCI-Chunk-Min-Length", "")
        floor = int(min_length) if min_length.isdigit() else 0
        return _UploadSession(self.transport.url(location), max(self.chunk_size, floor))

    def _upload(
        self, repository: str, upload: _UploadSession, blob: Blob, cancel: threading.Event
    ) -> int:
        location, chunk_size = upload.location, upload.chunk_size
        hasher = hashlib.sha256()
        offset = 0
        what = f"uploading {blob.digest} to {repository}"
        with blob.open() as reader:
            if blob.size <= chunk_size:
                body = _read_full(reader, blob.size)
                hasher.update(body)
                offset = len(body)
                digest = self._check(blob, hasher, offset)
                final = self.transport.request(
                    "PUT",
                    _with_query(location, digest=digest),
                    what=what,
                    expect=(201,),
                    headers=OCTET_STREAM,
                    data=body,
                )
                self._check_committed(final.headers.get("Docker-Content-Digest"), digest, what)
                return offset
            while offset < blob.size:
                if cancel.is_set():
                    raise _Cancelled(what)
                chunk = _read_full(reader, min(chunk_size, blob.size - offset))
                if not chunk:
                    break
                hasher.update(chunk)
                end = offset + len(chunk) - 1
                response = self.transport.request(
                    "PATCH",
                    location,
                    what=what,
                    expect=(202,),
                    headers={**OCTET_STREAM, "Content-Range": f"{offset}-{end}"},
                    data=chunk,
                )
                location = self.transport.url(response.headers.get("Location") or location)
                offset = end + 1
                self._emit(TransferEvent("progress", repository, blob.digest, blob.size, offset))
        digest = self._check(blob, hasher, offset)
        final = self.transport.request(
            "PUT", _with_query(location, digest=digest), what=what, expect=(201,)
        )
        self._check_committed(final.headers.get("Docker-Content-Digest"), digest, what)
        return offset

    @staticmethod
    def _check(blob: Blob, hasher: hashlib._Hash, length: int) -> str:
        digest = "sha256:" + hasher.hexdigest()
        if length != blob.size:
            raise DigestMismatchError(
                f"blob {blob.digest}: source gave {length} bytes, expected {blob.size}"
            )
        if digest != blob.digest:
            raise DigestMismatchError(f"blob {blob.digest}: the bytes have digest {digest}")
        return digest

    @staticmethod
    def _check_committed(answered: str | None, digest: str, what: str) -> None:
        if answered and answered != digest:
            raise RegistryError(f"{what}: the registry stored it as {answered}")

    def _abandon(self, location: str) -> None:
        # Best effort: free the registry's upload session; the original error matters more.
        with contextlib.suppress(RegistryError):
            self.transport.request(
                "DELETE", location, what="cancelling upload", expect=(204, 404, 405)
            )
