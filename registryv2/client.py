"""RegistryClient: one registry, one pooled session, one transfer engine."""

from __future__ import annotations

import dataclasses
import functools
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import requests

from .archive import ImageArchive
from .archive.targets import target_for, targets_for_all_tags
from .archive.writer import save_images
from .compress import (
    CompressedBlob,
    CompressionMemory,
    check_compression,
    compressed_layers,
    compressed_manifest,
)
from .download import BlobReader
from .engine import TransferEngine
from .events import ProgressCallback
from .exceptions import (
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    UnsupportedError,
    ValidationError,
)
from .image import Blob, Image
from .journal import UploadJournal, default_state_dir
from .manifest import (
    MANIFEST_ACCEPT,
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
    host_platform,
    parse_manifest,
    parse_platform,
    select_platform,
    sha256_digest,
)
from .models import (
    BlobInfo,
    BlobResult,
    ImageInspect,
    ManifestInfo,
    Platform,
    PushResult,
    RegistryConfig,
)
from .progress import progress_callback
from .reference import Reference, is_digest, is_tag, normalize_archive_tag
from .transport import Transport

# A listing that goes on longer than this is a broken or hostile registry, not a real one.
MAX_PAGES = 100_000
MAX_ENTRIES = 1_000_000
# An index of indexes is allowed by the spec; deeper than this is not an image.
MAX_INDEX_DEPTH = 4


def _platform(platform: str | Platform | None) -> Platform | None:
    return parse_platform(platform) if isinstance(platform, str) else platform


def _name(repository: str, reference: str) -> str:
    """``repository:tag`` or ``repository@digest``, for messages and tags."""
    return f"{repository}{'@' if is_digest(reference) else ':'}{reference}"


def _split(reference: str) -> tuple[str, str]:
    """``repository:tag`` or ``repository@digest`` -> (repository, tag or digest)."""
    ref = Reference.parse(reference)
    if ref.registry is not None:
        raise ValidationError(
            f"invalid reference {reference!r}: give repository:tag, the registry is the client's"
        )
    return ref.repository, ref.identifier


def _check_identifier(reference: str) -> None:
    """A tag or a digest, before it becomes part of a URL."""
    if not (is_tag(reference) or is_digest(reference)):
        raise ValidationError(
            f"invalid tag or digest {reference!r}: a tag is up to 128 letters, digits, '_', '.' "
            "and '-'; a digest is sha256: and 64 hex digits"
        )


def _check_repository(repository: str, tag: str | None = None) -> None:
    ref = Reference.parse(f"{repository}:{tag}" if tag is not None else repository)
    if ref.registry is not None or ref.repository != repository:
        raise ValidationError(
            f"invalid repository {repository!r}: give the path only, the registry is separate"
        )


class RegistryClient:
    """A client for one registry. Thread-safe; hold one for many calls.

    Args:
        registry: ``host[:port]``, an ``http(s)://`` URL, or a full :class:`RegistryConfig`.
        progress: called with a :class:`~registryv2.events.TransferEvent` as blobs move; or
            ``True`` for progress bars (tqdm's in a notebook, else drawn on a terminal).
        **settings: :class:`RegistryConfig` fields (``workers``, ``chunk_size``, ``timeout``,
            ``retry``, ``resume``...) when ``registry`` is a URL.

    Example:
        >>> with RegistryClient("localhost:15000", workers=4) as client:  # doctest: +SKIP
        ...     result = client.push("app.tar", "team/app", "v1")
        ...     print(result.digest)
    """

    def __init__(
        self,
        registry: str | RegistryConfig,
        *,
        progress: ProgressCallback | bool | None = None,
        **settings: Any,
    ) -> None:
        self.config = (
            registry
            if isinstance(registry, RegistryConfig)
            else RegistryConfig(registry, **settings)
        )
        self.transport = Transport(self.config)
        journal = UploadJournal.at(self.config.state_dir) if self.config.resume else None
        self._compression_memory = CompressionMemory(
            Path(self.config.state_dir or default_state_dir()) / "compressed"
        )
        self.engine = TransferEngine(
            self.transport,
            self.config.workers,
            self.config.chunk_size,
            progress_callback(progress),
            journal,
        )

    def __repr__(self) -> str:
        return f"RegistryClient({self.transport.registry!r})"

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers and close the connections."""
        self.engine.close()
        self.transport.close()

    # -- connectivity ------------------------------------------------------------------------

    def ping(self) -> bool:
        """Check that the registry is usable: ``/v2/`` answers 200 as a registry does.

        A registry asking for credentials gets this client's (or docker's); without usable
        ones it is an ``AuthenticationError`` saying how to log in. A server answering 200
        without ``Docker-Distribution-Api-Version: registry/2.0`` is not a registry.

        Example:
            >>> RegistryClient("localhost:15000").ping()  # doctest: +SKIP
            True
        """
        what = f"checking {self.transport.registry}"
        response = self.transport.request("GET", "/v2/", what=what, stream=True)
        response.close()
        version = response.headers.get("Docker-Distribution-Api-Version", "")
        if "registry/2.0" not in version:
            raise RegistryError(
                f"{what}: it answers /v2/ but is not a registry "
                "(no Docker-Distribution-Api-Version: registry/2.0)",
                status=response.status_code,
            )
        return True

    def login(self) -> bool:
        """Check that the registry accepts this client's credentials: :meth:`ping`.

        Example:
            >>> RegistryClient("r.io", username="al", password="pw").login()  # doctest: +SKIP
            True
        """
        return self.ping()

    # -- listing -----------------------------------------------------------------------------

    def _pages(self, path: str, key: str, what: str, page_size: int | None) -> Iterator[str]:
        """Follow a paginated list (``Link: <...>; rel="next"``) to its end.

        At most :data:`MAX_PAGES` pages and :data:`MAX_ENTRIES` entries: a registry whose
        links never end, or whose list is absurdly long, is an error, not a hang.
        """
        url, params = path, {"n": str(page_size)} if page_size else None
        seen: set[str] = set()
        entries = 0
        for _ in range(MAX_PAGES):
            doc, response = self.transport.json(url, what=what, params=params)
            if not isinstance(doc, dict):
                raise RegistryError(f"{what}: the registry answered with an unexpected document")
            items = doc.get(key) or []
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise RegistryError(f"{what}: the registry's {key} is not a list of names")
            entries += len(items)
            if entries > MAX_ENTRIES:
                raise RegistryError(f"{what}: more than {MAX_ENTRIES} entries; giving up")
            yield from items
            link = response.links.get("next", {}).get("url")
            if link:
                url, params = link, None
                if not self.transport.is_registry(self.transport.url(url)):
                    raise RegistryError(f"{what}: the next page is on another host ({url})")
            elif page_size and params and len(items) == page_size:
                # A registry that pages without Link headers: continue after the last item.
                params = {"n": str(page_size), "last": items[-1]}
            else:
                return
            position = self.transport.url(url) + repr(params)
            if position in seen:
                raise RegistryError(f"{what}: the registry's next page link loops ({url})")
            seen.add(position)
        raise RegistryError(f"{what}: more than {MAX_PAGES} pages; giving up")

    def list_repositories(self, page_size: int | None = None) -> list[str]:
        """Every repository of the registry, in the registry's order, across all pages.

        Example:
            >>> client.list_repositories()  # doctest: +SKIP
            ['nginx', 'team/app']
        """
        return list(
            self._pages(
                "/v2/_catalog",
                "repositories",
                f"listing repositories of {self.transport.registry}",
                page_size,
            )
        )

    def list_tags(self, repository: str, page_size: int | None = None) -> list[str]:
        """Every tag of ``repository``, in the registry's order, across all pages.

        Raises ``NotFoundError`` naming the repository when it does not exist.

        Example:
            >>> client.list_tags("team/app")  # doctest: +SKIP
            ['latest', 'v1']
        """
        _check_repository(repository)
        return list(
            self._pages(
                f"/v2/{repository}/tags/list", "tags", f"listing tags of {repository}", page_size
            )
        )

    # -- manifests and images ----------------------------------------------------------------

    def _manifest_request(
        self, method: str, repository: str, reference: str
    ) -> tuple[requests.Response, str]:
        """GET or HEAD a manifest, accepting every kind; the response and its description."""
        _check_repository(repository)
        _check_identifier(reference)
        what = f"manifest {_name(repository, reference)}"
        response = self.transport.request(
            method,
            f"/v2/{repository}/manifests/{reference}",
            what=what,
            headers={"Accept": MANIFEST_ACCEPT},
            stream=True,
        )
        return response, what

    def get_manifest(self, repository: str, reference: str) -> ManifestInfo:
        """Fetch a manifest or index by tag or digest.

        Accepts Docker v2, OCI manifests, Docker manifest lists and OCI indexes, of at most
        4 MiB. A manifest fetched by digest is checked against it; a malformed one, or one
        naming malformed digests, is a ``RegistryError``.

        Example:
            >>> client.get_manifest("team/app", "v1").media_type  # doctest: +SKIP
            'application/vnd.docker.distribution.manifest.v2+json'
        """
        attempts = self.transport.retry.begin(f"manifest {_name(repository, reference)}")
        while True:
            response, what = self._manifest_request("GET", repository, reference)
            try:
                raw = self.transport.body(response, MAX_MANIFEST_SIZE, what)
                break
            except RegistryError as e:
                attempts.retry(e)
        received = sha256_digest(raw)
        if is_digest(reference) and received != reference:
            raise RegistryError(f"{what}: the registry sent bytes with digest {received}")
        try:
            return parse_manifest(raw, response.headers.get("Content-Type"), what)
        except ValidationError as e:
            raise RegistryError(str(e)) from None

    def get_blob_bytes(
        self, repository: str, info: BlobInfo, limit: int = MAX_CONFIG_SIZE
    ) -> bytes:
        """Fetch a small blob (an image config) whole, checking its digest.

        Example:
            >>> client.get_blob_bytes("team/app", manifest.config)  # doctest: +SKIP
            b'{"architecture":"amd64",...}'
        """
        what = f"blob {info.digest} of {repository}"
        if info.size > limit:
            raise RegistryError(f"{what}: larger than {limit} bytes, not a config")
        with self.open_blob(repository, info) as reader:
            raw = reader.read()
        received = sha256_digest(raw)
        if received != info.digest:
            raise DigestMismatchError(f"{what}: the registry sent bytes with digest {received}")
        return raw

    def open_blob(
        self, repository: str, info: BlobInfo, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        """Stream a blob's bytes (``start`` to ``end - 1`` when given); a broken connection is
        resumed with a ``Range`` request.

        The digest is not checked here: the reader of the stream hashes it (the engine does).

        Example:
            >>> with client.open_blob("team/app", manifest.layers[0]) as f:  # doctest: +SKIP
            ...     head = f.read(2)
        """
        reader = BlobReader(self.transport, repository, info, start, end)
        return reader  # type: ignore[return-value]

    def _blob(self, repository: str, info: BlobInfo) -> Blob:
        """A blob of ``repository`` to read whole, or by ranges at once."""
        opener = functools.partial(self.open_blob, repository, info)
        return Blob(info, opener, opener)

    def _image_manifest(
        self, repository: str, reference: str, platform: str | Platform | None
    ) -> ManifestInfo:
        """The image manifest at ``reference``; for an index, its entry for ``platform``."""
        manifest = self.get_manifest(repository, reference)
        if manifest.is_index:
            entry = select_platform(
                manifest, _platform(platform) or host_platform(), _name(repository, reference)
            )
            manifest = self.get_manifest(repository, entry.digest)
            if manifest.is_index:
                raise UnsupportedError(
                    f"{repository}@{entry.digest}: an index inside an index is not supported"
                )
        return manifest

    def get_image_info(
        self, repository: str, reference: str, platform: str | Platform | None = None
    ) -> ImageInspect:
        """Manifest and config of an image: architecture, os, created, layers, labels, env...

        For an index, the entry for ``platform`` (``"linux/arm64"``; default: this machine's);
        a single-platform image asked for with another ``platform`` is refused.

        Example:
            >>> info = client.get_image_info("team/app", "v1")  # doctest: +SKIP
            >>> info.os, info.architecture, info.size  # doctest: +SKIP
            ('linux', 'amd64', 3145728)
        """
        info = self.image(repository, reference, platform).inspect()
        return dataclasses.replace(
            info,
            repo_tags=[] if is_digest(reference) else [_name(repository, reference)],
            repo_digests=[f"{repository}@{info.manifest_digest}"],
        )

    def image(
        self,
        repository: str,
        reference: str,
        platform: str | Platform | None = None,
    ) -> Image:
        """An image of the registry: manifest and config read now, layers streamed when opened.

        For an index, the entry for ``platform`` (default: this machine's). A single-platform
        image asked for with another ``platform`` is refused, as docker refuses it.

        Example:
            >>> image = client.image("team/app", "v1", "linux/arm64")  # doctest: +SKIP
            >>> image.inspect().architecture  # doctest: +SKIP
            'arm64'
        """
        manifest = self._image_manifest(repository, reference, platform)
        name = _name(repository, reference)
        if manifest.config is None:
            raise RegistryError(f"{name}: manifest names no config")
        config = self.get_blob_bytes(repository, manifest.config)
        image = Image(
            config=Blob(manifest.config, functools.partial(io.BytesIO, config)),
            layers=tuple(self._blob(repository, info) for info in manifest.layers),
            tags=() if is_digest(reference) else (f"{self.transport.registry}/{name}",),
            manifest=manifest.raw,
            manifest_media_type=manifest.media_type,
            config_bytes=config,
            source=f"{self.transport.registry}/{repository}",
        )
        try:
            found = image.inspect().config
        except ValidationError as e:
            raise RegistryError(f"{name}: {e}") from None
        wanted = _platform(platform)
        if wanted and (found.os, found.architecture) != (wanted.os, wanted.architecture):
            raise ValidationError(f"{name} is for {found.os}/{found.architecture}, not {wanted}")
        return image

    def pull(
        self,
        references: str | Sequence[str],
        output_path: str | os.PathLike[str],
        *,
        platform: str | Platform | None = None,
    ) -> list[ImageInspect]:
        """Write images of this registry into one archive that ``docker load`` takes.

        ``references`` are ``repository:tag`` or ``repository@digest``; an index gives its
        image for ``platform`` (default: this machine's). The archive appears whole or not at
        all. Returns what was written, one entry per reference.

        Example:
            >>> client.pull(["team/app:v1", "team/db:v2"], "images.tar")  # doctest: +SKIP
        """
        refs = [references] if isinstance(references, str) else list(references)
        images = [self.image(*_split(ref), platform) for ref in refs]
        return save_images(images, output_path, self.engine)

    # -- copy and tag --------------------------------------------------------------------------

    def copy(
        self,
        repository: str,
        reference: str,
        target_repository: str,
        target_tag: str,
        *,
        source: RegistryClient | None = None,
    ) -> PushResult:
        """Copy an image or a whole index into ``target_repository:target_tag`` of this registry.

        ``source`` is the client of the registry to copy from (default: this one). Blobs stream
        from one registry to the other without touching the disk; within one registry they are
        mounted. The manifest bytes are kept, so the digest is the same on both sides.

        Example:
            >>> with RegistryClient("src.example") as src:  # doctest: +SKIP
            ...     target.copy("team/app", "v1", "mirror/app", "v1", source=src).digest
        """
        _check_repository(target_repository, target_tag)
        source = source or self
        manifest = source.get_manifest(repository, reference)
        blobs = self._copy_contents(source, repository, manifest, target_repository)
        digest = self.put_manifest(target_repository, target_tag, manifest.raw, manifest.media_type)
        return PushResult(target_repository, target_tag, digest, tuple(blobs))

    def _copy_contents(
        self, source: RegistryClient, repository: str, manifest: ManifestInfo, target: str
    ) -> list[BlobResult]:
        """Everything ``manifest`` refers to, into ``target``: every blob (in one parallel
        batch), then an index's manifests, each fetched once however often it is listed."""
        images: dict[str, ManifestInfo] = {}
        children: dict[str, ManifestInfo] = {}

        def collect(found: ManifestInfo, depth: int) -> None:
            if not found.is_index:
                images[found.digest] = found
                return
            if depth >= MAX_INDEX_DEPTH:
                raise UnsupportedError(f"{repository}: indexes nested more than {depth} deep")
            for entry in found.manifests:
                if entry.digest not in children:
                    children[entry.digest] = child = source.get_manifest(repository, entry.digest)
                    collect(child, depth + 1)

        collect(manifest, 0)
        descriptors = {
            info.digest: info
            for image in images.values()
            for info in (*image.layers, image.config)
            if info is not None
        }
        if source.transport.registry == self.transport.registry:
            for digest in descriptors:
                self.engine.remember(digest, repository)
        results = self.engine.push_blobs(
            target,
            [
                Blob(info, functools.partial(source.open_blob, repository, info))
                for info in descriptors.values()
            ],
        )
        # Children before parents: a registry checks that what an index lists is there.
        for digest, child in reversed(children.items()):
            self.put_manifest(target, digest, child.raw, child.media_type)
        return results

    def tag(self, repository: str, reference: str, new_tag: str) -> str:
        """Put the manifest at ``reference`` under ``new_tag`` too; no blob moves.

        The manifest bytes are put unchanged, so both tags give the same digest.

        Example:
            >>> client.tag("team/app", "v1", "stable")  # doctest: +SKIP
            'sha256:...'
        """
        _check_repository(repository, new_tag)
        manifest = self.get_manifest(repository, reference)
        return self.put_manifest(repository, new_tag, manifest.raw, manifest.media_type)

    # -- deletes -----------------------------------------------------------------------------

    def resolve_digest(self, repository: str, tag: str) -> str:
        """The digest of the manifest ``tag`` points at (HEAD, with every manifest type accepted).

        Example:
            >>> client.resolve_digest("team/app", "v1")  # doctest: +SKIP
            'sha256:...'
        """
        try:
            response, _ = self._manifest_request("HEAD", repository, tag)
        except NotFoundError:
            # A HEAD's 404 has no body to say why: the GET's names the registry's error code.
            return self.get_manifest(repository, tag).digest
        response.close()
        digest = response.headers.get("Docker-Content-Digest")
        return digest if digest and is_digest(digest) else self.get_manifest(repository, tag).digest

    def delete_image(self, repository: str, tag: str) -> bool:
        """Delete the manifest ``tag`` points at.

        Registries delete manifests, not tags: **every tag pointing at the same manifest goes
        with it**. Raises ``UnsupportedError`` when the registry has deletes disabled.

        Example:
            >>> client.delete_image("team/app", "v1")  # doctest: +SKIP
            True
        """
        return self.delete_image_by_digest(repository, self.resolve_digest(repository, tag))

    def delete_image_by_digest(self, repository: str, digest: str) -> bool:
        """Delete a manifest by digest, and with it every tag pointing at it.

        Example:
            >>> client.delete_image_by_digest("team/app", "sha256:...")  # doctest: +SKIP
            True
        """
        _check_repository(repository)
        if not is_digest(digest):
            raise ValidationError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
        what = f"deleting {repository}@{digest}"
        try:
            self.transport.request(
                "DELETE", f"/v2/{repository}/manifests/{digest}", what=what, expect=(202, 200)
            )
        except UnsupportedError as e:
            raise UnsupportedError(
                f"{what}: the registry does not allow deletes (for the CNCF registry, set "
                "storage.delete.enabled or REGISTRY_STORAGE_DELETE_ENABLED=true)",
                status=e.status,
                errors=e.errors,
            ) from None
        return True

    # -- push --------------------------------------------------------------------------------

    def push_image(
        self,
        image: Image,
        repository: str,
        tags: Sequence[str],
        *,
        compress: str | None = None,
    ) -> list[PushResult]:
        """Push one image into ``repository`` under each of ``tags``.

        Every blob is confirmed by the registry before the manifest goes up, so a failure never
        leaves a tag pointing at a half-pushed image. ``compress`` (``"gzip"`` or ``"zstd"``)
        compresses the layers stored uncompressed on the way; None keeps every layer byte for
        byte (and the image's digest).

        Example:
            >>> with ImageArchive.open("app.tar") as archive:  # doctest: +SKIP
            ...     client.push_image(archive.select(), "team/app", ["v1", "latest"])
        """
        for tag in tags:
            _check_repository(repository, tag)
        algorithm = check_compression(compress)
        if algorithm is None:
            blobs = tuple(self.engine.push_blobs(repository, image.blobs))
            media_type = str(image.manifest_media_type)
            manifest = image.manifest_bytes
        else:
            layers = compressed_layers(image, algorithm, self._compression_memory)
            blobs = tuple(self.engine.push_blobs(repository, [*layers, image.config]))
            by_key = dict(
                zip(dict.fromkeys(b.key for b in [*layers, image.config]), blobs, strict=True)
            )
            pushed = [BlobInfo(by_key[b.key].digest, by_key[b.key].size) for b in layers]
            for layer, info in zip(layers, pushed, strict=True):
                if isinstance(layer, CompressedBlob):
                    self._compression_memory.remember(algorithm, layer.source.digest, info)
            manifest, media_type = compressed_manifest(image, algorithm, layers, pushed)
        return [
            PushResult(
                repository, tag, self.put_manifest(repository, tag, manifest, media_type), blobs
            )
            for tag in tags
        ]

    def put_manifest(
        self, repository: str, reference: str, manifest: bytes, media_type: str
    ) -> str:
        """PUT manifest bytes under a tag (or digest); return their digest.

        The digest is the sha256 of exactly these bytes; a registry that reports another one is
        an error.
        """
        digest = sha256_digest(manifest)
        what = f"putting manifest {repository}:{reference}"
        response = self.transport.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            what=what,
            expect=(201,),
            headers={"Content-Type": media_type},
            data=manifest,
        )
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"{what}: the registry stored it as {answered}, not {digest}")
        return digest

    def push(
        self,
        tar_path: str | os.PathLike[str],
        repository: str | None = None,
        tag: str | None = None,
        *,
        image: str | None = None,
        compress: str | None = None,
    ) -> PushResult:
        """Push an image archive under ``repository:tag``.

        Missing parts come from the image's first archive tag (``docker.io/library/nginx:alpine``
        gives ``nginx`` and ``alpine``); the tag defaults to ``latest``. An archive of several
        images needs ``image`` (an archive tag, config digest or ``#N``) unless neither
        repository nor tag is given, in which case the archive's first tag chooses.
        ``compress`` is as for :meth:`push_image`.

        Example:
            >>> client.push("app.tar", "team/app", "v1").digest  # doctest: +SKIP
            'sha256:...'
        """
        with ImageArchive.open(tar_path) as archive:
            target = target_for(archive, repository, tag, image)
            return self.push_image(target.image, target.repository, target.tags, compress=compress)[
                0
            ]

    def push_all_tags(
        self, tar_path: str | os.PathLike[str], *, compress: str | None = None
    ) -> list[PushResult]:
        """Push every image of an archive under every one of its own tags (``compress`` as
        for :meth:`push_image`).

        Blobs go up once, into the first repository; other repositories mount them. Results
        follow the archive's tag order.

        Example:
            >>> [r.tag for r in client.push_all_tags("app.tar")]  # doctest: +SKIP
            ['v1', 'latest']
        """
        with ImageArchive.open(tar_path) as archive:
            results = {
                (result.repository, result.tag): result
                for target in targets_for_all_tags(archive)
                for result in self.push_image(
                    target.image, target.repository, target.tags, compress=compress
                )
            }
            return [results[normalize_archive_tag(t)] for t in archive.tags]
