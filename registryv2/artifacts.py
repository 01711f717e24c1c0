"""Signatures, SBOMs and attestations: find, attach and delete what refers to an image.

Carrying referrers with a copy is the copy path's business (``Selection(referrers=True)``,
:func:`registryv2.imagecopy.plan_referrers`); this module holds the jobs that are about the
referrers themselves: the tree of what refers to an image (:func:`find_referrers`), an OCI 1.1
artifact attached to an image (:func:`attach_files`), and an image deleted with everything that
refers to it (:func:`delete_with_referrers`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from .exceptions import NotFoundError, ValidationError
from .image import Blob, Image
from .imagecopy import (
    MAX_REFERRER_DEPTH,
    MAX_REFERRERS,
    Connect,
    Places,
    Selection,
    choose_entries,
    open_source,
    plan_image,
    resolve,
    transfer,
)
from .manifest import ANNOTATION_TITLE, EMPTY_JSON, OCI_EMPTY, OCI_MANIFEST, sha256_digest
from .models import BlobInfo, CopyResult, Referrer
from .operations import Deletion, OneImage, plan_deletion
from .places import ImageSource, parse_place
from .referrals import fallback_index
from .registry import Registry
from .remote import RegistryDestination, RegistrySource

_HASH_BUFFER = 1024 * 1024


def referrer_tree(
    source: ImageSource,
    digest: str,
    artifact_type: str | None = None,
    depth: int = MAX_REFERRER_DEPTH,
) -> list[Referrer]:
    """What refers to ``digest`` in ``source`` (only ``artifact_type`` at the first level, when
    given), and what refers to those, ``depth`` levels deep (at most
    :data:`MAX_REFERRER_DEPTH`); each once.

    Example:
        >>> referrer_tree(source, digest)[0].artifact_type  # doctest: +SKIP
        'application/spdx+json'
    """
    seen = {digest}
    deepest = max(1, min(depth, MAX_REFERRER_DEPTH))

    def visit(of: str, level: int, kind: str | None) -> list[Referrer]:
        found = []
        for referral in source.referrers(of, kind):
            if referral.digest in seen:
                continue
            seen.add(referral.digest)
            if len(seen) > MAX_REFERRERS:
                raise ValidationError(f"{source.label}: more than {MAX_REFERRERS} referrers")
            below = visit(referral.digest, level + 1, None) if level < deepest else []
            found.append(
                Referrer(
                    referral.digest,
                    referral.media_type,
                    referral.artifact_type,
                    referral.size,
                    dict(referral.annotations),
                    referral.via,
                    referral.tag,
                    tuple(below),
                )
            )
        return found

    return visit(digest, 1, artifact_type)


@dataclass(frozen=True)
class Referrers:
    """What refers to an image: its reference and digest, and the tree of its referrers."""

    reference: str
    digest: str
    referrers: tuple[Referrer, ...]


def find_referrers(
    text: str,
    connect: Connect,
    artifact_type: str | None = None,
    depth: int = MAX_REFERRER_DEPTH,
) -> Referrers:
    """The tree of what refers to the image a place names: a registry reference, or an image
    of an archive or a layout.

    Example:
        >>> find_referrers("localhost:15000/app:v1", Registry).referrers  # doctest: +SKIP
        (Referrer(digest='sha256:...', ...),)
    """
    place = parse_place(text)
    with Places(connect) as places:
        source = open_source(place, places, Selection())
        [entry] = choose_entries(source, place, Selection())
        digest = entry.manifest.digest
        tree = referrer_tree(source, digest, artifact_type, depth)
    return Referrers(str(place), digest, tuple(tree))


def _file_blob(path: str, media_type: str) -> Blob:
    """A file as a layer of an artifact: its digest read once, its bytes streamed later."""
    h = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_HASH_BUFFER):
                h.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise ValidationError(f"{path}: cannot read ({e.strerror})") from None
    # Opened when it moves, by the engine, which closes it.
    return Blob(
        BlobInfo("sha256:" + h.hexdigest(), size, media_type), functools.partial(_open, path)
    )


def _open(path: str) -> BinaryIO:
    return open(path, "rb")


def parse_file(text: str) -> tuple[str, str]:
    """``PATH[:MEDIA_TYPE]``, as oras writes a file to push: the path and its media type.

    Example:
        >>> parse_file("sbom.json:application/spdx+json")
        ('sbom.json', 'application/spdx+json')
        >>> parse_file("notes.txt")
        ('notes.txt', 'application/octet-stream')
    """
    path, colon, media_type = text.rpartition(":")
    if colon and "/" in media_type and not os.path.exists(text):
        return path, media_type
    return text, "application/octet-stream"


def artifact_manifest(
    artifact_type: str,
    files: Sequence[tuple[Blob, str]],
    subject: BlobInfo,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """An OCI 1.1 artifact manifest: ``artifactType``, the empty config, a layer per file
    (named by ``org.opencontainers.image.title``) and the ``subject`` it refers to.

    Example:
        >>> subject = BlobInfo("sha256:" + "0" * 64, 500, OCI_MANIFEST)
        >>> json.loads(artifact_manifest("text/plain", [], subject))["config"]["mediaType"]
        'application/vnd.oci.empty.v1+json'
    """
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(EMPTY_JSON), "size": 2},
        "layers": [
            {
                "mediaType": f.info.media_type,
                "digest": f.digest,
                "size": f.size,
                "annotations": {ANNOTATION_TITLE: title},
            }
            for f, title in files
        ],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return json.dumps(doc, separators=(",", ":")).encode()


def attach_files(
    target: str,
    connect: Connect,
    artifact_type: str,
    files: Sequence[str],
    annotations: Mapping[str, str] | None = None,
) -> CopyResult:
    """Attach files to the image ``target`` names, as an OCI 1.1 artifact of
    ``artifact_type`` that refers to it; where the registry has no referrers API, the
    image's fallback index lists it. Each file is ``PATH[:MEDIA_TYPE]``.

    Example:
        >>> attach_files("localhost:15000/app:v1", Registry, "application/spdx+json",
        ...              ["sbom.json"]).digest  # doctest: +SKIP
        'sha256:...'
    """
    if not artifact_type or "/" not in artifact_type:
        raise ValidationError(f"invalid artifact type {artifact_type!r}: a media type, a/b")
    if not files:
        raise ValidationError("attach needs at least one file")
    ref, endpoint = resolve(target)
    named = []
    for text in files:
        path, media_type = parse_file(text)
        named.append((_file_blob(path, media_type), os.path.basename(path)))
    with connect(endpoint) as registry:
        subject = registry.head_manifest(ref.repository, ref.identifier)
        if subject is None:
            raise NotFoundError(f"{ref}: no such image to attach to")
        raw = artifact_manifest(artifact_type, named, subject, annotations)
        empty = Blob(BlobInfo(sha256_digest(EMPTY_JSON), 2, OCI_EMPTY), _empty)
        layers = tuple(blob for blob, _ in named)
        source = OneImage(Image(empty, layers, manifest=raw, manifest_media_type=OCI_MANIFEST))
        names = (f"{ref.repository}@{sha256_digest(raw)}",)
        planned = plan_image(source, source.entries()[0], names, Selection())
        planned = dataclasses.replace(planned, subject=subject.digest)
        destination = RegistryDestination(registry, ref.registry)
        [result] = transfer([planned], destination, registry.engine)
    return result


def _empty() -> BinaryIO:
    return io.BytesIO(EMPTY_JSON)


def delete_with_referrers(text: str, connect: Connect) -> tuple[Deletion, list[str]]:
    """Delete the image a reference names (its manifest, and every tag on it) with everything
    that refers to it, deepest first, and the fallback indexes that listed them; what went.

    Example:
        >>> delete_with_referrers("localhost:15000/app:v1", Registry)[1]  # doctest: +SKIP
        ['sha256:...', 'sha256:...']
    """
    planned = plan_deletion(text, connect)
    ref, endpoint = resolve(text)
    gone: list[str] = []
    with connect(endpoint) as registry:
        source = RegistrySource(registry, ref.repository, str(ref.registry), [planned.digest])
        tree = referrer_tree(source, planned.digest)
        everything = [r for top in tree for r in top.walk()]
        for referrer in reversed(everything):
            _delete(registry, ref.repository, referrer.digest, gone)
        for digest in [planned.digest, *(r.digest for r in everything)]:
            index = fallback_index(registry, ref.repository, digest)
            if index is not None:
                _delete(registry, ref.repository, index.digest, gone)
        registry.delete_image_by_digest(ref.repository, planned.digest)
    return planned, gone


def _delete(registry: Registry, repository: str, digest: str, gone: list[str]) -> None:
    try:
        registry.delete_image_by_digest(repository, digest)
    except NotFoundError:
        return  # went with another (a tag deleted with its manifest)
    gone.append(digest)
