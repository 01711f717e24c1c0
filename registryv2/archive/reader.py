"""Reading ``docker save`` archives of every layout into images (``Image``).

Layouts understood:

* legacy docker (< 25): ``manifest.json`` + ``<id>/layer.tar`` + ``<id>.json`` config;
* skopeo's ``docker-archive``: ``manifest.json`` + ``<sha256>.tar`` layers, with links;
* docker 25+: an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``) plus a
  ``manifest.json`` whose paths point into ``blobs/``; the OCI manifest found there is kept and
  pushed byte for byte, so the image keeps the digest docker gave it;
* a bare OCI layout archive (``skopeo copy ... oci-archive:``), with tags from its annotations;

any of them gzip-compressed as a whole. Layers are never read whole: a layer is a byte range of
the archive, opened on demand.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import TarReadError, ValidationError
from ..image import Blob, Image
from ..manifest import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    IMAGE_MANIFESTS,
    INDEXES,
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
    OCI_CONFIG,
    check_digest,
    layer_media_types,
    load_json,
    parse_manifest,
    sha256_digest,
    sniff_compression,
)
from ..models import BlobInfo, ImageConfig, ManifestInfo
from ..reference import normalize_archive_tag
from .layout import blob_path, tags_from_annotations
from .tarfile_index import TarIndex

# manifest.json and other metadata of the archive itself (not manifests or configs).
METADATA_LIMIT = 64 * 1024 * 1024
_HEX_NAME = re.compile(r"(?:^|/)(?:blobs/sha256/)?([a-f0-9]{64})(?:\.tar)?$")
_HASH_BUFFER = 1024 * 1024


def _json(tar: TarIndex, name: str, limit: int = METADATA_LIMIT) -> Any:
    raw = tar.read(name, limit)
    try:
        return load_json(raw, f"{tar.label}: {name}", limit)
    except ValidationError as e:
        raise TarReadError(str(e)) from None


def _hash_member(tar: TarIndex, name: str) -> str:
    h = hashlib.sha256()
    with tar.open_member(name) as f:
        while chunk := f.read(_HASH_BUFFER):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _blob(tar: TarIndex, name: str, info: BlobInfo) -> Blob:
    # Bind name and index now: the opener runs later, on a worker thread.
    return Blob(info, lambda: tar.open_member(name))  # type: ignore[arg-type,return-value]


@dataclass
class _OciManifests:
    """Every image manifest reachable from an archive's ``index.json`` whose blob is present."""

    by_config: dict[str, list[ManifestInfo]]
    # Manifests listed directly in index.json, in order, by digest, with the tags of every
    # entry naming them (an OCI layout lists a manifest once per tag).
    top_level: dict[str, tuple[ManifestInfo, list[str]]]
    # Manifests already paired with a manifest.json entry.
    taken: set[str] = field(default_factory=set)

    def tags_of(self, digest: str) -> list[str]:
        """The tags index.json gives the manifest ``digest``, with their short forms."""
        named = self.top_level.get(digest, (None, []))[1]
        return named + [t.split("/", 1)[1] for t in named if t.startswith("docker.io/library/")]


def _read_oci_manifests(tar: TarIndex) -> _OciManifests:
    found = _OciManifests(by_config={}, top_level={})
    if "index.json" not in tar:
        return found
    index = _json(tar, "index.json", MAX_MANIFEST_SIZE)
    parsed: dict[str, ManifestInfo] = {}
    walked: set[str] = set()  # indexes already walked: one that repeats or nests costs once

    def manifest(path: str, media_type: str) -> ManifestInfo:
        try:
            return parse_manifest(
                tar.read(path, MAX_MANIFEST_SIZE), media_type, f"{tar.label}: {path}"
            )
        except ValidationError as e:
            raise TarReadError(str(e)) from None

    def walk(doc: Any, top: bool, depth: int) -> None:
        if depth > 8 or not isinstance(doc, dict):
            return
        entries = doc.get("manifests") or []
        if not isinstance(entries, list):
            raise TarReadError(f"{tar.label}: index.json: manifests is not a list")
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            digest = entry.get("digest")
            if not isinstance(digest, str) or not digest.startswith("sha256:"):
                continue
            try:
                check_digest(digest, f"{tar.label}: index.json")
            except ValidationError as e:
                raise TarReadError(str(e)) from None
            path = blob_path(digest)
            if path not in tar:
                continue  # docker 25 lists platforms it did not save
            media_type = entry.get("mediaType")
            if media_type in INDEXES and digest not in walked:
                walked.add(digest)
                walk(_json(tar, path, MAX_MANIFEST_SIZE), False, depth + 1)
            elif media_type in IMAGE_MANIFESTS:
                if digest not in parsed:
                    info = manifest(path, str(media_type))
                    if info.config is None:
                        raise TarReadError(f"{tar.label}: {path} is an index, listed as an image")
                    found.by_config.setdefault(info.config.digest, []).append(info)
                    parsed[digest] = info
                if top:
                    tags = found.top_level.setdefault(digest, (parsed[digest], []))[1]
                    named = tags_from_annotations(entry.get("annotations") or {})
                    tags += [t for t in named if t not in tags]

    walk(index, True, 0)
    return found


def _image_from_manifest_json(tar: TarIndex, entry: Any, oci: _OciManifests, n: int) -> Image:
    where = f"{tar.label}: manifest.json entry {n}"
    if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
        raise TarReadError(f"{where} has no Config")
    layer_names = entry.get("Layers")
    if not isinstance(layer_names, list) or not all(isinstance(x, str) for x in layer_names):
        raise TarReadError(f"{where} has no list of Layers")
    tags = entry.get("RepoTags") or []
    if not isinstance(tags, list):
        raise TarReadError(f"{where}: RepoTags is not a list")

    config_bytes = tar.read(entry["Config"], MAX_CONFIG_SIZE)
    config_digest = sha256_digest(config_bytes)
    try:
        config_doc = load_json(config_bytes, f"config {entry['Config']}", MAX_CONFIG_SIZE)
        diff_ids = ImageConfig.from_json(config_doc).diff_ids
        for diff_id in diff_ids:
            check_digest(diff_id, f"config {entry['Config']}: diff_ids")
    except ValidationError as e:
        raise TarReadError(f"{where}: {e}") from None
    _check_layer_count(diff_ids, len(layer_names), where)

    digests: list[str] = []
    compressions: list[str] = []
    sizes: list[int] = []
    for i, name in enumerate(layer_names):
        member = tar.member(name)  # raises, naming the missing layer
        sizes.append(member.size)
        compression = sniff_compression(tar.head(name))
        named = _HEX_NAME.search(member.name) or _HEX_NAME.search(name)
        if named:
            digest = "sha256:" + named.group(1)
        elif compression == "none" and i < len(diff_ids):
            digest = str(diff_ids[i])  # an uncompressed layer's digest is its diff_id
        else:
            digest = _hash_member(tar, name)
        digests.append(digest)
        compressions.append(compression)

    # Docker 25+: reuse the OCI manifest that describes exactly these blobs. Several may
    # (two images differing only in annotations): the one index.json tags as this entry is,
    # else the first no earlier entry took.
    candidates = [
        c
        for c in oci.by_config.get(config_digest, [])
        if [layer.digest for layer in c.layers] == digests
    ]
    tagged = [c for c in candidates if set(oci.tags_of(c.digest)) & {str(t) for t in tags}]
    fresh = [c for c in candidates if c.digest not in oci.taken]
    ranked = [c for c in tagged if c in fresh] + tagged + fresh + candidates
    candidate = ranked[0] if ranked else None
    if candidate is not None and candidate.config is not None:
        oci.taken.add(candidate.digest)
        return Image(
            config=_blob(tar, entry["Config"], candidate.config),
            layers=tuple(
                _blob(tar, name, layer)
                for name, layer in zip(layer_names, candidate.layers, strict=True)
            ),
            tags=tuple(str(t) for t in tags),
            manifest=candidate.raw,
            manifest_media_type=candidate.media_type,
            config_bytes=config_bytes,
        )

    manifest_type, media_types = layer_media_types(compressions)
    config_type = DOCKER_CONFIG if manifest_type == DOCKER_MANIFEST else OCI_CONFIG
    return Image(
        config=_blob(tar, entry["Config"], BlobInfo(config_digest, len(config_bytes), config_type)),
        layers=tuple(
            _blob(tar, name, BlobInfo(digest, size, media_type))
            for name, digest, size, media_type in zip(
                layer_names, digests, sizes, media_types, strict=True
            )
        ),
        tags=tuple(str(t) for t in tags),
        manifest_media_type=manifest_type,
        config_bytes=config_bytes,
    )


def _check_layer_count(diff_ids: list[str], layers: int, where: str) -> None:
    """A config listing diff_ids lists one per layer: anything else is an image no runtime can
    use, refused here so that pushing and validating agree. (A config without diff_ids is
    pushed as it is.)"""
    if diff_ids and len(diff_ids) != layers:
        raise TarReadError(
            f"{where}: the config lists {len(diff_ids)} diff_ids for {layers} layers"
        )


def _image_from_oci(tar: TarIndex, manifest: ManifestInfo, tags: tuple[str, ...]) -> Image:
    assert manifest.config is not None

    def blob(info: BlobInfo) -> Blob:
        path = blob_path(info.digest)
        if path not in tar:
            raise TarReadError(f"{tar.label}: blob {info.digest} is listed but not in the archive")
        return _blob(tar, path, info)

    config = blob(manifest.config)
    config_bytes = tar.read(blob_path(manifest.config.digest), MAX_CONFIG_SIZE)
    where = f"{tar.label}: {blob_path(manifest.config.digest)}"
    try:
        diff_ids = ImageConfig.from_json(load_json(config_bytes, where, MAX_CONFIG_SIZE)).diff_ids
    except ValidationError as e:
        raise TarReadError(str(e)) from None
    _check_layer_count(diff_ids, len(manifest.layers), where)
    return Image(
        config=config,
        layers=tuple(blob(layer) for layer in manifest.layers),
        tags=tags,
        manifest=manifest.raw,
        manifest_media_type=manifest.media_type,
        config_bytes=config_bytes,
    )


class ImageArchive:
    """An open image archive: its images, in the order the archive lists them.

    Use it as a context manager.

    Example:
        >>> with ImageArchive.open("app.tar") as archive:  # doctest: +SKIP
        ...     print([image.tags for image in archive.images])
        [('app:v1', 'app:latest')]
    """

    def __init__(self, tar: TarIndex) -> None:
        self._tar = tar
        self.path = tar.label
        try:
            self.images = self._read_images()
        except BaseException:
            tar.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ImageArchive:
        """Open and read the archive at ``path``; ``TarReadError`` says what is wrong with it."""
        return cls(TarIndex.open(path))

    def _read_images(self) -> list[Image]:
        tar = self._tar
        oci = _read_oci_manifests(tar)
        if "manifest.json" in tar:
            entries = _json(tar, "manifest.json")
            if not isinstance(entries, list) or not entries:
                raise TarReadError(f"{self.path}: manifest.json lists no images")
            self.entries: list[dict[str, Any]] = entries
            return [_image_from_manifest_json(tar, e, oci, n) for n, e in enumerate(entries)]
        if oci.top_level:
            images = [_image_from_oci(tar, m, tuple(t)) for m, t in oci.top_level.values()]
            self.entries = [
                {
                    "Config": blob_path(image.config.digest),
                    "RepoTags": list(image.tags),
                    "Layers": [blob_path(layer.digest) for layer in image.layers],
                }
                for image in images
            ]
            return images
        raise TarReadError(
            f"{self.path}: not an image archive (no manifest.json, and no image in index.json)"
        )

    def close(self) -> None:
        """Release the archive."""
        self._tar.close()

    def __enter__(self) -> ImageArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def tags(self) -> list[str]:
        """Every tag in the archive, as written, in order."""
        return [tag for image in self.images for tag in image.tags]

    def describe(self) -> str:
        """A one-line list of the images, for error messages."""
        parts = []
        for n, image in enumerate(self.images):
            name = ", ".join(image.tags) if image.tags else "untagged"
            parts.append(f"#{n} {name} ({image.config.digest[:19]})")
        return "; ".join(parts)

    def select(self, image: str | None = None) -> Image:
        """Choose one image.

        ``image`` is an archive tag (as written, or normalized: ``nginx:alpine`` matches
        ``docker.io/library/nginx:alpine``), a config digest or its unique prefix, or ``#N``.
        Without it the archive must hold exactly one image.
        """
        if image is None:
            if len(self.images) == 1:
                return self.images[0]
            raise ValidationError(
                f"{self.path} holds {len(self.images)} images; choose one with --image "
                f"(image=...): {self.describe()}"
            )
        if image.startswith("#") and image[1:].isdigit() and int(image[1:]) < len(self.images):
            return self.images[int(image[1:])]
        matches = [img for img in self.images if _matches(img, image)]
        if len(matches) == 1:
            return matches[0]
        what = "matches no image" if not matches else "matches several images"
        raise ValidationError(f"{self.path}: {image!r} {what}: {self.describe()}")

    def image_for_tag(self, tag: str) -> Image:
        """The image that carries archive tag ``tag`` (as written)."""
        for image in self.images:
            if tag in image.tags:
                return image
        raise ValidationError(f"{self.path}: no image is tagged {tag!r}: {self.describe()}")


def _matches(image: Image, wanted: str) -> bool:
    if wanted in image.tags:
        return True
    digest = wanted if wanted.startswith("sha256:") else "sha256:" + wanted
    if len(digest) >= 7 + 12 and image.config.digest.startswith(digest):
        return True
    try:
        target = normalize_archive_tag(wanted)
    except ValidationError:
        return False
    return any(_normalized(tag) == target for tag in image.tags)


def _normalized(tag: str) -> tuple[str, str] | None:
    try:
        return normalize_archive_tag(tag)
    except ValidationError:
        return None
