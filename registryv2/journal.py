"""The upload journal: where each unfinished upload stands, kept across runs.

A push that is killed (Ctrl-C, a crash, a lost machine) leaves its uploads open in the registry.
The journal remembers their locations, one small file per blob under the user's cache directory
(``$XDG_CACHE_HOME/registryv2/uploads``), so that the same push run again asks the registry
where each upload stands and continues from there instead of sending every byte again.

Each file is written whole to a temporary name and renamed, so it is never half written. A file
that does not parse, names another registry, repository or blob, points its location at another
host, or is older than a registry keeps uploads is ignored and removed. A lock per blob (``flock``)
keeps two processes, or two clients in one process, from continuing the same upload at once:
whoever does not get the lock uploads on its own and records nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .log import logger

# The CNCF registry purges uploads a week old; give up on ours a day before.
STALE_AFTER = 6 * 24 * 3600.0


def default_state_dir() -> Path:
    """``$XDG_CACHE_HOME/registryv2``, else ``~/.cache/registryv2``.

    Example:
        >>> default_state_dir().name
        'registryv2'
    """
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "registryv2"


@dataclass(frozen=True)
class OpenUpload:
    """An upload the registry holds open: its location, and the bytes it confirmed."""

    location: str
    offset: int


class UploadJournal:
    """The directory of journal files.

    Example:
        >>> journal = UploadJournal.at(None)  # doctest: +SKIP
        >>> entry = journal.claim("localhost:15000", "team/app", "sha256:...")  # doctest: +SKIP
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def at(cls, directory: str | os.PathLike[str] | None) -> UploadJournal | None:
        """The journal in ``directory`` (default: :func:`default_state_dir`); None if unusable.

        A cache directory that cannot be created (a read-only home) turns resuming off; it does
        not fail the push.
        """
        path = (Path(directory) if directory else default_state_dir()) / "uploads"
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            logger.warning("cannot keep upload state in %s (%s); uploads will not resume", path, e)
            return None
        return cls(path)

    def claim(self, registry: str, repository: str, digest: str) -> JournalEntry | None:
        """Lock this blob's entry for this process; None if someone else holds it."""
        key = hashlib.sha256(f"{registry}\0{repository}\0{digest}".encode()).hexdigest()[:40]
        lock_path = self.directory / f"{key}.lock"
        while True:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as e:
                logger.warning("cannot lock %s (%s); this upload will not resume", lock_path, e)
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return None
            # The holder before us may have removed the file after we opened it: lock anew.
            try:
                same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return JournalEntry(
                    self.directory / f"{key}.json", lock_path, fd, registry, repository, digest
                )
            os.close(fd)


class JournalEntry:
    """One blob's entry, locked by this process until :meth:`release`."""

    def __init__(
        self, path: Path, lock_path: Path, fd: int, registry: str, repository: str, digest: str
    ) -> None:
        self.path = path
        self._lock_path = lock_path
        self._fd = fd
        self._identity = {"registry": registry, "repository": repository, "digest": digest}

    def saved(self) -> OpenUpload | None:
        """The upload a previous run left open, if the file is sound, ours and recent."""
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            self.forget()
            return None
        if not self._usable(doc):
            self.forget()
            return None
        return OpenUpload(str(doc["location"]), int(doc["offset"]))

    def _usable(self, doc: object) -> bool:
        if not isinstance(doc, dict):
            return False
        if any(doc.get(k) != v for k, v in self._identity.items()):
            return False
        location, offset, updated = doc.get("location"), doc.get("offset"), doc.get("updated")
        if not isinstance(location, str) or not isinstance(offset, int) or offset < 0:
            return False
        if not isinstance(updated, (int, float)) or time.time() - updated > STALE_AFTER:
            return False
        parts = urlsplit(location)
        # The location is where credentials will be sent: only ever the registry itself.
        return parts.scheme in ("http", "https") and parts.netloc == self._identity["registry"]

    def record(self, location: str, offset: int) -> None:
        """Remember that the registry holds ``offset`` bytes of this upload at ``location``."""
        doc = {**self._identity, "location": location, "offset": offset, "updated": time.time()}
        temp = self.path.with_suffix(f".{os.getpid()}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f)
            os.replace(temp, self.path)
        except OSError as e:
            logger.warning("cannot write %s (%s); this upload will not resume", self.path, e)
            with contextlib.suppress(OSError):
                temp.unlink()

    def forget(self) -> None:
        """Remove the entry: the upload completed, or cannot be continued."""
        with contextlib.suppress(OSError):
            self.path.unlink()

    def release(self) -> None:
        """Unlock; the lock file goes too once the entry is gone."""
        if self._fd < 0:
            return
        if not self.path.exists():
            with contextlib.suppress(OSError):
                self._lock_path.unlink()
        os.close(self._fd)
        self._fd = -1
