"""Where an archive's images go: choosing the image and the repository and tags to push under."""

from __future__ import annotations

from dataclasses import dataclass

from ..exceptions import ValidationError
from ..image import Image
from ..reference import DEFAULT_TAG, normalize_archive_tag
from .reader import ImageArchive


@dataclass(frozen=True)
class Target:
    """One image, one repository, and the tags to put it under there."""

    image: Image
    repository: str
    tags: tuple[str, ...]


def target_for(
    archive: ImageArchive,
    repository: str | None = None,
    tag: str | None = None,
    image: str | None = None,
) -> Target:
    """Choose the image and ``repository:tag`` for a single push.

    Missing parts come from the chosen image's first tag; the tag defaults to ``latest``.
    ``image`` chooses in a multi-image archive; without it, an explicit repository or tag needs
    a single-image archive, and with neither the archive's first tag chooses.

    Example:
        >>> target_for(archive, None, "v2").repository  # doctest: +SKIP
        'nginx'
    """
    if image is not None:
        chosen = archive.select(image)
    elif repository is None and tag is None and archive.tags:
        chosen = archive.image_for_tag(archive.tags[0])
    else:
        chosen = archive.select()
    first = normalize_archive_tag(chosen.tags[0]) if chosen.tags else None
    repository = repository or (first[0] if first else None)
    if not repository:
        raise ValidationError(
            f"{archive.path}: the image has no tag to take a repository from; give one"
        )
    return Target(chosen, repository, (tag or (first[1] if first else DEFAULT_TAG),))


def targets_for_all_tags(archive: ImageArchive) -> list[Target]:
    """One target per (image, repository) for pushing every image under all its own tags.

    Example:
        >>> [(t.repository, t.tags) for t in targets_for_all_tags(archive)]  # doctest: +SKIP
        [('nginx', ('alpine', 'latest')), ('org/app', ('1',))]
    """
    if not archive.tags:
        raise ValidationError(f"{archive.path}: the archive has no tags to push")
    targets: list[Target] = []
    for chosen in archive.images:
        by_repository: dict[str, list[str]] = {}
        for written in chosen.tags:
            repository, tag = normalize_archive_tag(written)
            by_repository.setdefault(repository, []).append(tag)
        targets += [Target(chosen, r, tuple(tags)) for r, tags in by_repository.items()]
    return targets
