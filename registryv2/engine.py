"""The threaded transfer engine: moves blobs into a registry, or out of one, in parallel.

One ``ThreadPoolExecutor`` per client runs one job per blob: a push job is a
:class:`~registryv2.upload.BlobUpload`, a download job copies a
:class:`~registryv2.download.BlobReader` into its target, hashing every byte. The engine only
schedules: it reports the plan, runs the jobs, stops the others when one fails, makes threads
that push the same blob at once share one upload, and turns what the jobs report into
:class:`~registryv2.events.TransferEvent`. How a blob moves, and how a failure is retried or
resumed, is the upload's and the reader's business.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import BinaryIO, Protocol, TypeVar, runtime_checkable

from .blobcache import BlobInfoCache
from .events import ProgressCallback, TransferEvent
from .exceptions import CancelledError, DigestMismatchError
from .image import Blob, Uploadable
from .journal import UploadJournal
from .models import DEFAULT_CHUNK_SIZE, SMALL_BLOB_WIDTH, BlobResult
from .retry import RetryNotice, retry_scope
from .transport import Transport
from .upload import BlobUpload, LinkBreaks

_B = TypeVar("_B", bound=Uploadable)

_COPY_BUFFER = 1024 * 1024
# A blob's download starts on one connection; after this many bytes, a connection slower than
# _FAST_CONNECTION bytes/s has the rest split into ranges of at least _MIN_RANGE fetched at once.
_PROBE = 8 * 1024 * 1024
_FAST_CONNECTION = 100_000_000
_MIN_RANGE = 16 * 1024 * 1024


@runtime_checkable
class RangedTarget(Protocol):
    """A download target that takes bytes at any position (an archive slot)."""

    def write_at(self, data: bytes, position: int) -> int:
        """Write ``data`` at ``position`` of the blob."""

    def read_at(self, size: int, position: int) -> bytes:
        """Read back up to ``size`` bytes from ``position`` of the blob."""


class _Progress:
    """Bytes of one blob moved so far, by however many threads; reported on each change."""

    def __init__(self, report: Callable[[int], None]) -> None:
        self._report = report
        self._lock = threading.Lock()
        self.done = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            done = self.done
        self._report(done)


def _sequential(target: BinaryIO) -> Callable[[bytes, int], object]:
    """Write to a target that takes its bytes in order (the position is implied)."""
    return lambda data, position: target.write(data)


# Seconds an interrupted transfer lets requests in flight finish, then waits for its workers
# once their connections are broken: an interrupt takes effect within two seconds.
_GRACE = 1.0
_STRAGGLERS = 0.7


class TransferEngine:
    """Moves blobs in parallel over one :class:`Transport`.

    Thread-safe: several threads may push or pull through one engine at once.

    Example:
        >>> engine = TransferEngine(transport, workers=4, chunk_size=5 << 20)  # doctest: +SKIP
        >>> results = engine.push_blobs("team/app", image.blobs)  # doctest: +SKIP
    """

    def __init__(
        self,
        transport: Transport | None,
        workers: int,
        chunk_size: int | None,
        progress: ProgressCallback | None = None,
        journal: UploadJournal | None = None,
    ) -> None:
        self.transport = transport
        self.workers = workers
        # None streams each blob in growing requests of 5 MiB chunks; a size sends one
        # request per chunk of that size.
        self.chunk_size = chunk_size or DEFAULT_CHUNK_SIZE
        self.streaming = chunk_size is None
        self.progress = progress
        self.journal = journal
        self._known: dict[str, str] = {}  # digest -> a repository known to hold it
        # Where blobs were seen in earlier runs: mounted from there when nothing better is known.
        self.seen = BlobInfoCache.at(transport.config.state_dir if transport else None)
        self._uploading: dict[str, threading.Lock] = {}  # digest -> held while it uploads
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._range_pool: ThreadPoolExecutor | None = None
        self._large = threading.Semaphore(workers)  # places for blobs larger than a chunk
        self._breaks = LinkBreaks()  # one link to the registry, whichever blob crosses it
        # Set by interrupt(): every transfer running in any thread stops, as on Ctrl-C.
        self._interrupted = threading.Event()

    def interrupt(self) -> None:
        """Stop every transfer in flight, from whichever thread runs it, as Ctrl-C stops the
        one in the main thread: each ends its requests cleanly (an upload keeps what the
        registry took, for the next run) and raises ``CancelledError``. For a caller that runs
        transfers in threads of its own (a sync of many images) and is interrupted.
        """
        self._interrupted.set()

    def close(self) -> None:
        """Stop the worker threads."""
        with self._lock:
            pools, self._pool, self._range_pool = (self._pool, self._range_pool), None, None
        for pool in pools:
            if pool is not None:
                # No job of ours is left running, but for a straggler after an interrupt:
                # never wait for that one.
                pool.shutdown(wait=False, cancel_futures=True)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                # Small blobs are mostly round trips: they run wider than the large ones,
                # which hold a place of ``_large`` each.
                self._pool = ThreadPoolExecutor(
                    self.workers * SMALL_BLOB_WIDTH, thread_name_prefix="registryv2"
                )
            return self._pool

    def remember(self, digest: str, repository: str) -> None:
        """Note that ``repository`` of this registry holds ``digest`` (to mount from later)."""
        with self._lock:
            self._known.setdefault(digest, repository)

    def _emit(self, event: TransferEvent) -> None:
        if self.progress is not None:
            self.progress(event)

    def _run(
        self,
        repository: str,
        blobs: Sequence[_B],
        job: Callable[[_B, threading.Event], BlobResult],
    ) -> list[BlobResult]:
        """Run ``job`` for every blob on the pool; the results in order, or the first error.

        When one job fails the others see ``cancel`` set and stop at their next step. Whatever
        ends the wait (a failed job, Ctrl-C), no job outlives this call: callers may then
        release what the jobs write to.
        """
        if self.transport is not None:
            # Decide the registry's scheme here, once, before any worker needs it.
            self.transport.base_url  # noqa: B018
        self._emit(
            TransferEvent("plan", repository, size=sum(b.total for b in blobs), blobs=len(blobs))
        )
        cancel = threading.Event()
        first_error: list[BaseException] = []

        def run(blob: _B) -> BlobResult:
            def on_retry(notice: RetryNotice) -> None:
                self._emit(
                    TransferEvent(
                        "retry",
                        repository,
                        blob.label,
                        blob.total,
                        attempt=notice.attempt,
                        delay=notice.delay,
                        message=notice.reason,
                    )
                )

            try:
                with retry_scope(cancel, on_retry), self._place(blob, cancel):
                    return job(blob, cancel)
            except BaseException as e:
                if not isinstance(e, CancelledError):
                    self._emit(
                        TransferEvent("error", repository, blob.label, blob.total, message=str(e))
                    )
                with self._lock:
                    if not isinstance(e, CancelledError) and not first_error:
                        first_error.append(e)
                cancel.set()
                raise

        pool = self._executor()
        futures: list[Future[BlobResult]] = [pool.submit(run, blob) for blob in blobs]
        try:
            while True:
                done, pending = wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
                if not pending or any(f.exception() is not None for f in done):
                    break
                if self._interrupted.is_set():
                    raise CancelledError(f"moving blobs of {repository}: interrupted")
        finally:
            if not all(f.done() for f in futures):
                cancel.set()
                for f in futures:
                    f.cancel()
                # A request in flight gets a moment to finish: an upload whose answer was lost
                # cannot be resumed from some registries. Then stalled sockets are broken.
                wait(futures, timeout=_GRACE)
                if self.transport is not None:
                    self.transport.abort(cancel)
                wait(futures, timeout=_STRAGGLERS)
            self.seen.save()  # what was confirmed, even when something else failed
        if first_error:
            raise first_error[0]
        return [f.result() for f in futures]

    @contextmanager
    def _place(self, blob: Uploadable, cancel: threading.Event) -> Iterator[None]:
        """Hold one of ``workers`` places while a large blob moves; a small one needs none."""
        if blob.total <= self.chunk_size:
            yield
            return
        while not self._large.acquire(timeout=0.1):
            if cancel.is_set():
                raise CancelledError(f"waiting to move {blob.label}")
        try:
            yield
        finally:
            self._large.release()

    def push_blobs(self, repository: str, blobs: Sequence[Uploadable]) -> list[BlobResult]:
        """Make sure the registry holds every blob in ``repository``.

        ``blobs`` may include bytes made on the way (compressed layers), whose digest the
        result gives. Returns one result per distinct blob (:attr:`~Uploadable.key`), in the
        order given. When one blob fails, the others stop at their next chunk and the first
        error is raised: the caller must not put a manifest then. Unfinished uploads are kept
        for the next run when there is a journal, else cancelled.
        """
        unique = list({blob.key: blob for blob in blobs}.values())
        return self._run(repository, unique, functools.partial(self._push_one, repository))

    def _push_one(self, repository: str, blob: Uploadable, cancel: threading.Event) -> BlobResult:
        assert self.transport is not None, "an engine without a registry pushes nothing"
        with self._only_upload_of(blob.key, cancel):
            with self._lock:
                mount_from = self._known.get(blob.digest) if blob.digest else None
            if mount_from is None and blob.digest:
                mount_from = self.seen.mount_source(
                    self.transport.registry, blob.digest, repository
                )
            upload = BlobUpload(
                self.transport,
                repository,
                blob,
                chunk_size=self.chunk_size,
                streaming=self.streaming,
                journal=self.journal,
                mount_from=mount_from if mount_from != repository else None,
                cancel=cancel,
                emit=self._emit,
                breaks=self._breaks,
            )
            result = upload.run()
            self.remember(result.digest, repository)
            self.seen.note(self.transport.registry, result.digest, repository)
            return result

    @contextmanager
    def _only_upload_of(self, digest: str, cancel: threading.Event) -> Iterator[None]:
        """Let one job at a time move ``digest``: the others wait, then find it there (or mount
        it). The job holding it is always running, so waiting cannot deadlock."""
        with self._lock:
            lock = self._uploading.setdefault(digest, threading.Lock())
        while not lock.acquire(timeout=0.1):
            if cancel.is_set():
                raise CancelledError(f"waiting for another upload of {digest}")
        try:
            yield
        finally:
            lock.release()

    def download_blobs(
        self, pending: Sequence[tuple[str, Blob]], open_target: Callable[[Blob], BinaryIO]
    ) -> list[BlobResult]:
        """Copy blobs into targets in parallel, checking each one's size and sha256 on the way.

        ``pending`` pairs each blob with the repository it comes from (for progress events);
        ``open_target(blob)`` gives a writer for its bytes. One result per distinct digest, in
        order. A blob whose bytes do not match its digest raises ``DigestMismatchError``.

        Example:
            >>> engine.download_blobs([("team/app", layer)], open_slot)  # doctest: +SKIP
        """
        by_digest = {blob.digest: (repository, blob) for repository, blob in pending}
        label = next(iter(by_digest.values()))[0] if by_digest else ""
        blobs = [blob for _, blob in by_digest.values()]

        def job(blob: Blob, cancel: threading.Event) -> BlobResult:
            return self._download_one(by_digest[blob.digest][0], blob, open_target, cancel)

        return self._run(label, blobs, job)

    def _download_one(
        self,
        repository: str,
        blob: Blob,
        open_target: Callable[[Blob], BinaryIO],
        cancel: threading.Event,
    ) -> BlobResult:
        self._emit(TransferEvent("start", repository, blob.digest, blob.size, 0))
        hasher = hashlib.sha256()
        progress = _Progress(
            lambda done: self._emit(
                TransferEvent("progress", repository, blob.digest, blob.size, done)
            )
        )
        with open_target(blob) as target, blob.open() as reader:
            if blob.range_opener is None or not isinstance(target, RangedTarget):
                write = _sequential(target)
                self._copy(blob, reader, write, 0, blob.size, cancel.is_set, progress, hasher)
            else:
                self._download_adaptive(blob, reader, target, cancel, progress, hasher)
            done = progress.done
        blob.verify(done, hasher.hexdigest())
        # An image names its repository with its registry; only this registry's are kept.
        here = f"{self.transport.registry}/" if self.transport else None
        if here and repository.startswith(here):
            assert self.transport is not None
            self.seen.note(self.transport.registry, blob.digest, repository.removeprefix(here))
        self._emit(TransferEvent("done", repository, blob.digest, blob.size, done, "downloaded"))
        return BlobResult(blob.digest, blob.size, "downloaded", done)

    def _download_adaptive(
        self,
        blob: Blob,
        reader: BinaryIO,
        target: RangedTarget,
        cancel: threading.Event,
        progress: _Progress,
        hasher: hashlib._Hash,
    ) -> None:
        """One connection first; when it proves slow (a per-connection limit, as object
        storage has) and enough is left, the rest is split into ranges fetched at once.

        The first connection's part is hashed as it comes; the other ranges land in their
        places and are hashed back from the target in order: one sha256 over the whole.
        """
        started = time.monotonic()
        probe = min(_PROBE, blob.size)
        self._copy(blob, reader, target.write_at, 0, probe, cancel.is_set, progress, hasher)
        rate = probe / max(time.monotonic() - started, 1e-6)
        parts = min(self.workers, (blob.size - probe) // _MIN_RANGE)
        if rate >= _FAST_CONNECTION or parts < 2:
            self._copy(
                blob, reader, target.write_at, probe, blob.size, cancel.is_set, progress, hasher
            )
            return
        step = -(-(blob.size - probe) // parts)
        ranges = [(start, min(start + step, blob.size)) for start in range(probe, blob.size, step)]
        assert blob.range_opener is not None
        opener = blob.range_opener
        stop = threading.Event()  # set when this blob fails: its other ranges stop

        def stopped() -> bool:
            return stop.is_set() or cancel.is_set()

        def fetch(start: int, end: int) -> None:
            with opener(start, end) as part:
                self._copy(blob, part, target.write_at, start, end, stopped, progress, None)

        pool = self._range_executor()
        futures = [
            pool.submit(contextvars.copy_context().run, fetch, start, end)
            for start, end in ranges[1:]
        ]
        try:
            # This connection goes on with the first range, then is dropped.
            self._copy(blob, reader, target.write_at, *ranges[0], stopped, progress, hasher)
            for (start, end), future in zip(ranges[1:], futures, strict=True):
                future.result()
                position = start
                while position < end:
                    data = target.read_at(min(_COPY_BUFFER, end - position), position)
                    if not data:
                        raise DigestMismatchError(f"blob {blob.digest}: range {start}-{end} short")
                    hasher.update(data)
                    position += len(data)
        finally:
            stop.set()
            wait(futures)

    def _range_executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._range_pool is None:
                self._range_pool = ThreadPoolExecutor(
                    self.workers, thread_name_prefix="registryv2-range"
                )
            return self._range_pool

    @staticmethod
    def _copy(
        blob: Blob,
        reader: BinaryIO,
        write: Callable[[bytes, int], object],
        start: int,
        end: int,
        stopped: Callable[[], bool],
        progress: _Progress,
        hasher: hashlib._Hash | None,
    ) -> None:
        """Copy bytes ``start`` to ``end`` of ``blob`` from ``reader`` to ``write``."""
        position = start
        while data := reader.read(min(_COPY_BUFFER, end - position)):
            if stopped():
                raise CancelledError(f"downloading {blob.digest}")
            if hasher is not None:
                hasher.update(data)
            write(data, position)
            position += len(data)
            progress.add(len(data))
