"""The HCC diagnosis: an active, confirmed HCC Condition present at ``as_of`` (PRODUCT.md, decision table row 1)."""

from __future__ import annotations

from datetime import date

from rules import wording
from rules.findings import Finding, Status, finding
from rules.snapshot import ConditionFact, Snapshot
from rules.timing import condition_present_at

HCC_CITATION = (
    wording.diagnosis_hcc_cds_references_hcc_diagnosis()
)


def evaluate_hcc_diagnosis(snapshot: Snapshot, as_of: date) -> Finding:
    """An active, confirmed HCC Condition present at ``as_of``."""
    hcc = snapshot.conditions_of("hcc")
    present = [c for c in hcc if c.is_confirmed and condition_present_at(c, as_of)]
    if present:
        return finding(
            Status.MET,
            [wording.diagnosis_active_confirmed_hcc_diagnosis(c.ref, _dated(c)) for c in present],
            [c.ref for c in present],
            citation=HCC_CITATION,
        )
    if hcc:
        return finding(
            Status.NOT_MET,
            [
                wording.diagnosis_hcc_recorded_but_not_active(
                    c.ref,
                    as_of.isoformat(),
                    c.clinical_status or wording.diagnosis_not_recorded(),
                    c.verification_status or wording.diagnosis_not_recorded(),
                )
                for c in hcc
            ],
            [c.ref for c in hcc],
            citation=HCC_CITATION,
        )
    return finding(Status.NOT_MET, [wording.diagnosis_no_hcc_diagnosis_recorded()], [], citation=HCC_CITATION)


def _dated(c: ConditionFact) -> str:
    """How a condition is dated: its onset, else its recordedDate (PRODUCT.md), else undated."""
    if c.onset is not None:
        return f"onset {c.onset.isoformat()}"
    if c.recorded is not None:
        return wording.diagnosis_recorded_onset_not_recorded(c.recorded.isoformat())
    return "undated"
