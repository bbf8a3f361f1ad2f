"""``python -m offline.benchmarks``: build the benchmark tables and plots; ``--report`` prints them after."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from offline.benchmarks.build import build
from offline.benchmarks.plots import render_plots
from service.benchmarks.cli import report


def make_parser(prog: str = "python -m offline.benchmarks") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Build the cohort survival benchmark tables and plots (needs the build extra)."
    )
    parser.add_argument("--build", action="store_true", help="rebuild the tables and plots from rules/data/cohorts/")
    parser.add_argument("--report", action="store_true", help="then print published vs reconstructed for every figure")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="where to write (default: the shipped tables, rules/data/benchmarks/)"
    )
    return parser


def main(argv: list[str]) -> int:
    """Run the command; returns the process exit code (0 ok, 1 failure, 2 usage)."""
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code or 0)
    if not args.build:
        parser.print_usage(sys.stderr)
        print("python -m offline.benchmarks: give --build (and --report to print the result)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    for path in build(out_dir=args.out_dir):
        print(f"wrote {path}")
    for path in render_plots(tables_dir=args.out_dir):
        print(f"wrote {path}")
    print(f"built in {time.perf_counter() - started:.1f} s")
    return report(args.out_dir, prog="python -m offline.benchmarks --report") if args.report else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
