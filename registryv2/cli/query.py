"""Commands that look: ls, tags, inspect, digest, check, validate."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..archive.inspect import inspect_entry, verify_docker_tar
from ..exceptions import RegistryError, ValidationError
from ..models import ImageInspect, ManifestInfo
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
    doc: dict[str, Any] = {
        "reference": found.reference,
        "digest": m.digest,
        "media_type": m.media_type,
        "platforms": _platforms(m) if m.is_index else None,
        "image": found.image.model_dump() if found.image else None,
    }
    lines = [
        f"Reference:    {found.reference}",
        f"Digest:       {m.digest}",
        f"Media type:   {m.media_type}",
    ]
    if m.is_index:
        lines.append(f"Platforms:    {len(m.manifests)}")
        lines += [f"  {p['platform'] or '?':<16} {p['digest']}" for p in _platforms(m)]
    if found.image:
        lines += _image_lines(found.image)
    s.result(doc, lines, [m.digest])


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
