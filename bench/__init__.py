"""Benchmarks of hcc-cds: ``python -m bench --help`` (see BENCHMARKS.md for the last results)."""
