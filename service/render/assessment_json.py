"""Assessment -> the JSON of ``assessment.schema.json`` (snake_case names, schema tokens)."""

from __future__ import annotations

from rules.assessment import Assessment
from rules.knowledge import Knowledge


def render_assessment(assessment: Assessment, k: Knowledge) -> dict:
    """The REST answer for one patient; sections not built yet are absent."""
    return {
        "patient_id": assessment.patient_id,
        "as_of": assessment.as_of.isoformat(),
        "versions": dict(assessment.versions),
        "overrides": [o.describe() for o in k.overrides],
        "data_issues": [i.as_dict() for i in assessment.data_issues],
        "assumptions": list(assessment.assumptions),
        "hcc_diagnosis": assessment.hcc_diagnosis.as_dict(),
        "child_pugh": assessment.child_pugh.as_dict(),
        "performance_status": assessment.performance_status.as_dict(),
        "sorafenib_eligibility": assessment.sorafenib_eligibility.as_dict(),
        "warnings": list(assessment.warnings),
    }
