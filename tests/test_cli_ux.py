"""The command as a person meets it: deletes that ask or refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from registryv2 import list_tags

from .archives import simple_image, write_legacy
from .servers import RegistryServer
from .test_cli import assert_json_error, assert_one_line_error, ok, run

pytestmark = pytest.mark.integration


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
