"""Operations on full references (``host/repository:tag``), which may span several registries.

Pull into one archive, copy between registries, tag. The module API and the CLI both call these,
each with its own way to connect to a registry (``connect(host)`` returns a new
:class:`RegistryClient`; these functions close what they open).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence

from .archive.writer import save_images
from .client import RegistryClient
from .exceptions import ValidationError
from .models import ImageInspect, Platform, PushResult
from .reference import is_tag, registry_reference
from .transport import split_registry_url

Connect = Callable[[str], RegistryClient]


def _same_registry(a: str, b: str) -> bool:
    return split_registry_url(a)[1] == split_registry_url(b)[1]


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
    parsed = [registry_reference(text) for text in references]
    with contextlib.ExitStack() as stack:
        clients: dict[str, RegistryClient] = {}
        for ref in parsed:
            host = str(ref.registry)
            if host not in clients:
                clients[host] = stack.enter_context(connect(host))
        images = [
            clients[str(ref.registry)].image(ref.repository, ref.identifier, platform)
            for ref in parsed
        ]
        return save_images(images, output_path, clients[str(parsed[0].registry)].engine)


def copy_image(source_ref: str, target_ref: str, connect: Connect) -> PushResult:
    """Copy an image or index from ``source_ref`` to ``target_ref``, keeping its digest.

    Example:
        >>> copy_image("a.example/app:v1", "b.example/app:v1", RegistryClient)  # doctest: +SKIP
    """
    source, target = registry_reference(source_ref), registry_reference(target_ref)
    if target.digest or target.tag is None:
        raise ValidationError(f"invalid target {target_ref!r}: copy to a tag, not a digest")
    with contextlib.ExitStack() as stack:
        target_client = stack.enter_context(connect(str(target.registry)))
        source_client = (
            target_client
            if _same_registry(str(source.registry), str(target.registry))
            else stack.enter_context(connect(str(source.registry)))
        )
        return target_client.copy(
            source.repository,
            source.identifier,
            target.repository,
            target.tag,
            source=source_client,
        )


def tag_image(source_ref: str, new_tag: str, connect: Connect) -> str:
    """Put the manifest of ``source_ref`` under ``new_tag`` in the same repository.

    Example:
        >>> tag_image("localhost:15000/app:v1", "stable", RegistryClient)  # doctest: +SKIP
        'sha256:...'
    """
    source = registry_reference(source_ref)
    if not is_tag(new_tag):
        raise ValidationError(
            f"invalid tag {new_tag!r}: a tag is letters, digits, '_', '.' and '-' "
            "(to copy into another repository, use copy)"
        )
    with connect(str(source.registry)) as client:
        return client.tag(source.repository, source.identifier, new_tag)
