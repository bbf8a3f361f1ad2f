"""The HCC diagnosis: an active, confirmed HCC Condition present at ``as_of`` (PRODUCT.md, decision table row 1)."""

from __future__ import annotations

from datetime import date

from rules.findings import Finding, Status, finding
from rules.snapshot import ConditionFact, Snapshot
from rules.timing import condition_present_at

HCC_CITATION = (
    "hcc-cds references: HCC diagnosis rule (the product's own choice): an active, confirmed Condition "
    "(SNOMED CT 109841003; ICD-10-CM C22.0, as in mCODE STU3)"
)


def evaluate_hcc_diagnosis(snapshot: Snapshot, as_of: date) -> Finding:
    """An active, confirmed HCC Condition present at ``as_of``."""
    hcc = snapshot.conditions_of("hcc")
    present = [c for c in hcc if c.is_confirmed and condition_present_at(c, as_of)]
    if present:
        return finding(
            Status.MET,
            [f"Active confirmed HCC diagnosis ({c.ref}, {_dated(c)})." for c in present],
            [c.ref for c in present],
            citation=HCC_CITATION,
        )
    if hcc:
        return finding(
            Status.NOT_MET,
            [
                f"{c.ref}: HCC recorded but not active and confirmed at {as_of.isoformat()} (clinical status "
                f"{c.clinical_status or 'not recorded'}, verification {c.verification_status or 'not recorded'})."
                for c in hcc
            ],
            [c.ref for c in hcc],
            citation=HCC_CITATION,
        )
    return finding(Status.NOT_MET, ["No HCC diagnosis recorded."], [], citation=HCC_CITATION)


def _dated(c: ConditionFact) -> str:
    """How a condition is dated: its onset, else its recordedDate (PRODUCT.md), else undated."""
    if c.onset is not None:
        return f"onset {c.onset.isoformat()}"
    if c.recorded is not None:
        return f"recorded {c.recorded.isoformat()}, onset not recorded"
    return "undated"
