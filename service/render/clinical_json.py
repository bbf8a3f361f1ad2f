"""The JSON shape of each clinical result (``assessment.schema.json``'s snake_case names and tokens).

The rules compute; this module shapes, every result of the rules included (findings, mRECIST
and its timeline, TACE resistance).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from rules.bclc import BclcAssessment, BclcStage
from rules.child_pugh import ChildPugh, ItemScore
from rules.ctcae import AdverseEvent
from rules.dose import DoseAdvice
from rules.eligibility import Eligibility
from rules.findings import DataIssue, Finding
from rules.mrecist import Baseline, MrecistResult, SumAt, Target, TimepointEvaluation
from rules.performance_status import PerformanceStatus
from rules.recommendation import Recommendation
from rules.safety import SafetyNote
from rules.tace_resistance import TaceResistance

JSON = dict[str, Any]


def finding_json(finding: Finding) -> JSON:
    data: JSON = {}
    if finding.id is not None:
        data["id"] = finding.id
    if finding.kind is not None:
        data["kind"] = finding.kind
    data.update(
        status=finding.status.value,
        reasons=list(finding.reasons),
        evidence=list(finding.evidence),
        citation=finding.citation,
    )
    return data


def tace_resistance_json(resistance: TaceResistance) -> JSON:
    data = finding_json(resistance.finding)
    data["definition"] = "JSH-2010"
    data["tace_sessions"] = list(resistance.sessions)
    data["jsh_2014"] = finding_json(resistance.jsh_2014)
    return data


def mm_number(value: Fraction) -> int | float:
    """A length for JSON: an integer when whole, else the float."""
    return value.numerator if value.denominator == 1 else float(value)


def _optional_mm(value: Fraction | None) -> int | float | None:
    return mm_number(value) if value is not None else None


def target_json(target: Target) -> JSON:
    return {"lesion": target.lesion, "diameter_mm": mm_number(target.diameter_mm), "organ": target.organ}


def sum_at_json(sum_at: SumAt) -> JSON:
    return {"date": sum_at.date.isoformat(), "sum_mm": mm_number(sum_at.sum_mm)}


def baseline_json(baseline: Baseline) -> JSON:
    return {
        "date": baseline.date.isoformat(),
        "sum_mm": mm_number(baseline.sum_mm),
        "targets": [target_json(t) for t in baseline.targets],
        "non_targets": list(baseline.non_targets),
    }


def timepoint_json(t: TimepointEvaluation) -> JSON:
    return {
        "date": t.date.isoformat(),
        "sum_mm": _optional_mm(t.sum_mm),
        "category": t.category,
        "target_response": t.target_response,
        "non_target_response": t.non_target_response,
        "nadir": sum_at_json(t.nadir) if t.nadir else None,
        "change_from_baseline_pct": t.change_from_baseline_pct,
        "change_from_nadir_pct": t.change_from_nadir_pct,
        "targets_missing": list(t.targets_missing),
        "new_lesions": list(t.new_lesions),
        "new_lesions_below_threshold": list(t.new_lesions_below_threshold),
        "progression": list(t.progression),
        "reasons": list(t.reasons),
        "evidence": list(t.evidence),
    }


def mrecist_json(result: MrecistResult) -> JSON:
    """The schema's ``mrecist`` object, plus responses by component, evidence, timeline and citation."""
    cur = result.current
    return {
        "category": result.category,
        "baseline": baseline_json(result.baseline) if result.baseline else None,
        "nadir": sum_at_json(cur.nadir) if cur and cur.nadir else None,
        "current": {"date": cur.date.isoformat(), "sum_mm": _optional_mm(cur.sum_mm)} if cur else None,
        "change_from_baseline_pct": cur.change_from_baseline_pct if cur else None,
        "change_from_nadir_pct": cur.change_from_nadir_pct if cur else None,
        "new_lesions": list(cur.new_lesions) if cur else [],
        "new_lesions_below_threshold": list(cur.new_lesions_below_threshold) if cur else [],
        "target_response": cur.target_response if cur else None,
        "non_target_response": cur.non_target_response if cur else None,
        "reasons": list(result.reasons),
        "evidence": list(result.evidence),
        "timeline": [timepoint_json(t) for t in result.timeline],
        "citation": result.citation,
    }


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
        "criteria": [finding_json(c) for c in eligibility.criteria],
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
