"""Reading a blob out of a registry as a stream that survives broken connections.

:class:`BlobReader` is a plain binary reader over ``GET /v2/<repository>/blobs/<digest>``. When
opening it fails, or the connection breaks in the middle or stalls (no byte for the read
timeout), it waits as the client's :class:`~registryv2.retry.RetryPolicy` says and asks again
from the byte it had reached (``Range: bytes=N-``), so the caller sees one unbroken stream; a
registry that ignores ``Range`` and sends the whole blob again is followed by skipping what was
already read. Every new byte resets the count of failures. The reader never decodes a
``Content-Encoding``: a blob's digest is over its bytes as stored. Checking that digest is the
caller's job (the transfer engine hashes every byte it moves).
"""

from __future__ import annotations

import re

import requests
import urllib3

from .exceptions import DigestMismatchError, RegistryError
from .image import BlobStream
from .models import BlobInfo
from .retry import describe_failure, is_timeout, is_transient
from .transport import Transport, blob_url_path

_SKIP_BUFFER = 1024 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
# What a connection that breaks while the body streams raises, from urllib3 and requests.
_BROKEN = (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError)


class BlobReader(BlobStream):
    """Read ``info.size`` bytes of a blob from a registry, resuming where a connection broke.

    With ``start`` and ``end``, it reads bytes ``start`` to ``end - 1`` of the blob (asking
    for just those), for one of several ranges fetched at once.

    Example:
        >>> with BlobReader(client.transport, "team/app", layer) as reader:  # doctest: +SKIP
        ...     head = reader.read(512)
    """

    def __init__(
        self,
        transport: Transport,
        repository: str,
        info: BlobInfo,
        start: int = 0,
        end: int | None = None,
    ) -> None:
        super().__init__(info.size)
        self.transport = transport
        self.repository = repository
        self.info = info
        self._pos = start
        self._end = info.size if end is None else min(end, info.size)  # reads stop here
        self._what = f"blob {info.digest} of {repository}"
        self._response: requests.Response | None = None
        self._attempts = transport.retry.begin(self._what)

    def _move(self, target: int) -> None:
        """The next read asks from ``target`` (``Range``)."""
        self._drop()
        self._pos = target

    def close(self) -> None:
        self._drop()
        super().close()

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all the rest when negative); ``b""`` only at the blob's end.

        Fewer bytes come back when the connection broke after some arrived: those are kept,
        and the next read continues from there.
        """
        left = self._end - self._pos
        want = left if size is None or size < 0 else min(size, left)
        parts: list[bytes] = []
        got = 0
        while got < want:
            try:
                # read1 hands over what has arrived; read() would drop it if the stream broke.
                data = self._stream().read1(want - got, decode_content=False)
                if not data:
                    raise urllib3.exceptions.ProtocolError("the connection closed early")
            except _BROKEN as e:
                if parts:
                    break
                self._broken(e)
                continue
            except RegistryError as e:
                self._broken(e)
                continue
            parts.append(data)
            got += len(data)
            self._pos += len(data)
            self._attempts.reset()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _broken(self, error: BaseException) -> None:
        """A failed open or read: wait and go on, or raise when the policy says to stop."""
        self._drop()
        if not isinstance(error, RegistryError):
            reason = describe_failure(error)
            if is_timeout(error):
                reason = f"no byte for {self.transport.timeouts[1]:g}s"
            error = RegistryError(
                f"{self._what}: download broke off at byte {self._pos} of {self.info.size} "
                f"({reason})",
                transient=is_transient(error),
            )
        self._attempts.retry(error)

    def _stream(self) -> urllib3.BaseHTTPResponse:
        if self._response is None:
            self._response = self._open()
        return self._response.raw

    def _open(self) -> requests.Response:
        last = "" if self._end == self.info.size else str(self._end - 1)
        headers = {"Range": f"bytes={self._pos}-{last}"} if self._pos or last else None
        response = self.transport.request(
            "GET",
            blob_url_path(self.repository, self.info.digest),
            what=self._what,
            expect=(200, 206),
            headers=headers,
            stream=True,
            retry=False,  # this reader retries, resuming from the byte it reached
        )
        try:
            self._position(response)
        except BaseException:
            response.close()
            raise
        return response

    def _position(self, response: requests.Response) -> None:
        """Check the response starts at our position; skip ahead when it starts at zero."""
        if response.status_code == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != self._pos:
                raise RegistryError(
                    f"{self._what}: asked for bytes from {self._pos}, the registry sent "
                    f"{response.headers.get('Content-Range') or 'no Content-Range'}"
                )
            return
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) != self.info.size:
            raise DigestMismatchError(
                f"{self._what}: the registry sends {length} bytes, the manifest says "
                f"{self.info.size}"
            )
        # A whole blob again (Range ignored): skip what the caller already has.
        skip = self._pos
        while skip:
            data = response.raw.read(min(skip, _SKIP_BUFFER), decode_content=False)
            if not data:
                raise urllib3.exceptions.ProtocolError("the connection closed early")
            skip -= len(data)
