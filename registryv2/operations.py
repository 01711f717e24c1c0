"""Operations on full references (``host/repository:tag``), which may span several registries.

Push an archive, pull into one archive, copy between registries, tag, list, inspect, resolve,
delete. The module API and the CLI both call these, each with its own way to connect to a
registry: ``connect(endpoint)`` returns a new :class:`RegistryClient` for an endpoint such as
``localhost:15000``, ``https://ghcr.io`` or ``registry-1.docker.io``; these functions close what
they open. References are read as docker reads them (:func:`registry_reference`), and each
registry is reached through its mirror when it has one (:mod:`registryv2.mirrors`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .archive.writer import save_images
from .client import RegistryClient
from .exceptions import ValidationError
from .mirrors import endpoint_for, load_mirrors, registry_endpoint
from .models import ImageInspect, ManifestInfo, Platform, PushResult
from .reference import Reference, is_tag, registry_of, registry_reference

Connect = Callable[[str], RegistryClient]


def resolve(text: str, *, default_tag: str | None = "latest") -> tuple[Reference, str]:
    """A reference, and the endpoint to reach its registry (its mirror, if it has one).

    Example:
        >>> resolve("nginx:alpine")[1]
        'registry-1.docker.io'
    """
    ref = registry_reference(text, default_tag=default_tag)
    return ref, endpoint_for(ref, load_mirrors())


@contextlib.contextmanager
def _client_for(
    text: str, connect: Connect, default_tag: str | None = "latest"
) -> Iterator[tuple[Reference, RegistryClient]]:
    ref, endpoint = resolve(text, default_tag=default_tag)
    with connect(endpoint) as client:
        yield ref, client


@contextlib.contextmanager
def _registry_client(registry: str, connect: Connect) -> Iterator[RegistryClient]:
    with connect(registry_endpoint(registry_of(registry), load_mirrors())) as client:
        yield client


def push_archive(
    tar_path: str | os.PathLike[str],
    target: str,
    connect: Connect,
    *,
    image: str | None = None,
    all_tags: bool = False,
    compress: str | None = None,
) -> list[PushResult]:
    """Push an archive to ``target``: a reference (one image, one tag), or with ``all_tags`` a
    registry (every image of the archive under every tag it carries).

    A reference without a tag takes the tag of the image's first archive tag, as
    :func:`push_docker_tar` does; ``latest`` when it has none. ``compress`` is as for
    :meth:`RegistryClient.push_image`.

    Example:
        >>> push_archive("app.tar", "localhost:15000/team/app", RegistryClient)  # doctest: +SKIP
    """
    if all_tags:
        with _registry_client(target, connect) as client:
            return client.push_all_tags(tar_path, compress=compress)
    ref, endpoint = resolve(target, default_tag=None)
    if ref.digest:
        raise ValidationError(f"invalid reference {target!r}: push to a tag, not a digest")
    with connect(endpoint) as client:
        return [client.push(tar_path, ref.repository, ref.tag, image=image, compress=compress)]


def pull_images(
    references: Sequence[str],
    output_path: str | os.PathLike[str],
    connect: Connect,
    platform: str | Platform | None = None,
) -> list[ImageInspect]:
    """Write the images of ``references`` (from one registry or several) into one archive.

    Example:
        >>> pull_images(["localhost:15000/app:v1"], "app.tar", RegistryClient)  # doctest: +SKIP
    """
    if not references:
        raise ValidationError("pull needs at least one reference")
    resolved = [resolve(text) for text in references]
    with contextlib.ExitStack() as stack:
        clients: dict[str, RegistryClient] = {}
        for _, endpoint in resolved:
            if endpoint not in clients:
                clients[endpoint] = stack.enter_context(connect(endpoint))
        images = [
            # Tagged as the user named it (docker's short form for Docker Hub), not by where
            # it was fetched from (a mirror, registry-1.docker.io).
            dataclasses.replace(
                clients[endpoint].image(ref.repository, ref.identifier, platform),
                tags=() if ref.digest else (ref.familiar,),
            )
            for ref, endpoint in resolved
        ]
        return save_images(images, output_path, clients[resolved[0][1]].engine)


def copy_image(source_ref: str, target_ref: str, connect: Connect) -> PushResult:
    """Copy an image or index from ``source_ref`` to ``target_ref``, keeping its digest.

    Example:
        >>> copy_image("a.example/app:v1", "b.example/app:v1", RegistryClient)  # doctest: +SKIP
    """
    source, source_endpoint = resolve(source_ref)
    target, target_endpoint = resolve(target_ref)
    if target.digest or target.tag is None:
        raise ValidationError(f"invalid target {target_ref!r}: copy to a tag, not a digest")
    with contextlib.ExitStack() as stack:
        target_client = stack.enter_context(connect(target_endpoint))
        source_client = (
            target_client
            if source_endpoint == target_endpoint
            else stack.enter_context(connect(source_endpoint))
        )
        return target_client.copy(
            source.repository,
            source.identifier,
            target.repository,
            target.tag,
            source=source_client,
        )


def copy_repository(source_repo: str, target_repo: str, connect: Connect) -> list[PushResult]:
    """Copy every tag of a repository into another, each keeping its digest.

    Example:
        >>> copy_repository("a.example/app", "b.example/app", RegistryClient)  # doctest: +SKIP
    """
    source, source_endpoint = resolve(source_repo, default_tag=None)
    target, _ = resolve(target_repo, default_tag=None)
    for ref, text in ((source, source_repo), (target, target_repo)):
        if ref.tag or ref.digest:
            raise ValidationError(f"invalid repository {text!r}: copying every tag, give no tag")
    with connect(source_endpoint) as client:
        tags = client.list_tags(source.repository)
    return [copy_image(f"{source_repo}:{tag}", f"{target_repo}:{tag}", connect) for tag in tags]


def tag_image(source_ref: str, new_tags: str | Sequence[str], connect: Connect) -> str:
    """Put the manifest of ``source_ref`` under each of ``new_tags`` in the same repository.

    Example:
        >>> tag_image("localhost:15000/app:v1", ["stable"], RegistryClient)  # doctest: +SKIP
        'sha256:...'
    """
    tags = [new_tags] if isinstance(new_tags, str) else list(new_tags)
    for new_tag in tags:
        if not is_tag(new_tag):
            raise ValidationError(
                f"invalid tag {new_tag!r}: a tag is letters, digits, '_', '.' and '-' "
                "(to copy into another repository, use copy)"
            )
    if not tags:
        raise ValidationError("tag needs at least one new tag")
    with _client_for(source_ref, connect) as (source, client):
        digests = {client.tag(source.repository, source.identifier, t) for t in tags}
    return digests.pop()


def list_repositories_of(registry: str, connect: Connect) -> list[str]:
    """Every repository of ``registry`` (``host[:port]``).

    Example:
        >>> list_repositories_of("localhost:15000", RegistryClient)  # doctest: +SKIP
        ['team/app']
    """
    with _registry_client(registry, connect) as client:
        return client.list_repositories()


def list_tags_of(repository_ref: str, connect: Connect) -> list[str]:
    """Every tag of the repository ``repository_ref`` names (a tag in it is ignored).

    Example:
        >>> list_tags_of("localhost:15000/team/app", RegistryClient)  # doctest: +SKIP
        ['v1', 'latest']
    """
    with _client_for(repository_ref, connect, default_tag=None) as (ref, client):
        return client.list_tags(ref.repository)


@dataclass(frozen=True)
class Inspection:
    """What a reference points at: the manifest as stored, and the image it describes (for an
    index, the image of the platform asked for, if one was)."""

    reference: str
    manifest: ManifestInfo
    image: ImageInspect | None


def inspect_reference(
    text: str, connect: Connect, platform: str | Platform | None = None
) -> Inspection:
    """The manifest at a reference, and the image: config, layers; for an index, its platforms
    (and the image of ``platform`` when given).

    Example:
        >>> inspect_reference("localhost:15000/app:v1", RegistryClient).image.os  # doctest: +SKIP
        'linux'
    """
    with _client_for(text, connect) as (ref, client):
        manifest = client.get_manifest(ref.repository, ref.identifier)
        image = None
        if not manifest.is_index or platform is not None:
            image = client.get_image_info(ref.repository, ref.identifier, platform)
    return Inspection(str(ref), manifest, image)


def digest_of(text: str, connect: Connect) -> str:
    """The digest of the manifest a reference points at.

    Example:
        >>> digest_of("localhost:15000/app:v1", RegistryClient)  # doctest: +SKIP
        'sha256:...'
    """
    with _client_for(text, connect) as (ref, client):
        if ref.digest:
            return client.get_manifest(ref.repository, ref.digest).digest
        return client.resolve_digest(ref.repository, str(ref.tag))


@dataclass(frozen=True)
class Deletion:
    """A manifest to delete, and every tag that goes with it."""

    repository: str
    digest: str
    tags: tuple[str, ...]


def plan_deletion(text: str, connect: Connect) -> Deletion:
    """What deleting a reference deletes: its manifest, and every tag pointing at it.

    Example:
        >>> plan_deletion("localhost:15000/app:v1", RegistryClient).tags  # doctest: +SKIP
        ('v1', 'latest')
    """
    with _client_for(text, connect) as (ref, client):
        digest = (
            client.get_manifest(ref.repository, ref.digest).digest
            if ref.digest
            else client.resolve_digest(ref.repository, str(ref.tag))
        )
        tags = tuple(
            sorted(
                tag
                for tag in client.list_tags(ref.repository)
                if client.resolve_digest(ref.repository, tag) == digest
            )
        )
    return Deletion(f"{ref.registry}/{ref.repository}", digest, tags)


def delete(text: str, connect: Connect, planned: Deletion | None = None) -> Deletion:
    """Delete the manifest a reference points at (and so every tag on it); what went.

    Example:
        >>> delete("localhost:15000/app:v1", RegistryClient).digest  # doctest: +SKIP
        'sha256:...'
    """
    planned = planned or plan_deletion(text, connect)
    with _client_for(text, connect) as (ref, client):
        client.delete_image_by_digest(ref.repository, planned.digest)
    return planned


def check_registry(registry: str, connect: Connect) -> str:
    """Check that ``registry`` is usable (logging in if it asks); its endpoint.

    Example:
        >>> check_registry("localhost:15000", RegistryClient)  # doctest: +SKIP
        'localhost:15000'
    """
    with _registry_client(registry, connect) as client:
        client.ping()
        return client.transport.base_url
