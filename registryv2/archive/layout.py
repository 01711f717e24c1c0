"""How an OCI image layout (and so a docker 25+ archive) names things: blob paths and tags.

The reader and the writer both use these, so what one writes the other reads back.
"""

from __future__ import annotations

from ..exceptions import ValidationError
from ..reference import DOCKER_HUB_HOSTS, Reference

# containerd's (and docker 25's) full image name, and OCI's reference name: the tag alone when
# docker writes it, a full name in some other tools.
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def blob_path(digest: str) -> str:
    """Where an OCI image layout keeps a blob.

    Example:
        >>> blob_path("sha256:abc")
        'blobs/sha256/abc'
    """
    return "blobs/" + digest.replace(":", "/", 1)


def tag_annotations(tag: str) -> dict[str, str]:
    """The ``index.json`` annotations docker 25 writes for an image tagged ``tag``.

    Example:
        >>> tag_annotations("nginx:alpine")[ANNOTATION_IMAGE_NAME]
        'docker.io/library/nginx:alpine'
    """
    ref = Reference.parse(tag)
    registry = ref.registry or "docker.io"
    repository = ref.repository
    if registry in DOCKER_HUB_HOSTS and "/" not in repository:
        repository = "library/" + repository
    name = f"{registry}/{repository}:{ref.tag}"
    return {ANNOTATION_IMAGE_NAME: name, ANNOTATION_REF_NAME: str(ref.tag)}


def tags_from_annotations(annotations: dict[str, str]) -> tuple[str, ...]:
    """The tag an ``index.json`` entry's annotations give its image, if any.

    Example:
        >>> tags_from_annotations({ANNOTATION_REF_NAME: "example.com/app:1"})
        ('example.com/app:1',)
    """
    for key in (ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME):
        name = annotations.get(key)
        if not name:
            continue
        try:
            ref = Reference.parse(name, default_tag=None)
        except ValidationError:
            continue
        # A bare "latest" parses as a repository; only a name with a tag is a tag we can push.
        if ref.tag and ":" in name:
            return (name,)
    return ()
