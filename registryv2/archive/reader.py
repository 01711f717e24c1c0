"""Reading image archives of every layout, and OCI image layout directories, as image sources.

Layouts understood:

* legacy docker (< 25): ``manifest.json`` + ``<id>/layer.tar`` + ``<id>.json`` config;
* skopeo's ``docker-archive``: ``manifest.json`` + ``<sha256>.tar`` layers, with links;
* docker 25+: an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``) plus a
  ``manifest.json`` whose paths point into ``blobs/``; the OCI manifests and indexes found there
  are kept and copied byte for byte, so an image keeps the digest docker gave it;
* a bare OCI layout, tarred (``skopeo copy ... oci-archive:``) or a directory (``oci:``,
  BuildKit's ``--output type=oci``), with names from its ``index.json`` annotations;

any archive gzip-compressed as a whole. Layers are never read whole: a layer is a byte range of
the archive (or a file of the layout), opened on demand.

An :class:`ImageArchive` is an image source: its top-level images and indexes
(:meth:`~ImageArchive.entries`), any manifest by digest, and blobs as streams.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..exceptions import (
    BAD_CONFIG,
    BLOB_NOT_IN_TAR,
    INVALID_TAR,
    TAR_UNREADABLE,
    THEIR_WORDS,
    TarReadError,
    ValidationError,
    begin_with,
)
from ..image import Blob, Image
from ..manifest import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    IMAGE_MANIFESTS,
    INDEXES,
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
    OCI_CONFIG,
    artifact_type_of,
    build_manifest,
    check_digest,
    descriptor,
    layer_media_types,
    load_json,
    parse_manifest,
    sha256_digest,
    sniff_compression,
)
from ..models import BlobInfo, ImageConfig, ManifestInfo
from ..places import COSIGN_SUFFIXES, REFERRER_TAG, Entry, Referral
from ..reference import normalize_archive_tag
from .directory import DirectoryStore
from .layout import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    LAYOUT_VERSIONS,
    blob_path,
)
from .tarfile_index import Member, TarIndex

# manifest.json and the other metadata of the archive itself (not manifests or configs): what
# a docker save of thousands of images writes, and far below what would hurt to parse.
METADATA_LIMIT = 8 * 1024 * 1024
# Images an archive or layout may list at its top level; more is not an archive of images.
MAX_IMAGES = 10_000
# An index of indexes is allowed by the spec; deeper than this is not an image.
MAX_INDEX_DEPTH = 4
# Entries a message lists before it says how many more there are.
_LISTED = 8
_HEX_NAME = re.compile(r"(?:^|/)(?:blobs/sha256/)?([a-f0-9]{64})(?:\.tar)?$")
# The names referrers go under: the fallback tag, and cosign's tags beside it.
_REFERRER_TAG = re.compile(r"^sha256-[a-f0-9]{64}(?:\.sig|\.att|\.sbom)?$")
_HASH_BUFFER = 1024 * 1024


class Store(Protocol):
    """The files of an archive or a layout: a tar's members, or a directory's files."""

    label: str

    def __contains__(self, name: str) -> bool: ...

    def member(self, name: str) -> Member: ...

    def open_member(self, name: str) -> Any: ...

    def read(self, name: str, limit: int = ...) -> bytes: ...

    def head(self, name: str, n: int = ...) -> bytes: ...

    def close(self) -> None: ...


def _json(store: Store, name: str, limit: int = METADATA_LIMIT) -> Any:
    raw = store.read(name, limit)
    try:
        return load_json(raw, f"{store.label}: {name}", limit)
    except ValidationError as e:
        raise TarReadError(str(e)) from None


def _hash_member(store: Store, name: str) -> str:
    h = hashlib.sha256()
    with store.open_member(name) as f:
        while chunk := f.read(_HASH_BUFFER):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _blob(store: Store, name: str, info: BlobInfo) -> Blob:
    # Bind name and store now: the opener runs later, on a worker thread.
    return Blob(info, lambda: store.open_member(name))


def listing(items: list[str], what: str = "") -> str:
    """Items for a message, the first few and how many more: a line stays a line.

    Example:
        >>> listing([f"t{n}" for n in range(12)])
        't0, t1, t2, t3, t4, t5, t6, t7 and 4 more'
    """
    if len(items) <= _LISTED:
        return ", ".join(items) or f"no {what}".strip()
    return f"{', '.join(items[:_LISTED])} and {len(items) - _LISTED} more"


@dataclass
class _Top:
    """One ``index.json`` entry at the top, with the names its annotations give."""

    info: BlobInfo
    names: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


@dataclass
class _DockerImage:
    """One ``manifest.json`` entry: the image, and the manifest it is pushed with."""

    image: Image
    manifest: ManifestInfo
    layer_names: list[str]


class ImageArchive:
    """An image archive (``docker save``, skopeo, OCI; plain or gzip) or an OCI image layout
    directory: its top-level images and indexes, any manifest by digest, blobs as streams.

    Use it as a context manager.

    Example:
        >>> with ImageArchive.open("app.tar") as archive:  # doctest: +SKIP
        ...     print([entry.names for entry in archive.entries()])
        [('app:v1', 'app:latest')]
    """

    def __init__(self, store: Store, layout: bool = False) -> None:
        self._store = store
        self.path = self.label = store.label
        self.is_layout = layout  # a directory, not a tar
        self.home: tuple[str, str] | None = None  # in no registry: nothing to mount from
        self._manifests: dict[str, ManifestInfo] = {}
        self._names: dict[str, str] = {}  # blob digest -> member, where not blobs/<alg>/<hex>
        self._docker: list[_DockerImage] = []
        self._referrals: dict[str, list[Referral]] = {}  # subject digest -> its referrers
        try:
            self._entries = self._read()
        except TarReadError as e:
            store.close()
            if layout or str(e).startswith(THEIR_WORDS):
                raise
            raise e.retitled(begin_with(INVALID_TAR, str(e))) from None
        except BaseException:
            store.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ImageArchive:
        """Open the archive or layout directory at ``path``; ``TarReadError`` says what is
        wrong with it."""
        if os.path.isdir(path):
            return cls(DirectoryStore.open(path), layout=True)
        return cls(TarIndex.open(path))

    # -- reading -----------------------------------------------------------------------------

    def _read(self) -> list[Entry]:
        store = self._store
        kind = "layout" if self.is_layout else "archive"
        self._check_layout_version()
        tops = self._without_referrers(self._index_tops())
        if "manifest.json" in store and not self.is_layout:
            self._read_manifest_json(tops)
        entries = [
            Entry(
                self.manifest(top.info.digest, top.info.media_type),
                tuple(top.names),
                tuple(top.aliases),
            )
            for top in tops
        ]
        entries = self._with_docker_names(tops, entries)
        if not entries:
            raise TarReadError(
                f"{self.path}: not an image {kind} (no manifest.json, and no image in index.json)"
            )
        return entries

    def _check_layout_version(self) -> None:
        store = self._store
        if "oci-layout" not in store:
            if self.is_layout:
                raise TarReadError(
                    f"{TAR_UNREADABLE}: {self.path}: is a directory, and not an OCI image "
                    "layout (no oci-layout file in it)"
                )
            return
        doc = _json(store, "oci-layout", 64 * 1024)
        version = doc.get("imageLayoutVersion") if isinstance(doc, dict) else None
        if version not in LAYOUT_VERSIONS:
            raise TarReadError(
                f"{self.path}: oci-layout says imageLayoutVersion {version!r}; only "
                f"{', '.join(sorted(LAYOUT_VERSIONS))} is known"
            )

    def _index_tops(self) -> list[_Top]:
        """The entries of ``index.json`` whose manifest is there, by digest, names merged.

        A docker 25 archive may list a manifest it did not save; a layout must hold all.
        """
        store = self._store
        if "index.json" not in store:
            if self.is_layout:
                raise TarReadError(f"{self.path}: not an OCI image layout (no index.json)")
            return []
        index = _json(store, "index.json", MAX_MANIFEST_SIZE)
        entries = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(entries, list):
            raise TarReadError(f"{self.path}: index.json has no list of manifests")
        if len(entries) > MAX_IMAGES:
            raise TarReadError(
                f"{self.path}: index.json lists {len(entries)} manifests, more than the "
                f"{MAX_IMAGES} an archive may hold"
            )
        tops: dict[str, _Top] = {}
        for n, entry in enumerate(entries):
            try:
                info = descriptor(entry, f"{self.path}: index.json entry {n}")
            except ValidationError as e:
                raise TarReadError(str(e)) from None
            if info.media_type not in IMAGE_MANIFESTS | INDEXES:
                continue  # not an image: an artifact without a subject, say
            if blob_path(info.digest) not in store:
                if self.is_layout or "manifest.json" not in store:
                    raise TarReadError(
                        f"{self.path}: index.json names {info.digest}, which is not in the "
                        f"{'layout' if self.is_layout else 'archive'}"
                    )
                continue
            top = tops.setdefault(info.digest, _Top(info))
            annotations = entry.get("annotations")
            names, aliases = _annotation_names(annotations if isinstance(annotations, dict) else {})
            top.names += [n for n in names if n not in top.names]
            top.aliases += [a for a in aliases if a not in top.aliases]
        return list(tops.values())

    def _without_referrers(self, tops: list[_Top]) -> list[_Top]:
        """The entries that are images; referrers are kept apart, under what they refer to:
        manifests with a ``subject``, cosign's ``sha256-<hex>.sig`` (``.att``, ``.sbom``), and
        what a fallback ``sha256-<hex>`` index lists."""
        images = []
        for top in tops:
            manifest = self.manifest(top.info.digest, top.info.media_type)
            names = [*top.names, *top.aliases]
            tagged = [t for t in (n.rsplit(":", 1)[-1] for n in names) if REFERRER_TAG.match(t)]
            if manifest.subject is not None:
                self._refer(manifest.subject.digest, manifest, None, "layout")
            elif tagged and tagged[0].endswith(COSIGN_SUFFIXES):
                subject = "sha256:" + tagged[0][7:71]
                self._refer(subject, manifest, tagged[0], "layout")
            elif tagged and manifest.is_index:
                subject = "sha256:" + tagged[0][7:71]
                for entry in manifest.manifests:
                    if blob_path(entry.digest) in self._store:
                        self._refer(subject, self.manifest(entry.digest), None, "fallback")
            else:
                images.append(top)
        return images

    def _refer(self, subject: str, manifest: ManifestInfo, tag: str | None, via: str) -> None:
        listed = self._referrals.setdefault(subject, [])
        if all(r.digest != manifest.digest for r in listed):
            listed.append(
                Referral(
                    manifest.digest,
                    manifest.size,
                    manifest.media_type,
                    artifact_type_of(manifest),
                    dict(manifest.annotations),
                    tag,
                    via,
                )
            )

    def referrers(self, digest: str, artifact_type: str | None = None) -> list[Referral]:
        """What refers to the manifest ``digest`` in the archive or layout: manifests whose
        ``subject`` it is, cosign's tags for it, and what its fallback index lists; only those
        of ``artifact_type`` when given.

        Example:
            >>> [r.artifact_type for r in archive.referrers(digest)]  # doctest: +SKIP
            ['application/spdx+json']
        """
        found = self._referrals.get(digest, [])
        return [r for r in found if artifact_type is None or r.artifact_type == artifact_type]

    def _read_manifest_json(self, tops: list[_Top]) -> None:
        store = self._store
        docs = _json(store, "manifest.json")
        if not isinstance(docs, list) or not docs:
            raise TarReadError(f"{self.path}: manifest.json lists no images")
        if len(docs) > MAX_IMAGES:
            raise TarReadError(
                f"{self.path}: manifest.json lists {len(docs)} images, more than the "
                f"{MAX_IMAGES} an archive may hold"
            )
        candidates = self._tree_images(tops)
        taken: set[str] = set()
        for n, doc in enumerate(docs):
            self._docker.append(self._docker_image(doc, n, candidates, taken))

    def _tree_images(self, tops: list[_Top]) -> list[tuple[ManifestInfo, list[str]]]:
        """Every image manifest below ``tops`` that the archive holds, with the names of the
        top it is under (a docker 25 archive keeps the OCI manifest a docker entry matches)."""
        found: list[tuple[ManifestInfo, list[str]]] = []
        seen: set[str] = set()
        for top in tops:
            for manifest in self.walk(self.manifest(top.info.digest, top.info.media_type)):
                if not manifest.is_index and manifest.digest not in seen:
                    seen.add(manifest.digest)
                    found.append((manifest, top.names + top.aliases))
        return found

    def walk(self, manifest: ManifestInfo) -> list[ManifestInfo]:
        """``manifest`` and every manifest below it the archive holds, each once, parents
        first; indexes nested more than :data:`MAX_INDEX_DEPTH` deep are refused.

        Example:
            >>> [m.is_index for m in archive.walk(archive.entries()[0].manifest)]  # doctest: +SKIP
            [True, False, False]
        """
        found: dict[str, ManifestInfo] = {}

        def visit(current: ManifestInfo, depth: int) -> None:
            found[current.digest] = current
            if not current.is_index:
                return
            if depth >= MAX_INDEX_DEPTH:
                raise TarReadError(f"{self.path}: indexes nested more than {MAX_INDEX_DEPTH} deep")
            for entry in current.manifests:
                if entry.digest in found:
                    continue  # listed again, or an index naming itself or an ancestor
                if blob_path(entry.digest) in self._store or entry.digest in self._manifests:
                    visit(self.manifest(entry.digest, entry.media_type), depth + 1)

        visit(manifest, 0)
        return list(found.values())

    def _docker_image(
        self,
        doc: Any,
        n: int,
        candidates: list[tuple[ManifestInfo, list[str]]],
        taken: set[str],
    ) -> _DockerImage:
        store = self._store
        where = f"{self.path}: manifest.json entry {n}"
        if not isinstance(doc, dict) or not isinstance(doc.get("Config"), str):
            raise TarReadError(f"{where} has no Config")
        layer_names = doc.get("Layers")
        if not isinstance(layer_names, list) or not all(isinstance(x, str) for x in layer_names):
            raise TarReadError(f"{where} has no list of Layers")
        tags = doc.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TarReadError(f"{where}: RepoTags is not a list of names")

        config_bytes = store.read(doc["Config"], MAX_CONFIG_SIZE)
        config_digest = sha256_digest(config_bytes)
        try:
            config_doc = load_json(config_bytes, f"config {doc['Config']}", MAX_CONFIG_SIZE)
            diff_ids = ImageConfig.from_json(config_doc).diff_ids
            for diff_id in diff_ids:
                check_digest(diff_id, f"config {doc['Config']}: diff_ids")
        except ValidationError as e:
            raise TarReadError(f"{BAD_CONFIG}: {where}: {e}") from None
        _check_layer_count(diff_ids, len(layer_names), where)

        digests: list[str] = []
        compressions: list[str] = []
        sizes: list[int] = []
        for i, name in enumerate(layer_names):
            member = store.member(name)  # raises, naming the missing layer
            sizes.append(member.size)
            compression = sniff_compression(store.head(name))
            named = _HEX_NAME.search(member.name) or _HEX_NAME.search(name)
            if named:
                digest = "sha256:" + named.group(1)
            elif compression == "none" and i < len(diff_ids):
                digest = str(diff_ids[i])  # an uncompressed layer's digest is its diff_id
            else:
                digest = _hash_member(store, name)
            digests.append(digest)
            compressions.append(compression)

        # Docker 25+: keep the OCI manifest that describes exactly these blobs. Several may
        # (two images differing only in annotations): the one index.json names as this entry
        # is named, else the first no earlier entry took.
        matching = [
            (m, names)
            for m, names in candidates
            if m.config is not None
            and m.config.digest == config_digest
            and [layer.digest for layer in m.layers] == digests
        ]
        named_alike = [m for m, names in matching if set(_short_names(names)) & set(tags)]
        fresh = [m for m, _ in matching if m.digest not in taken]
        ranked = (
            [m for m in named_alike if m in fresh] + named_alike + fresh + [m for m, _ in matching]
        )
        config_name = doc["Config"]
        self._names[config_digest] = config_name
        for name, digest in zip(layer_names, digests, strict=True):
            self._names.setdefault(digest, name)
        if ranked:
            manifest = ranked[0]
            assert manifest.config is not None
            taken.add(manifest.digest)
            config_info = manifest.config
            layers = manifest.layers
        else:
            manifest_type, media_types = layer_media_types(compressions)
            config_type = DOCKER_CONFIG if manifest_type == DOCKER_MANIFEST else OCI_CONFIG
            config_info = BlobInfo(config_digest, len(config_bytes), config_type)
            layers = tuple(
                BlobInfo(digest, size, media_type)
                for digest, size, media_type in zip(digests, sizes, media_types, strict=True)
            )
            raw = build_manifest(manifest_type, config_info, list(layers))
            manifest = parse_manifest(raw, manifest_type, where)
            self._manifests[manifest.digest] = manifest
        image = Image(
            config=_blob(store, config_name, config_info),
            layers=tuple(
                _blob(store, name, info) for name, info in zip(layer_names, layers, strict=True)
            ),
            tags=tuple(tags),
            manifest=manifest.raw,
            manifest_media_type=manifest.media_type,
            config_bytes=config_bytes,
        )
        return _DockerImage(image, manifest, layer_names)

    def _with_docker_names(self, tops: list[_Top], entries: list[Entry]) -> list[Entry]:
        """Entries named by ``manifest.json`` where it names them (docker's tags win over the
        annotations), and one more for each docker image no ``index.json`` entry holds."""
        if not self._docker:
            return entries
        named: list[Entry] = []
        placed: set[int] = set()
        for top, entry in zip(tops, entries, strict=True):
            tree = {m.digest for m in self.walk(entry.manifest)}
            found: list[str] = []
            for n, docker in enumerate(self._docker):
                if docker.manifest.digest in tree:
                    placed.add(n)
                    found += [t for t in docker.image.tags if t not in found]
            if found:
                aliases = [*top.names, *top.aliases]
                entry = Entry(
                    entry.manifest, tuple(found), tuple(a for a in aliases if a not in found)
                )
            named.append(entry)
        by_digest: dict[str, Entry] = {}
        for n, docker in enumerate(self._docker):
            if n in placed:
                continue
            digest = docker.manifest.digest
            earlier = by_digest.get(digest)
            tags = docker.image.tags
            if earlier is not None:
                tags = earlier.names + tuple(t for t in tags if t not in earlier.names)
            by_digest[digest] = Entry(docker.manifest, tags)
        return named + list(by_digest.values())

    # -- the source --------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """The images and indexes at the top of the archive or layout, in its order, each with
        the names it goes by (docker's tags, else the annotations of ``index.json``).

        Example:
            >>> [e.names for e in ImageArchive.open("nginx.tar").entries()]  # doctest: +SKIP
            [('nginx:alpine',)]
        """
        return list(self._entries)

    def manifest(self, digest: str, media_type: str | None = None) -> ManifestInfo:
        """A manifest or index of the archive, by digest, checked against it.

        Example:
            >>> archive.manifest("sha256:...").is_index  # doctest: +SKIP
            False
        """
        found = self._manifests.get(digest)
        if found is not None:
            return found
        path = blob_path(digest)
        raw = self._store.read(path, MAX_MANIFEST_SIZE)
        if sha256_digest(raw) != digest:
            raise TarReadError(f"{self.path}: {path} does not match its digest")
        try:
            found = parse_manifest(raw, media_type, f"{self.path}: {path}")
        except ValidationError as e:
            raise TarReadError(str(e)) from None
        self._manifests[digest] = found
        return found

    def blob(self, info: BlobInfo) -> Blob:
        """A blob of the archive, to open as a stream; ``TarReadError`` when it is not there.

        Example:
            >>> archive.blob(manifest.layers[0]).open().read(2)  # doctest: +SKIP
            b'\\x1f\\x8b'
        """
        name = self._names.get(info.digest) or blob_path(info.digest)
        try:
            self._store.member(name)
        except TarReadError as e:
            if f"no file {name!r}" not in str(e):
                raise  # there, but not to be read: a link out, a device
            where = "layout" if self.is_layout else "archive"
            raise TarReadError(
                f"{BLOB_NOT_IN_TAR}: {self.path}: blob {info.digest} is listed but not in the "
                f"{where}"
            ) from None
        return _blob(self._store, name, info)

    def close(self) -> None:
        """Release the archive."""
        self._store.close()

    def __enter__(self) -> ImageArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- images, and choosing one ------------------------------------------------------------

    @functools.cached_property
    def images(self) -> list[Image]:
        """Every image, one per ``manifest.json`` entry (for an archive without one, per image
        of ``index.json``, the platforms of an index included), in the archive's order."""
        if self._docker:
            return [docker.image for docker in self._docker]
        images: list[Image] = []
        seen: set[str] = set()
        for entry in self._entries:
            for manifest in self.walk(entry.manifest):
                if manifest.is_index or manifest.digest in seen:
                    continue
                seen.add(manifest.digest)
                tags = entry.names if manifest is entry.manifest else ()
                images.append(self.image_of(manifest, tags))
        return images

    def image_of(self, manifest: ManifestInfo, tags: tuple[str, ...] = ()) -> Image:
        """The image an image manifest of the archive describes, its config read.

        Example:
            >>> archive.image_of(archive.entries()[0].manifest).inspect().os  # doctest: +SKIP
            'linux'
        """
        if manifest.config is None:
            raise TarReadError(f"{self.path}: {manifest.digest} is an index, not an image")
        for docker in self._docker:
            if docker.manifest.digest == manifest.digest:
                return dataclasses.replace(docker.image, tags=tags or docker.image.tags)
        config = self.blob(manifest.config)
        name = self._names.get(manifest.config.digest) or blob_path(manifest.config.digest)
        where = f"{self.path}: {name}"
        config_bytes = self._store.read(name, MAX_CONFIG_SIZE)
        try:
            doc = load_json(config_bytes, where, MAX_CONFIG_SIZE)
            diff_ids = ImageConfig.from_json(doc).diff_ids if isinstance(doc, dict) else []
        except ValidationError as e:
            raise TarReadError(begin_with(BAD_CONFIG, str(e))) from None
        _check_layer_count(diff_ids, len(manifest.layers), where)
        return Image(
            config=config,
            layers=tuple(self.blob(layer) for layer in manifest.layers),
            tags=tags,
            manifest=manifest.raw,
            manifest_media_type=manifest.media_type,
            config_bytes=config_bytes,
        )

    @property
    def tags(self) -> list[str]:
        """Every name in the archive, as written, in order.

        Example:
            >>> ImageArchive.open("nginx.tar").tags  # doctest: +SKIP
            ['nginx:alpine', 'nginx:1.25']
        """
        if self._docker:
            return [tag for docker in self._docker for tag in docker.image.tags]
        return [name for entry in self._entries for name in entry.names]

    @property
    def manifest_entries(self) -> list[dict[str, Any]]:
        """``manifest.json``'s entries as written, or made from ``index.json``'s images."""
        if self._docker:
            return [
                {
                    "Config": self._names[docker.image.config.digest],
                    "RepoTags": list(docker.image.tags),
                    "Layers": docker.layer_names,
                }
                for docker in self._docker
            ]
        return [
            {
                "Config": blob_path(image.config.digest),
                "RepoTags": list(image.tags),
                "Layers": [blob_path(layer.digest) for layer in image.layers],
            }
            for image in self.images
        ]

    def describe(self) -> str:
        """The images and indexes, for error messages: the first few, and how many more."""
        parts = []
        for n, entry in enumerate(self._entries):
            name = ", ".join(entry.names) if entry.names else "untagged"
            kind = "index " if entry.manifest.is_index else ""
            parts.append(f"#{n} {name} ({kind}{entry.manifest.digest[:19]})")
        return listing(parts).replace(", #", "; #")

    def select_entry(self, wanted: str | None = None) -> Entry:
        """Choose one top-level image or index.

        ``wanted`` is a name (as written, or normalized: ``nginx:alpine`` matches
        ``docker.io/library/nginx:alpine``; a layout's short ``ref.name`` too), a manifest or
        config digest or a unique prefix of one, or ``#N``. Without it the archive must hold
        exactly one; else the error lists what it holds.

        Example:
            >>> ImageArchive.open("bundle.tar").select_entry("team/db:2").names  # doctest: +SKIP
            ('team/db:2',)
        """
        entries = self._entries
        if wanted is None:
            if len(entries) == 1:
                return entries[0]
            raise ValidationError(
                f"{self.path} holds {len(entries)} images; choose one with a name "
                f"(oci:DIR:NAME, docker-archive:FILE:NAME, or --image): {self.describe()}"
            )
        if wanted.startswith("#") and wanted[1:].isdigit() and int(wanted[1:]) < len(entries):
            return entries[int(wanted[1:])]
        matches = [e for e in entries if _names_match(e.names + e.aliases, wanted)]
        if not matches:
            matches = [e for e in entries if _digest_matches(e.manifest, wanted)]
        if len(matches) == 1:
            return matches[0]
        what = "matches no image" if not matches else "matches several images"
        raise ValidationError(f"{self.path}: {wanted!r} {what}: {self.describe()}")

    def select(self, image: str | None = None) -> Image:
        """Choose one image (not an index).

        ``image`` is an archive tag (as written, or normalized: ``nginx:alpine`` matches
        ``docker.io/library/nginx:alpine``), a config digest or its unique prefix, or ``#N``.
        Without it the archive must hold exactly one image.

        Example:
            >>> ImageArchive.open("app.tar").select().tags  # doctest: +SKIP
            ('app:v1',)
        """
        images = self.images
        if image is None:
            if len(images) == 1:
                return images[0]
            raise ValidationError(
                f"{self.path} holds {len(images)} images; choose one with --image "
                f"(image=...): {self.describe()}"
            )
        if image.startswith("#") and image[1:].isdigit() and int(image[1:]) < len(images):
            return images[int(image[1:])]
        matches = [img for img in images if _names_match(img.tags, image)]
        if not matches:
            matches = [img for img in images if _prefix_of(img.config.digest, image)]
        if len(matches) == 1:
            return matches[0]
        what = "matches no image" if not matches else "matches several images"
        raise ValidationError(f"{self.path}: {image!r} {what}: {self.describe()}")


def _annotation_names(annotations: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The name an ``index.json`` entry's annotations give (containerd's full name, else the
    OCI ``ref.name``), and the short ``ref.name`` that also chooses it."""
    full = annotations.get(ANNOTATION_IMAGE_NAME)
    ref = annotations.get(ANNOTATION_REF_NAME)
    full = full if isinstance(full, str) and full else None
    ref = ref if isinstance(ref, str) and ref else None
    if full:
        return [full], [ref] if ref and ref != full else []
    return ([ref] if ref else []), []


def _short_names(names: list[str]) -> list[str]:
    """Names with their docker short forms (``docker.io/library/x:1`` -> ``x:1``)."""
    return names + [n.split("/", 2)[2] for n in names if n.startswith("docker.io/library/")]


def _names_match(names: tuple[str, ...], wanted: str) -> bool:
    if wanted in names:
        return True
    try:
        target = normalize_archive_tag(wanted)
    except ValidationError:
        return False
    return any(_normalized(name) == target for name in names if ":" in name or "/" in name)


def _prefix_of(digest: str, wanted: str) -> bool:
    text = wanted if wanted.startswith("sha256:") else "sha256:" + wanted
    return len(text) >= 7 + 12 and digest.startswith(text)


def _digest_matches(manifest: ManifestInfo, wanted: str) -> bool:
    config = manifest.config.digest if manifest.config else ""
    return _prefix_of(manifest.digest, wanted) or (bool(config) and _prefix_of(config, wanted))


def _normalized(tag: str) -> tuple[str, str] | None:
    try:
        return normalize_archive_tag(tag)
    except ValidationError:
        return None


def _check_layer_count(diff_ids: list[str], layers: int, where: str) -> None:
    """A config listing diff_ids lists one per layer: anything else is an image no runtime can
    use, refused here so that pushing and validating agree. (A config without diff_ids is
    pushed as it is.)"""
    if diff_ids and len(diff_ids) != layers:
        raise TarReadError(
            f"{where}: the config lists {len(diff_ids)} diff_ids for {layers} layers"
        )
