"""A hostile registry for the tests: a loopback HTTP server that answers what a test tells it.

Each test gives a function from the request to the answer; every request (method, path,
headers, body) is recorded, so a test can also see what reached a second "other host".
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .servers import Closing


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What to send back. ``length`` overrides the Content-Length sent (a body that lies about
    its size); ``pieces`` is sent piece by piece, after ``stall`` seconds' silence mid-body."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    length: int | None = None
    pieces: Iterable[bytes] | None = None
    stall: float = 0.0


Answering = Callable[[Request, "HostileRegistry"], Answer]


class HostileRegistry(Closing):
    """``with HostileRegistry(answer) as hostile:`` then point a client at ``hostile.url``."""

    def __init__(self, answer: Answering) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

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
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, dict(self.headers.items()), body)
                with server._lock:
                    server.requests.append(request)
                answer = server.answer(request, server)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                if answer.length is not None:
                    self.send_header("Content-Length", str(answer.length))
                elif answer.pieces is None:
                    self.send_header("Content-Length", str(len(answer.body)))
                if answer.pieces is not None:
                    self.close_connection = True
                self.end_headers()
                if self.command == "HEAD":
                    return
                try:
                    self.wfile.write(answer.body)
                    for piece in answer.pieces or ():
                        self.wfile.write(piece)
                        self.wfile.flush()
                    if answer.stall:
                        self.wfile.flush()
                        time.sleep(answer.stall)
                except OSError:
                    pass
                if answer.length is not None and answer.length != len(answer.body):
                    self.close_connection = True

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def seen(self, method: str | None = None) -> list[Request]:
        """Requests received (of ``method``), in order."""
        with self._lock:
            return [r for r in self.requests if method is None or r.method == method]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
