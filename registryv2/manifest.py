"""Media types, and building, parsing and digesting manifests and indexes."""

from __future__ import annotations

import hashlib
import json
import re
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
# The annotation naming a file of an artifact, as oras writes and reads it.
ANNOTATION_TITLE = "org.opencontainers.image.title"
# OCI 1.1's empty descriptor: the config of an artifact that needs none.
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"

IMAGE_MANIFESTS = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEXES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
# What registries and containerd accept as a manifest: larger is refused before it is parsed.
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_CONFIG_SIZE = 8 * 1024 * 1024
# A sane bound on one blob's size: larger is a hostile or broken descriptor, not a layer.
MAX_BLOB_SIZE = 1 << 40
_DIGEST_RE = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")

# Sent in Accept on every manifest request: every kind we understand.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

# A layer's compression as found by its first bytes -> its media type in each manifest flavour.
# Docker's schema 2 has no zstd type, so an image with a zstd layer gets an OCI manifest.
_LAYER_TYPES: dict[str, tuple[str | None, str]] = {
    "none": (DOCKER_LAYER, OCI_LAYER),
    "gzip": (DOCKER_LAYER_GZIP, OCI_LAYER_GZIP),
    "zstd": (None, OCI_LAYER_ZSTD),
}


def check_digest(value: object, where: str) -> str:
    """``value`` if it is a digest (``sha256:`` and 64 hex digits, or ``sha512:`` and 128);
    else ``ValidationError``. A digest from outside is checked here before it becomes part of
    a URL or a file name.

    Example:
        >>> check_digest("sha256:" + "0" * 64, "manifest")[:10]
        'sha256:000'
        >>> check_digest("sha256:../../x", "manifest")
        Traceback (most recent call last):
        ...
        registryv2.exceptions.ValidationError: manifest: 'sha256:../../x' is not a digest
    """
    if not isinstance(value, str) or not _DIGEST_RE.match(value):
        raise ValidationError(f"{where}: {value!r} is not a digest")
    return value


def load_json(raw: bytes, where: str, limit: int) -> Any:
    """Parse a JSON document of at most ``limit`` bytes; ``ValidationError`` says what is wrong.

    Example:
        >>> load_json(b'{"a": 1}', "config", 100)
        {'a': 1}
    """
    if len(raw) > limit:
        raise ValidationError(f"{where}: {len(raw)} bytes, more than the {limit} allowed")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValidationError(f"{where}: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ValidationError(f"{where}: not valid JSON ({e})") from None


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


# Docker schema 2 media types -> their OCI equivalents, as skopeo converts them.
_OCI_EQUIVALENT = {
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_MANIFEST_LIST: OCI_INDEX,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER: OCI_LAYER,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_FOREIGN_LAYER_GZIP: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}


def to_oci(manifest: ManifestInfo, converted: dict[str, ManifestInfo]) -> ManifestInfo:
    """The OCI form of a Docker schema 2 manifest or manifest list; an OCI one as it is.

    Media types are swapped for their OCI equivalents; blobs are untouched (their bytes and
    digests stay), so only the manifests' digests change. An index's entries point at the
    converted children, given in ``converted`` by their old digests.

    Example:
        >>> cfg = BlobInfo(sha256_digest(b"{}"), 2, DOCKER_CONFIG)
        >>> docker = parse_manifest(build_manifest(DOCKER_MANIFEST, cfg, []))
        >>> to_oci(docker, {}).media_type == OCI_MANIFEST
        True
    """
    if manifest.media_type not in (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST):
        return manifest
    doc = json.loads(manifest.raw)
    doc["mediaType"] = _OCI_EQUIVALENT[manifest.media_type]
    if manifest.media_type == DOCKER_MANIFEST:
        for desc in [doc["config"], *doc.get("layers", [])]:
            desc["mediaType"] = _OCI_EQUIVALENT.get(desc["mediaType"], desc["mediaType"])
    else:
        for entry in doc.get("manifests", []):
            child = converted.get(entry["digest"])
            if child is not None:
                entry.update(mediaType=child.media_type, digest=child.digest, size=child.size)
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return parse_manifest(raw, doc["mediaType"], "converted manifest")


def artifact_type_of(manifest: ManifestInfo) -> str | None:
    """What kind of artifact a manifest is: its ``artifactType`` (or the config's media type
    standing in), else, for cosign's signatures and attestations (plain images under a tag),
    its first layer's media type.

    Example:
        >>> cfg = BlobInfo(sha256_digest(b"{}"), 2, OCI_CONFIG)
        >>> sig = BlobInfo(sha256_digest(b"x"), 1, "application/vnd.dev.cosign.simplesigning.v1")
        >>> artifact_type_of(parse_manifest(build_manifest(OCI_MANIFEST, cfg, [sig])))
        'application/vnd.dev.cosign.simplesigning.v1'
    """
    if manifest.artifact_type:
        return manifest.artifact_type
    return manifest.layers[0].media_type if manifest.layers else None


def descriptor(doc: Any, where: str) -> BlobInfo:
    """Check and read a content descriptor: a digest, a size within bounds, a media type.

    Example:
        >>> descriptor({"digest": "sha256:" + "a" * 64, "size": 2, "mediaType": "x"}, "m").size
        2
    """
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: a descriptor is not a JSON object: {_short(doc)}")
    digest = check_digest(doc.get("digest"), where)
    size, media_type = doc.get("size"), doc.get("mediaType")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_BLOB_SIZE:
        raise ValidationError(f"{where}: blob {digest} has an impossible size {_short(size)}")
    if not isinstance(media_type, str):
        raise ValidationError(f"{where}: blob {digest} has no media type")
    return BlobInfo(digest=digest, size=size, media_type=media_type)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _platform(doc: Any, where: str) -> Platform | None:
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: a platform is not a JSON object: {_short(doc)}")
    fields = [doc.get("os", ""), doc.get("architecture", ""), doc.get("variant")]
    if not all(isinstance(f, str) for f in fields[:2]) or not isinstance(fields[2], str | None):
        raise ValidationError(f"{where}: malformed platform {_short(doc)}")
    return Platform(os=fields[0], architecture=fields[1], variant=fields[2] or None)


def _list(doc: dict[str, Any], key: str, where: str) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{where}: {key} is not a list: {_short(value)}")
    return value


def _annotations(doc: dict[str, Any], where: str) -> dict[str, str]:
    value = doc.get("annotations")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError(f"{where}: annotations are not a map of strings")
    return dict(value)


def _artifact_type(doc: dict[str, Any], where: str) -> str | None:
    value = doc.get("artifactType")
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{where}: artifactType is not a string")
    return value or None


def parse_manifest(
    raw: bytes, media_type: str | None = None, where: str = "manifest"
) -> ManifestInfo:
    """Parse manifest or index bytes into a :class:`ManifestInfo`, checking their shape.

    ``media_type`` (the ``Content-Type`` it came with) wins over the one inside the document.
    ``where`` names the manifest in error messages, which are ``ValidationError``. OCI 1.1's
    ``subject``, ``artifactType`` and ``annotations`` are read too.

    Example:
        >>> parse_manifest(b'{"schemaVersion": 2, "manifests": []}').is_index
        True
    """
    doc = load_json(raw, where, MAX_MANIFEST_SIZE)
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: not a JSON object")
    version = doc.get("schemaVersion", 2)
    if version != 2 or isinstance(version, bool):
        raise ValidationError(
            f"{where}: schemaVersion {_short(version)} is not supported (only 2 is)"
        )
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ValidationError(f"{where}: mediaType is not a string")
    kind = media_type if media_type and media_type != "application/json" else declared
    if not kind:
        # OCI allows mediaType to be absent; the shape tells the kind.
        kind = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    config = None
    layers: list[BlobInfo] = []
    manifests: list[PlatformManifest] = []
    if "manifests" in doc:
        for entry in _list(doc, "manifests", where):
            desc = descriptor(entry, where)
            platform = _platform(entry.get("platform"), where)
            manifests.append(
                PlatformManifest(
                    desc.digest,
                    desc.size,
                    desc.media_type,
                    platform,
                    _artifact_type(entry, where),
                    _annotations(entry, where),
                )
            )
    else:
        if "config" not in doc:
            raise ValidationError(f"{where}: has neither config nor manifests")
        config = descriptor(doc["config"], where)
        layers = [descriptor(layer, where) for layer in _list(doc, "layers", where)]
    subject = descriptor(doc["subject"], f"{where}: subject") if doc.get("subject") else None
    artifact_type = _artifact_type(doc, where)
    # As the referrers API reports it: the config's media type stands in for an artifactType
    # a referrer, or an artifact, did not give.
    image_config = config is None or config.media_type in (DOCKER_CONFIG, OCI_CONFIG)
    if artifact_type is None and config is not None and (subject or not image_config):
        artifact_type = config.media_type
    return ManifestInfo(
        digest=sha256_digest(raw),
        media_type=str(kind),
        size=len(raw),
        schema_version=2,
        config=config,
        layers=tuple(layers),
        manifests=tuple(manifests),
        raw=raw,
        subject=subject,
        artifact_type=artifact_type,
        annotations=_annotations(doc, where),
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
