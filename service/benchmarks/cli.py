"""``hcc-cds benchmarks --build | --report``: rebuild the benchmark tables, or compare them with the paper.

``--build`` reruns the pseudo-patient search and the lifelines fits for every cohort definition in
``rules/data/cohorts/`` and rewrites ``rules/data/benchmarks/*.tables.json`` (needs the ``build``
extra: lifelines). ``--report`` prints published vs reconstructed for every figure from the tables
(no lifelines needed); with ``--build`` it reports on the freshly built tables. ``--out-dir``
writes (and reports on) tables elsewhere, e.g. to inspect a rebuild without touching the shipped
files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from service.benchmarks.report import render_report
from service.benchmarks.tables import BenchmarkTablesError, load_benchmark_tables


def make_parser(prog: str = "hcc-cds benchmarks") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Cohort survival benchmarks: build the tables, or report published vs reconstructed."
    )
    parser.add_argument(
        "--build", action="store_true", help="rebuild the tables from rules/data/cohorts/ (needs lifelines)"
    )
    parser.add_argument("--report", action="store_true", help="print published vs reconstructed for every figure")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where --build writes and --report reads (default: the shipped tables)",
    )
    return parser


def main(argv: list[str]) -> int:
    """Run the command; returns the process exit code (0 ok, 1 failure, 2 usage)."""
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code or 0)
    if not (args.build or args.report):
        parser.print_usage(sys.stderr)
        print("hcc-cds benchmarks: give --build, --report or both", file=sys.stderr)
        return 2
    if args.build:
        try:
            from service.benchmarks.build import build
        except ImportError as exc:  # lifelines is an optional (build-time) dependency
            print(f"hcc-cds benchmarks --build needs the build extra (lifelines): {exc}", file=sys.stderr)
            return 1
        from service.benchmarks.plots import render_plots

        started = time.perf_counter()
        for path in build(out_dir=args.out_dir):
            print(f"wrote {path}")
        for path in render_plots(tables_dir=args.out_dir):
            print(f"wrote {path}")
        print(f"built in {time.perf_counter() - started:.1f} s")
    if args.report:
        try:
            tables = load_benchmark_tables(args.out_dir)
        except (BenchmarkTablesError, OSError) as exc:
            print(f"hcc-cds benchmarks --report: {exc}", file=sys.stderr)
            return 1
        sys.stdout.write(render_report(tables))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
