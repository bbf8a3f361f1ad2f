"""Cohort survival benchmarks from the source study's published figures.

- :mod:`service.benchmarks.pseudo_ipd`: the deterministic search for constraint-matched pseudo
  individual patient data (build time only).
- :mod:`service.benchmarks.build`: lifelines fits and the tables file (build time only; needs lifelines).
- :mod:`service.benchmarks.tables`: loads the shipped tables with the standard library only (run time).
- :mod:`service.benchmarks.report` and :mod:`service.benchmarks.cli`: ``hcc-cds benchmarks --build|--report``.

Importing this package imports nothing else, so the service never pulls in the scientific stack.
"""
