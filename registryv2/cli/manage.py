"""Commands that change what a registry, or docker's config, holds: rm, login, logout."""

from __future__ import annotations

import sys

import click

from ..credentials import Credentials, erase_docker_credentials, store_docker_credentials
from ..exceptions import ValidationError
from ..reference import registry_of
from .app import Declined, main_group, session


@main_group.command(name="rm")
@click.argument("reference", metavar="REF")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@click.option(
    "--referrers",
    is_flag=True,
    help="Delete what refers to the image too: its signatures, SBOMs, attestations (and "
    "theirs), cosign's tags and the fallback index.",
)
def remove(reference: str, yes: bool, referrers: bool) -> None:
    """Delete the manifest REF points at (by tag or digest), and with it every tag on it.

    Registries delete manifests, not tags: the tags that go too are listed, and you are asked
    first; without a terminal to ask on, rm refuses (exit 2) unless given -y. Answering no
    deletes nothing (exit 1). What refers to the image stays unless --referrers; deleting a
    referrer takes it out of its image's fallback index.

    \b
    Examples:
      registryv2 rm localhost:15000/team/app:v1      # asks first
      registryv2 rm -y localhost:15000/team/app:v1   # in a script
      registryv2 rm -y --referrers localhost:15000/team/app:v1
    """
    from .. import operations

    s = session()
    connect = s.connector()
    planned = operations.plan_deletion(reference, connect)
    going = ", ".join(planned.tags) or "no tag"
    what = f"{planned.repository}@{planned.digest} and its tags ({going})"
    if referrers:
        what += ", with everything that refers to it"
    if not yes:
        if not sys.stdin.isatty():
            raise ValidationError(
                f"rm would delete {what}, and there is no terminal to ask on: "
                "-y deletes without asking"
            )
        if not click.confirm(f"Delete {what}?", err=True):
            raise Declined("nothing deleted")
    gone: list[str] = []
    if referrers:
        from .. import artifacts

        gone = artifacts.delete_with_referrers(reference, connect)[1]
    else:
        operations.delete(reference, connect, planned)
    also = f"; {len(gone)} referrer manifests with it" if referrers else ""
    s.result(
        {
            "repository": planned.repository,
            "digest": planned.digest,
            "tags": list(planned.tags),
            "referrers": gone,
        },
        [f"Deleted {planned.repository}@{planned.digest} (tags: {going}){also}"],
        [planned.digest, *gone],
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
