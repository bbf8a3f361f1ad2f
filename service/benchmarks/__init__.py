"""Cohort survival benchmarks from the source study's published figures, as the service reads them.

- :mod:`service.benchmarks.tables`: loads the shipped tables with the standard library only.
- :mod:`service.benchmarks.plots`: the pre-rendered plots and the patient's position drawn on them.
- :mod:`service.benchmarks.patient`: where one patient stands on the curves.
- :mod:`service.benchmarks.report` and :mod:`service.benchmarks.cli`: ``hcc-cds benchmarks --report``.

The tables and plots are built offline (:mod:`offline.benchmarks`, not shipped). Importing this
package imports nothing else, so the service never pulls in the scientific stack.
"""
