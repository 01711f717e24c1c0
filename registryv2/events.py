"""What a transfer reports as it goes: one event type, for progress bars, logs and tests.

Every blob moved gives ``start``, then ``progress`` (``bytes_done`` rises, and falls back when a
resumed transfer restarts from an earlier offset), then ``done``; a ``retry`` says a step failed
and is tried again after ``delay`` seconds; ``error`` says the blob failed for good. An upload
that continues where an earlier run left it says so with ``resume``: ``bytes_done`` is what the
registry held already, moved by no one in this run (a rate counts from there). A ``plan`` event
comes first, with the number of blobs and their total size, so that a bar can show a total and
an ETA. A sync of many images says first how many there are (``images``, in ``blobs``) and then
``image`` as each one is finished (copied, found up to date, or failed): one run over the set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

BlobAction = Literal["exists", "mounted", "uploaded", "downloaded"]
EventKind = Literal[
    "plan", "start", "resume", "progress", "retry", "done", "error", "images", "image"
]


@dataclass(frozen=True)
class TransferEvent:
    """One step of a transfer.

    Attributes:
        kind: ``plan``, ``start``, ``resume``, ``progress``, ``retry``, ``done``, ``error``;
            for a set of images, ``images`` and ``image``.
        repository: where the blob goes (push, copy) or comes from (pull).
        digest: the blob's digest; empty for ``plan``. A layer compressed on the way is named
            by its uncompressed digest, and counted in uncompressed bytes.
        size: the blob's size; for ``plan``, the total size of every blob.
        bytes_done: bytes of the blob the other side holds so far.
        action: for ``done``, what happened to the blob.
        blobs: for ``plan``, how many blobs the transfer moves; for ``images``, how many
            images the set holds.
        attempt: for ``retry``, the number of the attempt that failed (1 for the first).
        delay: for ``retry``, seconds until the next attempt.
        message: for ``retry`` and ``error``, what failed (never a credential).

    Example:
        >>> TransferEvent("progress", "team/app", "sha256:ab", 10, 4).bytes_done
        4
    """

    kind: EventKind
    repository: str
    digest: str = ""
    size: int = 0
    bytes_done: int = 0
    action: BlobAction | None = None
    blobs: int = 0
    attempt: int = 0
    delay: float = 0.0
    message: str = ""


ProgressCallback = Callable[[TransferEvent], None]
