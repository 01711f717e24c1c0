"""Blocking counterparts of ``registry-api-v2-client``'s functions, same names and arguments.

Each builds a :class:`~registryv2.client.RegistryClient`, makes one call and closes it. Every
function also takes, by keyword only, any :class:`~registryv2.models.RegistryConfig` setting
(``username``, ``password``, ``insecure``, ``ca_bundle``, ``retry``, ``workers``...). Hold a
client yourself for many calls.

The rule for what comes back: a function that ``registry-api-v2-client`` has returns what it
returns there (dicts from ``get_manifest`` and ``get_image_info``, its models elsewhere);
everything else (``pull``, ``copy``, ``tag``, the methods of :class:`RegistryClient`) returns
registryv2's frozen dataclasses.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import artifacts, operations
from .client import RegistryClient
from .engine import TransferEngine
from .exceptions import (
    TAR_NOT_FOUND,
    TAR_NOT_PUSHED,
    UNREACHABLE,
    ArchiveNotFoundError,
    RegistryError,
)
from .imagecopy import Selection
from .manifest import sha256_digest
from .models import (
    DEFAULT_TIMEOUT,
    DEFAULT_WORKERS,
    CopyResult,
    ImageInspect,
    PushResult,
    Referrer,
)
from .places import Place
from .progress import progress_callback
from .reference import is_digest
from .synchronize import Access, Shard, SyncOptions, SyncReport, synchronize


def check_registry_connectivity(registry_url: str, timeout: float = 30, **options: Any) -> bool:
    """True when the registry is usable: ``/v2/`` answers 200 as a registry does (with
    ``Docker-Distribution-Api-Version: registry/2.0``), after logging in if it asks.

    A registry asking for credentials is answered with those given, or docker's; without
    usable ones it is an ``AuthenticationError`` saying how to log in. Anything else that is
    not a registry, or not reachable, is a ``RegistryError``.

    Example:
        >>> check_registry_connectivity("http://localhost:15000")  # doctest: +SKIP
        True
    """
    try:
        with RegistryClient(registry_url, timeout=timeout, **options) as client:
            return client.ping()
    except RegistryError as e:  # registry-api-v2-client says this of every failure here
        if str(e).startswith(UNREACHABLE):
            raise
        raise e.retitled(f"{UNREACHABLE}: {e}") from e


def push_docker_tar(
    tar_path: str | os.PathLike[str],
    registry_url: str,
    repository: str | None = None,
    tag: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    image: str | None = None,
    compress: str | None = None,
    **options: Any,
) -> str:
    """Push a ``docker save`` archive; return the manifest digest.

    Missing repository and tag come from the archive's first tag, the tag defaulting to
    ``latest``. In an archive of several images, ``image`` chooses one (an archive tag).
    ``compress="gzip"`` or ``"zstd"`` compresses uncompressed layers on the way (what
    ``docker push`` sends); the default keeps them byte for byte.

    Example:
        >>> push_docker_tar("app.tar", "localhost:15000", "team/app", "v1")  # doctest: +SKIP
        'sha256:...'
    """
    try:
        with RegistryClient(registry_url, timeout=timeout, **options) as client:
            return client.push(tar_path, repository, tag, image=image, compress=compress).digest
    except ArchiveNotFoundError as e:  # in registry-api-v2-client's words for a push
        raise e.retitled(str(e).replace(TAR_NOT_FOUND, TAR_NOT_PUSHED, 1)) from None


def push_docker_tar_with_original_tags(
    tar_path: str | os.PathLike[str],
    registry_url: str,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    compress: str | None = None,
    **options: Any,
) -> str:
    """Push an archive under its first original tag (``nginx:alpine`` -> ``nginx:alpine``).

    Example:
        >>> push_docker_tar_with_original_tags("nginx.tar", "localhost:15000")  # doctest: +SKIP
        'sha256:...'
    """
    return push_docker_tar(
        tar_path, registry_url, None, None, timeout, compress=compress, **options
    )


def push_docker_tar_with_all_original_tags(
    tar_path: str | os.PathLike[str],
    registry_url: str,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    compress: str | None = None,
    **options: Any,
) -> list[str]:
    """Push an archive under every one of its original tags; one digest per tag, in order.

    Each blob is uploaded once; other repositories mount it.

    Example:
        >>> push_docker_tar_with_all_original_tags("app.tar", "localhost:15000")  # doctest: +SKIP
        ['sha256:...', 'sha256:...']
    """
    with RegistryClient(registry_url, timeout=timeout, **options) as client:
        return [result.digest for result in client.push_all_tags(tar_path, compress=compress)]


def list_repositories(registry_url: str, timeout: float = 10, **options: Any) -> list[str]:
    """Every repository of the registry, across all catalog pages, in the registry's order.

    Example:
        >>> list_repositories("localhost:15000")  # doctest: +SKIP
        ['nginx', 'team/app']
    """
    with RegistryClient(registry_url, timeout=timeout, **options) as client:
        return client.list_repositories()


def list_tags(registry_url: str, repository: str, timeout: float = 10, **options: Any) -> list[str]:
    """Every tag of ``repository``, across all pages; ``NotFoundError`` if it does not exist.

    Example:
        >>> list_tags("localhost:15000", "team/app")  # doctest: +SKIP
        ['latest', 'v1']
    """
    with RegistryClient(registry_url, timeout=timeout, **options) as client:
        return client.list_tags(repository)


def get_manifest(
    registry_url: str, repository: str, tag: str, timeout: float = 10, **options: Any
) -> dict[str, Any]:
    """The manifest (or index) at ``tag`` (a tag or a digest), as a dict with its ``digest``.

    The dict is the manifest's JSON, plus ``"digest"``, as ``registry-api-v2-client`` returns
    it; :meth:`RegistryClient.get_manifest` gives a :class:`ManifestInfo` with the exact bytes.

    Example:
        >>> get_manifest("localhost:15000", "team/app", "v1")["layers"][0]["size"]  # doctest: +SKIP
        3145728
    """
    with RegistryClient(registry_url, timeout=timeout, **options) as client:
        info = client.get_manifest(repository, tag)
    return _manifest_dict(info.raw, info.digest)


def _manifest_dict(raw: bytes, digest: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(raw)  # parsed and checked already
    doc["digest"] = digest
    return doc


def get_image_info(
    registry_url: str,
    repository: str,
    tag: str,
    timeout: float = 10,
    *,
    platform: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """An image's manifest and config, as the dict ``registry-api-v2-client`` returns.

    Keys: ``repository``, ``tag``, ``digest``, ``manifest`` (as :func:`get_manifest` gives it),
    ``config`` (the config blob's JSON), ``architecture``, ``os``, ``created``, ``total_size``
    (config and layers) and ``layer_count``. For a multi-platform image, the image for
    ``platform`` (default: this machine's), as ``docker pull`` would take.
    :meth:`RegistryClient.get_image_info` gives an :class:`ImageInspect` instead.

    Example:
        >>> get_image_info("localhost:15000", "team/app", "v1")["architecture"]  # doctest: +SKIP
        'amd64'
    """
    with RegistryClient(registry_url, timeout=timeout, **options) as client:
        image = client.image(repository, tag, platform)
    manifest = _manifest_dict(image.manifest_bytes, sha256_digest(image.manifest_bytes))
    config: dict[str, Any] = json.loads(image.config_bytes)  # checked by client.image
    return {
        "repository": repository,
        "tag": tag,
        "digest": manifest["digest"],
        "manifest": manifest,
        "config": config,
        "architecture": config.get("architecture"),
        "os": config.get("os"),
        "created": config.get("created"),
        "total_size": image.config.size + sum(layer.size for layer in image.layers),
        "layer_count": len(image.layers),
    }


def delete_image(
    registry_url: str, repository: str, tag: str, timeout: float = 10, **options: Any
) -> bool:
    """Delete the manifest ``tag`` points at: every tag pointing at it goes too.

    Needs a registry with deletes enabled (``UnsupportedError`` otherwise).

    Example:
        >>> delete_image("localhost:15000", "team/app", "v1")  # doctest: +SKIP
        True
    """
    with RegistryClient(registry_url, timeout=timeout, **options) as client:
        return client.delete_image(repository, tag)


def delete_image_by_digest(
    registry_url: str, repository: str, digest: str, timeout: float = 10, **options: Any
) -> bool:
    """Delete a manifest by its digest, and every tag pointing at it.

    Example:
        >>> delete_image_by_digest("localhost:15000", "team/app", "sha256:...")  # doctest: +SKIP
        True
    """
    with RegistryClient(registry_url, timeout=timeout, **options) as client:
        return client.delete_image_by_digest(repository, digest)


def pull_docker_tar(
    tar_path: str | os.PathLike[str],
    registry_url: str,
    repository: str,
    tag: str = "latest",
    timeout: float = DEFAULT_TIMEOUT,
    *,
    platform: str | None = None,
    **options: Any,
) -> str:
    """Pull ``repository:tag`` (or ``@digest``) into an archive at ``tar_path``; its digest.

    The counterpart of :func:`push_docker_tar`, arguments in the same order. The archive is in
    docker 25+'s layout, which ``docker load`` and OCI tools read. For an index, the image for
    ``platform`` (default: this machine's).

    Example:
        >>> pull_docker_tar("app.tar", "localhost:15000", "team/app", "v1")  # doctest: +SKIP
        'sha256:...'
    """
    reference = f"{repository}@{tag}" if is_digest(tag) else f"{repository}:{tag}"
    with RegistryClient(registry_url, timeout=timeout, **options) as client:
        return str(client.pull(reference, tar_path, platform=platform)[0].manifest_digest)


def _local_engine(options: dict[str, Any]) -> Callable[[], TransferEngine]:
    """The engine for a copy no registry takes part in, with the caller's workers and
    progress."""
    workers = int(options.get("workers", DEFAULT_WORKERS))
    progress = progress_callback(options.get("progress"))
    return lambda: TransferEngine(None, workers, None, progress)


def pull(
    references: str | Sequence[str],
    output_path: str | os.PathLike[str] | Place,
    *,
    platform: str | None = None,
    referrers: bool = False,
    manifest_format: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> list[ImageInspect]:
    """Pull one or more images (``host/repository:tag``) into one archive, like ``docker save``;
    or into an OCI layout (``oci:DIR``, or a path ending in ``/``); or to standard output
    (``-``).

    The references may name different registries. From an index, the image for ``platform``
    (default: this machine's; ``"all"`` keeps the whole index). The archive or layout appears
    whole or not at all. Returns the image written for each reference.

    Example:
        >>> pull(["localhost:15000/app:v1", "localhost:15000/db:2"], "images.tar")  # doctest: +SKIP
    """
    refs = [references] if isinstance(references, str) else list(references)
    connect = functools.partial(RegistryClient, timeout=timeout, **options)
    selection = Selection(platform=platform, referrers=referrers)
    results = operations.pull(refs, output_path, connect, selection, form=manifest_format)
    return [r.image for r in results if r.image is not None]


def copy(
    source: str | os.PathLike[str] | Place,
    destination: str | os.PathLike[str] | Place,
    *,
    platform: str | None = None,
    image: str | None = None,
    referrers: bool = False,
    manifest_format: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> CopyResult:
    """Copy an image, or an index with all its platforms, from any place to any other.

    A place is a registry reference (``localhost:15000/app:v1``, ``docker://...``), an archive
    (``docker-archive:FILE[:NAME]``, ``oci-archive:FILE[:NAME]``, or a file's path), an OCI
    layout (``oci:DIR[:NAME]``, or a directory), or a place object (:class:`OCILayout`...).
    Blobs stream between places without a temporary copy, or are mounted within one
    registry; manifests keep their bytes, so the digest is the same on both sides, unless
    ``manifest_format="oci"`` converts Docker manifests to OCI ones (what skopeo 1.9 and umoci
    need in a layout). ``platform`` takes one image of an index. ``referrers=True`` brings
    every signature, SBOM and attestation that refers to it (and theirs) along, byte for byte.

    Example:
        >>> copy("oci:build/out:v1", "localhost:15000/app:v1").digest  # doctest: +SKIP
        'sha256:...'
        >>> copy("localhost:15000/app:v1", "mirror.example.com/app:v1").digest  # doctest: +SKIP
        'sha256:...'
    """
    connect = functools.partial(RegistryClient, timeout=timeout, **options)
    selection = Selection(platform=platform, image=image, referrers=referrers)
    return operations.copy(
        source, destination, connect, selection, _local_engine(options), form=manifest_format
    )[0]


def copy_all_tags(
    source: str | os.PathLike[str] | Place,
    destination: str | os.PathLike[str] | Place,
    *,
    referrers: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> list[CopyResult]:
    """Copy every tag of a repository into another (or into an archive or a layout), or every
    image of an archive or a layout, each under its own names, keeping every digest.

    Example:
        >>> results = copy_all_tags("localhost:15000/app", "oci:mirror/")  # doctest: +SKIP
        >>> [r.digest for r in results]  # doctest: +SKIP
        ['sha256:...', 'sha256:...']
    """
    connect = functools.partial(RegistryClient, timeout=timeout, **options)
    selection = Selection(all_tags=True, referrers=referrers)
    return operations.copy(source, destination, connect, selection, _local_engine(options))


def tag(source_ref: str, new_tag: str, *, timeout: float = 10, **options: Any) -> PushResult:
    """Give the image at ``source_ref`` another tag in its repository; no blob moves.

    ``new_tag`` is a tag (``stable``) or a whole reference in the same repository
    (``localhost:15000/app:stable``), as ``docker tag`` users write it.

    Example:
        >>> tag("localhost:15000/app:v1", "stable").digest  # doctest: +SKIP
        'sha256:...'
    """
    connect = functools.partial(RegistryClient, timeout=timeout, **options)
    return operations.tag_image(source_ref, [new_tag], connect)[0]


def sync(
    source: str | os.PathLike[str] | Mapping[str, Any],
    destination: str | os.PathLike[str],
    *,
    source_transport: str | None = None,
    destination_transport: str | None = None,
    scoped: bool = False,
    all_platforms: bool = False,
    platform: str | None = None,
    referrers: bool = False,
    dry_run: bool = False,
    keep_going: bool = False,
    retry_times: int = 0,
    append_suffix: str = "",
    shard: str | None = None,
    source_access: Access | None = None,
    destination_access: Access | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> SyncReport:
    """Keep ``destination`` in step with a set of images, moving only what changed, as
    ``skopeo sync`` does.

    ``source`` is a sync list (skopeo's YAML, as a path or a ``dict``), a registry repository
    (every tag) or image, an OCI layout directory or an archive; ``destination`` a registry
    and path (``mirror.local/mirror``), ``oci:DIR`` or ``docker-archive:FILE`` (the transports
    are told from them, or given). Each tag whose manifest digest differs at the destination
    is copied (images in parallel, blobs the destination has are not sent again); the rest
    cost a HEAD on each side. ``shard="K/N"`` takes this process's share of the set.
    ``source_access`` and ``destination_access`` say how each side is reached (TLS, a
    certificate directory, credentials, an auth file); a YAML registry's own settings win.
    Never raises for one image: the report says what failed.

    Example:
        >>> report = sync("sync.yml", "localhost:15000/mirror")  # doctest: +SKIP
        >>> print(report.summary())  # doctest: +SKIP
        Synced 3 images: 3 copied, 0 up to date, 0 failed; 12.0 MiB moved in 1.2s
    """
    progress = progress_callback(options.pop("progress", None))

    def connect(endpoint: str, access: Access) -> RegistryClient:
        settings = {**options, **access.settings()}
        return RegistryClient(endpoint, timeout=timeout, progress=progress, **settings)

    chosen = SyncOptions(
        source_transport=source_transport,
        destination_transport=destination_transport,
        scoped=scoped,
        append_suffix=append_suffix,
        selection=Selection(platform=platform, all_platforms=all_platforms, referrers=referrers),
        dry_run=dry_run,
        keep_going=keep_going,
        retry_times=retry_times,
        shard=Shard.parse(shard) if shard else None,
        source_access=source_access or Access(),
        destination_access=destination_access or Access(),
        workers=int(options.get("workers", DEFAULT_WORKERS)),
    )
    return synchronize(
        source, destination, connect, chosen, progress=progress, state_dir=options.get("state_dir")
    )


def referrers(
    reference: str,
    artifact_type: str | None = None,
    *,
    depth: int = 4,
    timeout: float = 10,
    **options: Any,
) -> list[Referrer]:
    """What refers to an image (signatures, SBOMs, attestations), as a tree: each
    :class:`Referrer` lists what refers to it in turn. ``reference`` is a registry reference
    or an image of an archive or layout (``oci:DIR:v1``). Read from the referrers API, or the
    fallback tag where a registry has none, and cosign's ``.sig``/``.att``/``.sbom`` tags;
    ``artifact_type`` keeps only that kind at the first level; ``depth`` is how many levels
    (referrers of referrers) are read, four at most.

    Example:
        >>> [r.artifact_type for r in referrers("localhost:15000/app:v1")]  # doctest: +SKIP
        ['application/spdx+json', 'application/vnd.dev.cosign.simplesigning.v1+json']
    """
    connect = functools.partial(RegistryClient, timeout=timeout, **options)
    found = artifacts.find_referrers(reference, connect, artifact_type, depth)
    return list(found.referrers)


def attach(
    reference: str,
    artifact_type: str,
    files: str | Sequence[str],
    annotations: dict[str, str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> CopyResult:
    """Attach files to an image as an OCI 1.1 artifact that refers to it (``subject``): an
    SBOM, a signature, a scan report. Each file is ``PATH[:MEDIA_TYPE]`` (as oras writes it)
    and becomes a layer named by its file name; the config is OCI's empty one. Where the
    registry has no referrers API, the image's fallback index lists the artifact.

    Example:
        >>> attach("localhost:15000/app:v1", "application/spdx+json",
        ...        ["sbom.spdx.json:application/spdx+json"]).digest  # doctest: +SKIP
        'sha256:...'
    """
    connect = functools.partial(RegistryClient, timeout=timeout, **options)
    paths = [files] if isinstance(files, str) else list(files)
    return artifacts.attach_files(reference, connect, artifact_type, paths, annotations)
