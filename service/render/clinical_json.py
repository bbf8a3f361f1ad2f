"""The JSON shape of each clinical result (``assessment.schema.json``'s snake_case names and tokens).

The rules compute; this module shapes. ``Finding.as_dict`` (in ``rules.findings``) and the
mRECIST and TACE-resistance shapes (``rules.mrecist``, ``rules.tace_resistance``) still live
with their rules: the TACE-resistance shape is built from the finding's.
"""

from __future__ import annotations

from typing import Any

from rules.bclc import BclcAssessment, BclcStage
from rules.child_pugh import ChildPugh, ItemScore
from rules.ctcae import AdverseEvent
from rules.dose import DoseAdvice
from rules.eligibility import Eligibility
from rules.findings import DataIssue
from rules.performance_status import PerformanceStatus
from rules.recommendation import Recommendation
from rules.safety import SafetyNote

JSON = dict[str, Any]


def data_issue_json(issue: DataIssue) -> JSON:
    return {"resource": issue.resource, "problem": issue.problem}


def item_score_json(item: ItemScore) -> JSON:
    data: JSON = {"points": item.points, "value": item.value}
    if item.evidence:
        data["evidence"] = item.evidence
    if item.date:
        data["date"] = item.date.isoformat()
    return data


def child_pugh_json(cp: ChildPugh) -> JSON:
    return {
        "date": cp.anchor.isoformat(),
        "score": cp.score,
        "class": cp.klass,
        "points": {name: item_score_json(item) for name, item in cp.points.items()},
        "reasons": list(cp.reasons),
        "cautions": list(cp.cautions),
        "evidence": list(cp.evidence),
        "citation": cp.citation,
    }


def performance_status_json(ps: PerformanceStatus) -> JSON:
    """The schema's ``performance_status`` object, plus source, reasons, evidence and citation."""
    return {
        "ecog": ps.ecog,
        "karnofsky": ps.karnofsky,
        "date": ps.date.isoformat() if ps.date else None,
        "source": ps.source,
        "reasons": list(ps.reasons),
        "evidence": list(ps.evidence),
        "citation": ps.citation,
    }


def bclc_stage_json(stage: BclcStage) -> JSON:
    return {
        "stage": stage.stage,
        "reasons": list(stage.reasons),
        "evidence": list(stage.evidence),
        "citation": stage.citation,
    }


def bclc_json(bclc: BclcAssessment) -> JSON:
    """The schema's ``bclc`` object (``at_first_tace``, ``current``, ``tumour_extent_stage``, ``reasons``) plus extras."""
    return {
        "at_first_tace": bclc.at_first_tace.stage if bclc.at_first_tace else None,
        "current": bclc.current.stage,
        "tumour_extent_stage": bclc.tumour_extent.stage,
        "tumour_extent_stage_at_first_tace": (
            bclc.tumour_extent_at_first_tace.stage if bclc.tumour_extent_at_first_tace else None
        ),
        "reasons": list(bclc.reasons),
        "evidence": list(bclc.evidence),
        "note": bclc.note,
        "citation": bclc.citation,
    }


def eligibility_json(eligibility: Eligibility) -> JSON:
    return {
        "status": eligibility.status,
        "criteria": [c.as_dict() for c in eligibility.criteria],
        "to_confirm": list(eligibility.to_confirm),
        "warnings": list(eligibility.warnings),
    }


def recommendation_json(rec: Recommendation) -> JSON:
    return {
        "code": rec.code,
        "summary": rec.summary,
        "reasons": list(rec.reasons),
        "context": rec.context,
        "citation": rec.citation,
    }


def safety_note_json(note: SafetyNote) -> JSON:
    return {
        "id": note.id,
        "text": note.text,
        "label_contraindication": note.label_contraindication,
        "evidence": list(note.evidence),
        "citation": note.citation,
    }


def adverse_event_json(event: AdverseEvent) -> JSON:
    data: JSON = {"term": event.term, "grade": event.grade}
    if event.date:  # the schema's date is a string when present
        data["date"] = event.date.isoformat()
    data.update(evidence=list(event.evidence), reason=event.reason)
    if event.baseline_grade is not None:
        data["baseline"] = {
            "grade": event.baseline_grade,
            "date": event.baseline_date.isoformat() if event.baseline_date else None,
            "evidence": list(event.baseline_evidence),
        }
    return data


def dose_json(dose: DoseAdvice) -> JSON:
    return {
        "current_mg_per_day": dose.current_mg_per_day,
        "level": dose.level,
        "next_step": dose.next_step,
        "next_level": dose.next_level,
        "reasons": list(dose.reasons),
        "evidence": list(dose.evidence),
        "citation": dose.citation,
    }
