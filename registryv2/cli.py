"""The ``registryv2`` command: thin click commands over :class:`RegistryClient`.

Each command parses its arguments, calls the library and prints the result. Any
:class:`RegistryV2Error` becomes one line on stderr and exit status 1; bad usage exits 2; Ctrl-C
exits 130 and SIGTERM 143, after the same clean-up (no partial output file; unfinished uploads
kept for the next run to resume).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ._version import __version__
from .client import RegistryClient
from .credentials import Credentials, erase_docker_credentials, store_docker_credentials
from .exceptions import RegistryV2Error, ValidationError
from .models import DEFAULT_CHUNK_SIZE, DEFAULT_TIMEOUT, DEFAULT_WORKERS
from .operations import copy_image, pull_images, tag_image
from .reference import registry_reference
from .retry import RetryPolicy
from .transport import split_registry_url

F = TypeVar("F", bound=Callable[..., Any])


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds as Ctrl-C does."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def _exit_now(status: int) -> None:
    """Exit at once after an interrupt: clean-up has run while the stack unwound, and a worker
    still opening a connection must not hold the process for its connect timeout."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _one_line_errors(command: F) -> F:
    """Report library errors as ``registryv2: error: ...`` and exit 1, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        signal.signal(signal.SIGTERM, _terminate)
        try:
            return command(*args, **kwargs)
        except RegistryV2Error as e:
            click.echo(f"registryv2: error: {e}", err=True)
            sys.exit(1)
        except _Terminated:
            click.echo("registryv2: terminated", err=True)
            _exit_now(143)
        except KeyboardInterrupt:
            click.echo("registryv2: interrupted", err=True)
            _exit_now(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as e:  # a bug of ours: still one line, never a traceback
            click.echo(f"registryv2: internal error: {type(e).__name__}: {e}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _connection_options(command: F) -> F:
    """The options every command that talks to a registry takes."""
    for option in reversed(
        [
            click.option("--username", "-u", help="User name (else docker's config file is used)."),
            click.option(
                "--password-stdin",
                is_flag=True,
                help="Read the password (or token) from standard input.",
            ),
            click.option(
                "--ca-cert",
                type=click.Path(exists=True, dir_okay=False),
                help="PEM file of certificate authorities to trust.",
            ),
            click.option("--insecure", is_flag=True, help="Allow plain http and unverified TLS."),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0, min_open=True),
                default=DEFAULT_TIMEOUT,
                show_default=True,
                help="Seconds without a byte from the registry before a request is retried.",
            ),
            click.option(
                "--retries",
                type=click.IntRange(1),
                default=RetryPolicy().attempts,
                show_default=True,
                help="Attempts of a failing step before giving up.",
            ),
        ]
    ):
        command = option(command)
    return command


def _connector(connection: dict[str, Any], **settings: Any) -> Callable[[str], RegistryClient]:
    """A function making a client for a registry host, with the command's connection options.

    The password is read from standard input once, however many registries the command uses.
    """
    password = None
    if connection["password_stdin"]:
        if not connection["username"]:
            raise ValidationError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")

    def connect(registry: str) -> RegistryClient:
        return RegistryClient(
            registry,
            username=connection["username"],
            password=password,
            ca_bundle=connection["ca_cert"],
            insecure=connection["insecure"],
            timeout=connection["timeout"],
            retry=RetryPolicy(attempts=connection["retries"]),
            **settings,
        )

    return connect


_workers_option = click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Blobs moved in parallel.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="registryv2")
def main() -> None:
    """Push, pull and manage images on Docker Registry v2 / OCI registries, without a daemon."""


@main.command()
@click.argument("tar_path", metavar="TAR", type=click.Path(dir_okay=False))
@click.argument("reference", metavar="REF")
@click.option("--image", help="Which image of a multi-image archive: an archive tag or #N.")
@_workers_option
@click.option(
    "--chunk-size",
    type=click.IntRange(1),
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    help="Bytes per upload request.",
)
@click.option(
    "--no-resume",
    is_flag=True,
    help="Cancel unfinished uploads on failure instead of keeping them for the next run.",
)
@_connection_options
@_one_line_errors
def push(
    tar_path: str,
    reference: str,
    image: str | None,
    workers: int,
    chunk_size: int,
    no_resume: bool,
    **connection: Any,
) -> None:
    """Push the image archive TAR to REF (host[:port]/repository[:tag]) and print its digest.

    A push that is interrupted or fails on the network keeps its unfinished uploads; run the
    same command again and it continues them where the registry says they stand.

    \b
    Example:
      registryv2 push app.tar localhost:15000/team/app:v1
    """
    ref = registry_reference(reference)
    if ref.digest:
        raise ValidationError(f"invalid reference {reference!r}: push to a tag, not a digest")
    connect = _connector(connection, workers=workers, chunk_size=chunk_size, resume=not no_resume)
    with connect(str(ref.registry)) as client:
        result = client.push(tar_path, ref.repository, ref.tag, image=image)
    click.echo(result.digest)


@main.command()
@click.argument("references", metavar="REF...", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False),
    help="Archive to write (docker 25+ layout; replaced only when complete).",
)
@click.option("--platform", help="os/arch[/variant] to take from a multi-platform image.")
@_workers_option
@_connection_options
@_one_line_errors
def pull(
    references: tuple[str, ...],
    output: str,
    platform: str | None,
    workers: int,
    **connection: Any,
) -> None:
    """Pull images into one archive that docker load and OCI tools read.

    Prints each image's manifest digest and tags.

    \b
    Example:
      registryv2 pull localhost:15000/team/app:v1 -o app.tar
      registryv2 pull --platform linux/arm64 localhost:15000/team/app:v1 -o app-arm64.tar
    """
    connect = _connector(connection, workers=workers)
    for info in pull_images(references, output, connect, platform):
        click.echo(f"{info.manifest_digest} {' '.join(info.repo_tags)}".rstrip())


@main.command()
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DEST")
@_workers_option
@_connection_options
@_one_line_errors
def copy(source: str, target: str, workers: int, **connection: Any) -> None:
    """Copy an image, or a multi-platform index whole, from SRC to DEST; print its digest.

    The digest is kept. Credentials given here are used for both registries; for two
    registries with different accounts, log in to each first.

    \b
    Example:
      registryv2 copy registry.a.example/team/app:v1 localhost:15000/mirror/app:v1
    """
    result = copy_image(source, target, _connector(connection, workers=workers))
    click.echo(result.digest)


@main.command()
@click.argument("source", metavar="SRC")
@click.argument("new_tag", metavar="TAG")
@_connection_options
@_one_line_errors
def tag(source: str, new_tag: str, **connection: Any) -> None:
    """Give the image at SRC the tag TAG in the same repository; print its digest.

    \b
    Example:
      registryv2 tag localhost:15000/team/app:v1 stable
    """
    click.echo(tag_image(source, new_tag, _connector(connection)))


@main.command()
@click.argument("registry", metavar="HOST")
@_connection_options
@_one_line_errors
def login(registry: str, **connection: Any) -> None:
    """Check credentials against HOST, then save them in docker's config file.

    \b
    Example:
      echo "$PASSWORD" | registryv2 login registry.example.com -u alice --password-stdin
    """
    if not connection["username"] or not connection["password_stdin"]:
        raise ValidationError("login needs --username and --password-stdin")
    split_registry_url(registry)  # a HOST, not a reference
    with _connector(connection)(registry) as client:
        client.login()
        credentials = Credentials(client.config.username or "", client.config.password or "")
    path = store_docker_credentials(client.transport.registry, credentials)
    click.echo(f"Login succeeded; credentials for {client.transport.registry} saved in {path}")


@main.command()
@click.argument("registry", metavar="HOST")
@_one_line_errors
def logout(registry: str) -> None:
    """Remove HOST's credentials from docker's config file."""
    host = split_registry_url(registry)[1]
    if erase_docker_credentials(host):
        click.echo(f"Removed credentials for {host}")
    else:
        click.echo(f"No credentials stored for {host}")
