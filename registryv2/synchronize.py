"""sync: keep a set of images in step between two places, moving only what changed.

A drop-in for ``skopeo sync``: the same transports, names and YAML (:mod:`registryv2.syncfile`).
It is three steps over the one copy path (:mod:`registryv2.imagecopy`):

1. **plan** (:func:`plan_sync`): expand the source into one :class:`SyncItem` per tag or digest
   (listing tags, filtering them by regex or version range), named at the destination as
   skopeo names them (``c/multi:v1`` -> ``DEST/multi:v1``; the whole path with ``scoped``),
   and keep this shard's share. ``dry_run`` stops here.
2. **check** each item: the source's manifest digest (a HEAD) against the destination's (a
   HEAD); equal is up to date, and costs nothing more. An index copied as one platform is
   compared through the choice made last time (:class:`PlatformChoices`).
3. **move** what changed, images in parallel over the destination's one transfer engine (a
   layer shared by many images is sent once and mounted for the rest), each image's
   manifest put only once its blobs are there. A file destination (an archive, a layout)
   gets every changed image in one transfer, committed whole.

The report (:class:`SyncReport`) says what happened to every item.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import posixpath
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .archive import ImageArchive
from .archive.layout_writer import LayoutWriter
from .archive.writer import ArchiveWriter
from .engine import TransferEngine
from .events import EventKind, ProgressCallback, TransferEvent
from .exceptions import (
    CancelledError,
    NotFoundError,
    RegistryV2Error,
    ValidationError,
    one_line,
)
from .imagecopy import Places, Selection, plan_image, plan_referrers, resolve, transfer
from .journal import default_state_dir
from .log import logger
from .manifest import INDEXES, host_platform
from .models import DEFAULT_WORKERS, CopyResult, Platform
from .places import (
    COSIGN_SUFFIXES,
    REFERRER_TAG,
    Entry,
    ImageDestination,
    ImageSource,
    PlannedImage,
)
from .places import fallback_tag as fallback_tag_of
from .reference import Reference, is_digest, normalize_archive_tag
from .referrals import RepositoryReferrers, fallback_index
from .registry import Registry
from .remote import RegistryDestination, RegistrySource
from .retry import is_transient
from .syncfile import RegistrySection, load_sync_file

SOURCE_TRANSPORTS = ("docker", "yaml", "oci", "docker-archive")
DESTINATION_TRANSPORTS = ("docker", "oci", "docker-archive")
Status = Literal["copied", "up-to-date", "failed", "planned"]
NOT_TRIED = "not tried: an earlier image failed"
# Tag lists asked for at once while planning.
_LISTING_WIDTH = 8


@dataclass(frozen=True)
class Access:
    """How one side of a sync reaches its registries: skopeo's ``--src-*`` and ``--dest-*``
    options (a YAML registry's own settings win over the source's).

    Example:
        >>> Access(tls_verify=False).settings()
        {'insecure': True}
    """

    tls_verify: bool | None = None
    cert_dir: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth_file: str | None = None

    def settings(self) -> dict[str, Any]:
        """The :class:`~registryv2.models.RegistryConfig` settings this access gives."""
        found: dict[str, Any] = {}
        if self.tls_verify is False:
            found["insecure"] = True
        if self.cert_dir:
            found["cert_dir"] = self.cert_dir
        if self.username is not None:
            found["username"], found["password"] = self.username, self.password or ""
        if self.auth_file:
            found["auth_file"] = self.auth_file
        return found

    def within(self, section: RegistrySection) -> Access:
        """This access, with what a YAML registry says about itself."""
        changed = self
        if section.tls_verify is not None:
            changed = dataclasses.replace(changed, tls_verify=section.tls_verify)
        if section.cert_dir:
            changed = dataclasses.replace(changed, cert_dir=section.cert_dir)
        if section.credentials is not None:
            changed = dataclasses.replace(
                changed,
                username=section.credentials.username,
                password=section.credentials.password,
            )
        return changed


# A client for an endpoint, reached with an access's settings.
Connector = Callable[[str, Access], Registry]


@dataclass(frozen=True)
class SyncItem:
    """One image to keep in step: a tag or digest of the source, and its name at the
    destination.

    Attributes:
        source: the image as the user reads it (``localhost:5000/c/multi:v1``,
            ``oci:out:v1``).
        destination: where it goes (``mirror.local/mirror/multi:v1``, ``oci:bundle:multi:v1``).
        target: its name in the destination, relative to it (``multi:v1``, ``multi@sha256:..``).
    """

    source: str
    destination: str
    target: str
    # Where the source is: (endpoint, access, repository, tag or digest) for a registry...
    endpoint: str | None = field(default=None, repr=False, compare=False)
    access: Access = field(default_factory=Access, repr=False, compare=False)
    repository: str = field(default="", repr=False)
    identifier: str = field(default="", repr=False)
    # ... or an archive or layout and one of its entries.
    path: str | None = field(default=None, repr=False)
    entry: Entry | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class SyncedImage:
    """What a sync did with one item.

    Attributes:
        source: where the image was read.
        destination: where it went.
        status: ``copied``, ``up-to-date``, ``failed``, or ``planned`` (a dry run).
        digest: the manifest's digest at the destination (for a failure, None).
        bytes_moved: bytes sent for it (blobs found or mounted count nothing).
        error: for a failure, the reason in one line.
    """

    source: str
    destination: str
    status: Status
    digest: str | None = None
    bytes_moved: int = 0
    error: str | None = None


@dataclass
class SyncReport:
    """The outcome of a sync: one :class:`SyncedImage` per item, in plan order.

    Example:
        >>> report = sync("sync.yml", "localhost:15000/mirror")  # doctest: +SKIP
        >>> report.copied, report.up_to_date, report.failed, report.ok  # doctest: +SKIP
        (12, 108, 0, True)
    """

    images: list[SyncedImage]
    seconds: float = 0.0
    dry_run: bool = False

    def _count(self, status: Status) -> int:
        return sum(1 for image in self.images if image.status == status)

    @property
    def copied(self) -> int:
        """Images copied in this run."""
        return self._count("copied")

    @property
    def up_to_date(self) -> int:
        """Images the destination held already."""
        return self._count("up-to-date")

    @property
    def failed(self) -> int:
        """Images that could not be synced."""
        return self._count("failed")

    @property
    def bytes_moved(self) -> int:
        """Bytes sent over the whole run."""
        return sum(image.bytes_moved for image in self.images)

    @property
    def ok(self) -> bool:
        """Whether every image is in step (or, for a dry run, was planned)."""
        return self.failed == 0

    def summary(self) -> str:
        """One line: what was copied, what was up to date, what failed, bytes moved.

        Example:
            >>> SyncReport([SyncedImage("a:1", "m/a:1", "copied", "sha256:..", 2048)]).summary()
            'Synced 1 image: 1 copied, 0 up to date, 0 failed; 2.0 KiB moved in 0.0s'
        """
        from .progress import human_bytes

        n = len(self.images)
        if self.dry_run:
            return f"Would sync {n} image{'' if n == 1 else 's'} (dry run: nothing moved)"
        return (
            f"Synced {n} image{'' if n == 1 else 's'}: {self.copied} copied, "
            f"{self.up_to_date} up to date, {self.failed} failed; "
            f"{human_bytes(self.bytes_moved)} moved in {self.seconds:.1f}s"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--json``)."""
        return {
            "images": [dataclasses.asdict(image) for image in self.images],
            "copied": self.copied,
            "up_to_date": self.up_to_date,
            "failed": self.failed,
            "bytes_moved": self.bytes_moved,
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class Shard:
    """This process's share of a sync split over ``count`` processes: the items whose hash
    (of the repository and tag they go to, the same in every process) is ``index`` modulo
    ``count``.

    Example:
        >>> Shard.parse("1/3")
        Shard(index=1, count=3)
    """

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N``: the K-th of N shards, counted from 0."""
        index, slash, count = text.partition("/")
        if not (slash and index.isdigit() and count.isdigit()):
            raise ValidationError(f"invalid shard {text!r}: write K/N, as 0/3 (K from 0 to N-1)")
        shard = cls(int(index), int(count))
        if not 0 <= shard.index < shard.count:
            raise ValidationError(f"invalid shard {text!r}: K goes from 0 to N-1")
        return shard

    def takes(self, item: SyncItem) -> bool:
        """Whether this shard syncs ``item``."""
        key = item.target.encode()  # unique in a sync, and the same wherever it runs
        return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % self.count == self.index


@dataclass(frozen=True)
class SyncOptions:
    """How a sync runs: skopeo sync's options, and registryv2's.

    ``selection`` says which platforms (``all_platforms``, ``platform``) and whether referrers
    travel; ``shard`` splits the set over processes; the accesses say how each side is reached.

    Example:
        >>> SyncOptions(scoped=True, shard=Shard.parse("0/3")).shard.count
        3
    """

    source_transport: str | None = None
    destination_transport: str | None = None
    scoped: bool = False
    append_suffix: str = ""
    selection: Selection = field(default_factory=Selection)
    dry_run: bool = False
    keep_going: bool = False
    retry_times: int = 0
    shard: Shard | None = None
    source_access: Access = field(default_factory=Access)
    destination_access: Access = field(default_factory=Access)
    workers: int = DEFAULT_WORKERS


# -- planning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncPlan:
    """What a sync will consider: its items, and where they go."""

    items: list[SyncItem]
    destination_transport: str
    destination: str


def detect_source_transport(source: str | os.PathLike[str] | Mapping[str, Any]) -> str:
    """The transport a source is when none is given: a ``dict`` or a ``.yml``/``.yaml`` file is
    a sync list, a directory a layout, another file an archive, anything else a registry.

    Example:
        >>> detect_source_transport({"localhost:5000": {"images": {"a": []}}})
        'yaml'
    """
    if isinstance(source, Mapping):
        return "yaml"
    text = os.fspath(source)
    if text.endswith((".yml", ".yaml")):
        return "yaml"
    if os.path.isdir(text):
        return "oci"
    if os.path.isfile(text):
        return "docker-archive"
    return "docker"


def split_destination(
    destination: str | os.PathLike[str], transport: str | None
) -> tuple[str, str]:
    """The destination's transport and its place: ``oci:DIR``, ``docker-archive:FILE`` or a
    registry (``host[/path]``, ``docker://`` allowed).

    Example:
        >>> split_destination("oci:mirror", None)
        ('oci', 'mirror')
        >>> split_destination("localhost:5000/mirror", None)
        ('docker', 'localhost:5000/mirror')
    """
    text = os.fspath(destination)
    if transport is None:
        for prefix in ("oci", "docker-archive", "docker"):
            if text.startswith(f"{prefix}:"):
                transport, text = prefix, text[len(prefix) + 1 :]
                break
        else:
            transport = "docker"
    if transport not in DESTINATION_TRANSPORTS:
        raise ValidationError(
            f"unknown destination transport {transport!r}: choose "
            f"{', '.join(DESTINATION_TRANSPORTS)}"
        )
    if transport == "docker":
        text = text.removeprefix("docker:").removeprefix("//").rstrip("/")
        try:
            Reference.parse(f"{text}/x", default_tag=None)
        except ValidationError:
            raise ValidationError(
                f"invalid destination {text!r}: give a registry and an optional path, "
                "as mirror.example.com/mirror"
            ) from None
    if not text:
        raise ValidationError("an empty destination")
    return transport, text


def plan_sync(
    source: str | os.PathLike[str] | Mapping[str, Any],
    destination: str | os.PathLike[str],
    connect: Connector,
    options: SyncOptions | None = None,
    failures: list[SyncedImage] | None = None,
) -> SyncPlan:
    """Every image of ``source`` (a registry repository or image, a sync list, a layout, an
    archive), named at ``destination``; only the options' shard's. With ``keep_going`` a source
    that cannot be listed (a registry down) goes into ``failures`` and the others are planned.

    Example:
        >>> plan = plan_sync("sync.yml", "mirror.local/mirror", connect)  # doctest: +SKIP
        >>> plan.items[0].destination  # doctest: +SKIP
        'mirror.local/mirror/multi:v1'
    """
    options = options or SyncOptions()
    keep_going = options.keep_going and failures is not None
    failures = failures if failures is not None else []
    kind = options.source_transport or detect_source_transport(source)
    if kind not in SOURCE_TRANSPORTS:
        raise ValidationError(
            f"unknown source transport {kind!r}: choose {', '.join(SOURCE_TRANSPORTS)}"
        )
    dest_kind, dest = split_destination(destination, options.destination_transport)
    access = options.source_access
    namer = _Namer(dest_kind, dest, options.scoped, options.append_suffix)
    if kind == "yaml":
        if not isinstance(source, Mapping):
            source = os.fspath(source)
        groups = [
            (section, repository, functools.partial(_section_tags, section, repository))
            for section in load_sync_file(source)
            for repository in _repositories(section)
        ]
        items = _registry_items(groups, access, connect, namer, keep_going, failures)
    elif kind == "docker":
        if isinstance(source, Mapping):
            raise ValidationError("a registry source is a string: host/repository[:tag]")
        items = _docker_items(os.fspath(source), access, connect, namer, keep_going, failures)
    else:
        if isinstance(source, Mapping):
            raise ValidationError(f"a {kind} source is a path")
        items = _file_items(os.fspath(source), kind, namer)
    if options.selection.referrers:  # their tags travel with their images, not as images
        items = [i for i in items if not REFERRER_TAG.match(i.identifier)]
    unique = list({item.destination: item for item in items}.values())
    if options.shard is not None:
        unique = [item for item in unique if options.shard.takes(item)]
    return SyncPlan(unique, dest_kind, dest)


class _Namer:
    """Names items at the destination as skopeo sync does."""

    def __init__(self, kind: str, dest: str, scoped: bool, suffix: str) -> None:
        self.kind, self.dest, self.scoped, self.suffix = kind, dest, scoped, suffix

    def target(self, scope: str, identifier: str) -> str:
        """``multi:v1`` for ``c/multi`` and ``v1`` (``scope`` whole with ``scoped``)."""
        base = scope if self.scoped else posixpath.basename(scope)
        if is_digest(identifier):
            return f"{base}@{identifier}"
        return f"{base}:{identifier}{self.suffix}"

    def where(self, target: str) -> str:
        """The destination of a target as the user writes it."""
        if self.kind == "docker":
            full = f"{self.dest}/{target}"
            try:
                Reference.parse(full)
            except ValidationError:
                raise ValidationError(
                    f"{full!r} is not a valid reference at the destination"
                    + (
                        " (--scoped keeps the source registry's name in the path)"
                        if self.scoped
                        else ""
                    )
                ) from None
            return full
        return f"{self.kind}:{self.dest}:{target}"


def _repositories(section: RegistrySection) -> list[str]:
    return list(dict.fromkeys([*section.images, *section.by_regex, *section.by_semver]))


def _section_tags(section: RegistrySection, repository: str, listed: list[str] | None) -> list[str]:
    """The tags and digests the section takes of ``repository``, from ``listed`` (every tag,
    when they had to be listed)."""
    wanted: list[str] = []
    if repository in section.images:
        wanted += list(section.images[repository]) or (listed or [])
    if repository in section.by_regex:
        pattern = section.by_regex[repository]
        wanted += [t for t in listed or [] if pattern.search(t)]
    if repository in section.by_semver:
        allowed = section.by_semver[repository]
        wanted += [t for t in listed or [] if allowed.allows(t)]
    return list(dict.fromkeys(wanted))


def _needs_listing(section: RegistrySection, repository: str) -> bool:
    return (
        (repository in section.images and not section.images[repository])
        or repository in section.by_regex
        or repository in section.by_semver
    )


def _registry_items(
    groups: Sequence[tuple[RegistrySection, str, Callable[[list[str] | None], list[str]]]],
    access: Access,
    connect: Connector,
    namer: _Namer,
    keep_going: bool,
    failures: list[SyncedImage],
) -> list[SyncItem]:
    wanted = []
    for section, repository, choose in groups:
        host, _, prefix = section.registry.partition("/")
        path = f"{prefix}/{repository}" if prefix else repository
        side = access.within(section)
        ref, endpoint = resolve(f"{host}/{path}", default_tag=None)
        wanted.append((f"{host}/{path}", ref, endpoint, side, choose, section, repository))
    # One client per registry and access for the whole listing (a client per repository
    # would pay its scheme probe and a new connection each time), and the lists asked for
    # a few at once: each is one round trip.
    clients: dict[tuple[str, str], Registry] = {}
    lock = threading.Lock()

    def identifiers_of(n: int) -> list[str]:
        _, ref, endpoint, side, choose, section, repository = wanted[n]
        listed = None
        if _needs_listing(section, repository):
            with lock:
                key = (endpoint, _access_key(side))
                if key not in clients:
                    clients[key] = connect(endpoint, side)
                client = clients[key]
            listed = client.list_tags(ref.repository)
        return choose(listed)

    items: list[SyncItem] = []
    pool = ThreadPoolExecutor(_LISTING_WIDTH, thread_name_prefix="registryv2-sync-list")
    try:
        futures = [pool.submit(identifiers_of, n) for n in range(len(wanted))]
        for (name, ref, endpoint, side, *_), future in zip(wanted, futures, strict=True):
            try:
                identifiers = future.result()
            except RegistryV2Error as e:
                if not keep_going:
                    raise
                failures.append(SyncedImage(name, "", "failed", error=str(e)))
                continue
            items += _items_of(ref, endpoint, side, identifiers, namer)
    finally:
        pool.shutdown(cancel_futures=True)  # after a failure, the lists not begun are not asked
        for client in clients.values():
            client.close()
    return items


def _items_of(
    ref: Reference, endpoint: str, access: Access, identifiers: Sequence[str], namer: _Namer
) -> list[SyncItem]:
    name = f"{ref.registry}/{ref.repository}" if ref.registry else ref.repository
    items = []
    for identifier in identifiers:
        source = f"{name}@{identifier}" if is_digest(identifier) else f"{name}:{identifier}"
        target = namer.target(name if namer.scoped else ref.repository, identifier)
        items.append(
            SyncItem(
                source,
                namer.where(target),
                target,
                endpoint=endpoint,
                access=access,
                repository=ref.repository,
                identifier=identifier,
            )
        )
    return items


def _docker_items(
    text: str,
    access: Access,
    connect: Connector,
    namer: _Namer,
    keep_going: bool,
    failures: list[SyncedImage],
) -> list[SyncItem]:
    ref, endpoint = resolve(text.removeprefix("docker://"), default_tag=None)
    try:
        identifiers = [ref.identifier] if (ref.tag or ref.digest) else None
        if identifiers is None:
            identifiers = connect(endpoint, access).list_tags(ref.repository)
    except RegistryV2Error as e:
        if not keep_going:
            raise
        failures.append(SyncedImage(text, "", "failed", error=str(e)))
        return []
    return _items_of(ref, endpoint, access, identifiers, namer)


def _file_items(path: str, kind: str, namer: _Namer) -> list[SyncItem]:
    if kind == "oci" and not os.path.isdir(path):
        raise ValidationError(f"{path}: not a directory (--src oci names a layout directory)")
    if kind == "docker-archive" and os.path.isdir(path):
        raise ValidationError(f"{path}: is a directory, not an archive (use --src oci)")
    with ImageArchive.open(path) as archive:
        entries = archive.entries()
    items = []
    label = f"{kind}:{path}"
    for entry in entries:
        for name in entry.names:
            repository, tag = _entry_name(name, path)
            target = namer.target(repository, tag)
            items.append(
                SyncItem(f"{label}:{name}", namer.where(target), target, path=path, entry=entry)
            )
        if not entry.names:
            logger.warning("%s: skipping %s, which has no name", label, entry.manifest.digest)
    return items


def _entry_name(name: str, path: str) -> tuple[str, str]:
    """The repository and tag a name of an archive or layout gives (a layout's bare ``v1``
    takes its directory's name as the repository)."""
    if ":" not in name and "/" not in name:
        base = os.path.basename(os.path.normpath(path)).lower()
        base = "".join(c if c.isalnum() or c in "._-" else "-" for c in base).strip("._-")
        return base or "image", name
    try:
        return normalize_archive_tag(name)
    except ValidationError:
        raise ValidationError(f"{path}: {name!r} is not an image name") from None


def _normalized(name: str) -> str:
    """``repository:tag`` as a registry takes it (``docker.io/library/a:1`` is ``a:1``)."""
    try:
        return ":".join(normalize_archive_tag(name))
    except ValidationError:
        return name


# -- remembering the platform chosen from an index -------------------------------------------


class PlatformChoices:
    """Which image of an index a sync took for a platform, remembered across runs, so that a
    later run compares digests with two HEADs instead of fetching the index again.

    A small JSON file in the state directory (``sync-platforms.json``), bounded, written whole
    and renamed; a file that cannot be read is ignored (the index is then fetched).

    Example:
        >>> choices = PlatformChoices(Path("/nonexistent/sync-platforms.json"))
        >>> choices.note("sha256:" + "a" * 64, "linux/amd64", "sha256:" + "b" * 64)
        >>> choices.get("sha256:" + "a" * 64, "linux/amd64")[:9]
        'sha256:bb'
    """

    LIMIT = 20_000

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._choices: dict[str, str] | None = None
        self._changed = False

    @classmethod
    def at(cls, directory: str | os.PathLike[str] | None) -> PlatformChoices:
        """The file in ``directory`` (default: the state directory)."""
        return cls((Path(directory) if directory else default_state_dir()) / "sync-platforms.json")

    def _load(self) -> dict[str, str]:
        if self._choices is None:
            self._choices = {}
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(self.path.read_text())
                if isinstance(data, dict):
                    self._choices = {
                        k: v for k, v in data.items() if isinstance(v, str) and is_digest(v)
                    }
        return self._choices

    def get(self, index: str, platform: str) -> str | None:
        """The digest of the image taken from ``index`` for ``platform``, if remembered."""
        with self._lock:
            return self._load().get(f"{index} {platform}")

    def note(self, index: str, platform: str, image: str) -> None:
        """Remember that ``image`` was taken from ``index`` for ``platform``."""
        with self._lock:
            choices = self._load()
            choices.pop(f"{index} {platform}", None)
            choices[f"{index} {platform}"] = image
            while len(choices) > self.LIMIT:
                choices.pop(next(iter(choices)))
            self._changed = True

    def save(self) -> None:
        """Write what was noted (atomically); a failure is only logged."""
        with self._lock:
            if not self._changed or self._choices is None:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                temp.write_text(json.dumps(self._choices))
                os.replace(temp, self.path)
                self._changed = False
            except OSError as e:
                logger.info("cannot keep the platforms chosen in %s (%s)", self.path, e)


# -- running ---------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one sync shares between its images."""

    plan: SyncPlan
    options: SyncOptions
    sources: Places
    destinations: Places
    choices: PlatformChoices
    progress: ProgressCallback | None
    stop: threading.Event = field(default_factory=threading.Event)
    _referrers: dict[tuple[str, str], RepositoryReferrers] = field(default_factory=dict)
    _copies: dict[tuple[str, str], _Copying] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def selection(self) -> Selection:
        return self.options.selection

    def source_registry(self, item: SyncItem) -> Registry:
        assert item.endpoint is not None
        with self._lock:
            return self.sources.registry(f"{item.endpoint}\n{_access_key(item.access)}")

    def destination_registry(self) -> tuple[Registry, str]:
        ref, endpoint = resolve(f"{self.plan.destination}/x", default_tag=None)
        with self._lock:
            return self.destinations.registry(endpoint), str(ref.registry)

    def referrers(self, registry: Registry, repository: str) -> RepositoryReferrers:
        key = (registry.transport.registry, repository)
        with self._lock:
            if key not in self._referrers:
                self._referrers[key] = RepositoryReferrers(registry, repository)
            return self._referrers[key]

    def copying(self, repository: str, digest: str) -> tuple[bool, _Copying]:
        """The copy of the source image ``digest`` into ``repository`` in this run: whether
        the caller makes it (the first to ask, or the first after one that failed), and where
        its outcome appears."""
        with self._lock:
            found = self._copies.get((repository, digest))
            if found is None or (found.done.is_set() and found.digest is None):
                found = self._copies[(repository, digest)] = _Copying()
                return True, found
            return False, found

    def event(self, kind: EventKind, where: str = "", count: int = 0) -> None:
        if self.progress is not None:
            self.progress(TransferEvent(kind, where, blobs=count))


@dataclass
class _Copying:
    """One image being copied into one repository: ``digest`` (at the destination) is set
    before ``done`` when the copy succeeded."""

    done: threading.Event = field(default_factory=threading.Event)
    digest: str | None = None


def _access_key(access: Access) -> str:
    return json.dumps(dataclasses.asdict(access), sort_keys=True)


def run_sync(
    plan: SyncPlan,
    connect: Connector,
    options: SyncOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    failures: Sequence[SyncedImage] = (),
) -> SyncReport:
    """Bring every item of ``plan`` in step; the report says what happened to each.

    Example:
        >>> report = run_sync(plan, connect)  # doctest: +SKIP
        >>> report.summary()  # doctest: +SKIP
        'Synced 120 images: 3 copied, 117 up to date, 0 failed; 12.0 MiB moved in 2.1s'
    """
    options = options or SyncOptions()
    started = time.monotonic()
    if options.dry_run:
        planned = [SyncedImage(i.source, i.destination, "planned") for i in plan.items]
        return SyncReport([*failures, *planned], time.monotonic() - started, dry_run=True)

    def source_connect(key: str) -> Registry:
        endpoint, _, access = key.partition("\n")
        return connect(endpoint, Access(**json.loads(access)))

    with (
        Places(source_connect) as sources,
        Places(lambda endpoint: connect(endpoint, options.destination_access)) as destinations,
    ):
        run = _Run(plan, options, sources, destinations, PlatformChoices.at(state_dir), progress)
        run.event("images", plan.destination, len(plan.items))
        try:
            move = _to_registry if plan.destination_transport == "docker" else _to_file
            results = move(run)
        finally:
            run.choices.save()
    return SyncReport([*failures, *results], time.monotonic() - started)


def _to_registry(run: _Run) -> list[SyncedImage]:
    """Each item checked and, when it changed, copied: several at once."""
    items = run.plan.items
    results: dict[int, SyncedImage] = {}
    with ThreadPoolExecutor(_width(run), thread_name_prefix="registryv2-sync") as pool:
        futures: dict[Future[SyncedImage], int] = {
            pool.submit(_sync_one, run, item): n for n, item in enumerate(items)
        }
        try:
            for future in as_completed(futures):
                n = futures[future]
                result = future.result()
                results[n] = result
                run.event("image", items[n].destination)
                if result.status == "failed" and not run.options.keep_going:
                    run.stop.set()
        except BaseException:
            # Interrupted: images in flight stop at once, keeping what each upload sent.
            run.stop.set()
            for future in futures:
                future.cancel()
            for places in (run.sources, run.destinations):
                places.interrupt()
            raise
    failed = [r for r in results.values() if r.status == "failed"]
    if failed and not run.options.keep_going:
        # Stopped at the first failure: what was never tried is not in step either.
        for n, item in enumerate(items):
            if n not in results:
                results[n] = SyncedImage(item.source, item.destination, "failed", error=NOT_TRIED)
    return [results[n] for n in range(len(items))]


def _width(run: _Run) -> int:
    """Images handled at once. They are mostly waiting (HEADs, manifests, the engine's
    blobs): more of them than workers keep the engine busy; the engine bounds the blobs in
    flight."""
    return max(2, run.options.workers * 2)


def _sync_one(run: _Run, item: SyncItem) -> SyncedImage:
    """Check one item, and copy it when it changed; a failure is the result, not raised."""
    if run.stop.is_set():
        return SyncedImage(item.source, item.destination, "failed", error=NOT_TRIED)
    attempts = run.options.retry_times + 1
    for attempt in range(1, attempts + 1):
        try:
            return _check_and_copy(run, item)
        except (RegistryV2Error, OSError) as e:
            if attempt < attempts and is_transient(e) and not run.stop.is_set():
                logger.warning("%s: %s; trying again (%d of %d)", item.source, e, attempt, attempts)
                continue
            return SyncedImage(item.source, item.destination, "failed", error=_reason(e))
    raise AssertionError("unreachable")


def _reason(error: BaseException) -> str:
    """Why an image failed, in one line of the report."""
    return one_line(str(error) or type(error).__name__)


def _expected_digest(run: _Run, item: SyncItem, source_digest: str, media_type: str) -> str | None:
    """The digest the destination holds when ``item`` is in step: the source's, or, for an
    index copied as one platform, the digest of the image taken from it last time."""
    if _whole(run, item) or media_type not in INDEXES:
        return source_digest
    return run.choices.get(source_digest, _platform_key(run.selection))


def _whole(run: _Run, item: SyncItem) -> bool:
    """Whether ``item`` is copied whole: with ``--all``, and always for a tag referrers go
    under (a fallback index lists artifacts, not platforms)."""
    return run.selection.all_platforms or bool(REFERRER_TAG.match(item.identifier))


def _platform_key(selection: Selection) -> str:
    wanted = selection.platform or host_platform()
    assert isinstance(wanted, Platform)
    return str(wanted)


def _check_and_copy(run: _Run, item: SyncItem) -> SyncedImage:
    destination, display = run.destination_registry()
    there_ref = Reference.parse(item.destination, default_tag=None)
    dest_repository, dest_identifier = there_ref.repository, there_ref.identifier
    if item.path is None:
        registry = run.source_registry(item)
        head = registry.head_manifest(item.repository, item.identifier)
        if head is None:
            raise NotFoundError(f"{item.source}: does not exist in the source registry")
        source_digest, media_type = head.digest, head.media_type
    else:
        assert item.entry is not None
        source_digest, media_type = item.entry.manifest.digest, item.entry.manifest.media_type
    expected = _expected_digest(run, item, source_digest, media_type)
    there = destination.head_manifest(dest_repository, dest_identifier)
    if (
        expected is not None
        and there is not None
        and there.digest == expected
        and (
            not run.selection.referrers
            or _referrers_current(run, item, expected, destination, dest_repository)
        )
    ):
        return SyncedImage(item.source, item.destination, "up-to-date", expected)
    # Tags of one repository often name the same image (1.1 and latest): it is copied once,
    # and the other tags are only put on the manifest it left there.
    first, copying = run.copying(dest_repository, source_digest)
    if not first:
        copying.done.wait()
        if copying.digest is not None:
            digest = destination.tag(dest_repository, copying.digest, dest_identifier)
            return SyncedImage(item.source, item.destination, "copied", digest)
        # The first copy failed: this one tries on its own.
    try:
        results = _copy(run, item, destination, display)
        top = results[0]
        if first:
            copying.digest = top.digest
    finally:
        if first:
            copying.done.set()
    if top.digest != source_digest:  # one platform of an index: remember which
        run.choices.note(source_digest, _platform_key(run.selection), top.digest)
    moved = sum(r.bytes_moved for r in results)
    return SyncedImage(item.source, item.destination, "copied", top.digest, moved)


def _dest_path(item: SyncItem) -> str:
    """The item's destination without its registry: ``mirror/multi:v1``."""
    ref = Reference.parse(item.destination, default_tag=None)
    if ref.digest:
        return f"{ref.repository}@{ref.digest}"
    return f"{ref.repository}:{ref.tag}"


def _referrers_current(
    run: _Run, item: SyncItem, digest: str, destination: Registry, dest_repository: str
) -> bool:
    """Whether the destination holds every referrer the source has of ``digest``: the
    fallback and cosign tags compared by HEAD, and the referrers API's list where the source
    has one."""
    if item.path is not None:
        return False  # an archive's referrers cost nothing to compare by copying
    source = run.source_registry(item)
    known = run.referrers(source, item.repository)
    fallback = fallback_tag_of(digest)
    tags = [fallback + suffix for suffix in ("", *COSIGN_SUFFIXES)]
    for tag in (t for t in tags if t in known.tags):
        here = source.head_manifest(item.repository, tag)
        there = destination.head_manifest(dest_repository, tag)
        if here is None or there is None:
            return False
        if here.digest != there.digest:
            if tag != fallback:
                return False
            # The destination keeps its own fallback index (merged, written its own way): it
            # is in step when it lists every referrer the source's lists.
            wanted = fallback_index(source, item.repository, digest)
            written = fallback_index(destination, dest_repository, digest)
            if wanted is None or written is None:
                return False
            if not {m.digest for m in wanted.manifests} <= {m.digest for m in written.manifests}:
                return False
    listed = known.from_api(digest)
    if listed:
        have = {r.digest for r in run.referrers(destination, dest_repository).of(digest)}
        return all(r.digest in have for r in listed)
    return True


def _open(run: _Run, item: SyncItem) -> tuple[ImageSource, Entry]:
    if item.path is None:
        registry = run.source_registry(item)
        # The repository's referrers (and its tags) are listed once for all its images.
        known = run.referrers(registry, item.repository)
        source = RegistrySource(registry, item.repository, item.source, [item.identifier], known)
        source.skip_referrer_tags = run.selection.referrers
        return source, source.entries()[0]
    archive = run.sources.hold(ImageArchive.open(item.path))
    assert item.entry is not None
    return archive, item.entry


def _plans(
    run: _Run, item: SyncItem, source: ImageSource, entry: Entry, sink: ImageDestination
) -> list[PlannedImage]:
    if run.plan.destination_transport == "docker":
        names: tuple[str, ...] = (_dest_path(item),)
    else:  # by digest, ``multi@sha256:...``: a layout's ref.name, never a docker tag
        names = (item.target,)
    selection = run.selection
    if _whole(run, item) and not selection.all_platforms:
        selection = dataclasses.replace(selection, platform=None, all_platforms=True)
    planned = plan_image(source, entry, names, selection)
    plans = [planned]
    if run.selection.referrers:
        seen = {m.digest for m in (planned.manifest, *planned.children)}
        plans += plan_referrers(source, planned, sink, seen)
    return plans


def _copy(run: _Run, item: SyncItem, registry: Registry, display: str) -> list[CopyResult]:
    source, entry = _open(run, item)
    sink = RegistryDestination(registry, display)
    return transfer(_plans(run, item, source, entry, sink), sink, registry.engine)


def _to_file(run: _Run) -> list[SyncedImage]:
    """Every item into one archive or layout, in one transfer: a layout keeps what is in step
    already (compared by digest), an archive is written whole."""
    plan = run.plan
    held: dict[str, str] = {}
    layout = plan.destination_transport == "oci"
    if layout and os.path.isdir(plan.destination) and os.listdir(plan.destination):
        with ImageArchive.open(plan.destination) as existing:
            for entry in existing.entries():
                digest = entry.manifest.digest
                held[digest] = digest
                held.update((_normalized(n), digest) for n in entry.names if "/" in n or ":" in n)
    sink: ImageDestination = (
        LayoutWriter(plan.destination) if layout else ArchiveWriter(plan.destination, docker=True)
    )
    outcomes: dict[int, SyncedImage] = {}
    plans: list[tuple[int, list[PlannedImage]]] = []
    lock = threading.Lock()

    def prepare(n: int, item: SyncItem) -> None:
        try:
            name = (
                item.target.rpartition("@")[2] if "@" in item.target else _normalized(item.target)
            )
            if name in held and item.path is None:
                registry = run.source_registry(item)
                head = registry.head_manifest(item.repository, item.identifier)
                expected = head and _expected_digest(run, item, head.digest, head.media_type)
                if expected is not None and expected == held[name]:
                    outcomes[n] = SyncedImage(item.source, item.destination, "up-to-date", expected)
                    return
            source, entry = _open(run, item)
            found = _plans(run, item, source, entry, sink)
            with lock:
                plans.append((n, found))
        except RegistryV2Error as e:
            if not run.options.keep_going:
                raise
            outcomes[n] = SyncedImage(item.source, item.destination, "failed", error=_reason(e))

    with ThreadPoolExecutor(_width(run), thread_name_prefix="registryv2-sync") as pool:
        for future in [pool.submit(prepare, n, item) for n, item in enumerate(plan.items)]:
            future.result()
    plans.sort(key=lambda pair: pair[0])
    flat = [p for _, group in plans for p in group]
    if flat:
        workers = run.options.workers
        engine = run.sources.mover(lambda: TransferEngine(None, workers, None, run.progress))
        try:
            copied = transfer(flat, sink, engine)
        except (RegistryV2Error, OSError, CancelledError) as e:
            for n, _ in plans:
                item = plan.items[n]
                outcomes[n] = SyncedImage(item.source, item.destination, "failed", error=_reason(e))
        else:
            by_plan = iter(copied)
            for n, group in plans:
                results = [next(by_plan) for _ in group]
                item = plan.items[n]
                outcomes[n] = SyncedImage(
                    item.source,
                    item.destination,
                    "copied",
                    results[0].digest,
                    sum(r.bytes_moved for r in results),
                )
    for n in outcomes:
        run.event("image", plan.items[n].destination)
    return [outcomes[n] for n in range(len(plan.items))]


def synchronize(
    source: str | os.PathLike[str] | Mapping[str, Any],
    destination: str | os.PathLike[str],
    connect: Connector,
    options: SyncOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    state_dir: str | os.PathLike[str] | None = None,
) -> SyncReport:
    """Plan the sync of ``source`` into ``destination``, then run it: the job behind
    ``registryv2 sync`` and :func:`registryv2.sync`.

    Example:
        >>> synchronize("sync.yml", "localhost:15000/mirror", connect).summary()  # doctest: +SKIP
        'Synced 3 images: 3 copied, 0 up to date, 0 failed; 12.0 MiB moved in 1.2s'
    """
    options = options or SyncOptions()
    if options.retry_times < 0:
        raise ValidationError("--retry-times must be 0 or more")
    failures: list[SyncedImage] = []
    plan = plan_sync(source, destination, connect, options, failures)
    return run_sync(
        plan, connect, options, progress=progress, state_dir=state_dir, failures=failures
    )
