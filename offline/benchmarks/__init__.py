"""Building the cohort survival benchmarks from the source study's published figures (offline).

- :mod:`offline.benchmarks.pseudo_ipd`: the deterministic search for constraint-matched pseudo
  individual patient data.
- :mod:`offline.benchmarks.build`: lifelines fits and the tables file (needs lifelines and scipy).
- :mod:`offline.benchmarks.plots`: the Kaplan-Meier plots of every arm (needs matplotlib).
- ``python -m offline.benchmarks --build [--report] [--out-dir DIR]``: builds both, then optionally
  prints the report of ``hcc-cds benchmarks --report``.
"""
