"""Every public name of ``registryv2``, in one place.

``registryv2/__init__`` hands these out on first use, so that ``import registryv2`` (and the
commands that only read an archive) start without importing requests and urllib3.
"""

from .api import (
    check_registry_connectivity,
    copy,
    copy_all_tags,
    delete_image,
    delete_image_by_digest,
    get_image_info,
    get_manifest,
    list_repositories,
    list_tags,
    pull,
    pull_docker_tar,
    push_docker_tar,
    push_docker_tar_with_all_original_tags,
    push_docker_tar_with_original_tags,
    tag,
)
from .archive import ImageArchive
from .archive.inspect import (
    extract_original_tags,
    get_primary_tag,
    get_tar_manifest,
    inspect_docker_tar,
    validate_docker_tar,
)
from .client import RegistryClient
from .events import TransferEvent
from .exceptions import (
    ArchiveWriteError,
    AuthenticationError,
    DigestMismatchError,
    ErrorDetail,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    RegistryV2Error,
    TarReadError,
    UnsupportedError,
    ValidationError,
)
from .models import (
    BlobInfo,
    BlobResult,
    CopyResult,
    ImageConfig,
    ImageInspect,
    LayerInfo,
    ManifestInfo,
    Platform,
    PlatformManifest,
    PushResult,
    RegistryConfig,
)
from .places import DockerArchive, OCIArchive, OCILayout, RegistryImage, parse_place
from .reference import Reference, parse_repository_tag
from .retry import RetryPolicy

__all__ = [
    "ArchiveWriteError",
    "AuthenticationError",
    "BlobInfo",
    "BlobResult",
    "CopyResult",
    "DigestMismatchError",
    "DockerArchive",
    "ErrorDetail",
    "ImageArchive",
    "ImageConfig",
    "ImageInspect",
    "LayerInfo",
    "ManifestInfo",
    "NotFoundError",
    "OCIArchive",
    "OCILayout",
    "PermissionDeniedError",
    "Platform",
    "PlatformManifest",
    "PushResult",
    "Reference",
    "RegistryClient",
    "RegistryConfig",
    "RegistryError",
    "RegistryImage",
    "RegistryV2Error",
    "RetryPolicy",
    "TarReadError",
    "TransferEvent",
    "UnsupportedError",
    "ValidationError",
    "check_registry_connectivity",
    "copy",
    "copy_all_tags",
    "delete_image",
    "delete_image_by_digest",
    "extract_original_tags",
    "get_image_info",
    "get_manifest",
    "get_primary_tag",
    "get_tar_manifest",
    "inspect_docker_tar",
    "list_repositories",
    "list_tags",
    "parse_place",
    "parse_repository_tag",
    "pull",
    "pull_docker_tar",
    "push_docker_tar",
    "push_docker_tar_with_all_original_tags",
    "push_docker_tar_with_original_tags",
    "tag",
    "validate_docker_tar",
]
