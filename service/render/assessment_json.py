"""Assessment -> the JSON of ``assessment.schema.json`` (snake_case names, schema tokens)."""

from __future__ import annotations

from rules import Assessment, Knowledge
from service.benchmarks.patient import patient_benchmark
from service.benchmarks.tables import BenchmarkTables
from service.render.clinical_json import (
    adverse_event_json,
    bclc_json,
    child_pugh_json,
    data_issue_json,
    dose_json,
    eligibility_json,
    finding_json,
    mrecist_json,
    performance_status_json,
    recommendation_json,
    safety_note_json,
    tace_resistance_json,
)


def _mrecist(assessment: Assessment) -> dict:
    if assessment.mrecist is None:
        return {
            "category": None,
            "baseline": None,
            "nadir": None,
            "current": None,
            "change_from_baseline_pct": None,
            "change_from_nadir_pct": None,
            "new_lesions": [],
            "reasons": [assessment.mrecist_note] if assessment.mrecist_note else [],
        }
    data = mrecist_json(assessment.mrecist)
    data["treatment"] = assessment.mrecist_note
    return data


def render_assessment(assessment: Assessment, k: Knowledge, tables: BenchmarkTables) -> dict:
    """The REST answer for one patient."""
    eligibility = eligibility_json(assessment.sorafenib_eligibility)
    eligibility["to_confirm"] = list(dict.fromkeys(eligibility["to_confirm"] + list(assessment.tace_candidacy.to_confirm)))
    child_pugh = child_pugh_json(assessment.child_pugh)
    child_pugh["at_first_tace"] = child_pugh_json(assessment.child_pugh_at_first_tace) if assessment.child_pugh_at_first_tace else None
    return {
        "patient_id": assessment.patient_id,
        "as_of": assessment.as_of.isoformat(),
        "versions": dict(assessment.versions),
        "overrides": [o.describe() for o in k.overrides],
        "data_issues": [data_issue_json(i) for i in assessment.data_issues],
        "assumptions": list(assessment.assumptions),
        "hcc_diagnosis": finding_json(assessment.hcc_diagnosis),
        "sorafenib": {
            "start": assessment.sorafenib.start.isoformat() if assessment.sorafenib.start else None,
            "current": assessment.on_sorafenib,
            "evidence": list(assessment.sorafenib.evidence),
        },
        "child_pugh": child_pugh,
        "performance_status": performance_status_json(assessment.performance_status),
        "bclc": bclc_json(assessment.bclc),
        "tace_resistance": tace_resistance_json(assessment.tace_resistance),
        "mrecist": _mrecist(assessment),
        "sorafenib_eligibility": eligibility,
        "tace_candidacy": finding_json(assessment.tace_candidacy.finding),
        "recommendation": recommendation_json(assessment.recommendation),
        "safety": [safety_note_json(n) for n in assessment.safety],
        "adverse_events": [adverse_event_json(e) for e in assessment.adverse_events],
        "dose": dose_json(assessment.dose) if assessment.dose else None,
        "warnings": list(assessment.warnings),
        "benchmark": patient_benchmark(assessment, tables),
    }
