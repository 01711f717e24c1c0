"""``registryv2 sync``: skopeo sync's command line, over the sync job in ``synchronize.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .app import main_group, session

if TYPE_CHECKING:
    from ..synchronize import Access

F = TypeVar("F", bound=Callable[..., Any])


def _access(
    side: str,
    tls_verify: bool | None,
    cert_dir: str | None,
    creds: str | None,
    username: str | None,
    password: str | None,
    authfile: str | None,
    no_creds: bool,
) -> Access:
    from ..exceptions import ValidationError
    from ..synchronize import Access

    if creds is not None and (username is not None or password is not None):
        raise ValidationError(f"--{side}-creds and --{side}-username/--{side}-password: give one")
    if creds is not None:
        username, _, password = creds.partition(":")
        if not username:
            raise ValidationError(f"--{side}-creds: write USERNAME[:PASSWORD]")
    if password is not None and username is None:
        raise ValidationError(f"--{side}-password needs --{side}-username")
    if no_creds:
        if username is not None:
            raise ValidationError(f"--{side}-no-creds and credentials: give one")
        username, password = "", ""
    return Access(tls_verify, cert_dir, username, password, authfile)


def _side_options(side: str, what: str) -> list[Callable[[F], F]]:
    return [
        click.option(
            f"--{side}-tls-verify",
            type=click.BOOL,
            is_flag=False,
            flag_value=True,
            default=None,
            help=f"Check the {what} registry's certificate (=false: plain http and no checks).",
        ),
        click.option(
            f"--{side}-cert-dir",
            type=click.Path(exists=True, file_okay=False),
            help=f"Certificates for the {what} registry (*.crt, *.cert, *.key).",
        ),
        click.option(
            f"--{side}-creds", metavar="USERNAME[:PASSWORD]", help=f"Credentials for the {what}."
        ),
        click.option(f"--{side}-username", help=f"User name for the {what} registry."),
        click.option(f"--{side}-password", help=f"Password for the {what} registry."),
        click.option(
            f"--{side}-authfile",
            type=click.Path(dir_okay=False),
            help=f"A docker config file with the {what}'s credentials.",
        ),
        click.option(f"--{side}-no-creds", is_flag=True, help=f"Reach the {what} anonymously."),
    ]


def _with(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return apply


@main_group.command()
@click.argument("source", metavar="SOURCE")
@click.argument("destination", metavar="DESTINATION")
@click.option(
    "--src",
    "-s",
    "source_transport",
    required=True,
    type=click.Choice(["docker", "yaml", "oci", "docker-archive"]),
    help="What SOURCE is: a registry repository or image, a YAML list, a layout, an archive.",
)
@click.option(
    "--dest",
    "-d",
    "destination_transport",
    required=True,
    type=click.Choice(["docker", "oci", "docker-archive"]),
    help="What DESTINATION is: a registry (and path), a layout directory, an archive.",
)
@click.option(
    "--scoped",
    is_flag=True,
    help="Name images at DESTINATION by their whole source path, not its last part.",
)
@click.option(
    "--all", "-a", "all_platforms", is_flag=True, help="Copy multi-platform indexes whole."
)
@click.option(
    "--platform", help="os/arch[/variant]: the image taken from an index (default: this machine's)."
)
@click.option(
    "--referrers",
    is_flag=True,
    help="Bring each image's signatures, SBOMs and attestations (and theirs) along.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be synced; move nothing.")
@click.option("--keep-going", is_flag=True, help="Go on past an image that fails.")
@click.option(
    "--retry-times",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Times to try an image again after it fails for a passing reason.",
)
@click.option("--append-suffix", default="", help="Appended to every tag at DESTINATION.")
@click.option(
    "--preserve-digests",
    is_flag=True,
    help="Keep every digest (always so: manifests are copied byte for byte).",
)
@click.option(
    "--shard",
    metavar="K/N",
    help="Sync only the K-th of N shares of the images (K from 0), for N machines.",
)
@click.option("--remove-signatures", is_flag=True, help="Accepted as skopeo takes it; no effect.")
@_with(_side_options("src", "source"))
@_with(_side_options("dest", "destination"))
@click.option("--authfile", type=click.Path(dir_okay=False), help="Credentials for both sides.")
def sync(
    source: str,
    destination: str,
    source_transport: str,
    destination_transport: str,
    scoped: bool,
    all_platforms: bool,
    platform: str | None,
    referrers: bool,
    dry_run: bool,
    keep_going: bool,
    retry_times: int,
    append_suffix: str,
    preserve_digests: bool,
    shard: str | None,
    remove_signatures: bool,
    authfile: str | None,
    **sides: Any,
) -> None:
    """Keep DESTINATION in step with the images of SOURCE, moving only what changed.

    The command line and YAML of skopeo sync. Each tag whose digest differs at DESTINATION
    is copied, images in parallel; the rest cost one HEAD on each side. Exit 1 when an image
    failed (with --keep-going, after trying the rest).

    \b
    SOURCE (--src): docker  HOST/REPOSITORY[:TAG]  (every tag, without one)
                    yaml    FILE                   (registries, repositories, tags)
                    oci     DIR                    (an OCI layout)
                    docker-archive FILE            (a docker save archive)
    DESTINATION (--dest): docker HOST[/PATH], oci DIR, docker-archive FILE

    \b
    Examples:
      registryv2 sync --src yaml --dest docker sync.yml mirror.local/mirror
      registryv2 sync --src docker --dest docker-archive --all registry.a/team/app bundle.tar
      registryv2 sync --src docker-archive --dest docker bundle.tar mirror.local/mirror
      registryv2 sync --src yaml --dest docker --shard 0/3 sync.yml mirror.local/mirror
    """
    from ..imagecopy import Selection
    from ..synchronize import Shard, SyncOptions, synchronize

    def side(name: str) -> Access:
        found = {k.removeprefix(f"{name}_"): v for k, v in sides.items() if k.startswith(name)}
        return _access(
            name,
            found["tls_verify"],
            found["cert_dir"],
            found["creds"],
            found["username"],
            found["password"],
            found["authfile"] or authfile,
            found["no_creds"],
        )

    options = SyncOptions(
        source_transport=source_transport,
        destination_transport=destination_transport,
        scoped=scoped,
        append_suffix=append_suffix,
        selection=Selection(platform=platform, all_platforms=all_platforms, referrers=referrers),
        dry_run=dry_run,
        keep_going=keep_going,
        retry_times=retry_times,
        shard=Shard.parse(shard) if shard else None,
        source_access=side("src"),
        destination_access=side("dest"),
        workers=session().workers,
    )
    s = session()
    s.show_progress("Syncing")
    progress = s.progress

    def connect(endpoint: str, access: Access) -> Any:
        return s.connect(endpoint, **access.settings())

    report = synchronize(source, destination, connect, options, progress=progress)
    lines = []
    for image in report.images:
        if image.status == "failed":
            lines.append(f"failed      {image.source}: {image.error}")
        elif image.status == "planned":
            lines.append(f"would sync  {image.source} -> {image.destination}")
        else:
            # An image synced by digest is named by it already.
            named = image.destination.rpartition("@")[2] == image.digest
            where = image.destination if named else f"{image.destination}@{image.digest}"
            lines.append(f"{image.status:<11} {where}")
    lines.append(report.summary())
    s.result(report.to_dict(), lines, [report.summary()])
    if not report.ok:
        raise click.exceptions.Exit(1)
