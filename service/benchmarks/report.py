"""Published vs reconstructed, side by side, for every figure in the built tables.

Presentation only: the checks are computed by :mod:`offline.benchmarks.build` and stored in the
tables, so the report needs no scientific stack. Each row shows the published figure, the value
the tables hold (reconstructed from pseudo patients, or recomputed from published counts), the
target and whether the value is within it (``yes`` / ``no`` / ``n/a`` where there is no target);
notes are numbered under each section.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from service.benchmarks.tables import BenchmarkTables, CohortTable

COLUMNS = ("figure", "published", "reconstructed", "target", "within")
SIGNIFICANT_DIGITS = 4


def render_report(tables: BenchmarkTables) -> str:
    """The report for every cohort in ``tables``."""
    return "\n\n".join(render_cohort_report(cohort) for cohort in tables.cohorts.values()) + "\n"


def render_cohort_report(cohort: CohortTable) -> str:
    document = cohort.document
    search = document["method"]["search"]
    lines = [
        f"Benchmark cohort {cohort.cohort_id}: {cohort.title}",
        f"Source: {document['citation']['text']}",
        f"Method: {document['method']['summary']}",
        f"Search: {search['splits_searched']} splits of the survivors, {search['sweeps']} sweeps, "
        f"{search['evaluations']} candidates scored, {search['targets_missed']} targets missed; "
        f"survivors by arm {_survivors(search['alive_by_arm'])}.",
    ]
    for arm in cohort.arms.values():
        title = f"{arm.label} ({arm.arm_id}, n={arm.n}: {arm.events} deaths, {arm.censored} censored)"
        lines += ["", title, *_table(arm.document["checks"])]
    lines += ["", "Comparisons between arms", *_table(document["checks"])]
    missed = [
        f"{arm_id}: {check['figure']}"
        for arm_id, checks in _all_checks(cohort)
        for check in checks
        if check["within_target"] == "no"
    ]
    lines += ["", "Outside target: " + ("; ".join(missed) if missed else "none")]
    return "\n".join(lines)


def _all_checks(cohort: CohortTable) -> Iterable[tuple[str, Sequence[Mapping[str, Any]]]]:
    for arm in cohort.arms.values():
        yield arm.arm_id, arm.document["checks"]
    yield "between arms", cohort.document["checks"]


def _survivors(alive_by_arm: Mapping[str, int]) -> str:
    return ", ".join(f"{arm} {count}" for arm, count in alive_by_arm.items())


def _table(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    notes: list[str] = []
    rows = [COLUMNS]
    for check in checks:
        figure = check["figure"]
        if check.get("note"):
            notes.append(check["note"])
            figure = f"{figure} [{len(notes)}]"
        rows.append(
            (
                figure,
                _number(check["published"]),
                _number(check["reconstructed"]),
                check["target"],
                check["within_target"],
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines += [f"  [{number}] {note}" for number, note in enumerate(notes, start=1)]
    return lines


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    return str(value)
