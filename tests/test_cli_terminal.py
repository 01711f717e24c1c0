"""The CLI as a person at a terminal sees it (tmux), and as a pipe sees it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registryv2 import list_tags

from .archives import simple_image, write_big_legacy, write_legacy
from .proxies import FaultyProxy
from .servers import RegistryServer
from .terminal import Terminal

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
TOTAL = re.compile(r"Pushing: (\d+)/(\d+) blobs, ([\d.]+ \w+) of ([\d.]+ \w+), ([\d.]+ \w+)/s")


def test_a_push_draws_a_moving_bar_on_a_terminal_and_nothing_in_a_pipe(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_big_legacy(tmp_path / "big.tar", "big:v1", [150 * MiB, 50 * MiB])
    with FaultyProxy(registry.host) as proxy:
        proxy.throttle = 0.002  # about 30 MB/s: several seconds of bar to look at
        with Terminal("push", str(tar), f"{proxy.host}/{repo}:v1") as terminal:
            while proxy.uploaded < 40 * MiB:
                time.sleep(0.05)
            early = terminal.wait_for("Pushing:")
            while proxy.uploaded < 120 * MiB:
                time.sleep(0.05)
            later = terminal.wait_for("Pushing:")
            final = terminal.wait_for("EXIT=", timeout=120)
    # Mid-push: a line per layer in flight with a bar, and a total that moved between looks.
    assert re.search(r"[0-9a-f]{12} \[#+\.*\]", early), early
    moved = [TOTAL.search(screen) for screen in (early, later)]
    assert moved[0] and moved[1], (early, later)
    assert moved[0].group(3) != moved[1].group(3)  # bytes done went up
    assert "ETA" in early
    # Drawn in place: the total line is on screen once, not once per redraw.
    assert early.count("Pushing:") == 1 and later.count("Pushing:") == 1
    assert "EXIT=0" in final and f"{proxy.host}/{repo}:v1@sha256:" in final

    piped = subprocess.run(
        [sys.executable, "-m", "registryv2", "push", str(tar), f"{registry.host}/{repo}:v2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 0
    assert piped.stderr == ""  # no bar, no escape codes, when not on a terminal
    assert re.fullmatch(
        rf"{re.escape(registry.host)}/{repo}:v2@sha256:[0-9a-f]{{64}}\n", piped.stdout
    )


def test_rm_asks_on_a_terminal(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    subprocess.run(
        [sys.executable, "-m", "registryv2", "push", str(tar), f"{registry.host}/{repo}:a"],
        check=True,
        capture_output=True,
    )
    with Terminal("rm", f"{registry.host}/{repo}:a") as terminal:
        asked = terminal.wait_for("[y/N]")
        assert f"{registry.host}/{repo}@sha256:" in asked and "(a)?" in asked
        terminal.press("n", "Enter")
        said = terminal.wait_for("EXIT=")
    # Declined: a failure that deleted nothing, not an interruption.
    assert "EXIT=1" in said and "registryv2: nothing deleted" in said, said
    assert list_tags(registry.url, repo) == ["a"]
    with Terminal("rm", f"{registry.host}/{repo}:a") as terminal:
        terminal.wait_for("[y/N]")
        terminal.press("y", "Enter")
        said = terminal.wait_for("EXIT=")
    assert "EXIT=0" in said and "Deleted" in said
    assert list_tags(registry.url, repo) == []


def test_sync_draws_its_progress_over_the_set_on_a_terminal(
    registry: RegistryServer, other: RegistryServer, tmp_path: Path
) -> None:
    for n in range(2):
        tar = write_legacy(tmp_path / f"{n}.tar", [simple_image(f"t{n}:v1", seed=f"t{n}")])
        subprocess.run(
            [sys.executable, "-m", "registryv2", "push", str(tar), f"{registry.host}/tty/t{n}:v1"],
            check=True,
            capture_output=True,
        )
    listing = tmp_path / "sync.yml"
    listing.write_text(f"{registry.host}:\n  images:\n    tty/t0: [v1]\n    tty/t1: [v1]\n")
    args = ("--src", "yaml", "--dest", "docker", str(listing), f"{other.host}/tty")
    with Terminal("sync", *args) as terminal:
        said = terminal.wait_for("EXIT=")
    assert "EXIT=0" in said, said
    # The set's line, redrawn in place, ends with both images; then the summary.
    assert "Syncing: 2/2 images" in said and "Synced 2 images: 2 copied" in said, said
