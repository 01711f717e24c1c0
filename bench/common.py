"""What the benchmarks share: checking the tools are there, timing rounds, printing the table."""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from collections.abc import Callable


def require_tools(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is not installed (bash .ci/setup installs it)")


def print_header(what: str, size: int, layers: int, rounds: int) -> None:
    print(f"{what}: {size / 1e6:.0f} MB, {layers} layers, {rounds} rounds each")
    print(f"{'tool':<12}{'median s':>10}{'min s':>10}{'MB/s':>10}")


def time_rounds(
    name: str,
    size: int,
    rounds: int,
    run: Callable[[int], None],
    before: Callable[[int], None] = lambda n: None,
    after: Callable[[int], None] = lambda n: None,
) -> None:
    """Time ``run(n)`` for each round ``n`` (``before``/``after`` untimed) and print a row."""
    times = []
    for n in range(rounds):
        before(n)
        try:
            start = time.perf_counter()
            run(n)
            times.append(time.perf_counter() - start)
        finally:
            after(n)
    median = statistics.median(times)
    print(f"{name:<12}{median:>10.2f}{min(times):>10.2f}{size / 1e6 / median:>10.0f}")
