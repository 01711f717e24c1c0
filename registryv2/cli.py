"""The ``registryv2`` command: thin click commands over :class:`RegistryClient`.

Each command parses its arguments, calls the library and prints the result. Any
:class:`RegistryV2Error` becomes one line on stderr and exit status 1; bad usage exits 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from . import __version__
from .client import RegistryClient
from .credentials import Credentials, erase_docker_credentials, store_docker_credentials
from .exceptions import RegistryV2Error, ValidationError
from .models import DEFAULT_CHUNK_SIZE, DEFAULT_WORKERS
from .reference import Reference
from .transport import split_registry_url

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(command: F) -> F:
    """Report library errors as ``registryv2: error: ...`` and exit 1, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RegistryV2Error as e:
            click.echo(f"registryv2: error: {e}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("registryv2: interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _registry_reference(text: str) -> Reference:
    ref = Reference.parse(text)
    if ref.registry is None:
        raise ValidationError(
            f"invalid reference {text!r}: name the registry, as in localhost:15000/{text}"
        )
    return ref


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
        ]
    ):
        command = option(command)
    return command


def _registry_only(registry: str) -> Reference:
    """A registry named alone (HOST, or a URL) as a reference with no repository."""
    split_registry_url(registry)  # validates it
    return Reference(registry=registry, repository="", tag=None, digest=None)


def _client(ref: Reference, connection: dict[str, Any], **settings: Any) -> RegistryClient:
    password = None
    if connection["password_stdin"]:
        password = sys.stdin.readline().rstrip("\r\n")
        if not connection["username"]:
            raise ValidationError("--password-stdin needs --username")
    return RegistryClient(
        ref.registry or "",
        username=connection["username"],
        password=password,
        ca_bundle=connection["ca_cert"],
        insecure=connection["insecure"],
        **settings,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="registryv2")
def main() -> None:
    """Push, pull and manage images on Docker Registry v2 / OCI registries, without a daemon."""


@main.command()
@click.argument("tar_path", metavar="TAR", type=click.Path(dir_okay=False))
@click.argument("reference", metavar="REF")
@click.option("--image", help="Which image of a multi-image archive: an archive tag or #N.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Blobs uploaded in parallel.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1),
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    help="Bytes per upload request.",
)
@_connection_options
@_one_line_errors
def push(
    tar_path: str,
    reference: str,
    image: str | None,
    workers: int,
    chunk_size: int,
    **connection: Any,
) -> None:
    """Push the image archive TAR to REF (host[:port]/repository[:tag]) and print its digest.

    \b
    Example:
      registryv2 push app.tar localhost:15000/team/app:v1
    """
    ref = _registry_reference(reference)
    if ref.digest:
        raise ValidationError(f"invalid reference {reference!r}: push to a tag, not a digest")
    with _client(ref, connection, workers=workers, chunk_size=chunk_size) as client:
        result = client.push(tar_path, ref.repository, ref.tag, image=image)
    click.echo(result.digest)


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
    with _client(_registry_only(registry), connection) as client:
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
