"""Assessment -> the JSON of ``assessment.schema.json`` (snake_case names, schema tokens)."""

from __future__ import annotations

from rules import Assessment, Knowledge
from service.benchmarks.patient import patient_benchmark
from service.benchmarks.tables import BenchmarkTables


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
    data = assessment.mrecist.as_dict()
    data["treatment"] = assessment.mrecist_note
    return data


def render_assessment(assessment: Assessment, k: Knowledge, tables: BenchmarkTables) -> dict:
    """The REST answer for one patient."""
    eligibility = assessment.sorafenib_eligibility.as_dict()
    eligibility["to_confirm"] = list(dict.fromkeys(eligibility["to_confirm"] + list(assessment.tace_candidacy.to_confirm)))
    child_pugh = assessment.child_pugh.as_dict()
    child_pugh["at_first_tace"] = assessment.child_pugh_at_first_tace.as_dict() if assessment.child_pugh_at_first_tace else None
    return {
        "patient_id": assessment.patient_id,
        "as_of": assessment.as_of.isoformat(),
        "versions": dict(assessment.versions),
        "overrides": [o.describe() for o in k.overrides],
        "data_issues": [i.as_dict() for i in assessment.data_issues],
        "assumptions": list(assessment.assumptions),
        "hcc_diagnosis": assessment.hcc_diagnosis.as_dict(),
        "sorafenib": {
            "start": assessment.sorafenib.start.isoformat() if assessment.sorafenib.start else None,
            "current": assessment.on_sorafenib,
            "evidence": list(assessment.sorafenib.evidence),
        },
        "child_pugh": child_pugh,
        "performance_status": assessment.performance_status.as_dict(),
        "bclc": assessment.bclc.as_dict(),
        "tace_resistance": assessment.tace_resistance.as_dict(),
        "mrecist": _mrecist(assessment),
        "sorafenib_eligibility": eligibility,
        "tace_candidacy": assessment.tace_candidacy.finding.as_dict(),
        "recommendation": assessment.recommendation.as_dict(),
        "safety": [n.as_dict() for n in assessment.safety],
        "adverse_events": [e.as_dict() for e in assessment.adverse_events],
        "dose": assessment.dose.as_dict() if assessment.dose else None,
        "warnings": list(assessment.warnings),
        "benchmark": patient_benchmark(assessment, tables),
    }
