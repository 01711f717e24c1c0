"""What a command imports: the ones that only read an archive start without requests and urllib3
(most of a command's start-up); the library's names are there on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .archives import simple_image, write_docker25
from .servers import free_port

NETWORK = {"requests", "urllib3"}


def imported(*args: str, status: int = 0) -> set[str]:
    """The modules ``registryv2 ARGS`` imports, as ``python -X importtime`` reports them."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "registryv2", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == status, done.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "app.tar"
    return write_docker25(path, [simple_image("app:v1")])


# Commands that never reach a registry; an archive's path is added to validate and inspect.
LOCAL = [["--version"], ["--help"], ["push", "-h"], ["validate"], ["inspect"], ["-q", "inspect"]]


@pytest.mark.parametrize("args", LOCAL)
def test_a_command_that_only_reads_an_archive_does_not_import_requests(
    args: list[str], archive: Path
) -> None:
    reads = args[-1] in {"validate", "inspect"}
    loaded = imported(*args, *([str(archive)] if reads else []))
    assert "click" in loaded  # the measure works: the command ran, and its imports were seen
    if reads:
        assert "registryv2.archive.reader" in loaded
    assert not loaded & NETWORK, sorted(loaded & NETWORK)


def test_a_command_that_talks_to_a_registry_imports_them() -> None:
    loaded = imported("check", "--retries", "1", f"127.0.0.1:{free_port()}", status=1)
    assert NETWORK.issubset(loaded)


def test_the_library_names_load_on_first_use() -> None:
    script = (
        "import sys, registryv2\n"
        "before = 'requests' in sys.modules\n"
        "from registryv2 import RegistryClient, push_docker_tar\n"
        "from registryv2.client import RegistryClient as same\n"
        "print(before, 'requests' in sys.modules, RegistryClient is same,\n"
        "      sorted(set(registryv2.__all__) - set(dir(registryv2))),\n"
        "      push_docker_tar.__module__)\n"
        "try:\n"
        "    registryv2.no_such_name\n"
        "except AttributeError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.splitlines() == [
        "False True True [] registryv2.api",
        "module 'registryv2' has no attribute 'no_such_name'",
    ], done.stderr
