"""Commands that move images: push, pull, copy, tag."""

from __future__ import annotations

from typing import Any

import click

from ..models import ImageInspect, PushResult
from .app import main_group, session


def _pushed(results: list[PushResult], where: str) -> dict[str, Any]:
    return {
        "reference": f"{where}/{results[0].repository}" if results else where,
        "pushed": [
            {
                "reference": f"{where}/{r.repository}:{r.tag}",
                "repository": r.repository,
                "tag": r.tag,
                "digest": r.digest,
                "bytes_uploaded": r.bytes_uploaded,
                "blobs": [vars(b) for b in r.blobs],
            }
            for r in results
        ],
    }


@main_group.command()
@click.argument("tar_path", metavar="TAR", type=click.Path(dir_okay=False))
@click.argument("target", metavar="REF")
@click.option(
    "--all-tags",
    is_flag=True,
    help="Push every image of TAR under every tag it carries; REF is then a registry.",
)
@click.option("--image", help="Which image of a multi-image archive: an archive tag or #N.")
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
    tar_path: str,
    target: str,
    all_tags: bool,
    image: str | None,
    chunk_size: int | None,
    compress: str | None,
    no_resume: bool,
) -> None:
    """Push the image archive TAR to REF (registry/repository[:tag]).

    Without a tag in REF, the tag of the image's first archive tag is used (latest if it has
    none), as push_docker_tar does. Prints each reference pushed, with its digest. A push cut
    short keeps its uploads; the same command run again continues them.

    \b
    Examples:
      registryv2 push app.tar localhost:15000/team/app:v1
      registryv2 push --all-tags bundle.tar mirror.internal:5000
      registryv2 push --compress gzip app.tar registry.example.com/team/app:v1
    """
    from .. import operations

    s = session()
    s.show_progress("Pushing")
    connect = s.connector(chunk_size=chunk_size, resume=not no_resume)
    results = operations.push_archive(
        tar_path, target, connect, image=image, all_tags=all_tags, compress=compress
    )
    where = target.rstrip("/") if all_tags else operations.resolve(target)[0].registry
    lines = [f"{where}/{r.repository}:{r.tag}@{r.digest}" for r in results]
    s.result(_pushed(results, str(where)), lines, [r.digest for r in results])


def _image_doc(info: ImageInspect) -> dict[str, Any]:
    return {
        "digest": info.manifest_digest,
        "id": info.id,
        "tags": info.repo_tags,
        "platform": f"{info.os}/{info.architecture}",
        "size": info.size,
    }


@main_group.command()
@click.argument("references", metavar="REF...", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False),
    help="Archive to write (docker 25+ layout; replaced only when complete).",
)
@click.option("--platform", help="os/arch[/variant] to take from a multi-platform image.")
def pull(references: tuple[str, ...], output: str, platform: str | None) -> None:
    """Pull images into one archive that docker load and OCI tools read.

    Prints each image's manifest digest and tags.

    \b
    Examples:
      registryv2 pull localhost:15000/team/app:v1 -o app.tar
      registryv2 pull nginx:1.25 localhost:15000/team/app:v1 -o bundle.tar
    """
    from .. import operations

    s = session()
    s.show_progress("Pulling")
    infos = operations.pull_images(references, output, s.connector(), platform)
    s.result(
        {"output": output, "images": [_image_doc(i) for i in infos]},
        [f"{i.manifest_digest} {' '.join(i.repo_tags)}".rstrip() for i in infos],
        [str(i.manifest_digest) for i in infos],
    )


@main_group.command()
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DEST")
@click.option(
    "--all-tags",
    is_flag=True,
    help="Copy every tag of the repository SRC into the repository DEST.",
)
def copy(source: str, target: str, all_tags: bool) -> None:
    """Copy an image, or a multi-platform index whole, from SRC to DEST, keeping its digest.

    \b
    Examples:
      registryv2 copy registry.a.example/team/app:v1 localhost:15000/mirror/app:v1
      registryv2 copy --all-tags nginx localhost:15000/mirror/nginx
    """
    from .. import operations

    s = session()
    s.show_progress("Copying")
    connect = s.connector()
    if all_tags:
        results = operations.copy_repository(source, target, connect)
    else:
        results = [operations.copy_image(source, target, connect)]
    base = operations.resolve(target, default_tag=None)[0]
    copied = [
        {"reference": f"{base.registry}/{r.repository}:{r.tag}", "digest": r.digest}
        for r in results
    ]
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

    \b
    Example:
      registryv2 tag localhost:15000/team/app:v1 stable 2024-06
    """
    from .. import operations

    s = session()
    digest = operations.tag_image(source, new_tags, s.connector())
    ref = operations.resolve(source)[0]
    tagged = [f"{ref.registry}/{ref.repository}:{t}" for t in new_tags]
    s.result(
        {"source": source, "digest": digest, "tagged": tagged},
        [f"{t}@{digest}" for t in tagged],
        [digest],
    )
