"""A real pseudo-terminal for the tests: a tmux session whose screen can be read and typed into."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

from .servers import Closing, require


class Terminal(Closing):
    """``registryv2 ARGS`` running in its own tmux server, on a screen ``width`` x ``height``.

    The pane stays open after the command ends, showing ``EXIT=<status>``.
    """

    def __init__(self, *args: str, width: int = 150, height: int = 40) -> None:
        self.socket = f"registryv2-test-{os.getpid()}-{time.monotonic_ns()}"
        command = shlex.join([sys.executable, "-m", "registryv2", *args])
        self._tmux(
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            str(width),
            "-y",
            str(height),
            f"{command}; echo EXIT=$?; sleep 600",
        )

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            [require("tmux"), "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return done.stdout

    def screen(self) -> str:
        """What the screen shows now."""
        return self._tmux("capture-pane", "-p", "-t", "t")

    def press(self, *keys: str) -> None:
        """Type into the terminal (tmux key names: ``Enter``, ``C-c``...)."""
        self._tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """The screen, once it shows ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed {text!r}:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(
            [require("tmux"), "-L", self.socket, "kill-server"], check=False, capture_output=True
        )
