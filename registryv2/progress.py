"""Progress for people: the engine's transfer events made visible as bars or lines.

:class:`TerminalProgress` draws, on a terminal, one line per blob in flight and a total (bytes,
rate, ETA), redrawn in place at most ten times a second. :class:`TqdmProgress` draws tqdm's bars,
which tqdm shows as widgets in a notebook. ``progress=True`` on :class:`RegistryClient` and on
every transferring function picks one of them with :func:`progress_callback`.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from .events import ProgressCallback, TransferEvent

_REDRAW_EVERY = 0.1  # seconds
_MAX_LINES = 8  # blob lines shown at once; the total line says how many there are


def human_bytes(n: float) -> str:
    """A byte count as people read it.

    Example:
        >>> human_bytes(1536), human_bytes(204 * 1024 * 1024)
        ('1.5 KiB', '204.0 MiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@dataclass
class _Blob:
    digest: str
    size: int
    done: int = 0
    state: str = "waiting"


class TerminalProgress:
    """Blob lines and a total, redrawn in place on ``stream`` (a terminal). Thread-safe.

    Example:
        >>> progress = TerminalProgress(sys.stderr, "Pushing")  # doctest: +SKIP
        >>> RegistryClient("localhost:15000", progress=progress)  # doctest: +SKIP
    """

    def __init__(self, stream: TextIO, verb: str = "Moving") -> None:
        self.stream = stream
        self.verb = verb
        self._lock = threading.Lock()
        self._blobs: dict[str, _Blob] = {}
        self._planned_bytes = 0
        self._planned_blobs = 0
        self._started = time.monotonic()
        self._moved = 0  # bytes moved over the network, for the rate
        self._drawn_lines = 0
        self._last_draw = 0.0

    def __call__(self, event: TransferEvent) -> None:
        with self._lock:
            self._update(event)
            urgent = event.kind in ("plan", "retry", "done", "error")
            if urgent or time.monotonic() - self._last_draw >= _REDRAW_EVERY:
                self._draw()

    def _update(self, event: TransferEvent) -> None:
        if event.kind == "plan":
            self._planned_bytes += event.size
            self._planned_blobs += event.blobs
            return
        blob = self._blobs.setdefault(event.digest, _Blob(event.digest, event.size))
        if event.kind == "progress":
            self._moved += max(0, event.bytes_done - blob.done)
            blob.done, blob.state = event.bytes_done, "moving"
        elif event.kind == "start":
            blob.state = "checking"
        elif event.kind == "retry":
            blob.state = f"retry {event.attempt} in {event.delay:.0f}s"
        elif event.kind == "done":
            blob.done, blob.state = blob.size, str(event.action)
        elif event.kind == "error":
            blob.state = "failed"

    def _lines(self) -> list[str]:
        active = [
            b
            for b in self._blobs.values()
            if b.state not in ("exists", "mounted", "uploaded", "downloaded")
        ]
        lines = [self._blob_line(b) for b in active[:_MAX_LINES]]
        finished = sum(1 for b in self._blobs.values() if b not in active)
        done = sum(b.done for b in self._blobs.values())
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self._moved / elapsed
        left = max(0, self._planned_bytes - done)
        eta = f"ETA {left / rate:.0f}s" if rate > 0 and left else ""
        total = max(self._planned_blobs, len(self._blobs))
        lines.append(
            f"{self.verb}: {finished}/{total} blobs, {human_bytes(done)} of "
            f"{human_bytes(self._planned_bytes)}, {human_bytes(rate)}/s {eta}".rstrip()
        )
        return lines

    @staticmethod
    def _blob_line(blob: _Blob) -> str:
        width = 24
        filled = int(width * blob.done / blob.size) if blob.size else width
        bar = "#" * filled + "." * (width - filled)
        return (
            f"{blob.digest[7:19]} [{bar}] {human_bytes(blob.done):>10} / "
            f"{human_bytes(blob.size):<10} {blob.state}"
        )

    def _draw(self) -> None:
        lines = self._lines()
        # Back to the first line drawn last time, then rewrite every line, clearing leftovers.
        out = "\r" + ("\x1b[1A" * self._drawn_lines)
        out += "".join(f"\x1b[2K{line}\n" for line in lines)
        extra = self._drawn_lines - len(lines)
        if extra > 0:
            out += "\x1b[2K\n" * extra + "\x1b[1A" * extra
        self.stream.write(out)
        self.stream.flush()
        self._drawn_lines = len(lines)
        self._last_draw = time.monotonic()

    def close(self) -> None:
        """Leave the last state on screen."""
        with self._lock:
            if self._blobs or self._planned_blobs:
                self._draw()


class TqdmProgress:
    """tqdm's bars: a total, and one per blob in flight (widgets in a notebook).

    Example:
        >>> RegistryClient("localhost:15000", progress=TqdmProgress())  # doctest: +SKIP
    """

    def __init__(self) -> None:
        from tqdm.auto import tqdm  # only when asked for: tqdm is optional

        self._tqdm = tqdm
        self._lock = threading.Lock()
        self._total: Any = None
        self._bars: dict[str, Any] = {}
        self._done: dict[str, int] = {}

    def __call__(self, event: TransferEvent) -> None:
        with self._lock:
            if event.kind == "plan":
                if self._total is None:
                    self._total = self._tqdm(
                        total=event.size, unit="B", unit_scale=True, desc=event.repository
                    )
                else:
                    self._total.total += event.size
                    self._total.refresh()
                return
            if event.kind == "start":
                self._bars[event.digest] = self._tqdm(
                    total=event.size,
                    unit="B",
                    unit_scale=True,
                    desc=event.digest[7:19],
                    leave=False,
                )
                self._done[event.digest] = 0
                return
            bar = self._bars.get(event.digest)
            if bar is None:
                return
            if event.kind in ("progress", "done"):
                delta = event.bytes_done - self._done[event.digest]
                self._done[event.digest] = event.bytes_done
                bar.update(delta)  # negative after a resume from an earlier offset
                if self._total is not None:
                    self._total.update(delta)
            if event.kind in ("done", "error"):
                bar.close()
                del self._bars[event.digest]

    def close(self) -> None:
        """Close every bar."""
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            if self._total is not None:
                self._total.close()


def progress_callback(progress: bool | ProgressCallback | None) -> ProgressCallback | None:
    """What ``progress=`` asks for: ``True`` gives tqdm's bars where tqdm is installed (as in
    a notebook), else :class:`TerminalProgress` on standard error when it is a terminal.

    Example:
        >>> progress_callback(None) is None, progress_callback(print) is print
        (True, True)
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        try:
            return TqdmProgress()
        except ImportError:
            return TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
    return progress
