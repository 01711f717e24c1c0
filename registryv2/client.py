"""RegistryClient: the public face of one registry, archives included.

It is a :class:`~registryv2.registry.Registry` (catalog, tags, manifests, blobs, images, tag,
delete) with the jobs of :mod:`registryv2.operations` that move images as its own methods: push
an archive or a layout, push all of its tags, pull into an archive or a layout, copy into this
registry, push an image compressed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

from . import operations
from .compress import CompressionMemory
from .image import Image
from .models import ImageInspect, Platform, PushResult
from .registry import Registry


class RegistryClient(Registry):
    """A client for one registry. Thread-safe; hold one for many calls.

    Args:
        registry: ``host[:port]``, an ``http(s)://`` URL, or a full :class:`RegistryConfig`.
        progress: called with a :class:`~registryv2.events.TransferEvent` as blobs move; or
            ``True`` for progress bars (redrawn on a terminal, one updated output in a
            notebook, a few plain lines in a log).
        **settings: :class:`RegistryConfig` fields (``workers``, ``chunk_size``, ``timeout``,
            ``retry``, ``resume``...) when ``registry`` is a URL.

    Example:
        >>> with RegistryClient("localhost:15000", workers=4) as client:  # doctest: +SKIP
        ...     result = client.push("app.tar", "team/app", "v1")
        ...     print(result.digest)
    """

    @functools.cached_property
    def _compression_memory(self) -> CompressionMemory:
        # One per client, so that a state directory it cannot write to is said once.
        return operations.compression_memory(self)

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
        if compress is None:
            return super().push_image(image, repository, tags)
        return operations.push_image(
            self, image, repository, tags, compress=compress, memory=self._compression_memory
        )

    def push(
        self,
        tar_path: str | os.PathLike[str],
        repository: str | None = None,
        tag: str | None = None,
        *,
        image: str | None = None,
        compress: str | None = None,
    ) -> PushResult:
        """Push an image archive or an OCI layout (a path, or a place such as ``oci:DIR:v1``)
        under ``repository:tag``.

        Missing parts come from the image's first archive tag (``docker.io/library/nginx:alpine``
        gives ``nginx`` and ``alpine``); the tag defaults to ``latest``. An archive of several
        images needs ``image`` (an archive tag, config digest or ``#N``) unless neither
        repository nor tag is given, in which case the archive's first tag chooses.
        ``compress`` is as for :meth:`push_image`.

        Example:
            >>> client.push("app.tar", "team/app", "v1").digest  # doctest: +SKIP
            'sha256:...'
        """
        return operations.push_tar(
            self,
            tar_path,
            repository,
            tag,
            image=image,
            compress=compress,
            memory=self._compression_memory,
        )

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
        return operations.push_tar_all_tags(
            self, tar_path, compress=compress, memory=self._compression_memory
        )

    def pull(
        self,
        references: str | Sequence[str],
        output_path: str | os.PathLike[str],
        *,
        platform: str | Platform | None = None,
    ) -> list[ImageInspect]:
        """Write images of this registry into one archive that ``docker load`` takes, or into
        an OCI layout (``oci:DIR``, or a directory), or to standard output (``-``).

        ``references`` are ``repository:tag`` or ``repository@digest``; an index gives its
        image for ``platform`` (default: this machine's; ``"all"`` keeps the whole index). The
        archive or layout appears whole or not at all. Returns what was written, one entry per
        reference.

        Example:
            >>> client.pull(["team/app:v1", "team/db:v2"], "images.tar")  # doctest: +SKIP
        """
        return operations.pull_tar(self, references, output_path, platform=platform)

    def copy(
        self,
        repository: str,
        identifier: str,
        target_repository: str,
        target_tag: str,
        *,
        source: Registry | None = None,
    ) -> PushResult:
        """Copy an image or a whole index into ``target_repository:target_tag`` of this
        registry, from ``repository`` here or of ``source`` (another client).

        Blobs stream from one registry to the other without touching the disk; within one
        registry they are mounted. The manifests' bytes are kept, so the digest is the same on
        both sides.

        Example:
            >>> with RegistryClient("src.example") as src:  # doctest: +SKIP
            ...     client.copy("team/app", "v1", "mirror/app", "v1", source=src).digest
        """
        return operations.copy_in(
            self, repository, identifier, target_repository, target_tag, source=source
        )
