"""The one copy path: images, or whole indexes, from any place to any other.

Every job that moves an image is this path: a push (an archive or a layout into a registry), a
pull (a registry into an archive, a layout or a pipe), a copy between any two places, and later
a sync. It reads top to bottom:

1. **open** each place: a registry reference becomes a :class:`~registryv2.remote.RegistrySource`
   or :class:`~registryv2.remote.RegistryDestination`; an archive or a layout an
   :class:`~registryv2.archive.ImageArchive` (a source) or a writer (a destination);
2. **choose** the entries (one named image, or every one with ``all_tags``) and the names each
   gets at the destination;
3. **plan** each one: the platform's image of an index, or the whole index with ``all_platforms``;
   every manifest below it (children first, bounded, no cycles) and every distinct blob;
4. **move** the blobs, a batch per destination scope (a repository, or the whole file), in
   parallel on the transfer engine, each checked against its digest;
5. **put** the manifests, only once every blob is there, and **commit** (an archive or a layout
   appears whole, or not at all).

Neither the sources nor the destinations know what is on the other side.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
from collections.abc import Callable, Sequence
from typing import BinaryIO, cast

from .archive import ImageArchive
from .archive.layout_writer import LayoutWriter
from .archive.writer import ArchiveWriter, StreamWriter
from .compress import (
    CompressedBlob,
    CompressionMemory,
    check_compression,
    compressed_layers,
    compressed_manifest,
)
from .engine import TransferEngine
from .exceptions import (
    NO_REPOSITORY,
    DigestMismatchError,
    TarReadError,
    UnsupportedError,
    ValidationError,
)
from .image import Blob, Image
from .manifest import (
    MAX_CONFIG_SIZE,
    host_platform,
    parse_platform,
    select_platform,
    sha256_digest,
    to_oci,
)
from .mirrors import endpoint_for, load_mirrors, registry_endpoint
from .models import (
    DEFAULT_WORKERS,
    BlobInfo,
    CopyResult,
    ImageInspect,
    ManifestInfo,
    Platform,
)
from .places import (
    STDIO,
    DockerArchive,
    Entry,
    ImageDestination,
    ImageSource,
    OCIArchive,
    OCILayout,
    Place,
    PlannedImage,
    RegistryImage,
    parse_place,
)
from .reference import (
    DEFAULT_TAG,
    Reference,
    is_tag,
    normalize_archive_tag,
    registry_of,
    registry_reference,
)
from .registry import Registry
from .remote import RegistryDestination, RegistrySource

Connect = Callable[[str], Registry]
# Names an entry goes under at the destination: one tuple per image put (a registry takes one
# repository per image, so an entry with tags in two repositories is two images there).
Namer = Callable[[Entry], list[tuple[str, ...]]]
# An index of indexes is allowed by the spec; deeper than this is not an image.
MAX_INDEX_DEPTH = 4
# Referrers of referrers (a signature of an SBOM): followed this deep, no deeper.
MAX_REFERRER_DEPTH = 4
# Manifests one copy carries with their referrers: more is a hostile source.
MAX_REFERRERS = 10_000


FORMATS = ("oci",)


def in_format(planned: PlannedImage, form: str | None) -> PlannedImage:
    """``planned`` with its manifests in ``form``: ``"oci"`` converts Docker schema 2
    manifests and lists to OCI ones (blobs untouched, manifest digests changed), as skopeo's
    ``--format oci`` does; None keeps every manifest byte for byte.

    Example:
        >>> in_format(planned, "oci").manifest.media_type  # doctest: +SKIP
        'application/vnd.oci.image.manifest.v1+json'
    """
    if form is None:
        return planned
    if form not in FORMATS:
        raise ValidationError(f"unknown manifest format {form!r}: choose oci")
    converted: dict[str, ManifestInfo] = {}
    for child in planned.children:  # children first: an index's entries are converted first
        converted[child.digest] = to_oci(child, converted)
    image = planned.image_manifest
    return dataclasses.replace(
        planned,
        manifest=to_oci(planned.manifest, converted),
        children=list(converted.values()),
        image_manifest=converted.get(image.digest, to_oci(image, {})) if image else None,
    )


@dataclasses.dataclass(frozen=True)
class Selection:
    """What to take from a source: which entries, and which platforms of an index.

    ``platform`` picks one image of an index (default: this machine's); ``all_platforms``
    keeps the whole index; ``all_tags`` takes every entry; ``image`` names one entry of an
    archive or layout (as ``oci:DIR:NAME`` does); ``referrers`` brings every signature, SBOM
    and attestation that refers to what is copied, and theirs, with it.

    Example:
        >>> Selection(platform="all").all_platforms
        True
    """

    platform: str | Platform | None = None
    all_platforms: bool = False
    all_tags: bool = False
    image: str | None = None
    referrers: bool = False

    def __post_init__(self) -> None:
        if self.platform == "all":
            object.__setattr__(self, "platform", None)
            object.__setattr__(self, "all_platforms", True)
        elif isinstance(self.platform, str):
            object.__setattr__(self, "platform", parse_platform(self.platform))
        if self.all_platforms and self.platform is not None:
            raise ValidationError("choose one platform, or all of them, not both")


# -- opening places --------------------------------------------------------------------------


class Places:
    """The registries a copy talks to, one client per endpoint, closed together.

    Example:
        >>> with Places(RegistryClient) as places:  # doctest: +SKIP
        ...     registry = places.registry("localhost:15000")
    """

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._registries: dict[str, Registry] = {}
        self._engines: list[TransferEngine] = []
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Places:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def registry(self, endpoint: str) -> Registry:
        """The client for ``endpoint``, opened on first use."""
        if endpoint not in self._registries:
            self._registries[endpoint] = self._stack.enter_context(self._connect(endpoint))
        return self._registries[endpoint]

    def interrupt(self) -> None:
        """Stop every transfer in flight on these registries' engines (see
        :meth:`TransferEngine.interrupt`)."""
        for registry in list(self._registries.values()):
            registry.engine.interrupt()
        for engine in self._engines:
            engine.interrupt()

    def hold(self, source: ImageSource) -> ImageSource:
        """Close ``source`` with the rest."""
        self._stack.callback(source.close)
        return source

    def mover(self, make: Callable[[], TransferEngine] | None = None) -> TransferEngine:
        """The engine that moves blobs into an archive or a layout: the first registry's,
        else one made by ``make`` (default: :data:`DEFAULT_WORKERS` workers, no progress)
        and closed with the rest."""
        for registry in self._registries.values():
            return registry.engine
        engine = make() if make else TransferEngine(None, DEFAULT_WORKERS, None)
        self._stack.callback(engine.close)
        self._engines.append(engine)
        return engine


def open_source(place: Place, places: Places, selection: Selection) -> ImageSource:
    """The image source of a place (a registry's repository, an archive, a layout).

    Example:
        >>> open_source(parse_place("oci:build/out"), places, Selection())  # doctest: +SKIP
    """
    if isinstance(place, RegistryImage):
        default = None if selection.all_tags else DEFAULT_TAG
        ref, endpoint = resolve(place.reference, default_tag=default)
        if selection.all_tags and (ref.tag or ref.digest):
            raise ValidationError(
                f"invalid repository {place.reference!r}: taking every tag, give no tag"
            )
        name = ref.familiar.rsplit("@", 1)[0]
        if ref.tag and name.endswith(f":{ref.tag}"):
            name = name[: -len(ref.tag) - 1]
        identifiers = None if selection.all_tags else [ref.identifier]
        source = RegistrySource(places.registry(endpoint), ref.repository, name, identifiers)
        # Referrers' tags come with their images, not as images of their own.
        source.skip_referrer_tags = selection.referrers
        return source
    if place.path == STDIO:
        raise ValidationError(
            "reading an archive from standard input is not supported; write it to a file first"
        )
    if isinstance(place, OCILayout) and not os.path.isdir(place.path):
        if not os.path.exists(place.path):
            raise TarReadError(f"{place.path}: no such directory")
        raise TarReadError(f"{place.path}: not a directory (oci: names a layout directory)")
    if isinstance(place, DockerArchive | OCIArchive) and os.path.isdir(place.path):
        raise TarReadError(f"{place.path}: is a directory, not an archive (use oci:{place.path})")
    return places.hold(ImageArchive.open(place.path))


def resolve(text: str, *, default_tag: str | None = "latest") -> tuple[Reference, str]:
    """A reference, and the endpoint to reach its registry (its mirror, if it has one).

    Example:
        >>> resolve("nginx:alpine")[1]
        'registry-1.docker.io'
    """
    ref = registry_reference(text, default_tag=default_tag)
    return ref, endpoint_for(ref, load_mirrors())


def choose_entries(source: ImageSource, place: Place, selection: Selection) -> list[Entry]:
    """The entries a copy takes from ``source``: every one with ``all_tags``, else the one
    the place or ``selection.image`` names (the only one, when neither names one).

    Example:
        >>> choose_entries(archive, parse_place("oci:out:v1"), Selection())  # doctest: +SKIP
        [Entry(manifest=..., names=('v1',))]
    """
    wanted = getattr(place, "ref", None)
    if wanted and selection.image and wanted != selection.image:
        raise ValidationError(
            f"{place}: names an image already; give --image or the name, not both"
        )
    wanted = wanted or selection.image
    if not isinstance(source, ImageArchive):
        return source.entries()
    if selection.all_tags:
        if wanted:
            raise ValidationError(f"{place}: every image is taken with all tags; name none")
        return source.entries()
    return [source.select_entry(wanted)]


# -- names at the destination ----------------------------------------------------------------


def _tag_of(name: str) -> str | None:
    """The tag a name carries: ``v1`` for ``v1`` or ``host/app:v1``; None for none."""
    if is_tag(name) and ":" not in name:
        return name
    try:
        return Reference.parse(name, default_tag=None).tag
    except ValidationError:
        return None


def registry_names(repository: str | None, tag: str | None, all_tags: bool) -> Namer:
    """Where entries go in a registry: ``repository:tag`` names, one tuple per repository.

    One image goes to ``repository:tag``; a missing tag is the entry's own (``latest`` when
    it has none), a missing repository the entry's own, normalized
    (``docker.io/library/nginx:alpine`` -> ``nginx``). With ``all_tags`` each of the entry's
    names goes: into ``repository`` when given (its tag only), else into its own.

    Example:
        >>> registry_names("team/app", None, False)(Entry(manifest, ("app:v1",)))  # doctest: +SKIP
        [('team/app:v1',)]
    """

    def own(name: str) -> tuple[str, str] | None:
        if ":" not in name and "/" not in name:
            return None  # a bare name (a layout's v1) names no repository
        try:
            return normalize_archive_tag(name)
        except ValidationError:
            return None

    def names(entry: Entry) -> list[tuple[str, ...]]:
        if not all_tags:
            first = entry.names[0] if entry.names else None
            target_repository = repository or (own(first) or ("", ""))[0] if first else repository
            if not target_repository:
                raise ValidationError(
                    f"{NO_REPOSITORY}: the image has no name to take a repository from; give one"
                )
            target_tag = tag or (_tag_of(first) if first else None) or DEFAULT_TAG
            return [(f"{target_repository}:{target_tag}",)]
        grouped: dict[str, list[str]] = {}
        for name in entry.names:
            if repository:
                found = _tag_of(name)
                if found:
                    grouped.setdefault(repository, []).append(found)
                continue
            pair = own(name)
            if pair is None:
                raise ValidationError(
                    f"{name!r} names no repository; push every tag into one: REGISTRY/REPOSITORY"
                )
            grouped.setdefault(pair[0], []).append(pair[1])
        return [tuple(f"{repo}:{t}" for t in dict.fromkeys(tags)) for repo, tags in grouped.items()]

    return names


def file_names(ref: str | None) -> Namer:
    """Names in an archive or layout: ``ref`` when given, else the entry's own names."""
    return lambda entry: [(ref,) if ref else entry.names]


def open_destination(
    place: Place, places: Places, all_tags: bool, stdout: BinaryIO | None = None
) -> tuple[ImageDestination, Namer]:
    """The image destination of a place, and how entries are named there.

    Example:
        >>> open_destination(parse_place("oci:out"), places, False)  # doctest: +SKIP
    """
    if isinstance(place, RegistryImage):
        text = place.reference
        if all_tags and _registry_only(text):
            host = registry_of(text)
            registry = places.registry(registry_endpoint(host, load_mirrors()))
            return RegistryDestination(registry, host.split("://", 1)[-1]), registry_names(
                None, None, True
            )
        ref, endpoint = resolve(text, default_tag=None)
        if ref.digest:
            raise ValidationError(f"invalid reference {text!r}: copy to a tag, not a digest")
        if all_tags and ref.tag:
            raise ValidationError(f"invalid repository {text!r}: taking every tag, give no tag")
        destination = RegistryDestination(places.registry(endpoint), str(ref.registry))
        return destination, registry_names(ref.repository, ref.tag, all_tags)
    if all_tags and place.ref:
        raise ValidationError(f"{place}: every image keeps its own names; name none")
    if isinstance(place, OCILayout):
        return LayoutWriter(place.path), file_names(place.ref)
    if place.path == STDIO:
        stream = stdout or sys.stdout.buffer
        if stream.isatty():
            raise ValidationError(
                "refusing to write an archive to a terminal: redirect it (-o - | docker load)"
            )
        return StreamWriter(stream), file_names(place.ref)
    docker = not isinstance(place, OCIArchive)
    return ArchiveWriter(place.path, docker=docker), file_names(place.ref)


def _registry_only(text: str) -> bool:
    try:
        registry_of(text)
    except ValidationError:
        return False
    return True


# -- planning --------------------------------------------------------------------------------


def plan_image(
    source: ImageSource, entry: Entry, names: tuple[str, ...], selection: Selection
) -> PlannedImage:
    """What copying ``entry`` under ``names`` moves: the platform's image of an index, or
    all of it with ``all_platforms``; every manifest below (children first), every blob.

    Example:
        >>> entry = archive.entries()[0]  # doctest: +SKIP
        >>> plan_image(archive, entry, ("app:v1",), Selection()).blobs  # doctest: +SKIP
    """
    manifest = entry.manifest
    where = entry.names[0] if entry.names else f"{source.label}@{manifest.digest}"
    if manifest.is_index and not selection.all_platforms:
        wanted = selection.platform or host_platform()
        assert isinstance(wanted, Platform)
        chosen = select_platform(manifest, wanted, where)
        manifest = _child(source, manifest, chosen.digest)
        if manifest.is_index:
            raise UnsupportedError(f"{where}: an index inside an index is not supported")
    tree = _tree(source, manifest, where)
    blobs: dict[str, Blob] = {}
    config: bytes | None = None
    image_manifest = next((m for m in tree if not m.is_index), None)
    for m in tree:
        if m.is_index:
            continue
        assert m.config is not None
        if m is image_manifest:
            config = _config(source, m.config, where)
            blobs[m.config.digest] = Blob(m.config, _opener(config))
        else:
            blobs.setdefault(m.config.digest, source.blob(m.config))
        for layer in m.layers:
            blobs.setdefault(layer.digest, source.blob(layer))
    if isinstance(selection.platform, Platform) and not entry.manifest.is_index and config:
        _check_platform(config, selection.platform, where)
    return PlannedImage(
        manifest=manifest,
        children=list(reversed(tree[1:])),
        blobs=list(blobs.values()),
        names=names,
        origin=source.label,
        home=source.home,
        image_manifest=image_manifest,
        config=config,
    )


def plan_referrers(
    source: ImageSource,
    subject: PlannedImage,
    destination: ImageDestination,
    seen: set[str],
) -> list[PlannedImage]:
    """Everything that refers to ``subject`` (to its top manifest, or to a manifest below
    it), and what refers to those, :data:`MAX_REFERRER_DEPTH` deep, each planned to go where
    ``destination`` puts a referrer of ``subject``. ``seen`` holds the digests planned
    already (a cycle, or a referrer of two images, is planned once).

    Example:
        >>> plan_referrers(registry_source, planned, destination, set())  # doctest: +SKIP
    """
    found: list[PlannedImage] = []

    def visit(digest: str, depth: int) -> None:
        for referral in source.referrers(digest):
            if referral.digest in seen:
                continue
            seen.add(referral.digest)
            if len(seen) > MAX_REFERRERS:
                raise ValidationError(
                    f"{source.label}: more than {MAX_REFERRERS} manifests with their referrers"
                )
            manifest = source.manifest(referral.digest)
            if referral.tag is None and (
                manifest.subject is None or manifest.subject.digest != digest
            ):
                said = manifest.subject.digest if manifest.subject else "nothing"
                raise ValidationError(
                    f"{source.label}: {referral.digest} is listed as a referrer of {digest}, "
                    f"but its subject is {said}"
                )
            names = destination.referrer_names(subject, referral)
            planned = plan_image(source, Entry(manifest), names, Selection(all_platforms=True))
            found.append(dataclasses.replace(planned, subject=digest, referral=referral))
            if depth < MAX_REFERRER_DEPTH:
                visit(referral.digest, depth + 1)

    for manifest in [subject.manifest, *subject.children]:
        visit(manifest.digest, 1)
    return found


def _opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def _child(source: ImageSource, index: ManifestInfo, digest: str) -> ManifestInfo:
    try:
        return source.manifest(digest)
    except TarReadError as e:
        raise TarReadError(
            f"{source.label}: the index {index.digest} lists {digest}, which is not there "
            f"({e}); copy one platform that is"
        ) from None


def _tree(source: ImageSource, top: ManifestInfo, where: str) -> list[ManifestInfo]:
    """``top`` and every manifest below it, parents before children, each once."""
    found: dict[str, ManifestInfo] = {}

    def walk(manifest: ManifestInfo, path: tuple[str, ...]) -> None:
        found.setdefault(manifest.digest, manifest)
        if not manifest.is_index:
            return
        if len(path) >= MAX_INDEX_DEPTH:
            raise ValidationError(f"{where}: indexes nested more than {MAX_INDEX_DEPTH} deep")
        for entry in manifest.manifests:
            if entry.digest in path or entry.digest == manifest.digest:
                raise ValidationError(f"{where}: the index {manifest.digest} refers to itself")
            if entry.digest in found:
                continue
            walk(_child(source, manifest, entry.digest), (*path, manifest.digest))

    walk(top, ())
    return list(found.values())


def _config(source: ImageSource, info: BlobInfo, where: str) -> bytes:
    if info.size > MAX_CONFIG_SIZE:
        raise ValidationError(f"{where}: config {info.digest} is {info.size} bytes, not a config")
    with source.blob(info).open() as f:
        data = f.read(info.size + 1)
    if len(data) != info.size or sha256_digest(data) != info.digest:
        raise DigestMismatchError(
            f"{where}: config {info.digest} holds {len(data)} bytes with digest "
            f"{sha256_digest(data)}"
        )
    return data


def _check_platform(config: bytes, wanted: Platform, where: str) -> None:
    found = Image(Blob(BlobInfo(sha256_digest(config), len(config)), _opener(config)), ())
    found = dataclasses.replace(found, config_bytes=config)
    info = found.inspect().config
    if (info.os, info.architecture) != (wanted.os, wanted.architecture):
        raise ValidationError(f"{where} is for {info.os}/{info.architecture}, not {wanted}")


def _inspect(planned: PlannedImage, digest: str, media_type: str) -> ImageInspect | None:
    config, manifest = planned.config, planned.image_manifest
    if config is None or manifest is None or manifest.config is None or manifest.is_artifact:
        return None
    image = Image(
        Blob(manifest.config, _opener(config)),
        tuple(Blob(layer, _opener(b"")) for layer in manifest.layers),
        tags=planned.names,
        config_bytes=config,
    )
    return dataclasses.replace(image.inspect(), manifest_digest=digest, media_type=media_type)


# -- moving ----------------------------------------------------------------------------------


def transfer(
    plans: Sequence[PlannedImage],
    destination: ImageDestination,
    engine: TransferEngine,
    *,
    compress: str | None = None,
    memory: CompressionMemory | None = None,
) -> list[CopyResult]:
    """Move planned images into ``destination``: blobs first (a parallel batch per scope),
    then manifests, then the commit; on any failure the destination is left as it was.

    Example:
        >>> transfer([planned], LayoutWriter("out"), engine)[0].digest  # doctest: +SKIP
        'sha256:...'
    """
    algorithm = check_compression(compress)
    if algorithm is not None:
        if not isinstance(destination, RegistryDestination):
            raise ValidationError("compressing layers on the way is for pushes to a registry")
        memory = memory or CompressionMemory(None)
        for planned in plans:
            if planned.manifest.is_index:
                raise ValidationError(
                    "compressing layers on the way is for one image, not a whole index"
                )
            image = _as_image(planned)
            planned.uploads = [*compressed_layers(image, algorithm, memory), image.config]
    destination.begin(plans)
    try:
        scopes: dict[str, list[PlannedImage]] = {}
        for planned in plans:
            scopes.setdefault(destination.scope(planned), []).append(planned)
        # What happened to each blob, in the batch of its image (a blob uploaded into one
        # repository is mounted into the next).
        moved = {scope: destination.move_blobs(group, engine) for scope, group in scopes.items()}
        results = []
        for planned in plans:
            raw, media_type = planned.manifest.raw, planned.manifest.media_type
            batch = moved[destination.scope(planned)]
            blobs = [batch[b.key] for b in (planned.uploads or planned.blobs)]
            if planned.uploads is not None and algorithm is not None:
                assert memory is not None
                layers = planned.uploads[:-1]
                pushed = [BlobInfo(r.digest, r.size) for r in blobs[:-1]]
                for layer, info in zip(layers, pushed, strict=True):
                    if isinstance(layer, CompressedBlob):
                        memory.remember(algorithm, layer.original.digest, info)
                raw, media_type = compressed_manifest(
                    _as_image(planned), algorithm, cast(list[Blob | CompressedBlob], layers), pushed
                )
            where = destination.put_manifests(planned, raw, media_type)
            digest = sha256_digest(raw)
            results.append(
                CopyResult(
                    source=planned.origin,
                    destination=tuple(where),
                    digest=digest,
                    media_type=media_type,
                    blobs=tuple(dict.fromkeys(blobs)),
                    image=_inspect(planned, digest, media_type),
                )
            )
        destination.commit()
    except BaseException:
        destination.abort()
        raise
    return results


def _as_image(planned: PlannedImage) -> Image:
    manifest = planned.image_manifest
    assert manifest is not None and manifest.config is not None
    blobs = {b.digest: b for b in planned.blobs}
    return Image(
        config=blobs[manifest.config.digest],
        layers=tuple(blobs[layer.digest] for layer in manifest.layers),
        manifest=manifest.raw,
        manifest_media_type=manifest.media_type,
        config_bytes=planned.config or b"",
    )


def copy_places(
    sources: Sequence[Place | str | os.PathLike[str]],
    destination: Place | str | os.PathLike[str],
    connect: Connect,
    selection: Selection | None = None,
    *,
    output: bool = False,
    compress: str | None = None,
    memory: CompressionMemory | None = None,
    engine: Callable[[], TransferEngine] | None = None,
    stdout: BinaryIO | None = None,
    form: str | None = None,
) -> list[CopyResult]:
    """Copy what ``sources`` name into ``destination``: the one job behind push, pull and copy.

    ``output`` reads a bare destination name as a file (where a pull writes). ``engine``
    makes the transfer engine for copies no registry takes part in (default: five workers,
    no progress). ``form`` ``"oci"`` converts Docker manifests to OCI (:func:`in_format`).

    Example:
        >>> copy_places(["oci:build/out:v1"], "localhost:15000/app:v1", Registry)  # doctest: +SKIP
        [CopyResult(source='build/out', destination=('localhost:15000/app:v1',), ...)]
    """
    selection = selection or Selection()
    if not sources:
        raise ValidationError("nothing to copy: give at least one source")
    if form is not None and selection.referrers:
        raise ValidationError(
            "--format changes manifest digests, and referrers name their subject by digest: "
            "carry referrers without converting"
        )
    with Places(connect) as places:
        target = parse_place(destination, output=output)
        parsed = [parse_place(s) for s in sources]
        opened = [(place, open_source(place, places, selection)) for place in parsed]
        sink, namer = open_destination(target, places, selection.all_tags, stdout)
        planned = [
            (source, plan_image(source, entry, names, selection))
            for place, source in opened
            for entry in choose_entries(source, place, selection)
            for names in namer(entry)
        ]
        plans = [p for _, p in planned]
        if selection.referrers:
            # Referrers belong to a digest, not to a repository: an image put into two
            # repositories has them in both, and once in each.
            seen: dict[str, set[str]] = {}
            for p in plans:
                seen.setdefault(sink.scope(p), set()).update(
                    m.digest for m in (p.manifest, *p.children)
                )
            for source, subject in planned:
                plans += plan_referrers(source, subject, sink, seen[sink.scope(subject)])
        plans = [in_format(p, form) for p in plans]
        if not plans:
            raise ValidationError(f"{', '.join(map(str, parsed))}: no image with a name to copy")
        if not isinstance(target, RegistryImage) and target.ref and len(plans) > 1:
            raise ValidationError(f"{target}: one name for {len(plans)} images")
        return transfer(plans, sink, places.mover(engine), compress=compress, memory=memory)
