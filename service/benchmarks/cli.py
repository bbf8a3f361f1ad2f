"""``hcc-cds benchmarks --report``: the published figures beside the reconstructed ones, from the shipped tables.

The tables are built offline, from a source checkout: ``python -m offline.benchmarks --build``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.benchmarks.report import render_report
from service.benchmarks.tables import BenchmarkTablesError, load_benchmark_tables

BUILD_COMMAND = "python -m offline.benchmarks --build"


def make_parser(prog: str = "hcc-cds benchmarks") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Cohort survival benchmarks: report published vs reconstructed (build them with `{BUILD_COMMAND}`).",
    )
    parser.add_argument("--build", action="store_true", help=f"moved: run `{BUILD_COMMAND}` from a source checkout")
    parser.add_argument("--report", action="store_true", help="print published vs reconstructed for every figure")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="the tables --report reads (default: the shipped tables)"
    )
    return parser


def report(tables_dir: Path | None, prog: str = "hcc-cds benchmarks --report") -> int:
    """Print the report of the tables in ``tables_dir`` (default: the shipped ones); the exit code."""
    try:
        tables = load_benchmark_tables(tables_dir)
    except (BenchmarkTablesError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render_report(tables))
    return 0


def main(argv: list[str]) -> int:
    """Run the command; returns the process exit code (0 ok, 1 failure, 2 usage)."""
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code or 0)
    if args.build:
        print(f"hcc-cds benchmarks: the tables are built offline, from a source checkout: {BUILD_COMMAND}", file=sys.stderr)
        return 2
    if not args.report:
        parser.print_usage(sys.stderr)
        print("hcc-cds benchmarks: give --report", file=sys.stderr)
        return 2
    return report(args.out_dir)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
