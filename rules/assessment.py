"""One patient's assessment at ``as_of``: every rule, in dependency order.

Pure: the snapshot, the date and the knowledge in; an :class:`Assessment` out.
Sections not built yet are absent from the output, never faked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules.child_pugh import ChildPugh, evaluate_child_pugh
from rules.eligibility import Eligibility, evaluate_eligibility
from rules.findings import DataIssue, Finding, Notes, Status, finding
from rules.knowledge import RULES_VERSION, Knowledge
from rules.performance_status import PerformanceStatus, performance_status_at
from rules.snapshot import Snapshot
from rules.timing import condition_present_at

HCC_CITATION = "hcc-cds PRODUCT.md: HCC diagnosis = active, confirmed Condition (SNOMED 109841003; ICD-10-CM C22.0)"


@dataclass(frozen=True)
class Assessment:
    patient_id: str
    as_of: date
    versions: dict
    data_issues: tuple[DataIssue, ...]
    assumptions: tuple[str, ...]
    hcc_diagnosis: Finding
    child_pugh: ChildPugh
    performance_status: PerformanceStatus
    sorafenib_eligibility: Eligibility
    warnings: tuple[str, ...]

    @property
    def has_hcc(self) -> bool:
        return self.hcc_diagnosis.status is Status.MET


def evaluate_hcc_diagnosis(snapshot: Snapshot, as_of: date) -> Finding:
    """An active, confirmed HCC Condition present at ``as_of``."""
    hcc = snapshot.conditions_of("hcc")
    present = [c for c in hcc if c.is_confirmed and condition_present_at(c, as_of)]
    if present:
        return finding(
            Status.MET,
            [f"Active confirmed HCC diagnosis ({c.ref}, {c.onset.isoformat() if c.onset else 'undated'})." for c in present],
            [c.ref for c in present],
            citation=HCC_CITATION,
        )
    if hcc:
        return finding(
            Status.NOT_MET,
            [f"{c.ref}: HCC recorded but not active and confirmed at {as_of.isoformat()} "
             f"(clinical status {c.clinical_status or 'not recorded'}, verification {c.verification_status or 'not recorded'})."
             for c in hcc],
            [c.ref for c in hcc],
            citation=HCC_CITATION,
        )
    return finding(Status.NOT_MET, ["No HCC diagnosis recorded."], [], citation=HCC_CITATION)


def _not_built(criterion_id: str, what: str) -> Finding:
    return finding(
        Status.UNKNOWN,
        [f"{what} is not evaluated by this version of the rules."],
        [],
        citation="Source study, inclusion criteria",
        id=criterion_id,
        kind="inclusion",
    )


def assess(snapshot: Snapshot, as_of: date, k: Knowledge, *, build: str = "unknown") -> Assessment:
    """Evaluate every rule for ``snapshot`` at ``as_of``."""
    notes = Notes()
    hcc = evaluate_hcc_diagnosis(snapshot, as_of)
    child_pugh = evaluate_child_pugh(snapshot, as_of, k, notes)
    performance = performance_status_at(
        snapshot,
        as_of,
        max_age_days=int(k.threshold("freshness", "performance_status_max_age_days")),
        criteria=k.thresholds["performance_status"],
    )
    eligibility = evaluate_eligibility(
        snapshot,
        as_of,
        k,
        notes,
        child_pugh=child_pugh,
        performance=performance,
        bclc_b_at_first_tace=_not_built("bclc_b_at_first_tace", "BCLC stage at the first TACE"),
        tace_resistance=_not_built("tace_resistant", "TACE resistance"),
    )
    for caution in child_pugh.cautions:
        notes.warn(caution)
    for warning in eligibility.warnings:
        notes.warn(warning)
    return Assessment(
        patient_id=snapshot.patient.id,
        as_of=as_of,
        versions={
            "rules": RULES_VERSION,
            "value_sets": k.value_sets_version,
            "thresholds": k.thresholds_version,
            "build": build,
            "overrides_sha256": k.overrides_sha256,
        },
        data_issues=snapshot.data_issues,
        assumptions=tuple(notes.assumptions),
        hcc_diagnosis=hcc,
        child_pugh=child_pugh,
        performance_status=performance,
        sorafenib_eligibility=eligibility,
        warnings=tuple(notes.warnings),
    )
