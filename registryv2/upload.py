"""Uploading one blob into a registry: the upload protocol, resumable, in one place.

:class:`BlobUpload` reads as the protocol does: check whether the registry has the blob (HEAD);
continue an upload a previous run left open, mount the blob from another repository, or start
an upload (POST); send the bytes (one PUT for a blob that fits in a chunk, else PATCHes that
stream several chunks each, or one per chunk); commit (PUT with the digest, carrying the last
segment when the digest is known before the bytes are read). A registry that rejects the bytes
(another digest) never commits them.

When a step fails in a way that may pass (a reset, a timeout, a 503), the upload waits as the
:class:`~registryv2.retry.RetryPolicy` says, then asks the registry where it stands: a GET on the
upload's location answers ``Range: 0-N``, N+1 bytes held. The source and the running sha256 move
to that offset (re-reading at most one segment of the source, never re-sending) and the upload
goes on. An upload the registry no longer knows (404; the CNCF registry drops an upload whose
PATCH arrived in part) starts again from zero; a blob that keeps starting again without getting
further gives up, saying that the link keeps cutting uploads. POST and PATCH are never simply
repeated: they are only ever continued from where the registry says it stands.

A streamed PATCH is sent chunked, so it can end at any byte: when the transfer is cancelled
(Ctrl-C) the body ends where it is, and the registry confirms what it got instead of losing a
request cut in the middle. Unfinished uploads are recorded in the
:class:`~registryv2.journal.UploadJournal` when there is one, so a push run again after Ctrl-C or
a crash continues them; an upload the client leaves otherwise is cancelled (DELETE).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from .events import BlobAction, TransferEvent
from .exceptions import (
    CancelledError,
    DigestMismatchError,
    NotFoundError,
    RegistryError,
)
from .image import Uploadable, read_full
from .journal import JournalEntry, UploadJournal
from .log import logger
from .models import BlobResult
from .progress import human_bytes
from .retry import Attempts
from .transport import Transport, blob_url_path

OCTET_STREAM = {"Content-Type": "application/octet-stream"}
_SKIP_BUFFER = 1024 * 1024
# The largest blob sent in the commit's body, read into memory first.
_MAX_PUT_BODY = 16 * 1024 * 1024
# Bytes read (and held) at a time when a request streams the source: also what a cancelled
# request still sends before its body ends (at 1 MB/s, a quarter of a second).
_MAX_PIECE = 256 * 1024
# A streamed request starts at one chunk (what an interruption may lose early on); each next
# one carries about this many seconds of sending at the rate the link moved the last (its
# round trip aside), up to the max: few round trips on a distant link, little lost to a reset
# on any link. The commit takes the rest when less than two segments are left. After a
# failure the segments start again from one chunk.
_SEGMENT_SECONDS = 1.0
_MAX_SEGMENT_CHUNKS = 64
# Once a connection has broken, a segment is at most this share of what the link carried
# between its last two breaks (or since the last, once that is more): while the link keeps
# breaking, each break loses a small part of what it lets through, and the segments grow back
# only with a run of successes.
_BREAK_SHARE = 16
# Starts from zero (the registry dropped the upload) that get no further than the one before,
# after which the blob gives up: the link keeps cutting its requests.
_MAX_RESTARTS = 3
# Answers to a streamed PATCH that say the registry wants a chunk per request, with its length.
_NO_STREAMING = (400, 411, 413, 416)
_RANGE = re.compile(r"^(?:bytes=)?0-(\d+)$")


def with_query(location: str, **params: str) -> str:
    """Add query parameters to an upload location, keeping the ones it has (its state).

    Example:
        >>> with_query("/v2/a/blobs/uploads/u?_state=s", digest="sha256:ab")
        '/v2/a/blobs/uploads/u?_state=s&digest=sha256%3Aab'
    """
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class _Segment:
    """The body of one PATCH: up to ``limit`` bytes of the blob, read a piece at a time as the
    request sends them (memory holds one piece). Sent chunked, it ends where the source does, or
    where it stands when the transfer is cancelled: the request is then whole, and the registry
    keeps and confirms what it got. A :class:`_SizedSegment` is exactly ``limit`` bytes."""

    _sized = False

    def __init__(self, upload: BlobUpload, first: bytes, limit: int) -> None:
        self._upload = upload
        self._first = first
        self._limit = limit
        self.sent = 0
        self.ended = False  # the source ended within this segment

    def __iter__(self) -> Iterator[bytes]:
        data, piece = self._first, self._upload.piece
        while data:
            self.sent += len(data)
            self._upload.sending(self.sent)
            yield data
            if self.sent >= self._limit or (self._upload.cancel.is_set() and not self._sized):
                return
            data = self._upload.read(min(piece, self._limit - self.sent))
        self.ended = True
        if self._sized:
            raise DigestMismatchError(f"{self._upload.what}: the source ended before the blob did")


class _SizedSegment(_Segment):
    """A segment of known length: requests sends it with a Content-Length. Cut short, the
    registry would lose the upload: cancelled, it goes on for the moment the engine gives
    requests in flight."""

    _sized = True

    def __len__(self) -> int:
        return self._limit


class LinkBreaks:
    """How often the link to one registry breaks, as the uploads over it see it together: how
    many bytes it carries between two broken connections. Thread-safe.

    Example:
        >>> breaks = LinkBreaks()
        >>> breaks.carried(64 << 20); breaks.broke(16 << 20)
        >>> breaks.segment_limit(320 << 20, 1 << 20) == (80 << 20) // 16
        True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._carried = 0  # bytes sent since a connection last broke, lost ones included
        self._between: int | None = None  # bytes sent between the last two breaks

    def carried(self, sent: int) -> None:
        """A request delivered ``sent`` bytes."""
        with self._lock:
            self._carried += sent

    def broke(self, lost: int) -> None:
        """A connection broke with ``lost`` bytes of its request sent."""
        with self._lock:
            self._between, self._carried = self._carried + lost, 0

    def segment_limit(self, largest: int, least: int) -> int:
        """``largest``, or once a connection has broken, a share of what the link carries
        between breaks (``least`` at least)."""
        with self._lock:
            if self._between is None:
                return largest
            carried = max(self._between, self._carried)
        return min(largest, max(carried // _BREAK_SHARE, least))


class BlobUpload:
    """One blob going into one repository, from the HEAD that may find it there to the commit.

    The bytes go in segments: a PATCH streams one chunk, the next as many chunks as about a
    second of sending at the rate the last one went (up to 64), and the commit's PUT carries
    the last segment when the blob's digest is known beforehand: a round trip per segment, not
    per chunk, and a reset loses at most the segment in flight (the segments start again from
    one chunk, and stay small while the link keeps breaking). Without ``streaming``, or for a
    registry that rejects a streamed PATCH or asks for a minimum length, it sends one chunk per
    PATCH. A blob of one chunk goes up with the commit, in one PUT.

    Args:
        transport: the registry's transport.
        repository: where the blob goes.
        blob: a :class:`~registryv2.image.Blob`, or bytes made on the way (a compressed layer).
        chunk_size: the unit of reading, hashing and progress; bytes per PATCH when not
            streaming (raised to the registry's ``OCI-Chunk-Min-Length``).
        streaming: send several chunks per PATCH.
        journal: where unfinished uploads are recorded for the next run, or None.
        mount_from: a repository of the same registry known to hold the blob, or None.
        cancel: set when the transfer is abandoned; the upload stops at its next step.
        emit: receives the blob's ``start``, ``resume``, ``progress`` and ``done`` events.
        breaks: what the uploads to this registry learn of its link, shared by them.

    Example:
        >>> BlobUpload(transport, "team/app", layer, chunk_size=5 << 20).run()  # doctest: +SKIP
        BlobResult(digest='sha256:...', size=..., action='uploaded', bytes_moved=...)
    """

    def __init__(
        self,
        transport: Transport,
        repository: str,
        blob: Uploadable,
        *,
        chunk_size: int,
        streaming: bool = True,
        journal: UploadJournal | None = None,
        mount_from: str | None = None,
        cancel: threading.Event | None = None,
        emit: Callable[[TransferEvent], None] | None = None,
        breaks: LinkBreaks | None = None,
    ) -> None:
        self.transport = transport
        self.repository = repository
        self.blob = blob
        self.chunk_size = chunk_size
        self.piece = min(chunk_size, _MAX_PIECE)  # bytes read (and held) at a time
        self.streaming = streaming
        self.journal = journal
        self.mount_from = mount_from
        self.cancel = cancel or threading.Event()
        self._emit_event = emit
        self.breaks = breaks or LinkBreaks()
        self.what = f"uploading {blob.label} to {repository}"
        self.location: str | None = None  # where the registry takes the next bytes
        self.offset = 0  # bytes of the blob the registry has confirmed
        self.sent = 0  # bytes the registry accepted from us in this run
        self._segment = chunk_size  # bytes in the next streamed request
        self._round_trip = 0.0  # seconds the last request without a body took
        self._in_flight = 0  # bytes of the current request's body sent so far
        self._streamed = False  # the request in flight is a streamed PATCH
        self._furthest = 0  # the most of the blob the registry has confirmed
        self._restarted_after = 0  # how far the blob had got when it last started from zero
        self._restarts = 0  # starts from zero since the blob last got further
        self._drops = 0  # uploads of this blob the registry dropped
        self._left_earlier = 0  # bytes held by an upload an earlier run left, not yet confirmed
        self._found_size: int | None = None  # the size the registry gave for the blob
        self._ended = False  # the source ended, and the registry confirmed all of it
        self._entry: JournalEntry | None = None
        self._attempts: Attempts | None = None
        self._reader: BinaryIO | None = None
        self._read_pos = 0
        self._hasher = hashlib.sha256()
        # The sha256 state at the registry's confirmed offset: where a resume starts from.
        self._confirmed_hash = (0, hashlib.sha256())

    # -- the protocol, top to bottom ---------------------------------------------------------

    def run(self) -> BlobResult:
        """Make sure the repository holds the blob; say how, and how many bytes were sent."""
        self._emit("start")
        if self.journal is not None and not self._fits_one_request():
            self._entry = self.journal.claim(
                self.transport.registry, self.repository, self.blob.key
            )
        try:
            if self.exists():
                # An upload an earlier run left for this blob is of no use now: cancelled.
                saved = self._entry.saved() if self._entry is not None else None
                self.location = saved.location if saved else None
                return self._finish("exists")
            return self._transfer()
        finally:
            self._close_reader()
            if self._entry is not None:
                self._entry.release()

    def exists(self) -> bool:
        """Ask the registry whether the repository already holds the blob (HEAD); a blob
        whose digest is known only once read is not asked about."""
        if self.blob.digest is None:
            return False
        response = self.transport.request(
            "HEAD",
            blob_url_path(self.repository, self.blob.digest),
            what=f"checking blob {self.blob.digest} in {self.repository}",
            expect=(200, 404),
        )
        length = response.headers.get("Content-Length", "")
        found = response.status_code == 200
        self._found_size = int(length) if found and length.isdigit() else None
        return found

    def _fits_one_request(self) -> bool:
        """A blob of one chunk goes up with the commit, read into memory: when it is small."""
        size = self.blob.size
        return size is not None and size <= min(self.chunk_size, _MAX_PUT_BODY)

    def _transfer(self) -> BlobResult:
        self._attempts = attempts = self.transport.retry.begin(self.what)
        self._segment = min(self.chunk_size, self._segment_limit())
        saved = self._entry.saved() if self._entry is not None else None
        self.location = saved.location if saved else None
        asking = saved is not None  # where does the registry's upload stand?
        checking = False  # did a failed commit land after all?
        self._furthest = self._left_earlier = saved.offset if saved else 0
        mount_from = self.mount_from
        try:
            while True:
                if self._restarts >= _MAX_RESTARTS:
                    raise self._keeps_cutting()
                try:
                    if checking and self.exists():
                        return self._finish("uploaded" if self.sent else "exists")
                    if asking and not self._where():
                        asking = checking = False
                        continue  # the upload is gone: start again, unless that keeps happening
                    if self.location is None:
                        if self._start(mount_from):
                            if self.blob.size is None:
                                self.exists()  # the size of what was mounted
                            return self._finish("mounted")
                        mount_from = None
                    asking = checking = False
                    self._send()
                    return self._commit()
                except RegistryError as e:
                    if self.cancel.is_set():
                        raise CancelledError(self.what) from None
                    if self._streamed and not e.transient and e.status in _NO_STREAMING:
                        self.streaming = False  # this registry wants a chunk per PATCH
                    else:
                        attempts.retry(e)
                    self._failed(e)
                    asking, checking = self.location is not None, True
        except (CancelledError, KeyboardInterrupt):
            self._leave_open()
            raise
        except RegistryError as e:
            if e.transient:
                self._leave_open()
            else:
                self._abandon()
            raise
        except BaseException:
            self._abandon()
            raise

    def _start(self, mount_from: str | None) -> bool:
        """POST a new upload, or a mount; True when the registry mounted the blob."""
        digest = self.blob.digest
        params = {"mount": digest, "from": mount_from} if mount_from and digest else None
        what = f"starting upload of {self.blob.label} to {self.repository}"
        try:
            response = self.transport.request(
                "POST",
                f"/v2/{self.repository}/blobs/uploads/",
                what=what,
                expect=(201, 202),
                params=params,
                retry=False,
            )
        except RegistryError as e:
            if params is None or e.transient or not 400 <= (e.status or 0) < 500:
                raise
            # A mount is a hint: its source may be gone, or unreadable with these credentials
            # (401, 403). Whatever the registry refuses, a plain upload is asked for instead.
            return self._start(None)
        self._round_trip = response.elapsed.total_seconds()
        if response.status_code == 201:
            return True
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                f"{what}: the registry gave no Location", status=response.status_code
            )
        # Registries may demand larger chunks than ours (OCI distribution spec 1.1), and then
        # get exactly such chunks.
        min_length = response.headers.get("OCI-Chunk-Min-Length", "")
        if min_length.isdigit() and int(min_length) > 0:
            self.chunk_size = max(self.chunk_size, int(min_length))
            self.streaming = False
        self.location = self.transport.url(location)
        self._move_to(0)
        self._record()
        return False

    def _send(self) -> None:
        """Send the bytes from the confirmed offset; a blob of one chunk waits for the commit."""
        if self._fits_one_request():
            return
        while not self._ended and self.offset != self.blob.size:
            if self.cancel.is_set():
                raise CancelledError(self.what)
            if self._last_segment_goes_with_commit():
                return
            self._send_segment()

    def _last_segment_goes_with_commit(self) -> bool:
        """Whether the rest of the blob is less than two segments and may go with the commit:
        when streaming a blob whose digest is known before its bytes are read."""
        size, digest = self.blob.size, self.blob.digest
        if not self.streaming or size is None or digest is None:
            return False
        return size - self.offset < 2 * self._segment

    def _send_segment(self) -> None:
        """PATCH the next segment: streamed (chunked, so that it may end at any byte), else one
        chunk with its length and range."""
        assert self.location is not None
        limit = self._segment if self.streaming else self.chunk_size
        size = self.blob.size
        if size is not None:
            limit = min(limit, size - self.offset)
        sized = not self.streaming
        first = self.read(min(self.piece, limit))
        if not first:
            if size is not None:
                raise DigestMismatchError(f"{self.what}: the source ended before the blob did")
            self._ended = True
            return
        if sized and size is None:
            # Made on the way and sent one chunk per request: the chunk is read first, to
            # know its length (memory holds one chunk).
            first += self.read(limit - len(first))
            limit = len(first)
            body: _Segment | bytes = first
        else:
            body = (_SizedSegment if sized else _Segment)(self, first, limit)
        headers = dict(OCTET_STREAM)
        if sized:
            headers["Content-Range"] = f"{self.offset}-{self.offset + limit - 1}"
        self._streamed = not sized
        response = self.transport.request(
            "PATCH",
            self.location,
            what=self.what,
            expect=(202,),
            headers=headers,
            data=body,
            retry=False,
        )
        self._streamed = False
        sent = body.sent if isinstance(body, _Segment) else len(body)
        self._confirmed(response, self.offset + sent, sent)
        if body.ended if isinstance(body, _Segment) else size is None and sent < limit:
            self._ended = True
        if self.streaming:
            self._size_next_segment(sent, response.elapsed.total_seconds())

    def _size_next_segment(self, sent: int, seconds: float) -> None:
        """Bytes for the next segment: about ``_SEGMENT_SECONDS`` of sending at the rate the
        last segment moved, less the round trip an empty request takes (at most half of it),
        in whole chunks, within :meth:`_segment_limit`."""
        moving = max(seconds - self._round_trip, seconds / 2, 1e-3)
        fit = int(sent / moving * _SEGMENT_SECONDS) // self.chunk_size * self.chunk_size
        self._segment = min(max(fit, self.chunk_size), self._segment_limit())

    def _segment_limit(self) -> int:
        return self.breaks.segment_limit(_MAX_SEGMENT_CHUNKS * self.chunk_size, self.piece)

    def _failed(self, error: RegistryError) -> None:
        """A step failed: the segments start again from one chunk, or less when the link keeps
        breaking (a failure without an answer is the link's)."""
        self._streamed = False
        if error.status is None:
            self.breaks.broke(self._in_flight)
        self._in_flight = 0
        self._segment = min(self.chunk_size, self._segment_limit())

    def _commit(self) -> BlobResult:
        """PUT the digest: with the bytes of a one-chunk blob (read first, then checked), or
        streaming the last segment of a blob whose digest is known (checked as it goes, and
        again by the registry); else after every byte, with the digest computed over them."""
        assert self.location is not None
        size = self.blob.size
        body: _Segment | bytes = b""
        if self._fits_one_request():
            assert size is not None
            body = self.read(size - self.offset)
        elif size is not None and self.offset < size:
            first = self.read(min(self.piece, size - self.offset))
            body = _SizedSegment(self, first, size - self.offset)
        if isinstance(body, bytes):
            digest = self.blob.verify(self.offset + len(body), self._hasher.hexdigest())
        else:
            assert self.blob.digest is not None
            digest = self.blob.digest
        try:
            response = self.transport.request(
                "PUT",
                with_query(self.location, digest=digest),
                what=self.what,
                expect=(201,),
                headers=OCTET_STREAM if body else None,
                data=body or None,
                retry=False,
            )
        except RegistryError:
            if isinstance(body, _Segment) and self.offset + body.sent == size:
                # All of it went: bytes that are not the blob say so better than the registry.
                self.blob.verify(self.offset + body.sent, self._hasher.hexdigest())
            raise
        if isinstance(body, _Segment):
            sent = body.sent
            self.blob.verify(self.offset + sent, self._hasher.hexdigest())
        else:
            sent = len(body)
        self.sent += sent
        self.offset += sent
        self.location = None  # committed: the upload is no more
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"{self.what}: the registry stored it as {answered}")
        return self._finish("uploaded", digest)

    # -- resuming ----------------------------------------------------------------------------

    def _where(self) -> bool:
        """Ask the registry how many bytes of the upload it holds, and continue from there.

        False when it no longer knows the upload, or its answer makes no sense (that upload is
        cancelled): the blob starts again from zero.
        """
        assert self.location is not None
        what = f"{self.what}: asking where the upload stands"
        try:
            response = self.transport.request(
                "GET", self.location, what=what, expect=(204, 200), retry=False
            )
        except NotFoundError:
            self._lost()
            return False
        self._round_trip = response.elapsed.total_seconds()
        header = response.headers.get("Range", "").strip()
        match = _RANGE.match(header)
        # "0-0" is how the CNCF registry says "nothing yet" (it cannot say 0-(-1)).
        held = int(match.group(1)) + 1 if match and match.group(1) != "0" else 0
        size = self.blob.size
        if (header and not match) or (size is not None and held > size):
            self._cancel_upload()
            self._lost()
            return False
        self.location = self.transport.url(response.headers.get("Location") or self.location)
        self._ended = False
        self._move_to(held)
        self._furthest = max(self._furthest, held)
        self._record()
        self._emit("resume" if self._left_earlier else "progress")
        self._left_earlier = 0
        return True

    def _lost(self) -> None:
        """The registry dropped the upload: the blob starts again from zero, and counts how
        often it did so without getting further than the time before."""
        if self._left_earlier:
            # A rerun is meant to continue: when it cannot, people are told.
            logger.warning(
                "%s: the registry no longer holds the %s an earlier push left; "
                "sending the blob again from the start",
                self.what,
                human_bytes(self._left_earlier),
            )
            self._left_earlier = 0
        else:
            logger.info("%s: the registry dropped the upload; starting it again", self.what)
        self._drops += 1
        if self._furthest > self._restarted_after:
            self._restarted_after, self._restarts = self._furthest, 0
        else:
            self._restarts += 1
        self.location = None
        if self._entry is not None:
            self._entry.forget()

    def _keeps_cutting(self) -> RegistryError:
        size = f" of {human_bytes(self.blob.size)}" if self.blob.size is not None else ""
        return RegistryError(
            f"{self.what}: the link keeps cutting uploads (the registry dropped the upload "
            f"{self._drops} times, never holding more than {human_bytes(self._restarted_after)}"
            f"{size}); try one request per chunk (--chunk-size), or a proxy that buffers "
            "requests (nginx) in front of the registry",
            transient=True,
        )

    def _move_to(self, offset: int) -> None:
        """Put the source and the running hash at ``offset`` bytes of the blob."""
        base, state = self._confirmed_hash
        if offset < base:
            base, state = 0, hashlib.sha256()
        self._seek(base)
        self._hasher = state.copy()
        while self._read_pos < offset:
            data = self._source().read(min(_SKIP_BUFFER, offset - self._read_pos))
            if not data:
                raise DigestMismatchError(
                    f"blob {self.blob.label}: the source ended at {self._read_pos} bytes, "
                    f"before the {offset} the registry holds"
                )
            self._hasher.update(data)
            self._read_pos += len(data)
        self.offset = offset
        self._confirmed_hash = (offset, self._hasher.copy())

    def _confirmed(self, response: requests.Response, offset: int, sent: int) -> None:
        assert self.location is not None
        self.location = self.transport.url(response.headers.get("Location") or self.location)
        self.offset = offset
        self._furthest = max(self._furthest, offset)
        self.sent += sent
        self.breaks.carried(sent)
        self._in_flight = 0
        self._confirmed_hash = (offset, self._hasher.copy())
        if self._attempts is not None:
            self._attempts.reset()  # failures count in a row: this segment went through
        self._record()
        self._emit("progress")

    def _record(self) -> None:
        if self._entry is not None and self.location is not None:
            self._entry.record(self.location, self.offset)

    def _leave_open(self) -> None:
        """Interrupted: keep the upload for the next run when journaled, else cancel it."""
        if self._entry is None:
            self._abandon()

    def _abandon(self) -> None:
        """Cancel the registry's upload and forget it."""
        if self._entry is not None:
            self._entry.forget()
        self._cancel_upload()

    def _cancel_upload(self) -> None:
        """DELETE the registry's upload, if there is one; best effort, the cause matters more."""
        if self.location is None:
            return
        with contextlib.suppress(RegistryError):
            self.transport.request(
                "DELETE",
                self.location,
                what="cancelling upload",
                expect=(204, 404, 405),
                retry=False,
            )

    # -- the source ----------------------------------------------------------------------------

    def _source(self) -> BinaryIO:
        if self._reader is None:
            self._reader = self.blob.open()
            self._read_pos = 0
        return self._reader

    def _seek(self, offset: int) -> None:
        reader = self._source()
        if self._read_pos == offset:
            return
        if reader.seekable():
            reader.seek(offset)
            self._read_pos = offset
            return
        if offset < self._read_pos:
            self._close_reader()
            reader = self._source()
        while self._read_pos < offset:
            data = reader.read(min(_SKIP_BUFFER, offset - self._read_pos))
            if not data:
                break
            self._read_pos += len(data)

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the blob from where the reading stands, hashed as read."""
        data = read_full(self._source(), size)
        self._hasher.update(data)
        self._read_pos += len(data)
        return data

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # -- reporting -----------------------------------------------------------------------------

    def sending(self, in_flight: int) -> None:
        """``in_flight`` bytes of the current segment have gone out: report the progress."""
        self._in_flight = in_flight
        self._emit("progress", offset=self.offset + in_flight)

    def _finish(self, action: BlobAction, digest: str | None = None) -> BlobResult:
        # The blob is there without an upload of ours left open: one that is, is cancelled.
        self._abandon()
        self._emit("done", action)
        size = self.blob.size
        if size is None:
            # Made on the way: committed here, its length; else found by a remembered digest,
            # the size the registry gave.
            size = self.offset if digest else self._found_size
        digest = digest or self.blob.digest
        assert digest is not None  # only a blob of known digest is found or mounted
        if size is None:
            raise RegistryError(f"{self.what}: the registry did not say the size of {digest}")
        return BlobResult(digest, size, action, self.sent)

    def _emit(self, kind: str, action: BlobAction | None = None, offset: int = -1) -> None:
        if self._emit_event is None:
            return
        total = self.blob.total
        done = (
            total if kind == "done" else self.blob.progress(self._reader, max(offset, self.offset))
        )
        self._emit_event(
            TransferEvent(
                kind,  # type: ignore[arg-type]
                self.repository,
                self.blob.label,
                total,
                min(done, total),
                action,
            )
        )
