"""Progress for people: the engine's transfer events made visible as bars or lines.

Every view keeps the same count: a line per blob in flight and a total (blobs, bytes, rate,
ETA), over one *run* (from a ``plan`` event until every blob it planned is finished, or one
failed). They differ in where they draw. :class:`TerminalProgress` redraws in place on a
terminal, at most ten times a second. :class:`NotebookProgress` shows one output in a notebook
cell, updated in place: a bar for the run and one per blob in flight, gone when the blob is done.
:class:`LineProgress` writes a few plain lines, for a log file. ``progress=True`` on
:class:`RegistryClient` and on every transferring function picks one with
:func:`progress_callback`.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar, TextIO

from .events import ProgressCallback, TransferEvent

_MAX_LINES = 8  # blob lines shown at once; the total line says how many there are
_FINISHED = ("exists", "mounted", "uploaded", "downloaded")


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


def _bar(fraction: float, width: int = 24) -> str:
    filled = min(width, max(0, int(width * fraction)))
    return "#" * filled + "." * (width - filled)


@dataclass
class _Blob:
    digest: str
    size: int
    done: int = 0
    state: str = "waiting"


class _Progress:
    """What every view counts, and when it redraws. Thread-safe."""

    REDRAW_EVERY: ClassVar[float] = 0.1  # seconds
    URGENT: ClassVar[tuple[str, ...]] = ("plan", "retry", "done", "error", "images", "image")

    def __init__(self, verb: str | None = None) -> None:
        self.verb = verb
        self._lock = threading.Lock()
        self._label = verb or "Moving"
        self._blobs: dict[str, _Blob] = {}
        self._planned_bytes = 0
        self._planned_blobs = 0
        self._started = time.monotonic()
        self._moved = 0  # bytes moved over the network, for the rate
        self._last_draw = 0.0
        self._ended = True  # the first plan begins a run
        self._images = 0  # for a set of images: how many, and how many are finished
        self._images_done = 0

    def __call__(self, event: TransferEvent) -> None:
        with self._lock:
            if event.kind in ("plan", "images") and self._ended:
                self._begin(event.repository)
            self._update(event)
            ending = not self._ended and self._finished()
            self._ended = self._ended or ending
            now = time.monotonic()
            if ending or event.kind in self.URGENT or now - self._last_draw >= self.REDRAW_EVERY:
                self._draw()
                self._last_draw = now

    def _begin(self, repository: str) -> None:
        """A new run: what earlier runs counted is left where it was drawn."""
        self._label = self.verb or repository
        self._blobs = {}
        self._planned_bytes = self._planned_blobs = self._moved = 0
        self._images = self._images_done = 0
        self._started = time.monotonic()
        self._ended = False

    def _finished(self) -> bool:
        if self._images:  # a set ends with its last image, whatever its blobs did
            return self._images_done >= self._images
        blobs = self._blobs.values()
        done = sum(1 for b in blobs if b.state in _FINISHED)
        failed = any(b.state == "failed" for b in blobs)
        return failed or 0 < self._planned_blobs <= done

    def _update(self, event: TransferEvent) -> None:
        if event.kind == "images":
            self._images += event.blobs
            return
        if event.kind == "image":
            self._images_done += 1
            return
        if event.kind == "plan":
            self._planned_bytes += event.size
            self._planned_blobs += event.blobs
            return
        blob = self._blobs.setdefault(event.digest, _Blob(event.digest, event.size))
        if event.kind == "progress":
            self._moved += max(0, event.bytes_done - blob.done)
            blob.done, blob.state = event.bytes_done, "moving"
        elif event.kind == "resume":
            # Held by the registry since an earlier run: not this run's bytes, nor its rate's.
            blob.done, blob.state = event.bytes_done, "resuming"
        elif event.kind == "start":
            blob.state = "checking"
        elif event.kind == "retry":
            blob.state = f"retry {event.attempt} in {event.delay:.0f}s"
        elif event.kind == "done":
            blob.done, blob.state = blob.size, str(event.action)
        elif event.kind == "error":
            blob.state = "failed"

    def _active(self) -> list[_Blob]:
        return [b for b in self._blobs.values() if b.state not in _FINISHED]

    def _fraction(self) -> float:
        if self._planned_bytes:
            return min(1.0, sum(b.done for b in self._blobs.values()) / self._planned_bytes)
        return 1.0 if self._ended else 0.0

    def _lines(self) -> list[str]:
        active = self._active()
        lines = [self._blob_line(b) for b in active[:_MAX_LINES]]
        finished = len(self._blobs) - len(active)
        done = sum(b.done for b in self._blobs.values())
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self._moved / elapsed
        left = max(0, self._planned_bytes - done)
        eta = f"ETA {left / rate:.0f}s" if rate > 0 and left else ""
        total = max(self._planned_blobs, len(self._blobs))
        images = f"{self._images_done}/{self._images} images, " if self._images else ""
        lines.append(
            f"{self._label}: {images}{finished}/{total} blobs, {human_bytes(done)} of "
            f"{human_bytes(self._planned_bytes)}, {human_bytes(rate)}/s {eta}".rstrip()
        )
        return lines

    @staticmethod
    def _blob_line(blob: _Blob) -> str:
        bar = _bar(blob.done / blob.size if blob.size else 1.0)
        return (
            f"{blob.digest[7:19]} [{bar}] {human_bytes(blob.done):>10} / "
            f"{human_bytes(blob.size):<10} {blob.state}"
        )

    def _draw(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Show the last state."""
        with self._lock:
            if self._blobs or self._planned_blobs:
                self._draw()


class TerminalProgress(_Progress):
    """Blob lines and a total, redrawn in place on ``stream`` (a terminal). Thread-safe.

    Example:
        >>> progress = TerminalProgress(sys.stderr, "Pushing")  # doctest: +SKIP
        >>> RegistryClient("localhost:15000", progress=progress)  # doctest: +SKIP
    """

    def __init__(self, stream: TextIO, verb: str | None = None) -> None:
        super().__init__(verb)
        self.stream = stream
        self._drawn_lines = 0

    def _begin(self, repository: str) -> None:
        super()._begin(repository)
        self._drawn_lines = 0  # the last run's lines stay above

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

    def note(self, line: str) -> None:
        """Write ``line`` above the progress, which goes on below it."""
        with self._lock:
            # Over the lines drawn last, cleared to the end of the screen, then drawn anew.
            self.stream.write("\r" + "\x1b[1A" * self._drawn_lines + "\x1b[J" + line + "\n")
            self._drawn_lines = 0
            if self._blobs or self._planned_blobs:
                self._draw()
            else:
                self.stream.flush()


class LineProgress(_Progress):
    """A few plain lines on ``stream`` (a file, a pipe): the total when a run begins, every ten
    seconds, and when it ends. No escape codes, no carriage returns. Thread-safe.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> progress = LineProgress(out, "Pushing")
        >>> progress(TransferEvent("plan", "team/app", size=2048, blobs=1))
        >>> progress(TransferEvent("done", "team/app", "sha256:" + "ab" * 32, 2048, 2048, "exists"))
        >>> print(out.getvalue(), end="")
        Pushing: 0/1 blobs, 0 B of 2.0 KiB, 0 B/s
        Pushing: 1/1 blobs, 2.0 KiB of 2.0 KiB, 0 B/s
    """

    REDRAW_EVERY = 10.0
    URGENT = ("plan",)

    def __init__(self, stream: TextIO, verb: str | None = None) -> None:
        super().__init__(verb)
        self.stream = stream

    def _draw(self) -> None:
        self.stream.write(self._lines()[-1] + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Write the total once more, unless the run's end already did."""
        with self._lock:
            if not self._ended:
                self._draw()


class NotebookProgress(_Progress):
    """One output in a notebook cell, updated in place: a bar for the run and one per blob in
    flight, each gone when its blob is done. Its text form (what a saved notebook shows
    without the HTML) is the same lines a terminal shows, the run's bar first. Thread-safe.

    Example:
        >>> RegistryClient("localhost:15000", progress=NotebookProgress())  # doctest: +SKIP
    """

    REDRAW_EVERY = 0.2

    def __init__(self, verb: str | None = None) -> None:
        super().__init__(verb)
        self._handle: Any = None

    def _begin(self, repository: str) -> None:
        super()._begin(repository)
        self._handle = None  # a new output, in the cell running now

    def _draw(self) -> None:
        from IPython.display import display  # only in a notebook, where IPython is

        fraction = self._fraction()
        lines = self._lines()
        total = f"[{_bar(fraction)}] {fraction:4.0%}  {lines[-1]}"
        bundle = {
            "text/plain": "\n".join([total, *lines[:-1]]),
            "text/html": self._html(fraction, lines[-1]),
        }
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)  # type: ignore[no-untyped-call]
        else:
            self._handle.update(bundle, raw=True)

    def _html(self, fraction: float, total: str) -> str:
        def row(value: float, text: str) -> str:
            bar = f'<progress value="{value:.4f}" max="1" style="width:16em"></progress>'
            return f"<div>{bar} {html.escape(text)}</div>"

        rows = [row(fraction, f"{fraction:4.0%}  {total}")]
        for blob in self._active()[:_MAX_LINES]:
            rows.append(
                row(
                    blob.done / blob.size if blob.size else 1.0,
                    f"{blob.digest[7:19]} {human_bytes(blob.done)} / "
                    f"{human_bytes(blob.size)} {blob.state}",
                )
            )
        return f'<div style="font-family:monospace">{"".join(rows)}</div>'


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's terminal shell has no kernel)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def progress_callback(progress: bool | ProgressCallback | None) -> ProgressCallback | None:
    """What ``progress=`` asks for: ``True`` gives :class:`NotebookProgress` in a notebook,
    :class:`TerminalProgress` when standard error is a terminal, else :class:`LineProgress`
    on standard error.

    Example:
        >>> progress_callback(None) is None, progress_callback(print) is print
        (True, True)
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        if _in_notebook():
            return NotebookProgress()
        if sys.stderr is None:  # pythonw, a daemon: nowhere to show it
            return None
        if sys.stderr.isatty():
            return TerminalProgress(sys.stderr)
        return LineProgress(sys.stderr)
    return progress
