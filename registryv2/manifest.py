"""Media types, and building, parsing and digesting manifests and indexes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .exceptions import ValidationError
from .models import BlobInfo, ManifestInfo, Platform, PlatformManifest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

IMAGE_MANIFESTS = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEXES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
# Sent in Accept on every manifest request: every kind we understand.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

# A layer's compression as found by its first bytes -> its media type in each manifest flavour.
# Docker's schema 2 has no zstd type, so an image with a zstd layer gets an OCI manifest.
_LAYER_TYPES: dict[str, tuple[str | None, str]] = {
    "none": (DOCKER_LAYER, OCI_LAYER),
    "gzip": (DOCKER_LAYER_GZIP, OCI_LAYER_GZIP),
    "zstd": (None, OCI_LAYER_ZSTD),
}


def sha256_digest(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``.

    Example:
        >>> sha256_digest(b"")[:15]
        'sha256:e3b0c442'
    """
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sniff_compression(head: bytes) -> str:
    """Name a layer's compression from its first bytes: ``gzip``, ``zstd`` or ``none``.

    Example:
        >>> sniff_compression(b"\\x1f\\x8b\\x08"), sniff_compression(b"ustar")
        ('gzip', 'none')
    """
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return "none"


def layer_media_types(compressions: list[str]) -> tuple[str, list[str]]:
    """Choose a manifest media type and layer media types for layers of these compressions.

    Docker schema 2 where it can express every layer (what docker itself pushes), OCI otherwise.

    Example:
        >>> layer_media_types(["gzip", "none"])[0] == DOCKER_MANIFEST
        True
    """
    if all(_LAYER_TYPES[c][0] for c in compressions):
        return DOCKER_MANIFEST, [str(_LAYER_TYPES[c][0]) for c in compressions]
    return OCI_MANIFEST, [_LAYER_TYPES[c][1] for c in compressions]


def build_manifest(media_type: str, config: BlobInfo, layers: list[BlobInfo]) -> bytes:
    """Serialize an image manifest of ``media_type`` for this config and these layers.

    The config descriptor takes the manifest flavour's config media type; sizes and digests are
    used exactly as given, so they must be those of the bytes uploaded.

    Example:
        >>> cfg = BlobInfo(sha256_digest(b"{}"), 2, DOCKER_CONFIG)
        >>> json.loads(build_manifest(DOCKER_MANIFEST, cfg, []))["config"]["size"]
        2
    """
    config_type = DOCKER_CONFIG if media_type == DOCKER_MANIFEST else OCI_CONFIG
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": config.size, "digest": config.digest},
        "layers": [
            {"mediaType": layer.media_type, "size": layer.size, "digest": layer.digest}
            for layer in layers
        ],
    }
    return json.dumps(doc, indent=3).encode()


def _descriptor(doc: Any, where: str) -> BlobInfo:
    try:
        return BlobInfo(
            digest=str(doc["digest"]), size=int(doc["size"]), media_type=str(doc["mediaType"])
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValidationError(f"{where}: malformed descriptor {doc!r}") from e


def parse_manifest(
    raw: bytes, media_type: str | None = None, where: str = "manifest"
) -> ManifestInfo:
    """Parse manifest or index bytes into a :class:`ManifestInfo`.

    ``media_type`` (the ``Content-Type`` it came with) wins over the one inside the document.
    ``where`` names the manifest in error messages.

    Example:
        >>> parse_manifest(b'{"schemaVersion": 2, "manifests": []}').is_index
        True
    """
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValidationError(f"{where}: not valid JSON ({e})") from e
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: not a JSON object")
    declared = doc.get("mediaType")
    kind = media_type if media_type and media_type != "application/json" else declared
    if not kind:
        # OCI allows mediaType to be absent; the shape tells the kind.
        kind = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    config = layers = None
    manifests: list[PlatformManifest] = []
    if "manifests" in doc:
        for entry in doc.get("manifests") or []:
            desc = _descriptor(entry, where)
            plat = entry.get("platform")
            platform = (
                Platform(
                    os=str(plat.get("os", "")),
                    architecture=str(plat.get("architecture", "")),
                    variant=plat.get("variant"),
                )
                if isinstance(plat, dict)
                else None
            )
            manifests.append(PlatformManifest(desc.digest, desc.size, desc.media_type, platform))
    else:
        if "config" not in doc:
            raise ValidationError(f"{where}: has neither config nor manifests")
        config = _descriptor(doc["config"], where)
        layers = [_descriptor(layer, where) for layer in doc.get("layers") or []]
    return ManifestInfo(
        digest=sha256_digest(raw),
        media_type=str(kind),
        size=len(raw),
        schema_version=int(doc.get("schemaVersion", 2)),
        config=config,
        layers=tuple(layers or ()),
        manifests=tuple(manifests),
        raw=raw,
    )


_MACHINES = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


def host_platform() -> Platform:
    """The platform of the running machine, in OCI terms.

    Example:
        >>> host_platform().os
        'linux'
    """
    import platform as _platform

    arch, variant = _MACHINES.get(_platform.machine().lower(), (_platform.machine(), None))
    return Platform("linux", arch, variant)


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]``, such as ``linux/arm64`` or ``linux/arm/v7``.

    Example:
        >>> parse_platform("linux/arm/v7")
        Platform(os='linux', architecture='arm', variant='v7')
    """
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValidationError(f"invalid platform {text!r}: expected os/architecture[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def select_platform(index: ManifestInfo, wanted: Platform, where: str) -> PlatformManifest:
    """Choose the entry of an index for ``wanted``; a variant is matched only when asked for.

    Raises ``ValidationError`` listing the index's platforms when none matches.
    """
    for entry in index.manifests:
        p = entry.platform
        if p is None or (p.os, p.architecture) != (wanted.os, wanted.architecture):
            continue
        if wanted.variant is None or p.variant == wanted.variant:
            return entry
    available = ", ".join(str(e.platform) for e in index.manifests if e.platform) or "none"
    raise ValidationError(f"{where} has no image for {wanted} (available: {available})")
