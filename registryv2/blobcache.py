"""The blob-info cache: where each blob was last seen, so that a later push mounts it.

docker and skopeo remember, across runs, which repositories of a registry hold each blob they
pushed or pulled; a push into a new repository then asks the registry to mount the blob from
one of them instead of sending it again. This cache does the same, in one small JSON file
(``blobs.json`` in the state directory, beside the upload journal): for each registry
(``host[:port]``, nothing else: no scheme, no user, no credentials), each digest, the
repositories it was last confirmed in and when.

It is bounded (:data:`MAX_BLOBS` digests, :data:`MAX_REPOSITORIES` repositories each, the
oldest dropped), written whole to a temporary file and renamed (processes writing at once
may lose each other's additions, never corrupt the file), and a file that cannot be read or
does not parse is ignored. It is only ever a hint: the registry decides whether a mount
happens, and the upload goes on as usual when it does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from .journal import default_state_dir
from .log import logger

MAX_BLOBS = 4000
MAX_REPOSITORIES = 4
_FILE = "blobs.json"
_VERSION = 1
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
# Repository paths as registries name them; anything else in the file is not ours.
_REPOSITORY = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,254}$")
_REGISTRY = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,300}$")

# registry -> digest -> repository -> when it was seen there (seconds since the epoch)
_Seen = dict[str, dict[str, dict[str, float]]]


class BlobInfoCache:
    """The cache file, read once, merged with what this process saw on each :meth:`save`.

    Thread-safe.

    Example:
        >>> cache = BlobInfoCache.at(None)  # doctest: +SKIP
        >>> cache.note("localhost:5000", "sha256:...", "team/app")  # doctest: +SKIP
        >>> cache.save()  # doctest: +SKIP
        >>> cache.mount_source("localhost:5000", "sha256:...", "team/new")  # doctest: +SKIP
        'team/app'
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: _Seen | None = None  # the file as last read or written, and our notes
        self._noted = False  # something was noted since the last save

    @classmethod
    def at(cls, directory: str | os.PathLike[str] | None) -> BlobInfoCache:
        """The cache in ``directory`` (default: :func:`~registryv2.journal.default_state_dir`).

        Nothing is read or created yet.
        """
        return cls((Path(directory) if directory else default_state_dir()) / _FILE)

    def mount_source(self, registry: str, digest: str, repository: str) -> str | None:
        """The repository of ``registry`` that most recently held ``digest``, other than
        ``repository``; None when none is known.

        Example:
            >>> cache = BlobInfoCache(Path("/nonexistent/blobs.json"))
            >>> cache.note("localhost:5000", "sha256:" + "a" * 64, "team/app")
            >>> cache.mount_source("localhost:5000", "sha256:" + "a" * 64, "team/new")
            'team/app'
        """
        with self._lock:
            held = self._load().get(registry, {}).get(digest, {})
            others = [(when, repo) for repo, when in held.items() if repo != repository]
        return max(others)[1] if others else None

    def note(self, registry: str, digest: str, repository: str) -> None:
        """Remember that ``repository`` of ``registry`` holds ``digest`` (kept at :meth:`save`);
        names that are not a registry, a sha256 digest and a repository are not kept.

        Example:
            >>> cache.note("localhost:5000", "sha256:...", "team/app")  # doctest: +SKIP
        """
        if not (
            _REGISTRY.match(registry) and _DIGEST.match(digest) and _REPOSITORY.match(repository)
        ):
            return
        now = time.time()
        with self._lock:
            self._load().setdefault(registry, {}).setdefault(digest, {})[repository] = now
            self._noted = True

    def save(self) -> None:
        """Write what this process knows into the file, merged with what the file holds now
        (other processes may have written it); nothing noted since the last save, nothing done.

        Example:
            >>> cache.save()  # doctest: +SKIP
        """
        with self._lock:
            if not self._noted:
                return
            merged = _read(self.path)
            _merge(merged, self._load())
            self._seen = _trim(merged)
            self._noted = False
            self._write(self._seen)

    def _load(self) -> _Seen:
        if self._seen is None:
            self._seen = _read(self.path)
        return self._seen

    def _write(self, seen: _Seen) -> None:
        temp = self.path.with_name(f".{_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"version": _VERSION, "registries": seen}, f, separators=(",", ":"))
            os.replace(temp, self.path)
        except OSError as e:
            # Only a hint is lost; the journal has already said the state directory is unusable.
            logger.debug("cannot write %s (%s)", self.path, e)
            with contextlib.suppress(OSError):
                temp.unlink()


def _read(path: Path) -> _Seen:
    """The file's entries that make sense; nothing from a file missing, unreadable or damaged."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        return {}
    registries = doc.get("registries")
    seen: _Seen = {}
    if not isinstance(registries, dict):
        return seen
    for registry, blobs in registries.items():
        if not _REGISTRY.match(registry) or not isinstance(blobs, dict):
            continue
        for digest, held in blobs.items():
            if not _DIGEST.match(digest) or not isinstance(held, dict):
                continue
            for repository, when in held.items():
                if _REPOSITORY.match(repository) and _is_time(when):
                    seen.setdefault(registry, {}).setdefault(digest, {})[repository] = when
    return seen


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _merge(into: _Seen, new: _Seen) -> None:
    for registry, blobs in new.items():
        for digest, held in blobs.items():
            mine = into.setdefault(registry, {}).setdefault(digest, {})
            for repository, when in held.items():
                mine[repository] = max(when, mine.get(repository, 0.0))


def _trim(seen: _Seen) -> _Seen:
    """The newest :data:`MAX_BLOBS` digests, each with its newest :data:`MAX_REPOSITORIES`."""
    entries = [
        (max(held.values()), registry, digest, held)
        for registry, blobs in seen.items()
        for digest, held in blobs.items()
        if held
    ]
    entries.sort(reverse=True)
    kept: _Seen = {}
    for _, registry, digest, held in entries[:MAX_BLOBS]:
        newest = sorted(held.items(), key=lambda item: item[1], reverse=True)
        kept.setdefault(registry, {})[digest] = dict(newest[:MAX_REPOSITORIES])
    return kept
