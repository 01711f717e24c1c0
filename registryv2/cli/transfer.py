"""Commands that move images: push, pull, copy, tag, attach."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..models import CopyResult
from ..reference import Reference
from .app import main_group, session

if TYPE_CHECKING:
    from ..imagecopy import Selection


PLACES_HELP = """\b
Places are written as skopeo writes them:
  HOST/REPOSITORY:TAG, docker://HOST/REPOSITORY:TAG    an image in a registry
  docker-archive:FILE[:NAME], oci-archive:FILE[:NAME]  an archive
  oci:DIR[:NAME], DIR/                                 an OCI image layout directory
  FILE                                                 an archive (docker's or OCI's)
  -                                                    standard output (a docker archive)"""


def _selection(
    platform: str | None,
    all_platforms: bool,
    all_tags: bool = False,
    image: str | None = None,
    referrers: bool = False,
) -> Selection:
    from ..imagecopy import Selection

    if platform == "all":
        platform, all_platforms = None, True
    return Selection(
        platform=platform,
        all_platforms=all_platforms,
        all_tags=all_tags,
        image=image,
        referrers=referrers,
    )


def _pushed(results: list[CopyResult], target: str) -> dict[str, Any]:
    pushed = []
    for r in results:
        for reference in r.destination:
            ref = Reference.parse(reference)
            pushed.append(
                {
                    "reference": reference,
                    "repository": ref.repository,
                    "tag": ref.tag,
                    "digest": r.digest,
                    "bytes_uploaded": r.bytes_moved,
                    "blobs": [vars(b) for b in r.blobs],
                }
            )
    return {"reference": target, "pushed": pushed}


PLATFORM = click.option(
    "--platform",
    help="os/arch[/variant] to take from a multi-platform image; all: the whole index.",
)
REFERRERS = click.option(
    "--referrers",
    is_flag=True,
    help="Bring what refers to each image along: signatures, SBOMs, attestations (and theirs), "
    "byte for byte, so they still verify on the other side.",
)
FORMAT = click.option(
    "--format",
    "form",
    type=click.Choice(["oci"]),
    help="oci: convert Docker manifests to OCI ones on the way (what skopeo 1.9 and umoci "
    "need to read a layout); their digests change, the blobs' do not. By default manifests "
    "are kept byte for byte.",
)
ALL_PLATFORMS = click.option(
    "--all",
    "all_platforms",
    is_flag=True,
    help="Move a multi-platform index whole, every platform (the same as --platform all).",
)


@main_group.command(epilog=PLACES_HELP)
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="REF")
@click.option(
    "--all-tags",
    is_flag=True,
    help="Push every image of SRC under every name it carries; REF is then a registry (or a "
    "repository, for names that are tags alone).",
)
@click.option("--image", help="Which image of a multi-image archive or layout: a name or #N.")
@PLATFORM
@ALL_PLATFORMS
@REFERRERS
@FORMAT
@click.option(
    "--chunk-size",
    type=click.IntRange(1),
    help="Send one upload request per chunk of this many bytes, instead of streaming each "
    "blob in requests that grow while the link holds.",
)
@click.option(
    "--compress",
    type=click.Choice(["gzip", "zstd"]),
    help="Compress the layers stored uncompressed on the way (gzip: what docker push sends; "
    "zstd: in an OCI manifest). By default layers go byte for byte.",
)
@click.option(
    "--no-resume",
    is_flag=True,
    help="Cancel unfinished uploads on failure instead of keeping them for the next run.",
)
def push(
    source: str,
    target: str,
    all_tags: bool,
    image: str | None,
    platform: str | None,
    all_platforms: bool,
    referrers: bool,
    form: str | None,
    chunk_size: int | None,
    compress: str | None,
    no_resume: bool,
) -> None:
    """Push the image archive or OCI layout SRC to REF (registry/repository[:tag]).

    Without a tag in REF, the image's own tag is used (latest if it has none), as
    push_docker_tar does. From a multi-platform index, this machine's platform unless --platform
    or --all says otherwise. Prints each reference pushed, with its digest. A push cut short
    keeps its uploads; the same command run again continues them.

    \b
    Examples:
      registryv2 push app.tar localhost:15000/team/app:v1
      registryv2 push oci:build/out:v1 localhost:15000/team/app
      registryv2 push --all build/out/ localhost:15000/team/app:v1
      registryv2 push --all-tags bundle.tar mirror.internal:5000
      registryv2 push --compress gzip app.tar registry.example.com/team/app:v1
    """
    from .. import operations

    s = session()
    s.show_progress("Pushing")
    connect = s.connector(chunk_size=chunk_size, resume=not no_resume)
    results = operations.push(
        source,
        target,
        connect,
        _selection(platform, all_platforms, all_tags, image, referrers),
        compress=compress,
        engine=s.local_engine,
        form=form,
    )
    lines = [f"{d}@{r.digest}" for r in results for d in r.destination]
    s.result(_pushed(results, target), lines, [r.digest for r in results])


def _image_doc(result: CopyResult) -> dict[str, Any]:
    info = result.image
    return {
        "digest": result.digest,
        "media_type": result.media_type,
        "id": info.id if info else None,
        "tags": list(info.repo_tags) if info else [],
        "platform": f"{info.os}/{info.architecture}" if info else None,
        "size": info.size if info else None,
        "written": list(result.destination),
    }


@main_group.command(epilog=PLACES_HELP)
@click.argument("references", metavar="REF...", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    required=True,
    help="Where to write: an archive (docker 25+ layout; replaced only when complete), "
    "oci:DIR[:NAME] or DIR/ (an OCI layout, added to), oci-archive:FILE, or - (standard "
    "output, for docker load).",
)
@PLATFORM
@ALL_PLATFORMS
@REFERRERS
@FORMAT
def pull(
    references: tuple[str, ...],
    output: str,
    platform: str | None,
    all_platforms: bool,
    referrers: bool,
    form: str | None,
) -> None:
    """Pull images into one archive that docker load and OCI tools read, or an OCI layout.

    Prints each image's manifest digest and tags.

    \b
    Examples:
      registryv2 pull localhost:15000/team/app:v1 -o app.tar
      registryv2 pull nginx:1.25 localhost:15000/team/app:v1 -o bundle.tar
      registryv2 pull localhost:15000/team/app:v1 -o oci:build/out:v1
      registryv2 pull --all localhost:15000/team/base:1 -o base/
      registryv2 pull localhost:15000/team/app:v1 -o - | docker load
    """
    from .. import operations

    s = session()
    if output == "-":
        s.quiet_output()
    s.show_progress("Pulling")
    results = operations.pull(
        references,
        output,
        s.connector(),
        _selection(platform, all_platforms, referrers=referrers),
        s.local_engine,
        form=form,
    )
    s.result(
        {"output": output, "images": [_image_doc(r) for r in results]},
        [f"{r.digest} {' '.join(r.image.repo_tags if r.image else ())}".rstrip() for r in results],
        [r.digest for r in results],
    )


@main_group.command(epilog=PLACES_HELP)
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DEST")
@click.option(
    "--all-tags",
    is_flag=True,
    help="Copy every tag of the repository SRC (or every image of an archive or layout), each "
    "under its own name.",
)
@click.option(
    "--platform",
    help="os/arch[/variant]: copy only this image of a multi-platform index (by default the "
    "whole index is copied).",
)
@click.option(
    "--all",
    "all_platforms",
    is_flag=True,
    help="Copy a multi-platform index whole (the default here; accepted as skopeo takes it).",
)
@click.option("--image", help="Which image of a multi-image archive or layout: a name or #N.")
@REFERRERS
@FORMAT
def copy(
    source: str,
    target: str,
    all_tags: bool,
    platform: str | None,
    all_platforms: bool,
    image: str | None,
    referrers: bool,
    form: str | None,
) -> None:
    """Copy an image, or a multi-platform index whole, from SRC to DEST, keeping its digest.

    SRC and DEST are any places: registries, archives, OCI layouts.

    \b
    Examples:
      registryv2 copy registry.a.example/team/app:v1 localhost:15000/mirror/app:v1
      registryv2 copy --all-tags nginx localhost:15000/mirror/nginx
      registryv2 copy oci:build/out:v1 localhost:15000/team/app:v1
      registryv2 copy localhost:15000/team/app:v1 oci-archive:app.tar
    """
    from .. import operations

    s = session()
    if target == "-":
        s.quiet_output()
    s.show_progress("Copying")
    results = operations.copy(
        source,
        target,
        s.connector(),
        _selection(platform, all_platforms, all_tags, image, referrers),
        s.local_engine,
        form=form,
    )
    copied = [{"reference": d, "digest": r.digest} for r in results for d in r.destination]
    s.result(
        {"source": source, "copied": copied},
        [f"{c['reference']}@{c['digest']}" for c in copied],
        [c["digest"] for c in copied],
    )


@main_group.command()
@click.argument("source", metavar="SRC")
@click.argument("new_tags", metavar="TAG...", nargs=-1, required=True)
def tag(source: str, new_tags: tuple[str, ...]) -> None:
    """Give the image at SRC each TAG in the same repository; no blob moves.

    A TAG is a tag, or a whole reference in the same repository, as docker tag takes it.

    \b
    Examples:
      registryv2 tag localhost:15000/team/app:v1 stable 2024-06
      registryv2 tag localhost:15000/team/app:v1 localhost:15000/team/app:stable
    """
    from .. import imagecopy, operations

    s = session()
    results = operations.tag_image(source, new_tags, s.connector())
    digest = results[0].digest
    ref = imagecopy.resolve(source)[0]
    tagged = [f"{ref.registry}/{r.repository}:{r.tag}" for r in results]
    s.result(
        {"source": source, "digest": digest, "tagged": tagged},
        [f"{t}@{digest}" for t in tagged],
        [digest],
    )


@main_group.command()
@click.argument("reference", metavar="REF")
@click.argument("files", metavar="FILE...", nargs=-1, required=True)
@click.option(
    "--artifact-type",
    required=True,
    help="What the artifact is, a media type: application/spdx+json, application/sarif+json...",
)
@click.option(
    "--annotation",
    "-a",
    "annotations",
    multiple=True,
    metavar="KEY=VALUE",
    help="An annotation of the artifact (again for more).",
)
def attach(
    reference: str, files: tuple[str, ...], artifact_type: str, annotations: tuple[str, ...]
) -> None:
    """Attach FILEs to the image at REF, as an OCI 1.1 artifact that refers to it.

    Each FILE is PATH[:MEDIA_TYPE] (as oras writes it; application/octet-stream when not
    given) and goes up as a layer named by its file name. Where the registry has no referrers
    API, the image's fallback index (tag sha256-<hex>) lists the artifact. Prints where it went.

    \b
    Example:
      registryv2 attach localhost:15000/team/app:v1 --artifact-type application/spdx+json \\
          sbom.spdx.json:application/spdx+json
    """
    from .. import artifacts
    from ..exceptions import ValidationError

    parsed: dict[str, str] = {}
    for text in annotations:
        key, equals, value = text.partition("=")
        if not equals or not key:
            raise ValidationError(f"invalid annotation {text!r}: write KEY=VALUE")
        parsed[key] = value
    s = session()
    s.show_progress("Attaching")
    result = artifacts.attach_files(reference, s.connector(), artifact_type, files, parsed)
    s.result(
        {
            "reference": reference,
            "digest": result.digest,
            "artifact_type": artifact_type,
            "written": list(result.destination),
        },
        list(result.destination),
        [result.digest],
    )
