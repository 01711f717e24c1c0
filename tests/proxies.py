"""A forwarding HTTP proxy in front of a real registry, to record requests and break downloads.

The client talks to the proxy as if it were the registry (the Host header is passed on, so the
registry's Location headers point back at the proxy). Faults are asked for per blob: cut the
next responses after some bytes of body, or ignore ``Range`` headers as some servers do.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it."""

    method: str
    path: str
    range: str | None


class FaultyProxy:
    """``with FaultyProxy(registry.host) as proxy:`` then use ``proxy.url`` as the registry."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[Seen] = []
        self.ignore_range = False
        self.throttle = 0.0  # seconds to wait after each 64 KiB of a blob's body
        self._cuts: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._forward(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def cut(self, digest: str, after: int, times: int = 1) -> None:
        """Break the next ``times`` downloads of blob ``digest`` after ``after`` body bytes
        (after the cuts already asked for)."""
        with self._lock:
            self._cuts.setdefault(digest, []).extend([after] * times)

    def blob_gets(self, digest: str) -> list[Seen]:
        """Every GET of blob ``digest`` the proxy saw, in order."""
        return [r for r in self.requests if r.method == "GET" and r.path.endswith(digest)]

    def _take_cut(self, method: str, path: str) -> int | None:
        if method != "GET" or "/blobs/" not in path:
            return None
        digest = path.rsplit("/", 1)[1]
        with self._lock:
            pending = self._cuts.get(digest)
            return pending.pop(0) if pending else None

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        with self._lock:
            self.requests.append(Seen(handler.command, handler.path, headers.get("Range")))
        if self.ignore_range:
            headers.pop("Range", None)
        upstream = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            upstream.request(handler.command, handler.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        cut = self._take_cut(handler.command, handler.path)
        handler.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() in _HOP_BY_HOP or (
                key.lower() == "content-length" and handler.command != "HEAD"
            ):
                continue
            handler.send_header(key, value)
        if handler.command != "HEAD":
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command == "HEAD":
            return
        if self.throttle and "/blobs/" in handler.path:
            for start in range(0, len(data), 65536):
                handler.wfile.write(data[start : start + 65536])
                time.sleep(self.throttle)
            return
        if cut is None:
            handler.wfile.write(data)
            return
        handler.wfile.write(data[:cut])
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
