"""RegistryClient: one registry, one pooled session, one transfer engine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .archive import ImageArchive
from .engine import ProgressCallback, TransferEngine
from .exceptions import RegistryError, ValidationError
from .image import Image
from .manifest import build_manifest, sha256_digest
from .models import PushResult, RegistryConfig
from .reference import DEFAULT_TAG, Reference, normalize_archive_tag
from .transport import Transport


def _check_target(repository: str, tag: str) -> None:
    ref = Reference.parse(f"{repository}:{tag}")
    if ref.registry is not None or ref.repository != repository:
        raise ValidationError(
            f"invalid repository {repository!r}: give the path only, the registry is separate"
        )


class RegistryClient:
    """A client for one registry. Thread-safe; hold one for many calls.

    Args:
        registry: ``host[:port]``, an ``http(s)://`` URL, or a full :class:`RegistryConfig`.
        progress: called with a :class:`~registryv2.engine.TransferEvent` as blobs move.
        **settings: :class:`RegistryConfig` fields (``workers``, ``chunk_size``, ``timeout``...)
            when ``registry`` is a URL.

    Example:
        >>> with RegistryClient("localhost:15000", workers=4) as client:  # doctest: +SKIP
        ...     result = client.push("app.tar", "team/app", "v1")
        ...     print(result.digest)
    """

    def __init__(
        self,
        registry: str | RegistryConfig,
        *,
        progress: ProgressCallback | None = None,
        **settings: Any,
    ) -> None:
        self.config = (
            registry
            if isinstance(registry, RegistryConfig)
            else RegistryConfig(registry, **settings)
        )
        self.transport = Transport(self.config)
        self.engine = TransferEngine(
            self.transport, self.config.workers, self.config.chunk_size, progress
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
        """Check that the registry speaks API v2: True on 200 or 401 at ``/v2/``.

        Raises ``RegistryError`` with the reason otherwise.

        Example:
            >>> RegistryClient("localhost:15000").ping()  # doctest: +SKIP
            True
        """
        self.transport.request(
            "GET", "/v2/", what=f"checking {self.transport.registry}", expect=(200, 401)
        )
        return True

    # -- push --------------------------------------------------------------------------------

    def push_image(self, image: Image, repository: str, tags: Sequence[str]) -> list[PushResult]:
        """Push one image into ``repository`` under each of ``tags``.

        Every blob is confirmed by the registry before the manifest goes up, so a failure never
        leaves a tag pointing at a half-pushed image.

        Example:
            >>> with ImageArchive.open("app.tar") as archive:  # doctest: +SKIP
            ...     client.push_image(archive.select(), "team/app", ["v1", "latest"])
        """
        for tag in tags:
            _check_target(repository, tag)
        blobs = tuple(self.engine.push_blobs(repository, image.blobs))
        if image.manifest is not None:
            manifest, media_type = image.manifest, str(image.manifest_media_type)
        else:
            media_type = str(image.manifest_media_type)
            manifest = build_manifest(
                media_type, image.config.info, [layer.info for layer in image.layers]
            )
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
    ) -> PushResult:
        """Push an image archive under ``repository:tag``.

        Missing parts come from the image's first archive tag (``docker.io/library/nginx:alpine``
        gives ``nginx`` and ``alpine``); the tag defaults to ``latest``. An archive of several
        images needs ``image`` (an archive tag, config digest or ``#N``) unless neither
        repository nor tag is given, in which case the archive's first tag chooses.

        Example:
            >>> client.push("app.tar", "team/app", "v1").digest  # doctest: +SKIP
            'sha256:...'
        """
        with ImageArchive.open(tar_path) as archive:
            if image is not None:
                chosen = archive.select(image)
            elif repository is None and tag is None and archive.tags:
                chosen = archive.image_for_tag(archive.tags[0])
            else:
                chosen = archive.select()
            primary = normalize_archive_tag(chosen.tags[0]) if chosen.tags else (None, None)
            repository = repository or primary[0]
            if not repository:
                raise ValidationError(
                    f"{archive.path}: the image has no tag to take a repository from; give one"
                )
            tag = tag or primary[1] or DEFAULT_TAG
            return self.push_image(chosen, repository, [tag])[0]

    def push_all_tags(self, tar_path: str | os.PathLike[str]) -> list[PushResult]:
        """Push every image of an archive under every one of its own tags.

        Blobs go up once, into the first repository; other repositories mount them. Results
        follow the archive's tag order.

        Example:
            >>> [r.tag for r in client.push_all_tags("app.tar")]  # doctest: +SKIP
            ['v1', 'latest']
        """
        with ImageArchive.open(tar_path) as archive:
            if not archive.tags:
                raise ValidationError(f"{archive.path}: the archive has no tags to push")
            by_target: dict[tuple[str, str], PushResult] = {}
            for chosen in archive.images:
                targets: dict[str, list[str]] = {}
                for written in chosen.tags:
                    repo, tag = normalize_archive_tag(written)
                    targets.setdefault(repo, []).append(tag)
                for repo, tags in targets.items():
                    for result in self.push_image(chosen, repo, tags):
                        by_target[(repo, result.tag)] = result
            return [by_target[normalize_archive_tag(t)] for t in archive.tags]
