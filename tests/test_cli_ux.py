"""The command as a person meets it: deletes that ask or refuse, help that lists what works,
shell completion, errors in JSON, and what ``inspect`` shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registryv2 import list_tags
from registryv2.cli import main_group

from .archives import simple_image, write_legacy
from .servers import RegistryServer
from .test_cli import assert_json_error, assert_one_line_error, ok, ok_json, run

pytestmark = pytest.mark.integration

GLOBAL = [name for o in main_group.params for name in o.opts if name != "--version"]


def test_rm_without_a_terminal_and_without_y_refuses(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    digest = ok("push", "-q", str(tar), f"{registry.host}/{repo}:stable").strip()
    for tag in ("a", "b"):
        ok("tag", f"{registry.host}/{repo}:stable", tag)
    # `echo n | registryv2 rm REF`: standard input is not a terminal, so nobody can be asked.
    for stdin in ("n\n", "y\n", ""):
        done = run("rm", f"{registry.host}/{repo}:stable", stdin=stdin)
        assert_one_line_error(done, 2, f"{registry.host}/{repo}@{digest}", "(a, b, stable)", "-y")
    error = assert_json_error(
        run("rm", "--json", f"{registry.host}/{repo}:a"), 2, "ValidationError", "-y"
    )
    assert error["message"].startswith("rm would delete ")
    assert sorted(list_tags(registry.url, repo)) == ["a", "b", "stable"]  # nothing deleted
    assert ok("rm", "-y", f"{registry.host}/{repo}:a").startswith("Deleted ")
    assert list_tags(registry.url, repo) == []


def test_every_command_help_lists_the_global_options() -> None:
    for command in ["login", *sorted(set(main_group.commands) - {"login"})]:
        done = run(command, "--help")
        assert done.returncode == 0, done.stderr
        section = done.stdout.split("Global options (before or after the command):")[1]
        for name in GLOBAL:
            assert name in section, (command, name)
    # The options login's own example uses, under login's own help.
    login = run("login", "--help").stdout
    assert "-u, --username" in login and "--password-stdin" in login
    # Still accepted there, after the command.
    done = run("login", "--help", "-u", "alice", "--password-stdin")
    assert done.returncode == 0 and done.stdout == login


def complete(line: str) -> list[str]:
    """What bash completion offers for ``line`` (the cursor at its end), as click answers it."""
    words = line.split(" ")
    done = subprocess.run(
        [sys.executable, "-m", "registryv2"],
        env={
            **os.environ,
            "_REGISTRYV2_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [item.split(",", 1)[1] for item in done.stdout.splitlines()]


def test_shell_completion_offers_commands_and_options() -> None:
    assert complete("registryv2 pu") == ["pull", "push"]
    assert complete("registryv2 push --comp") == ["--compress"]
    # The global options too, written after the command as everywhere else.
    assert complete("registryv2 login --pass") == ["--password-stdin"]
    script = subprocess.run(
        [sys.executable, "-m", "registryv2"],
        env={**os.environ, "_REGISTRYV2_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "complete " in script and "_REGISTRYV2_COMPLETE=bash_complete" in script


def test_json_error_messages_are_the_message_alone(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tar"
    done = run("push", str(missing), "localhost:1/a:b")
    assert_one_line_error(done, 2, f"registryv2: error: Tar file does not exist: {missing}")
    error = assert_json_error(
        run("push", "--json", str(missing), "localhost:1/a:b"), 2, "ArchiveNotFoundError"
    )
    assert error["message"] == f"Tar file does not exist: {missing}", error
    done = run("check", "--json", "--retries", "1", "localhost:1")
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stderr)["error"]
    assert error["message"].startswith("Failed to connect to registry: checking localhost:1: ")


def test_inspect_shows_exposed_ports_as_json_does(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(exposed_ports=["80/tcp", "443/tcp", "53/udp"])
    tar = write_legacy(tmp_path / "app.tar", [image])
    ok("push", str(tar), f"{registry.host}/{repo}:v1")
    for target in (f"{registry.host}/{repo}:v1", str(tar)):
        ports = ok_json("inspect", target)["image"]["config"]["exposed_ports"]
        assert sorted(ports) == ["443/tcp", "53/udp", "80/tcp"]
        text = ok("inspect", target).splitlines()
        assert "ExposedPorts: 443/tcp, 53/udp, 80/tcp" in text, text
    # An image without ports says nothing of them.
    plain = write_legacy(tmp_path / "plain.tar", [simple_image()])
    assert "ExposedPorts" not in ok("inspect", str(plain))
    assert json.loads(ok("inspect", "--json", str(plain)))["image"]["config"]["exposed_ports"] == {}


def test_a_huge_message_is_one_line_under_the_cap(tmp_path: Path) -> None:
    # A path of some 3,000 characters that does not exist: its message would be as long.
    missing = tmp_path.joinpath(*["d" * 150] * 20, "x.tar")
    done = run("push", str(missing), "localhost:1/x:y")
    assert_one_line_error(done, 2, "registryv2: error: Tar file does not exist: ")
    line = done.stderr.strip()
    assert len(line) <= len("registryv2: error: ") + 500 + len("... (9999 more characters)")
    assert line.endswith(f"... ({len(str(missing)) + 25 - 500} more characters)"), line[-80:]
    error = assert_json_error(
        run("push", "--json", str(missing), "localhost:1/x:y"), 2, "ArchiveNotFoundError"
    )
    assert len(error["message"]) < 600 and error["message"].endswith("more characters)")


def test_tag_takes_a_whole_reference_in_the_same_repository(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    # As docker tag users type it: SRC and DEST both whole references.
    tar = write_legacy(tmp_path / "app.tar", [simple_image(seed="whole-reference")])
    ok("push", str(tar), f"{registry.host}/{repo}:v1")
    ok("tag", f"{registry.host}/{repo}:v1", f"{registry.host}/{repo}:v2")
    assert sorted(list_tags(registry.url, repo)) == ["v1", "v2"]
    done = run("tag", f"{registry.host}/{repo}:v1", f"{registry.host}/other/repo:v3")
    assert_one_line_error(done, 2, "another repository", "use copy")
    assert sorted(list_tags(registry.url, repo)) == ["v1", "v2"]
