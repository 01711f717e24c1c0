"""Commands that change what a registry, or docker's config, holds: rm, login, logout."""

from __future__ import annotations

import sys

import click

from ..credentials import Credentials, erase_docker_credentials, store_docker_credentials
from ..exceptions import ValidationError
from ..reference import registry_of
from .app import main_group, session


@main_group.command(name="rm")
@click.argument("reference", metavar="REF")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def remove(reference: str, yes: bool) -> None:
    """Delete the manifest REF points at (by tag or digest), and with it every tag on it.

    Registries delete manifests, not tags: the tags that go too are listed, and on a terminal
    you are asked first (-y not to be).

    \b
    Example:
      registryv2 rm localhost:15000/team/app:v1
    """
    from .. import operations

    s = session()
    connect = s.connector()
    planned = operations.plan_deletion(reference, connect)
    going = ", ".join(planned.tags) or "no tag"
    if not yes and sys.stdin.isatty() and not s.json:
        click.confirm(
            f"Delete {planned.repository}@{planned.digest} and its tags ({going})?", abort=True
        )
    operations.delete(reference, connect, planned)
    s.result(
        {"repository": planned.repository, "digest": planned.digest, "tags": list(planned.tags)},
        [f"Deleted {planned.repository}@{planned.digest} (tags: {going})"],
        [planned.digest],
    )


@main_group.command()
@click.argument("registry", metavar="REGISTRY")
def login(registry: str) -> None:
    """Check credentials against REGISTRY, then save them where docker keeps them.

    The password is read from standard input with --password-stdin, else asked for on a
    terminal.

    \b
    Examples:
      echo "$TOKEN" | registryv2 login registry.example.com -u alice --password-stdin
      registryv2 login registry.example.com -u alice
    """
    from ..mirrors import registry_endpoint

    s = session()
    registry = registry_of(registry)
    if not s.username:
        if not sys.stdin.isatty():
            raise ValidationError("login needs --username (or a terminal to ask for it)")
        s.username = click.prompt("Username")
    with s.connect(registry_endpoint(registry)) as client:
        client.login()
        host = client.transport.registry
    path = store_docker_credentials(host, Credentials(s.username or "", s.password or ""))
    s.result(
        {"registry": host, "username": s.username, "stored_in": str(path)},
        [f"Login succeeded; credentials for {host} saved in {path}"],
        [],
    )


@main_group.command()
@click.argument("registry", metavar="REGISTRY")
def logout(registry: str) -> None:
    """Remove REGISTRY's credentials from where docker keeps them.

    \b
    Example:
      registryv2 logout registry.example.com
    """
    from ..transport import split_registry_url

    host = split_registry_url(registry_of(registry))[1]
    removed = erase_docker_credentials(host)
    session().result(
        {"registry": host, "removed": removed},
        [f"Removed credentials for {host}" if removed else f"No credentials stored for {host}"],
        [],
    )
