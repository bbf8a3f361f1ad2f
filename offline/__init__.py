"""Offline tools, run from a source checkout and never shipped (not in the wheel, not in the image).

- :mod:`offline.benchmarks`: builds the survival benchmark tables and plots (``rules/data/benchmarks/``)
  from the cohort definition (``python -m offline.benchmarks --build``; needs the ``build`` extra).
- :mod:`offline.cohort.generate`: writes the synthetic study cohort (``service/demo/data/cohort/``;
  ``python -m offline.cohort.generate``).
- :mod:`offline.screening_cohort`: a synthetic hospital-sized Bulk Data export (NDJSON + manifest) cloned from the
  embedded records, for benchmarking ``hcc-cds screen`` (``python -m offline.screening_cohort --patients N --seed S
  --out DIR``).

The first two write files the service reads at run time with the standard library only
(``service.benchmarks.tables``, ``service.benchmarks.plots``, ``service.cohort.load``). They may import
``service`` and ``rules``; nothing there imports them.
"""
