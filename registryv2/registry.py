"""The registry protocol: one registry's catalog, tags, manifests, blobs and images.

:class:`Registry` speaks the Docker Registry HTTP API v2 over one pooled :class:`Transport` and
moves blobs with one :class:`TransferEngine`. It knows nothing of archives: the operations that
join archives and registries (:mod:`registryv2.operations`) sit above it, and
:class:`~registryv2.client.RegistryClient` is the public face of both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Self

import requests

from .download import BlobReader
from .engine import TransferEngine
from .events import ProgressCallback
from .exceptions import (
    LIST_REPOSITORIES_FAILED,
    LIST_TAGS_FAILED,
    NEEDS_AUTHENTICATION,
    NOT_A_REGISTRY,
    UNEXPECTED_STATUS,
    UNREACHABLE,
    AuthenticationError,
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    UnsupportedError,
    ValidationError,
)
from .image import Blob, Image
from .journal import UploadJournal
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
from .reference import Reference, is_digest, is_tag
from .transport import Transport

# A listing that goes on longer than this is a broken or hostile registry, not a real one.
MAX_PAGES = 100_000
MAX_ENTRIES = 1_000_000


def _platform(platform: str | Platform | None) -> Platform | None:
    return parse_platform(platform) if isinstance(platform, str) else platform


def _name(repository: str, identifier: str) -> str:
    """``repository:tag`` or ``repository@digest``, for messages and tags."""
    return f"{repository}{'@' if is_digest(identifier) else ':'}{identifier}"


def _check_identifier(identifier: str) -> None:
    """A tag or a digest, before it becomes part of a URL."""
    if not (is_tag(identifier) or is_digest(identifier)):
        raise ValidationError(
            f"invalid tag or digest {identifier!r}: a tag is up to 128 letters, digits, '_', '.' "
            "and '-'; a digest is sha256: and 64 hex digits"
        )


def check_repository(repository: str, tag: str | None = None) -> None:
    """Refuse a repository (and tag) that cannot be a path of a registry.

    Example:
        >>> check_repository("team/app", "v1")
    """
    ref = Reference.parse(f"{repository}:{tag}" if tag is not None else repository)
    if ref.registry is not None or ref.repository != repository:
        raise ValidationError(
            f"invalid repository {repository!r}: give the path only, the registry is separate"
        )


class Registry:
    """One registry: the HTTP API v2 over a pooled session. Thread-safe; hold one for many calls.

    It takes the arguments its public subclass :class:`~registryv2.client.RegistryClient`
    documents.

    Example:
        >>> with Registry("localhost:15000", workers=4) as registry:  # doctest: +SKIP
        ...     print(registry.list_tags("team/app"))
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
        self._serial: dict[tuple[str, str], threading.RLock] = {}
        self._serial_lock = threading.Lock()
        journal = UploadJournal.at(self.config.state_dir) if self.config.resume else None
        self.engine = TransferEngine(
            self.transport,
            self.config.workers,
            self.config.chunk_size,
            progress_callback(progress),
            journal,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transport.registry!r})"

    def __enter__(self) -> Self:
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
            >>> Registry("localhost:15000").ping()  # doctest: +SKIP
            True
        """
        what = f"checking {self.transport.registry}"
        try:
            response = self.transport.request("GET", "/v2/", what=what, stream=True)
        except AuthenticationError as e:
            raise e.retitled(f"{NEEDS_AUTHENTICATION}: {e}") from e
        except RegistryError as e:
            words = UNREACHABLE if e.status is None else f"{UNEXPECTED_STATUS}: {e.status}"
            raise e.retitled(f"{words}: {e}") from e
        response.close()
        version = response.headers.get("Docker-Distribution-Api-Version", "")
        if "registry/2.0" not in version:
            raise RegistryError(
                f"{NOT_A_REGISTRY}: {self.transport.registry} answers /v2/ but is not a registry "
                "(no Docker-Distribution-Api-Version: registry/2.0)",
                status=response.status_code,
            )
        return True

    def login(self) -> bool:
        """Check that the registry accepts this client's credentials: :meth:`ping`.

        Example:
            >>> Registry("r.io", username="al", password="pw").login()  # doctest: +SKIP
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
                f"{LIST_REPOSITORIES_FAILED} of {self.transport.registry}",
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
        check_repository(repository)
        return list(
            self._pages(
                f"/v2/{repository}/tags/list",
                "tags",
                f"{LIST_TAGS_FAILED} {repository}",
                page_size,
            )
        )

    # -- manifests and images ----------------------------------------------------------------

    def _manifest_request(
        self, method: str, repository: str, identifier: str
    ) -> tuple[requests.Response, str]:
        """GET or HEAD a manifest, accepting every kind; the response and its description."""
        check_repository(repository)
        _check_identifier(identifier)
        what = f"manifest {_name(repository, identifier)}"
        response = self.transport.request(
            method,
            f"/v2/{repository}/manifests/{identifier}",
            what=what,
            headers={"Accept": MANIFEST_ACCEPT},
            stream=True,
        )
        return response, what

    def get_manifest(self, repository: str, identifier: str) -> ManifestInfo:
        """Fetch a manifest or index by tag or digest.

        Accepts Docker v2, OCI manifests, Docker manifest lists and OCI indexes, of at most
        4 MiB. A manifest fetched by digest is checked against it; a malformed one, or one
        naming malformed digests, is a ``RegistryError``.

        Example:
            >>> client.get_manifest("team/app", "v1").media_type  # doctest: +SKIP
            'application/vnd.docker.distribution.manifest.v2+json'
        """
        attempts = self.transport.retry.begin(f"manifest {_name(repository, identifier)}")
        while True:
            response, what = self._manifest_request("GET", repository, identifier)
            try:
                raw = self.transport.body(response, MAX_MANIFEST_SIZE, what)
                break
            except RegistryError as e:
                attempts.retry(e)
        received = sha256_digest(raw)
        if is_digest(identifier) and received != identifier:
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
        with self.blob_reader(repository, info) as reader:
            raw = reader.read()
        received = sha256_digest(raw)
        if received != info.digest:
            raise DigestMismatchError(f"{what}: the registry sent bytes with digest {received}")
        return raw

    def blob_reader(
        self, repository: str, info: BlobInfo, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        """Stream a blob's bytes (``start`` to ``end - 1`` when given); a broken connection is
        resumed with a ``Range`` request.

        The digest is not checked here: the reader of the stream hashes it (the engine does).

        Example:
            >>> with client.blob_reader("team/app", manifest.layers[0]) as f:  # doctest: +SKIP
            ...     head = f.read(2)
        """
        reader = BlobReader(self.transport, repository, info, start, end)
        return reader  # type: ignore[return-value]

    def blob(self, repository: str, info: BlobInfo) -> Blob:
        """A blob of ``repository`` to stream whole, or by ranges at once; nothing is read yet.

        Example:
            >>> registry.blob("team/app", manifest.layers[0]).size  # doctest: +SKIP
            3145728
        """
        opener = functools.partial(self.blob_reader, repository, info)
        return Blob(info, opener, opener)

    def _image_manifest(
        self, repository: str, identifier: str, platform: str | Platform | None
    ) -> ManifestInfo:
        """The image manifest at ``identifier``; for an index, its entry for ``platform``."""
        manifest = self.get_manifest(repository, identifier)
        if manifest.is_index:
            entry = select_platform(
                manifest, _platform(platform) or host_platform(), _name(repository, identifier)
            )
            manifest = self.get_manifest(repository, entry.digest)
            if manifest.is_index:
                raise UnsupportedError(
                    f"{repository}@{entry.digest}: an index inside an index is not supported"
                )
        return manifest

    def get_image_info(
        self, repository: str, identifier: str, platform: str | Platform | None = None
    ) -> ImageInspect:
        """Manifest and config of an image: architecture, os, created, layers, labels, env...

        For an index, the entry for ``platform`` (``"linux/arm64"``; default: this machine's);
        a single-platform image asked for with another ``platform`` is refused.

        Example:
            >>> info = client.get_image_info("team/app", "v1")  # doctest: +SKIP
            >>> info.os, info.architecture, info.size  # doctest: +SKIP
            ('linux', 'amd64', 3145728)
        """
        info = self.image(repository, identifier, platform).inspect()
        return dataclasses.replace(
            info,
            repo_tags=[] if is_digest(identifier) else [_name(repository, identifier)],
            repo_digests=[f"{repository}@{info.manifest_digest}"],
        )

    def image(
        self,
        repository: str,
        identifier: str,
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
        manifest = self._image_manifest(repository, identifier, platform)
        name = _name(repository, identifier)
        if manifest.config is None:
            raise RegistryError(f"{name}: manifest names no config")
        config = self.get_blob_bytes(repository, manifest.config)
        image = Image(
            config=Blob(manifest.config, functools.partial(io.BytesIO, config)),
            layers=tuple(self.blob(repository, info) for info in manifest.layers),
            tags=() if is_digest(identifier) else (f"{self.transport.registry}/{name}",),
            manifest=manifest.raw,
            manifest_media_type=manifest.media_type,
            config_bytes=config,
            repository=f"{self.transport.registry}/{repository}",
        )
        try:
            found = image.inspect().config
        except ValidationError as e:
            raise RegistryError(f"{name}: {e}") from None
        wanted = _platform(platform)
        if wanted and (found.os, found.architecture) != (wanted.os, wanted.architecture):
            raise ValidationError(f"{name} is for {found.os}/{found.architecture}, not {wanted}")
        return image

    # -- tag -------------------------------------------------------------------------------

    def tag(self, repository: str, identifier: str, new_tag: str) -> str:
        """Put the manifest at ``identifier`` under ``new_tag`` too; no blob moves.

        The manifest bytes are put unchanged, so both tags give the same digest.

        Example:
            >>> client.tag("team/app", "v1", "stable")  # doctest: +SKIP
            'sha256:...'
        """
        check_repository(repository, new_tag)
        manifest = self.get_manifest(repository, identifier)
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
        check_repository(repository)
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

    def push_image(self, image: Image, repository: str, tags: Sequence[str]) -> list[PushResult]:
        """Push one image, blobs as they are, into ``repository`` under each of ``tags``.

        Every blob is confirmed by the registry before the manifest goes up, so a failure never
        leaves a tag pointing at a half-pushed image.

        Example:
            >>> with ImageArchive.open("app.tar") as archive:  # doctest: +SKIP
            ...     registry.push_image(archive.select(), "team/app", ["v1", "latest"])
        """
        self.check_target(repository, tags)
        blobs = tuple(self.engine.push_blobs(repository, image.blobs))
        return self.put_manifests(
            repository, tags, image.manifest_bytes, str(image.manifest_media_type), blobs
        )

    @staticmethod
    def check_target(repository: str, tags: Sequence[str]) -> None:
        """Refuse, before any byte moves, a repository or tag that cannot be pushed to.

        Example:
            >>> Registry.check_target("team/app", ["v1"])
        """
        for tag in tags:
            check_repository(repository, tag)

    def put_manifests(
        self,
        repository: str,
        tags: Sequence[str],
        manifest: bytes,
        media_type: str,
        blobs: tuple[BlobResult, ...],
    ) -> list[PushResult]:
        """PUT one manifest, whose ``blobs`` are all in ``repository``, under each of ``tags``.

        Example:
            >>> registry.put_manifests("team/app", ["v1"], raw, media_type, blobs)  # doctest: +SKIP
        """
        return [
            PushResult(
                repository, tag, self.put_manifest(repository, tag, manifest, media_type), blobs
            )
            for tag in tags
        ]

    def put_manifest(
        self, repository: str, identifier: str, manifest: bytes, media_type: str
    ) -> str:
        """PUT manifest bytes under a tag (or digest); return their digest.

        The digest is the sha256 of exactly these bytes; a registry that reports another one is
        an error.

        Example:
            >>> registry.put_manifest("team/app", "v1", raw, media_type)  # doctest: +SKIP
            'sha256:...'
        """
        return self._put_manifest(repository, identifier, manifest, media_type)[0]

    def put_referrer(
        self, repository: str, identifier: str, manifest: bytes, media_type: str, subject: str
    ) -> bool:
        """PUT a manifest that refers to ``subject``; True when the registry says it took the
        subject (``OCI-Subject``: its referrers API lists it now), False when it did not (the
        fallback tag must list it).

        Example:
            >>> registry.put_referrer("app", digest, raw, media_type, subject)  # doctest: +SKIP
            False
        """
        headers = self._put_manifest(repository, identifier, manifest, media_type)[1]
        return headers.get("OCI-Subject") == subject

    def _put_manifest(
        self, repository: str, identifier: str, manifest: bytes, media_type: str
    ) -> tuple[str, Mapping[str, str]]:
        digest = sha256_digest(manifest)
        what = f"putting manifest {_name(repository, identifier)}"
        # The same manifest put twice at once (two tags of one image, synced in parallel)
        # races in the CNCF registry's storage ("provided digest did not match"): one at a time.
        with self.serially(repository, digest):
            response = self.transport.request(
                "PUT",
                f"/v2/{repository}/manifests/{identifier}",
                what=what,
                expect=(201,),
                headers={"Content-Type": media_type},
                data=manifest,
            )
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"{what}: the registry stored it as {answered}, not {digest}")
        return digest, response.headers

    @contextlib.contextmanager
    def serially(self, repository: str, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` in ``repository`` (a manifest's digest, a fallback index's
        subject): what this process does under it, it does one thread at a time.

        Example:
            >>> with registry.serially("team/app", digest):  # doctest: +SKIP
            ...     registry.put_manifest("team/app", "v1", raw, media_type)
        """
        with self._serial_lock:
            lock = self._serial.setdefault((repository, key), threading.RLock())
        with lock:
            yield

    def head_manifest(self, repository: str, identifier: str) -> BlobInfo | None:
        """The descriptor of the manifest at ``identifier`` (HEAD: digest, size, media type), or
        None when there is none; nothing is downloaded.

        Example:
            >>> registry.head_manifest("team/app", "v1").digest  # doctest: +SKIP
            'sha256:...'
        """
        try:
            response, _ = self._manifest_request("HEAD", repository, identifier)
        except NotFoundError:
            return None
        # The empty body read, the connection goes back to the pool (closing drops it).
        response.content  # noqa: B018
        digest = response.headers.get("Docker-Content-Digest", "")
        length = response.headers.get("Content-Length", "")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if not is_digest(digest) or not length.isdigit() or not media_type:
            # A registry that does not say: the manifest itself does.
            found = self.get_manifest(repository, identifier)
            return BlobInfo(found.digest, found.size, found.media_type)
        return BlobInfo(digest, int(length), media_type)
