"""Referrers in a registry: the referrers API, its fallback tag, and cosign's tags.

OCI distribution 1.1 links a signature, an SBOM or an attestation to its image by a ``subject``.
A registry with the referrers API (``GET /v2/<name>/referrers/<digest>``) lists them itself;
one without it (the CNCF distribution server 2.8, Docker Hub) says so by a 404, 400 or 406, or
by answering with something that is not an index, and clients keep the list in the fallback tag
``sha256-<hex>`` instead: an image index of the referrers' descriptors, which every client that
pushes a referrer reads, extends and puts back. cosign also keeps its signatures, attestations
and SBOMs under its own tags, ``sha256-<hex>.sig``, ``.att`` and ``.sbom``.

:func:`list_referrers` reads all three; :func:`add_to_fallback` and :func:`remove_from_fallback`
change the fallback index, keeping every entry others put there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .exceptions import NotFoundError, RegistryError, ValidationError
from .manifest import INDEXES, MAX_MANIFEST_SIZE, OCI_INDEX, artifact_type_of, parse_manifest
from .models import ManifestInfo
from .places import COSIGN_SUFFIXES, Referral, fallback_tag
from .registry import Registry

# Referrers one manifest may have, across every page: more is a hostile registry.
MAX_REFERRERS = 10_000
MAX_PAGES = 1_000
# Answers to the referrers API that mean the registry has none (OCI distribution 1.1).
_NO_API = (400, 404, 406)


class RepositoryReferrers:
    """The referrers of manifests in one repository, asked about many times (a tree, a copy
    with its referrers): the repository's tags are listed once, so cosign's tags and the
    fallback tag are looked for in that list instead of asked for one by one, and a registry
    found without the referrers API is not asked again.

    Example:
        >>> RepositoryReferrers(registry, "team/app").of(digest)[0].via  # doctest: +SKIP
        'fallback'
    """

    def __init__(self, registry: Registry, repository: str) -> None:
        self.registry = registry
        self.repository = repository
        self._tags: set[str] | None = None
        self._api: bool | None = None

    @property
    def tags(self) -> set[str]:
        """The repository's tags, listed once."""
        if self._tags is None:
            try:
                self._tags = set(self.registry.list_tags(self.repository))
            except NotFoundError:
                self._tags = set()
        return self._tags

    def of(self, digest: str, artifact_type: str | None = None) -> list[Referral]:
        """Every referrer of ``digest``: the referrers API's (or, without one, the fallback
        tag's), then cosign's tags; each once, filtered by ``artifact_type`` here when the
        registry did not filter.

        Example:
            >>> [r.artifact_type for r in found.of(digest)]  # doctest: +SKIP
            ['application/spdx+json']
        """
        found = self.from_api(digest, artifact_type)
        if found is None:
            index = None
            if fallback_tag(digest) in self.tags:
                index = fallback_index(self.registry, self.repository, digest)
            found = [_referral(entry, "fallback") for entry in index.manifests] if index else []
        found += self._cosign_tagged(digest)
        unique: dict[str, Referral] = {}
        for referral in found:
            unique.setdefault(referral.digest, referral)
        listed = list(unique.values())
        if artifact_type is not None:
            listed = [r for r in listed if r.artifact_type == artifact_type]
        return listed

    def from_api(self, digest: str, artifact_type: str | None = None) -> list[Referral] | None:
        """The referrers API's answer for ``digest``; None when the registry has no API
        (asked once per repository).

        Example:
            >>> RepositoryReferrers(cncf_registry, "team/app").from_api(digest)  # doctest: +SKIP
        """
        if self._api is False:
            return None
        found = referrers_api(self.registry, self.repository, digest, artifact_type)
        self._api = found is not None
        return found

    def _cosign_tagged(self, digest: str) -> list[Referral]:
        tags = [fallback_tag(digest) + suffix for suffix in COSIGN_SUFFIXES]
        return cosign_tagged(
            self.registry, self.repository, digest, [t for t in tags if t in self.tags]
        )


def list_referrers(
    registry: Registry, repository: str, digest: str, artifact_type: str | None = None
) -> list[Referral]:
    """Every referrer of ``digest`` in ``repository`` (:meth:`RepositoryReferrers.of`).

    Example:
        >>> found = list_referrers(registry, "team/app", digest)  # doctest: +SKIP
        >>> [r.artifact_type for r in found]  # doctest: +SKIP
        ['application/spdx+json']
    """
    return RepositoryReferrers(registry, repository).of(digest, artifact_type)


def _referral(entry: Any, via: str, tag: str | None = None) -> Referral:
    return Referral(
        entry.digest,
        entry.size,
        entry.media_type,
        entry.artifact_type,
        dict(entry.annotations),
        tag,
        via,
    )


def referrers_api(
    registry: Registry, repository: str, digest: str, artifact_type: str | None = None
) -> list[Referral] | None:
    """What the referrers API lists for ``digest``, every page; None when the registry has no
    referrers API. Filtered by ``artifact_type`` (by the registry when it says it did, in
    ``OCI-Filters-Applied``, else here).

    Example:
        >>> referrers_api(registry, "team/app", digest) is None  # doctest: +SKIP
        True
    """
    transport = registry.transport
    what = f"listing the referrers of {repository}@{digest}"
    url = f"/v2/{repository}/referrers/{digest}"
    params = {"artifactType": artifact_type} if artifact_type else None
    found: list[Referral] = []
    seen: set[str] = set()
    for page in range(MAX_PAGES):
        response = transport.request(
            "GET",
            url,
            what=what,
            expect=(200, *_NO_API),
            headers={"Accept": OCI_INDEX},
            params=params,
            stream=True,
        )
        raw = transport.body(response, MAX_MANIFEST_SIZE, what)
        if response.status_code in _NO_API:
            if page:
                raise RegistryError(f"{what}: a later page answered {response.status_code}")
            return None
        try:
            index = parse_manifest(raw, None, what)
        except ValidationError:
            index = None
        if index is None or not index.is_index:
            if page:
                raise RegistryError(f"{what}: a later page is not an image index")
            return None  # a 200 that is not an index: no API, as the spec reads it
        filtered = "artifactType" in response.headers.get("OCI-Filters-Applied", "")
        for entry in index.manifests:
            if artifact_type and not filtered and entry.artifact_type != artifact_type:
                continue
            found.append(_referral(entry, "api"))
        if len(found) > MAX_REFERRERS:
            raise RegistryError(f"{what}: more than {MAX_REFERRERS} referrers; giving up")
        link = response.links.get("next", {}).get("url")
        if not link:
            return found
        url, params = link, None
        if not transport.is_registry(transport.url(url)):
            raise RegistryError(f"{what}: the next page is on another host ({url})")
        if url in seen:
            raise RegistryError(f"{what}: the registry's next page link loops ({url})")
        seen.add(url)
    raise RegistryError(f"{what}: more than {MAX_PAGES} pages; giving up")


def fallback_index(registry: Registry, repository: str, digest: str) -> ManifestInfo | None:
    """The index the fallback tag of ``digest`` holds, or None when there is no such tag; a
    tag that holds something else is an error, never taken for an empty list.

    Example:
        >>> index = fallback_index(registry, "team/app", digest)  # doctest: +SKIP
        >>> index.manifests[0].artifact_type  # doctest: +SKIP
        'application/spdx+json'
    """
    tag = fallback_tag(digest)
    try:
        found = registry.get_manifest(repository, tag)
    except NotFoundError:
        return None
    if found.media_type not in INDEXES or not found.is_index:
        raise ValidationError(
            f"{repository}:{tag} holds a {found.media_type}, not an image index of referrers; "
            "it is left as it is"
        )
    return found


def cosign_tagged(
    registry: Registry, repository: str, digest: str, tags: Sequence[str] | None = None
) -> list[Referral]:
    """What cosign keeps under ``sha256-<hex>.sig``, ``.att`` and ``.sbom``, as referrers
    (of ``tags``, when the caller knows which of them there are).

    Example:
        >>> [r.tag for r in cosign_tagged(registry, "team/app", digest)]  # doctest: +SKIP
        ['sha256-....sig']
    """
    found = []
    if tags is None:
        candidates = [fallback_tag(digest) + suffix for suffix in COSIGN_SUFFIXES]
        tags = [t for t in candidates if registry.head_manifest(repository, t) is not None]
    for tag in tags:
        try:
            manifest = registry.get_manifest(repository, tag)
        except NotFoundError:
            continue  # gone since the tags were listed
        found.append(
            Referral(
                manifest.digest,
                manifest.size,
                manifest.media_type,
                artifact_type_of(manifest),
                dict(manifest.annotations),
                tag,
                "tag",
            )
        )
    return found


def _descriptor(referrer: ManifestInfo) -> dict[str, Any]:
    """A referrer's entry in a referrers index: its descriptor, with the artifactType and the
    annotations of the manifest, as the spec asks."""
    entry: dict[str, Any] = {
        "mediaType": referrer.media_type,
        "digest": referrer.digest,
        "size": referrer.size,
    }
    if referrer.artifact_type:
        entry["artifactType"] = referrer.artifact_type
    if referrer.annotations:
        entry["annotations"] = dict(referrer.annotations)
    return entry


def add_to_fallback(
    registry: Registry, repository: str, subject: str, referrers: Sequence[ManifestInfo]
) -> str:
    """List ``referrers`` in the fallback index of ``subject``: read it, add those it lacks,
    keep every other entry, put it back; its digest.

    Example:
        >>> add_to_fallback(registry, "team/app", digest, [sbom])  # doctest: +SKIP
        'sha256:...'
    """
    # Read, extend, put back: one thread at a time per index, or one's entries are lost.
    with registry.serially(repository, fallback_tag(subject)):
        index = fallback_index(registry, repository, subject)
        doc = _index_document(index)
        listed = {entry.get("digest") for entry in doc["manifests"] if isinstance(entry, dict)}
        added = [_descriptor(r) for r in referrers if r.digest not in listed]
        if not added and index is not None:
            return index.digest
        doc["manifests"] += added
        raw = json.dumps(doc, separators=(",", ":")).encode()
        return registry.put_manifest(repository, fallback_tag(subject), raw, OCI_INDEX)


def remove_from_fallback(
    registry: Registry, repository: str, subject: str, digests: Sequence[str]
) -> None:
    """Take ``digests`` out of the fallback index of ``subject``, keeping the other entries;
    an index left empty is deleted, and with it the tag.

    Example:
        >>> remove_from_fallback(registry, "team/app", digest, [sbom.digest])  # doctest: +SKIP
    """
    with registry.serially(repository, fallback_tag(subject)):
        index = fallback_index(registry, repository, subject)
        if index is None:
            return
        doc = _index_document(index)
        kept = [
            e for e in doc["manifests"] if not (isinstance(e, dict) and e.get("digest") in digests)
        ]
        if len(kept) == len(doc["manifests"]):
            return
        if kept:
            doc["manifests"] = kept
            raw = json.dumps(doc, separators=(",", ":")).encode()
            registry.put_manifest(repository, fallback_tag(subject), raw, OCI_INDEX)
        else:
            registry.delete_image_by_digest(repository, index.digest)


def _index_document(index: ManifestInfo | None) -> dict[str, Any]:
    if index is None:
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    doc: dict[str, Any] = json.loads(index.raw)  # parsed and checked already
    doc.setdefault("manifests", [])
    return doc
