"""The patient-specific benchmark in the assessment JSON (``benchmark``).

Shown only for ``sorafenib-plus-tace`` / ``sorafenib-alone`` (the arm the
recommendation names) and ``on-sorafenib`` (the arm of the patient's actual
treatment: TACE after the sorafenib start means the combination). Survival at 6,
12 and 24 months and the median with their 95% CIs; after at least 3 months on
sorafenib (the study included only such patients) survival conditional on the
months already survived, S(s + h) / S(s), suppressed where fewer than 5 pseudo
patients remain at risk. Always a benchmark from a small retrospective cohort,
never a prediction, never a treatment effect of one arm over the other.
"""

from __future__ import annotations

from datetime import date

from rules.assessment import Assessment
from service.benchmarks.tables import ArmTable, BenchmarkTables

COHORT_ID = "tace-resistant-hcc"
LANDMARK_MONTHS = (6, 12, 24)
CONDITIONAL_HORIZONS_MONTHS = (6, 12, 24)
MIN_MONTHS_ON_SORAFENIB = 3
MIN_AT_RISK = 5
DAYS_PER_MONTH = 30.4375
BENCHMARK_CODES = ("sorafenib-plus-tace", "sorafenib-alone", "on-sorafenib")
FRAMING = (
    "The two arms were not randomised (the monotherapy patients had worse performance status and more "
    "extrahepatic disease): the difference between them is not a treatment effect."
)


def months_between(start: date, end: date) -> float:
    return round((end - start).days / DAYS_PER_MONTH, 1)


def actual_arm(assessment: Assessment) -> str:
    """The patient's own treatment: TACE performed after the sorafenib start is the combination."""
    start = assessment.sorafenib.start
    after = [
        p for p in assessment.snapshot.procedures_of("tace")
        if p.status == "completed" and p.performed and start and p.performed > start
    ]
    return "sorafenib-plus-tace" if after else "sorafenib-alone"


def _point(arm: ArmTable, month: float) -> dict | None:
    p = arm.survival_at(month)
    if p is None or p.estimate is None or p.ci_lower is None or p.ci_upper is None:
        return None
    return {"month": month, "estimate": p.estimate, "ci_lower": p.ci_lower, "ci_upper": p.ci_upper}


def _conditional(arm: ArmTable, months_on: float) -> list[dict]:
    base = arm.survival_at(months_on)
    rows = []
    for horizon in CONDITIONAL_HORIZONS_MONTHS:
        target = months_on + horizon
        at_risk = arm.at_risk(target)
        row: dict = {"months_ahead": horizon, "month": round(target, 1), "at_risk": at_risk}
        later = arm.survival_at(target)
        if at_risk < MIN_AT_RISK or base is None or not base.estimate or later is None or later.estimate is None:
            row["estimate"] = None
            row["suppressed"] = f"fewer than {MIN_AT_RISK} pseudo patients at risk at month {target:g}"
        else:
            row["estimate"] = round(later.estimate / base.estimate, 4)
        rows.append(row)
    return rows


def patient_benchmark(assessment: Assessment, tables: BenchmarkTables) -> dict | None:
    code = assessment.recommendation.code
    if code not in BENCHMARK_CODES:
        return None
    arm_id = actual_arm(assessment) if code == "on-sorafenib" else code
    arm = tables.cohort(COHORT_ID).arm(arm_id)
    doc = arm.document
    months_on = None
    conditional: list[dict] = []
    conditional_note = None
    if code == "on-sorafenib" and assessment.sorafenib.start is not None:
        months_on = months_between(assessment.sorafenib.start, assessment.as_of)
        if months_on >= MIN_MONTHS_ON_SORAFENIB:
            conditional = _conditional(arm, months_on)
        else:
            conditional_note = (
                f"{months_on:g} months on sorafenib: conditional survival is shown only after "
                f"{MIN_MONTHS_ON_SORAFENIB} months (the study included only patients treated that long)."
            )
            months_on = None
    median = arm.median_os_months
    benchmark = {
        "cohort": COHORT_ID,
        "arm": arm_id,
        "label": arm.label,
        "n": arm.n,
        "median_os_months": {"estimate": median.estimate, "ci_lower": median.ci_lower, "ci_upper": median.ci_upper},
        "survival": [p for p in (_point(arm, m) for m in LANDMARK_MONTHS) if p is not None],
        "conditional_on_months_on_sorafenib": months_on,
        "conditional_survival": conditional,
        "response": doc.get("response"),
        "adverse_events": doc.get("adverse_events"),
        "caveats": [*doc.get("caveats", []), FRAMING],
        "plot": f"/api/v1/benchmarks/{COHORT_ID}/{arm_id}/plot.svg",
    }
    if conditional_note:
        benchmark["conditional_note"] = conditional_note
    return benchmark
