"""The examples run as users run them, against a real registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from registryv2 import get_manifest, list_tags

from .archives import simple_image, write_docker25, write_legacy
from .servers import RegistryServer

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).parent.parent / "examples"


def test_a_script_written_for_the_async_library_runs_once_await_is_deleted(
    tmp_path: Path,
) -> None:
    registry = RegistryServer(tmp_path / "registry")
    try:
        write_legacy(tmp_path / "my-image.tar", [simple_image(seed="mine")])
        write_docker25(tmp_path / "exported-image.tar", [simple_image(tag="exported/app:2.1")])
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "migrated_from_async.py")],
            cwd=tmp_path,
            env={**os.environ, "REGISTRY_URL": registry.url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "Registry accessible: True"
        pushed = get_manifest(registry.url, "myapp", "v1.0.0")["digest"]
        assert lines[1] == f"Upload complete: {pushed}"
        original = get_manifest(registry.url, "exported/app", "2.1")["digest"]
        assert lines[2] == f"Pushed with original tags: {original}"
        assert lines[3] == "Repositories: ['exported/app', 'myapp']"
        assert list_tags(registry.url, "myapp") == ["v1.0.0"]
    finally:
        registry.stop()
