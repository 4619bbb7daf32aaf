"""``python -m bench [NAME ...] [--duration SECONDS]``: run benchmarks and print a table."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bench import dispatch, ingest, monitor, registry, subsidy
from bench.common import Phase


class Outcome(Protocol):
    phases: list[Phase]  # empty when a benchmark prints its own table in ``summary``
    summary: list[str]
    path: Path


BENCHMARKS: dict[str, Callable[[registry.Options], Outcome]] = {
    "registry": registry.run,
    "ingest": ingest.run,
    "monitor": monitor.run,
    "dispatch": dispatch.run,
    "subsidy": subsidy.run,  # BENCH_SUBSIDY_ELDERS / BENCH_SUBSIDY_SCALE set the district size
}

COLUMNS = (
    ("phase", "<24"),
    ("req/s", ">9"),
    ("p50 ms", ">8"),
    ("p99 ms", ">8"),
    ("fails", ">6"),
    ("srv CPU", ">8"),
    ("µs/req", ">7"),
    ("gen CPU", ">8"),
)


def row(phase: Phase) -> list[str]:
    load = phase.load
    return [
        phase.name,
        f"{phase.rps:,.0f}",
        f"{phase.p50:.2f}",
        f"{phase.p99:.2f}",
        str(phase.failures),
        f"{phase.server_cpu_share:.0%}",
        f"{phase.cpu_us_per_request:,.0f}",
        f"{load['loadgen_cpu_share']:.0%}",
    ]


def print_table(phases: list[Phase]) -> None:
    header = " ".join(f"{name:{fmt}}" for name, fmt in COLUMNS)
    print(header)
    print("-" * len(header))
    for phase in phases:
        print(" ".join(f"{cell:{fmt}}" for cell, (_, fmt) in zip(row(phase), COLUMNS, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=8.0,
        help="registry: measured seconds per load phase (default 8)",
    )
    parser.add_argument(
        "--elders",
        type=int,
        default=registry.ELDERS,
        help=f"elders created per create phase (default {registry.ELDERS})",
    )
    parser.add_argument(
        "--homes",
        type=int,
        default=monitor.HOMES,
        help=f"monitor: homes in the district scanned (default {monitor.HOMES:,})",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    options = registry.Options(duration=args.duration, elders=args.elders)
    for name in args.names or list(BENCHMARKS):
        started = time.monotonic()
        print(f"== {name} ==", file=sys.stderr, flush=True)
        if name == "monitor":
            outcome = monitor.run(options, homes=args.homes)
        else:
            outcome = BENCHMARKS[name](options)
        print(f"\n== {name} ({time.monotonic() - started:.0f} s) ==")
        if outcome.phases:
            print_table(outcome.phases)
            print()
        for line in outcome.summary:
            print(line)
        print(f"\nresults: {outcome.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
