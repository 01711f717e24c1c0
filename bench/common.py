"""What the benchmarks share: options, the image, the tools, timing rounds, the table."""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.archives import write_big_legacy


def options(description: str) -> argparse.Namespace:
    """Parse ``--size-mb``, ``--layers`` and ``--rounds``, after checking the tools are there."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_tools("docker-registry", "skopeo", "curl")
    return args


def bench_archive(work: Path, args: argparse.Namespace) -> Path:
    """An archive of ``bench/app:v1`` with ``--layers`` random layers of ``--size-mb`` in all."""
    per_layer = args.size_mb * 1024 * 1024 // args.layers
    return write_big_legacy(work / "app.tar", "bench/app:v1", [per_layer] * args.layers)


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
