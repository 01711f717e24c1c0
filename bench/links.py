"""Links slower than loopback, as TCP proxies in front of a registry: latency, a shared uplink,
a per-connection limit. Loopback alone flatters a client that waits on round trips or on one
connection; these show it.

Each connection is relayed by two pumps (one per direction). A pump may hold data back for a
one-way delay (a queue of at most ``window`` bytes in flight, as a TCP window would allow) and
may draw from a token bucket: one bucket shared by every connection (an uplink) or one per
connection (a server that serves each connection at a bounded rate, like object storage).
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time
from dataclasses import dataclass

from tests.servers import Closing

_PIECE = 64 * 1024
_BURST = 0.02  # seconds of lateness a bucket makes up for


class Bucket:
    """A token bucket of ``rate`` bytes per second; ``take`` blocks until the bytes may pass."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()  # when the next byte may go

    def take(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            # Time lost to sleeping late is made up within a short burst, so the average rate
            # is the rate asked for.
            start = max(now - _BURST, self._next)
            self._next = start + n / self.rate
        if start > now:
            time.sleep(start - now)


@dataclass(frozen=True)
class Link:
    """What a link does to traffic. Rates are in bytes per second."""

    name: str
    delay: float = 0.0  # one way, seconds
    window: int = 4 * 1024 * 1024  # bytes in flight per direction while delayed
    shared_up: float | None = None  # client -> registry, all connections together
    per_connection_down: float | None = None  # registry -> client, each connection

    @property
    def direct(self) -> bool:
        return not (self.delay or self.shared_up or self.per_connection_down)


LOOPBACK = Link("loopback")
RTT_40MS = Link("40 ms RTT", delay=0.020)
UPLINK_200MBIT = Link("200 Mbit/s uplink", shared_up=200e6 / 8)
PER_CONNECTION_400MBIT = Link("400 Mbit/s per connection", per_connection_down=400e6 / 8)


class _Pump:
    """Copy one direction of a connection, delayed and rate-limited as the link says."""

    def __init__(
        self,
        src: socket.socket,
        dst: socket.socket,
        delay: float,
        window: int,
        bucket: Bucket | None,
    ) -> None:
        self.src, self.dst, self.delay, self.bucket = src, dst, delay, bucket
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self._space = threading.Semaphore(max(1, window // _PIECE))
        self._ready = threading.Condition()
        self._closed = False

    def start(self) -> None:
        threading.Thread(target=self._receive, daemon=True).start()
        if self.delay:
            threading.Thread(target=self._deliver, daemon=True).start()

    def _receive(self) -> None:
        try:
            while data := self.src.recv(_PIECE):
                if self.bucket is not None:
                    self.bucket.take(len(data))
                if not self.delay:
                    self.dst.sendall(data)
                    continue
                self._space.acquire()
                with self._ready:
                    self._queue.append((time.monotonic() + self.delay, data))
                    self._ready.notify()
        except OSError:
            pass
        finally:
            if self.delay:
                with self._ready:
                    self._closed = True
                    self._ready.notify()
            else:
                _shut(self.dst)

    def _deliver(self) -> None:
        try:
            while True:
                with self._ready:
                    while not self._queue and not self._closed:
                        self._ready.wait()
                    if not self._queue:
                        return
                    due, data = self._queue.popleft()
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                self.dst.sendall(data)
                self._space.release()
        except OSError:
            pass
        finally:
            _shut(self.dst)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


class LinkProxy(Closing):
    """A loopback TCP proxy to ``upstream`` (``host:port``) behaving as ``link``.

    Example:
        >>> with LinkProxy("127.0.0.1:5000", RTT_40MS) as proxy:  # doctest: +SKIP
        ...     print(proxy.host)
    """

    def __init__(self, upstream: str, link: Link) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.link = link
        self._uplink = Bucket(link.shared_up) if link.shared_up else None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            down = Bucket(self.link.per_connection_down) if self.link.per_connection_down else None
            delay, window = self.link.delay, self.link.window
            _Pump(client, server, delay, window, self._uplink).start()
            _Pump(server, client, delay, window, down).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in self._sockets:
            sock.close()
