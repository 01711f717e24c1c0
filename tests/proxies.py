"""An HTTP-aware fault proxy in front of a real registry: it records, counts and breaks traffic.

The client talks to the proxy as if it were the registry (the Host header is passed on, so the
registry's Location headers point back at the proxy). Like nginx in front of a registry, the
proxy reads a request's whole body before forwarding it, so a request cut off on its way in
never reaches the registry. Faults are asked for in advance:

* ``cut(digest, after)``: break the next downloads of a blob after some bytes of body;
* ``hang(digest, after)``: send some bytes of a blob, then nothing, for a minute;
* ``add_headers[method]``: headers added to every answer to that method (a registry's
  ``OCI-Chunk-Min-Length``, say);
* ``reset_every(n)``: reset the connection in the middle of every n-th upload body and of
  every n-th blob download;
* ``refuse(n, status, headers)``: answer the next n requests with a status (503, 429 with
  ``Retry-After``...) without forwarding them;
* ``stall(n, seconds)``: hold the next n requests that long, then drop them unanswered;
* ``ignore_range``: forward downloads without their ``Range`` header, as some servers answer;
* ``throttle``: seconds to wait after each 64 KiB of blob body, either way (a slow link);
* ``before_forward``: called with each request just before it is passed
  on, so a test can act between two requests (kill the registry) at a known point.

``uploaded`` and ``downloaded`` count the blob body bytes that crossed the proxy, failed
requests included: what a push or a pull cost on the wire.

:class:`Link` is a link rather than a proxy: it relays bytes as TCP carries them, so a request
it cuts off reaches the registry in part. It can be slow, and reset every so many bytes.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from registryv2 import RetryPolicy

from .servers import Closing

# Retries as stubborn as the default policy, without its waits: for tests that fail on purpose.
FAST = RetryPolicy(initial_delay=0.001, max_delay=0.01)

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
_PIECE = 65536


@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it."""

    method: str
    path: str
    range: str | None


class _Reset(Exception):
    """The proxy broke this connection on purpose."""


def reset(connection: socket.socket) -> None:
    """Close with an RST, as a broken network does, instead of an orderly FIN."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


class FaultyProxy(Closing):
    """``with FaultyProxy(registry.host) as proxy:`` then use ``proxy.url`` as the registry."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[Seen] = []
        self.ignore_range = False
        self.throttle = 0.0
        self.uploaded = 0
        self.downloaded = 0
        self.before_forward: Callable[[Seen], None] | None = None
        self._cuts: dict[str, list[int]] = {}
        self._hangs: dict[str, int] = {}
        self.add_headers: dict[str, dict[str, str]] = {}
        self._reset_every = 0
        self._uploads_seen = 0
        self._downloads_seen = 0
        self._refusals: list[tuple[int, dict[str, str]]] = []
        self._stalls: list[float] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out as separate writes: without this, Nagle's algorithm
                # and the client's delayed ACK hold every answer 40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                try:
                    proxy._handle(self)
                except (_Reset, OSError):
                    self.close_connection = True

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    # -- faults ----------------------------------------------------------------------------

    def cut(self, digest: str, after: int, times: int = 1) -> None:
        """Break the next ``times`` downloads of blob ``digest`` after ``after`` body bytes
        (after the cuts already asked for)."""
        with self._lock:
            self._cuts.setdefault(digest, []).extend([after] * times)

    def hang(self, digest: str, after: int) -> None:
        """Send ``after`` bytes of each download of ``digest``, then stall for a minute."""
        with self._lock:
            self._hangs[digest] = after

    def reset_every(self, n: int) -> None:
        """Reset every ``n``-th upload body and blob download halfway through (0: never)."""
        with self._lock:
            self._reset_every = n

    def refuse(self, times: int, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` instead of forwarding them."""
        with self._lock:
            self._refusals += [(status, headers or {})] * times

    def stall(self, times: int, seconds: float) -> None:
        """Hold the next ``times`` requests ``seconds`` long, then drop them unanswered."""
        with self._lock:
            self._stalls += [seconds] * times

    # -- what was seen ---------------------------------------------------------------------

    def blob_gets(self, digest: str) -> list[Seen]:
        """Every GET of blob ``digest`` the proxy saw, in order."""
        return [r for r in self.requests if r.method == "GET" and r.path.endswith(digest)]

    def seen(self, method: str, part: str = "") -> list[Seen]:
        """Requests of ``method`` whose path holds ``part``."""
        return [r for r in self.requests if r.method == method and part in r.path]

    # -- the proxy itself ------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        with self._lock:
            self.requests.append(Seen(handler.command, handler.path, headers.get("Range")))
            # One fault per request: a stall first, else a refusal.
            stall = self._stalls.pop(0) if self._stalls else None
            refusal = self._refusals.pop(0) if self._refusals and stall is None else None
        body = self._read_body(handler)
        if stall is not None:
            time.sleep(stall)
            raise _Reset
        if refusal is not None:
            status, extra = refusal
            handler.send_response(status)
            for key, value in {"Content-Length": "0", **extra}.items():
                handler.send_header(key, value)
            handler.end_headers()
            return
        if self.ignore_range:
            headers.pop("Range", None)
        if self.before_forward is not None:
            self.before_forward(Seen(handler.command, handler.path, headers.get("Range")))
        upstream = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            try:
                upstream.request(handler.command, handler.path, body=body, headers=headers)
                response = upstream.getresponse()
            except OSError:
                handler.send_error(502, "upstream unreachable")
                return
            self._relay(handler, response)
        finally:
            upstream.close()

    def _read_body(self, handler: BaseHTTPRequestHandler) -> bytes | None:
        """The whole request body (unchunked); an upload body may be cut off halfway."""
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            declared = None
        else:
            declared = int(handler.headers.get("Content-Length") or 0)
            if not declared:
                return None
        cut_at = None
        if handler.command in ("PATCH", "PUT", "POST"):
            with self._lock:
                self._uploads_seen += 1
                if self._reset_every and self._uploads_seen % self._reset_every == 0:
                    cut_at = (declared or 2 * _PIECE) // 2
        parts: list[bytes] = []
        got = 0
        for piece in _body_pieces(handler, declared):
            parts.append(piece)
            got += len(piece)
            with self._lock:
                self.uploaded += len(piece)
            if self.throttle and "/blobs/" in handler.path:
                time.sleep(self.throttle)
            if cut_at is not None and got >= cut_at:
                reset(handler.connection)
                raise _Reset
        return b"".join(parts)

    def _relay(self, handler: BaseHTTPRequestHandler, response: http.client.HTTPResponse) -> None:
        is_blob = handler.command == "GET" and "/blobs/sha256:" in handler.path
        cut = self._take_cut(handler.path) if is_blob else None
        # A cut closes cleanly, so the client gets every byte before it; a reset may lose some.
        rst = False
        if is_blob and cut is None:
            with self._lock:
                self._downloads_seen += 1
                if self._reset_every and self._downloads_seen % self._reset_every == 0:
                    cut = int(response.getheader("Content-Length") or 0) // 2
                    rst = True
        hang = self._hangs.get(handler.path.rsplit("/", 1)[1]) if is_blob else None
        if hang is not None:
            cut = hang
        handler.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP:
                handler.send_header(key, value)
        for key, value in self.add_headers.get(handler.command, {}).items():
            handler.send_header(key, value)
        if response.getheader("Content-Length") is None and handler.command != "HEAD":
            handler.close_connection = True
        handler.end_headers()
        if handler.command == "HEAD":
            return
        sent = 0
        while piece := response.read(_PIECE):
            if cut is not None and sent + len(piece) > cut:
                handler.wfile.write(piece[: cut - sent])
                handler.wfile.flush()
                with self._lock:
                    self.downloaded += cut - sent
                if hang is not None:
                    time.sleep(60)
                if rst:
                    reset(handler.connection)
                else:
                    handler.connection.shutdown(socket.SHUT_RDWR)
                raise _Reset
            handler.wfile.write(piece)
            sent += len(piece)
            if is_blob:
                with self._lock:
                    self.downloaded += len(piece)
                if self.throttle:
                    time.sleep(self.throttle)
        if response.length:  # the registry went away mid-body: so does this connection
            handler.connection.shutdown(socket.SHUT_RDWR)
            raise _Reset

    def _take_cut(self, path: str) -> int | None:
        digest = path.rsplit("/", 1)[1]
        with self._lock:
            pending = self._cuts.get(digest)
            return pending.pop(0) if pending else None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _body_pieces(handler: BaseHTTPRequestHandler, declared: int | None) -> Iterator[bytes]:
    """Read a request body in pieces: ``declared`` bytes, or chunked transfer encoding."""
    rfile = handler.rfile
    if declared is not None:
        yield from _exactly(rfile, declared)
        return
    while size := int(rfile.readline().split(b";")[0].strip() or b"0", 16):
        yield from _exactly(rfile, size)
        rfile.readline()
    rfile.readline()


def _exactly(rfile: io.BufferedIOBase, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``rfile`` in pieces; a connection closed before them is a reset."""
    while length:
        piece = rfile.read(min(_PIECE, length))
        if not piece:
            raise _Reset
        length -= len(piece)
        yield piece


class Link(Closing):
    """A network link to ``upstream`` as TCP sees it: bytes relayed both ways as they come,
    nothing parsed and nothing held back, so a request cut off on the way reaches the server in
    part (as it does without a buffering proxy in front of a registry).

    ``rate`` (bytes/s, 0 for as fast as it goes) paces what goes upstream, shared by every
    connection, as one uplink is; ``reset_every`` resets the connection whose bytes cross each
    multiple of that many upstream bytes. Both may change while the link carries traffic.
    ``uploaded`` counts the bytes that went upstream (headers included), ``resets`` the
    connections broken. Use ``link.host`` in place of the server's.
    """

    _PIECE = 16384
    # What the link itself holds on the way: a slow link must not hide megabytes in buffers.
    _BUFFER = 131072

    def __init__(self, upstream: str, *, rate: float = 0, reset_every: int = 0) -> None:
        self.upstream = upstream
        self.rate = rate
        self.reset_every = reset_every
        self.uploaded = 0
        self.resets = 0
        self._next_send = 0.0
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._half_closed: set[socket.socket] = set()
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._BUFFER)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.host = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        host, port = self.upstream.rsplit(":", 1)
        while True:
            try:
                client, _ = self._socket.accept()
            except OSError:
                return
            try:
                server = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                reset(client)
                continue
            server.settimeout(None)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections |= {client, server}
            pair = (client, server)
            threading.Thread(target=self._pump, args=(*pair, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, up: bool) -> None:
        try:
            while piece := source.recv(self._PIECE):
                if up:
                    piece = self._upstream(piece, source, target)
                target.sendall(piece)
            target.shutdown(socket.SHUT_WR)
            with self._lock:
                # The other direction ended first: the connection is over.
                over = source in self._half_closed or target in self._half_closed
                self._half_closed.add(target)
            if not over:
                return
        except (OSError, _Reset):
            pass
        with self._lock:
            self._connections -= {source, target}
            self._half_closed -= {source, target}
        for s in (source, target):
            with contextlib.suppress(OSError):
                s.close()

    def _upstream(self, piece: bytes, client: socket.socket, server: socket.socket) -> bytes:
        """Pace ``piece``; forward it whole, or up to a reset and then break the connection."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_send)
            self._next_send = start + (len(piece) / self.rate if self.rate else 0)
            cut = None
            if self.reset_every:
                crossed = (self.uploaded + len(piece)) // self.reset_every
                if crossed > self.uploaded // self.reset_every:
                    cut = crossed * self.reset_every - self.uploaded
            self.uploaded += len(piece) if cut is None else cut
        if start > now:
            time.sleep(start - now)
        if cut is None:
            return piece
        with contextlib.suppress(OSError):
            server.sendall(piece[:cut])
        with self._lock:
            self.resets += 1
        reset(server)
        reset(client)
        raise _Reset

    def close(self) -> None:
        self._socket.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for s in connections:
            with contextlib.suppress(OSError):
                s.close()


class SilentServer(Closing):
    """A port that accepts connections and never answers: a hung registry, or a black hole."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.host = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._held.append(connection)  # never read, never answered

    def close(self) -> None:
        self._socket.close()
        for connection in self._held:
            connection.close()
