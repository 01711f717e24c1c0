"""Commands that look: ls, tags, inspect, referrers, digest, check, validate."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from ..archive.inspect import inspect_entry, verify_docker_tar
from ..exceptions import RegistryError, ValidationError
from ..manifest import ANNOTATION_TITLE as TITLE
from ..models import ImageInspect, ManifestInfo, Referrer
from ..places import RegistryImage, parse_place
from ..progress import human_bytes
from .app import main_group, session


@main_group.command(name="ls")
@click.argument("registry", metavar="REGISTRY")
def list_repositories(registry: str) -> None:
    """List the repositories of REGISTRY (host[:port]).

    \b
    Example:
      registryv2 ls localhost:15000
    """
    from .. import operations

    s = session()
    repositories = operations.list_repositories_of(registry, s.connector())
    s.result({"registry": registry, "repositories": repositories}, repositories, repositories)


@main_group.command()
@click.argument("repository", metavar="REPOSITORY")
def tags(repository: str) -> None:
    """List the tags of REPOSITORY (registry/repository).

    \b
    Example:
      registryv2 tags localhost:15000/team/app
    """
    from .. import operations

    s = session()
    found = operations.list_tags_of(repository, s.connector())
    s.result({"repository": repository, "tags": found}, found, found)


def _image_lines(info: ImageInspect) -> list[str]:
    config = info.config
    lines = [
        f"Platform:     {info.os}/{info.architecture}"
        + (f"/{config.variant}" if config.variant else ""),
        f"Image ID:     {info.id}",
        f"Created:      {info.created.isoformat()}",
    ]
    for label, value in [
        ("Entrypoint", " ".join(config.entrypoint)),
        ("Cmd", " ".join(config.cmd)),
        ("User", config.user),
        ("WorkingDir", config.working_dir or ""),
        ("ExposedPorts", ", ".join(sorted(config.exposed_ports))),
    ]:
        if value:
            lines.append(f"{label + ':':<14}{value}")
    lines += [f"Env:          {e}" for e in config.env]
    lines += [f"Label:        {k}={v}" for k, v in sorted(config.labels.items())]
    lines.append(f"Layers:       {len(info.layers)}, {human_bytes(info.size)}")
    lines += [f"  {x.digest}  {human_bytes(x.size):>10}  {x.media_type}" for x in info.layers]
    return lines


def _artifact_doc(m: ManifestInfo) -> dict[str, Any]:
    """What an artifact is: its type, what it refers to, its files and annotations."""
    layers = json.loads(m.raw).get("layers") or []
    return {
        "artifact_type": m.artifact_type,
        "subject": m.subject.digest if m.subject else None,
        "annotations": m.annotations,
        "files": [
            {
                "title": (layer.get("annotations") or {}).get(TITLE),
                "digest": layer.get("digest"),
                "size": layer.get("size"),
                "media_type": layer.get("mediaType"),
            }
            for layer in layers
            if isinstance(layer, dict)
        ],
    }


def _artifact_lines(doc: dict[str, Any]) -> list[str]:
    lines = [f"Artifact type: {doc['artifact_type']}"]
    if doc["subject"]:
        lines.append(f"Subject:       {doc['subject']}")
    lines += [f"Annotation:    {k}={v}" for k, v in sorted(doc["annotations"].items())]
    lines.append(f"Files:         {len(doc['files'])}")
    for f in doc["files"]:
        size = human_bytes(f["size"]) if isinstance(f["size"], int) else "?"
        lines.append(f"  {f['digest']}  {size:>10}  {f['media_type']}  {f['title'] or ''}".rstrip())
    return lines


def _platforms(manifest: ManifestInfo) -> list[dict[str, Any]]:
    return [
        {"platform": str(m.platform) if m.platform else None, "digest": m.digest, "size": m.size}
        for m in manifest.manifests
    ]


@main_group.command()
@click.argument("target", metavar="REF|PLACE")
@click.option("--raw", is_flag=True, help="Print the manifest's bytes, exactly as stored.")
@click.option("--platform", help="For a multi-platform image: the image of this os/arch.")
@click.option("--image", help="In a multi-image archive or layout: a name or #N.")
def inspect(target: str, raw: bool, platform: str | None, image: str | None) -> None:
    """Describe an image in a registry (REF), an archive or an OCI layout: config, layers, and
    the platforms of a multi-platform image.

    \b
    Examples:
      registryv2 inspect localhost:15000/team/app:v1
      registryv2 inspect --raw nginx:1.25
      registryv2 inspect app.tar
      registryv2 inspect oci:build/out:v1
    """
    s = session()
    place = parse_place(target)
    if not isinstance(place, RegistryImage):
        entry, info = inspect_entry(place.path, place.ref or image, platform)
        m = entry.manifest
        if raw:
            sys.stdout.buffer.write(m.raw)
            return
        kind = "Layout:" if os.path.isdir(place.path) else "Archive:"
        lines = [f"{kind:<14}{target}", f"Tags:         {', '.join(entry.names)}"]
        lines.append(f"Digest:       {m.digest}")
        if m.is_index:
            lines += [f"Media type:   {m.media_type}", f"Platforms:    {len(m.manifests)}"]
            lines += [f"  {p['platform'] or '?':<16} {p['digest']}" for p in _platforms(m)]
        if info is not None:
            lines += _image_lines(info)
        s.result(
            {
                "archive": target,
                "names": list(entry.names),
                "digest": m.digest,
                "media_type": m.media_type,
                "platforms": _platforms(m) if m.is_index else None,
                "image": info.model_dump() if info else None,
            },
            lines,
            [info.id if info else m.digest],
        )
        return
    from .. import operations

    found = operations.inspect_reference(place.reference, s.connector(), platform)
    if raw:
        sys.stdout.buffer.write(found.manifest.raw)
        return
    m = found.manifest
    artifact = _artifact_doc(m) if m.is_artifact else None
    doc: dict[str, Any] = {
        "reference": found.reference,
        "digest": m.digest,
        "media_type": m.media_type,
        "platforms": _platforms(m) if m.is_index else None,
        "image": found.image.model_dump() if found.image else None,
        "artifact": artifact,
    }
    lines = [
        f"Reference:    {found.reference}",
        f"Digest:       {m.digest}",
        f"Media type:   {m.media_type}",
    ]
    if m.is_index:
        lines.append(f"Platforms:    {len(m.manifests)}")
        lines += [f"  {p['platform'] or '?':<16} {p['digest']}" for p in _platforms(m)]
    if artifact is not None:
        lines += _artifact_lines(artifact)
    elif found.image:
        lines += _image_lines(found.image)
    s.result(doc, lines, [m.digest])


def _tree_lines(referrers: tuple[Referrer, ...], indent: str = "") -> list[str]:
    lines = []
    for n, r in enumerate(referrers):
        last = n == len(referrers) - 1
        how = f"tag {r.tag}" if r.tag else r.found
        lines.append(
            f"{indent}{'└── ' if last else '├── '}{r.digest}  {r.artifact_type or r.media_type}"
            f"  ({how})"
        )
        lines += _tree_lines(r.referrers, indent + ("    " if last else "│   "))
    return lines


def _referrer_doc(r: Referrer) -> dict[str, Any]:
    return {
        "digest": r.digest,
        "media_type": r.media_type,
        "artifact_type": r.artifact_type,
        "size": r.size,
        "annotations": r.annotations,
        "found": r.found,
        "tag": r.tag,
        "referrers": [_referrer_doc(child) for child in r.referrers],
    }


@main_group.command()
@click.argument("reference", metavar="REF|PLACE")
@click.option("--artifact-type", help="Only referrers of this artifact type (at the first level).")
@click.option(
    "--depth",
    type=click.IntRange(1, 4),
    default=4,
    show_default=True,
    help="Levels to read: referrers, their referrers (a signature of an SBOM)...",
)
def referrers(reference: str, artifact_type: str | None, depth: int) -> None:
    """Show what refers to an image: signatures, SBOMs, attestations, and what refers to them.

    Read from the registry's referrers API, else its fallback tag (sha256-<hex>), and
    cosign's .sig/.att/.sbom tags; or from an archive or OCI layout.

    \b
    Examples:
      registryv2 referrers localhost:15000/team/app:v1
      registryv2 referrers --artifact-type application/spdx+json localhost:15000/team/app:v1
      registryv2 referrers --json oci:bundle:v1
    """
    from .. import artifacts

    s = session()
    found = artifacts.find_referrers(reference, s.connector(), artifact_type, depth)
    s.result(
        {
            "reference": found.reference,
            "digest": found.digest,
            "referrers": [_referrer_doc(r) for r in found.referrers],
        },
        [f"{found.reference}@{found.digest}", *_tree_lines(found.referrers)],
        [r.digest for top in found.referrers for r in top.walk()],
    )


@main_group.command()
@click.argument("reference", metavar="REF")
def digest(reference: str) -> None:
    """Print the digest of the manifest REF points at.

    \b
    Example:
      registryv2 digest localhost:15000/team/app:v1
    """
    from .. import operations

    s = session()
    found = operations.digest_of(reference, s.connector())
    s.result({"reference": reference, "digest": found}, [found], [found])


@main_group.command()
@click.argument("registry", metavar="REGISTRY")
def check(registry: str) -> None:
    """Check that REGISTRY answers as a registry, with the credentials given or stored.

    \b
    Example:
      registryv2 check localhost:15000
    """
    from .. import operations

    s = session()
    endpoint = operations.check_registry(registry, s.connector())
    s.result(
        {"registry": registry, "endpoint": endpoint, "ok": True},
        [f"{registry}: a registry, answering at {endpoint}"],
        [],
    )


@main_group.command()
@click.argument("target", metavar="PLACE")
def validate(target: str) -> None:
    """Check an image archive or OCI layout: readable, pushable, every blob matching its
    digest (with oci:DIR:NAME or docker-archive:FILE:NAME, only that image).

    Says what is wrong and exits 1 when it is not valid.

    \b
    Examples:
      registryv2 validate app.tar
      registryv2 validate oci:build/out:v1
    """
    s = session()
    place = parse_place(target)
    if isinstance(place, RegistryImage):
        raise ValidationError(
            f"{target}: no such file or directory (validate checks archives and layouts)"
        )
    try:
        verify_docker_tar(place.path, place.ref)
    except RegistryError as e:
        s.result(
            {"archive": target, "valid": False, "problem": str(e)},
            [f"{target}: not valid: {e}"],
            [str(e)],
        )
        raise click.exceptions.Exit(1) from None
    s.result({"archive": target, "valid": True, "problem": None}, [f"{target}: valid"], [])
