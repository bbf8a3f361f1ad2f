"""The built benchmark tables, loaded at start-up: plain JSON into frozen dataclasses.

The tables are built offline by :mod:`offline.benchmarks.build` (``python -m offline.benchmarks --build``)
and shipped as package data, ``rules/data/benchmarks/<cohort>.tables.json``. Loading them needs
only the standard library: this module must never import lifelines, numpy, pandas or matplotlib
(a test checks it in a fresh interpreter), so serving benchmarks costs no scientific stack and no
work per request.

Each arm carries the Kaplan-Meier step function of its pseudo patients (every distinct observed
time with the number at risk, deaths, censorings, survival and its 95% confidence interval), so
survival at any month, conditional survival S(t + s) / S(s) and numbers at risk can be read off
without refitting: :meth:`ArmTable.survival_at` and :meth:`ArmTable.at_risk`. The app loads the
tables once (``AppState.benchmarks``). The arm's ``document`` is the arm's JSON as served by the
REST API; treat it as read-only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

DEFAULT_COHORT_ID = "tace-resistant-hcc"
TABLES_SUFFIX = ".tables.json"
TABLES_FORMAT = "hcc-cds.benchmark-tables"
TABLES_FORMAT_VERSION = 1


class BenchmarkTablesError(ValueError):
    """A tables file is missing, malformed or of another format version."""


@dataclass(frozen=True)
class SurvivalPoint:
    """Kaplan-Meier survival (a fraction) at a month, with its 95% confidence interval."""

    month: float
    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True)
class KaplanMeierStep:
    """One row of the step function: at ``month``, who was at risk, died or was censored, and S after it."""

    month: float
    at_risk: int
    events: int
    censored: int
    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True)
class MedianEstimate:
    """Median survival in months with its 95% CI; ``None`` where the curve (or its bound) never reaches 50%."""

    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True)
class ArmTable:
    """One arm's reconstructed survival and its served document."""

    cohort_id: str
    arm_id: str
    label: str
    n: int
    events: int
    censored: int
    median_os_months: MedianEstimate
    km: tuple[KaplanMeierStep, ...]
    document: Mapping[str, Any]

    @property
    def last_observed_month(self) -> float:
        return self.km[-1].month

    def survival_at(self, month: float) -> SurvivalPoint | None:
        """Kaplan-Meier survival at ``month`` (right-continuous: deaths at ``month`` count).

        ``None`` beyond the last observed time while patients were still alive there: the
        estimate is not defined past the end of follow-up.
        """
        if month < 0:
            raise ValueError(f"month must be >= 0, not {month}")
        return step_value_at(self.km, month)

    def at_risk(self, month: float) -> int:
        """Pseudo patients still under observation at ``month`` (observed time >= month)."""
        if month < 0:
            raise ValueError(f"month must be >= 0, not {month}")
        for step in self.km:
            if step.month >= month:
                return step.at_risk
        return 0


@dataclass(frozen=True)
class CohortTable:
    """One cohort: its arms in publication order and its cohort-wide document."""

    cohort_id: str
    title: str
    arms: Mapping[str, ArmTable]
    document: Mapping[str, Any]

    @property
    def arm_ids(self) -> tuple[str, ...]:
        return tuple(self.arms)

    def arm(self, arm_id: str) -> ArmTable:
        try:
            return self.arms[arm_id]
        except KeyError:
            raise KeyError(
                f"unknown arm {arm_id!r} of cohort {self.cohort_id!r}; valid: {', '.join(self.arms)}"
            ) from None


@dataclass(frozen=True)
class BenchmarkTables:
    """Every shipped cohort, by id."""

    cohorts: Mapping[str, CohortTable]

    def cohort(self, cohort_id: str) -> CohortTable:
        try:
            return self.cohorts[cohort_id]
        except KeyError:
            raise KeyError(f"unknown cohort {cohort_id!r}; valid: {', '.join(self.cohorts)}") from None


def step_value_at(steps: tuple[KaplanMeierStep, ...], month: float) -> SurvivalPoint | None:
    """The step function's value at ``month``: the last step at or before it (see :meth:`ArmTable.survival_at`)."""
    current: KaplanMeierStep | None = None
    for step in steps:
        if step.month > month:
            break
        current = step
    if current is None:
        raise ValueError(f"the step function starts at {steps[0].month}, after month {month}")
    beyond_follow_up = month > steps[-1].month and (current.estimate is None or current.estimate > 0)
    if beyond_follow_up:
        return None
    return SurvivalPoint(month=month, estimate=current.estimate, ci_lower=current.ci_lower, ci_upper=current.ci_upper)


def default_tables_dir() -> Traversable:
    """``rules/data/benchmarks`` inside the installed (or source) package."""
    return resources.files("rules").joinpath("data").joinpath("benchmarks")


def load_benchmark_tables(directory: Traversable | Path | None = None) -> BenchmarkTables:
    """Read every ``*.tables.json`` in ``directory`` (default: the shipped tables), sorted by file name."""
    folder = default_tables_dir() if directory is None else directory
    files = sorted((entry for entry in folder.iterdir() if entry.name.endswith(TABLES_SUFFIX)), key=lambda e: e.name)
    if not files:
        raise BenchmarkTablesError(f"no {TABLES_SUFFIX} files in {folder}")
    cohorts = {}
    for entry in files:
        cohort = parse_cohort_tables(json.loads(entry.read_text(encoding="utf-8")), source=entry.name)
        cohorts[cohort.cohort_id] = cohort
    return BenchmarkTables(cohorts=cohorts)


def parse_cohort_tables(document: Mapping[str, Any], source: str = "<tables>") -> CohortTable:
    """Turn one tables document (as written by the build) into a :class:`CohortTable`."""
    if document.get("format") != TABLES_FORMAT or document.get("format_version") != TABLES_FORMAT_VERSION:
        raise BenchmarkTablesError(
            f"{source}: expected format {TABLES_FORMAT!r} version {TABLES_FORMAT_VERSION}, "
            f"found {document.get('format')!r} version {document.get('format_version')!r}; rebuild the tables"
        )
    try:
        cohort = document["cohort"]
        arms = {arm["arm"]: _parse_arm(cohort["id"], arm) for arm in document["arms"]}
        return CohortTable(cohort_id=cohort["id"], title=cohort["title"], arms=arms, document=cohort)
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchmarkTablesError(f"{source}: malformed tables ({exc!r}); rebuild them") from exc


def _parse_arm(cohort_id: str, arm: Mapping[str, Any]) -> ArmTable:
    median = arm["median_os_months"]
    steps = tuple(_parse_steps(arm["km"]))
    if not steps or steps[0].month != 0:
        raise ValueError(f"arm {arm['arm']!r}: the step function must start at month 0")
    return ArmTable(
        cohort_id=cohort_id,
        arm_id=arm["arm"],
        label=arm["label"],
        n=int(arm["n"]),
        events=int(arm["events"]),
        censored=int(arm["censored"]),
        median_os_months=MedianEstimate(median["estimate"], median["ci_lower"], median["ci_upper"]),
        km=steps,
        document=arm,
    )


def _parse_steps(rows: Iterable[Mapping[str, Any]]) -> Iterable[KaplanMeierStep]:
    for row in rows:
        yield KaplanMeierStep(
            month=float(row["month"]),
            at_risk=int(row["at_risk"]),
            events=int(row["events"]),
            censored=int(row["censored"]),
            estimate=row["estimate"],
            ci_lower=row["ci_lower"],
            ci_upper=row["ci_upper"],
        )
