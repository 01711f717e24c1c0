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
# The image layout versions there are: 1.1 of the spec still writes 1.0.0.
LAYOUT_VERSIONS = frozenset({"1.0.0"})


def blob_path(digest: str) -> str:
    """Where an OCI image layout keeps a blob.

    Example:
        >>> blob_path("sha256:abc")
        'blobs/sha256/abc'
    """
    return "blobs/" + digest.replace(":", "/", 1)


def name_annotations(name: str) -> dict[str, str]:
    """The ``index.json`` annotations for an image named ``name``.

    A reference with a tag gets what docker 25 writes: containerd's full name, and the tag as
    the OCI ``ref.name``. Anything else (``v1``, as ``skopeo copy ... oci:DIR:v1`` names an
    image) is the ``ref.name`` alone.

    Example:
        >>> name_annotations("nginx:alpine")[ANNOTATION_IMAGE_NAME]
        'docker.io/library/nginx:alpine'
        >>> name_annotations("v1")
        {'org.opencontainers.image.ref.name': 'v1'}
    """
    try:
        ref = Reference.parse(name, default_tag=None)
    except ValidationError:
        ref = None
    if ref is None or ref.tag is None or ":" not in name or ref.digest:
        return {ANNOTATION_REF_NAME: name}
    registry = ref.registry or "docker.io"
    repository = ref.repository
    if registry in DOCKER_HUB_HOSTS and "/" not in repository:
        repository = "library/" + repository
    full = f"{registry}/{repository}:{ref.tag}"
    return {ANNOTATION_IMAGE_NAME: full, ANNOTATION_REF_NAME: str(ref.tag)}
