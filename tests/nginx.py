"""nginx in front of a test registry, as most registries are deployed: request bodies buffered.

nginx reads a request's whole body before it passes the request on (``proxy_request_buffering
on``), so a request cut off on its way in never reaches the registry, and a chunked one reaches
it with its length. The Host header is passed on, so the registry's Location headers point back
at whatever the client talked to (nginx, or a link in front of it).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from .servers import Closing, free_port, require

_CONF = """\
daemon off;
master_process off;
error_log {root}/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen {host};
        client_max_body_size 0;
        location / {{
            proxy_pass http://{upstream};
            proxy_request_buffering on;
            proxy_set_header Host $http_host;
            proxy_read_timeout 300s;
        }}
    }}
}}
"""


class Nginx(Closing):
    """``nginx -c <conf> -p <root>`` on a free loopback port, proxying to ``upstream``.

    One process (no master, no daemon), stopped by :meth:`close`. Use ``nginx.host`` in place of
    the registry's.
    """

    def __init__(self, upstream: str, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.host = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.host}"
        conf = root / "nginx.conf"
        conf.write_text(_CONF.format(root=root, host=self.host, upstream=upstream))
        self._log = root / "error.log"
        self.process = subprocess.Popen(
            [require("nginx"), "-c", str(conf), "-p", str(root), "-e", str(self._log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 20
        host, port = self.host.rsplit(":", 1)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("nginx exited: " + self._log.read_text())
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start within 20s") from None
                time.sleep(0.05)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
