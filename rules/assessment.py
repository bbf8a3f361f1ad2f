"""One patient's assessment at ``as_of``: every rule, in dependency order.

Pure: the snapshot, the date and the knowledge in; an :class:`Assessment` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules.bclc import BclcAssessment, assess_bclc
from rules.candidacy import Candidacy, evaluate_tace_candidacy
from rules.child_pugh import ChildPugh, evaluate_child_pugh
from rules.ctcae import AdverseEvent, adverse_events
from rules.dose import DoseAdvice, dose_advice
from rules.eligibility import Eligibility, bclc_b_at_first_tace, evaluate_eligibility, tace_resistant
from rules.findings import DataIssue, Finding, Notes, Status, finding
from rules.knowledge import RULES_VERSION, Knowledge
from rules.mrecist import MrecistResult, evaluate_mrecist
from rules.performance_status import PerformanceStatus, performance_status_at
from rules.recommendation import Recommendation, recommend
from rules.safety import SafetyNote, safety_notes
from rules.snapshot import ConditionFact, Snapshot
from rules.tace_resistance import TaceResistance, evaluate_tace_resistance
from rules.timing import condition_present_at
from rules.treatment import SorafenibHistory, completed_tace, sorafenib_history

HCC_CITATION = (
    "hcc-cds references: HCC diagnosis rule (the product's own choice): an active, confirmed Condition "
    "(SNOMED CT 109841003; ICD-10-CM C22.0, as in mCODE STU3)"
)
SORAFENIB_CODES = ("sorafenib-plus-tace", "sorafenib-alone", "on-sorafenib")


@dataclass(frozen=True)
class Assessment:
    patient_id: str
    as_of: date
    versions: dict
    data_issues: tuple[DataIssue, ...]
    assumptions: tuple[str, ...]
    hcc_diagnosis: Finding
    sorafenib: SorafenibHistory
    on_sorafenib: bool
    child_pugh: ChildPugh
    child_pugh_at_first_tace: ChildPugh | None
    performance_status: PerformanceStatus
    bclc: BclcAssessment
    tace_resistance: TaceResistance
    mrecist: MrecistResult | None
    mrecist_note: str | None
    sorafenib_eligibility: Eligibility
    tace_candidacy: Candidacy
    recommendation: Recommendation
    safety: tuple[SafetyNote, ...]
    adverse_events: tuple[AdverseEvent, ...]
    dose: DoseAdvice | None
    warnings: tuple[str, ...]
    snapshot: Snapshot

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


def _performance(snapshot: Snapshot, anchor: date, k: Knowledge) -> PerformanceStatus:
    return performance_status_at(
        snapshot,
        anchor,
        max_age_days=k.criteria.freshness.performance_status_max_age_days,
        criteria=k.criteria.performance_status,
    )


def assess(snapshot: Snapshot, as_of: date, k: Knowledge, *, build: str = "unknown") -> Assessment:
    """Evaluate every rule for ``snapshot`` at ``as_of``."""
    notes = Notes()
    hcc = evaluate_hcc_diagnosis(snapshot, as_of)
    for ref in hcc.evidence:
        if any(c.ref == ref and c.verification_status is None for c in snapshot.conditions_of("hcc")):
            notes.assume(f"HCC diagnosis {ref} has no verificationStatus: taken as confirmed.")
    sorafenib = sorafenib_history(snapshot, as_of)
    on_sorafenib = sorafenib.taking_on(as_of)
    child_pugh = evaluate_child_pugh(snapshot, as_of, k, notes)
    performance = _performance(snapshot, as_of, k)

    sessions = completed_tace(snapshot, as_of, inclusive=True)
    first_tace = sessions[0].performed if sessions else None
    cp_first = evaluate_child_pugh(snapshot, first_tace, k, Notes(), as_of=as_of) if first_tace else None
    ps_first = _performance(snapshot, first_tace, k) if first_tace else None
    bclc = assess_bclc(
        snapshot,
        as_of=as_of,
        first_tace=first_tace,
        child_pugh_at_first_tace=cp_first.klass if cp_first else None,
        ecog_at_first_tace=ps_first.ecog if ps_first else None,
        child_pugh_now=child_pugh.klass,
        ecog_now=performance.ecog,
        criteria=k.criteria.bclc,
        evidence_at_first_tace=(cp_first.evidence if cp_first else ()) + (ps_first.evidence if ps_first else ()),
        evidence_now=child_pugh.evidence + performance.evidence,
    )
    for assumption in bclc.assumptions:
        notes.assume(assumption)

    resistance = evaluate_tace_resistance(snapshot, as_of, k, sorafenib_start=sorafenib.start)
    mrecist: MrecistResult | None
    mrecist_note = None
    if sorafenib.start is not None:
        mrecist = evaluate_mrecist(
            snapshot.lesions,
            treatment_start=sorafenib.start,
            as_of=as_of,
            criteria=k.thresholds["mrecist"],
            conditions=snapshot.conditions,
        )
        mrecist_note = f"Response to sorafenib (started {sorafenib.start.isoformat()})."
    elif first_tace is not None:
        mrecist = resistance.series_mrecist or evaluate_mrecist(
            snapshot.lesions,
            treatment_start=first_tace,
            as_of=as_of,
            criteria=k.thresholds["mrecist"],
            conditions=snapshot.conditions,
        )
        mrecist_note = f"Response of the TACE series (first session {first_tace.isoformat()})."
    else:
        mrecist = None
        mrecist_note = "No TACE or sorafenib recorded: no treatment to measure a response against."

    citation = k.criteria.sorafenib_eligibility.citation
    # on or past sorafenib: the study's criteria are judged at the sorafenib start (PRODUCT.md)
    judged_at = sorafenib.start or as_of
    at_start = judged_at != as_of
    eligibility = evaluate_eligibility(
        snapshot,
        as_of,
        k,
        notes,
        child_pugh=evaluate_child_pugh(snapshot, judged_at, k, Notes(), as_of=as_of) if at_start else child_pugh,
        performance=_performance(snapshot, judged_at, k) if at_start else performance,
        bclc_b_at_first_tace=bclc_b_at_first_tace(bclc, cp_first, citation),
        tace_resistance=tace_resistant(resistance.finding),
        judged_at=judged_at,
    )
    candidacy = evaluate_tace_candidacy(snapshot, as_of, k, child_pugh=child_pugh)
    eligibility_reasons = [
        f"{c.id}: {' '.join(c.reasons)}"
        for c in eligibility.criteria
        if (c.kind == "inclusion" and c.status is not Status.MET) or (c.kind == "exclusion" and c.status is not Status.NOT_MET)
    ]
    recommendation = recommend(
        snapshot,
        as_of,
        k,
        has_hcc=hcc,
        tace_sessions_recorded=len(sessions),  # completed sessions only (PRODUCT.md)
        on_sorafenib=on_sorafenib,
        tace_resistance=resistance.finding,
        eligibility_status=eligibility.status,
        eligibility_reasons=eligibility_reasons,
        candidacy=candidacy.finding,
        performance=performance,
    )
    safety = safety_notes(snapshot, as_of, k)
    events = adverse_events(snapshot, as_of, k, sorafenib_start=sorafenib.start)
    dose = dose_advice(sorafenib, events, as_of, k) if on_sorafenib else None
    for note in safety:
        notes.warn(note.text)
    for caution in child_pugh.cautions:
        notes.warn(caution)
    for warning in eligibility.warnings:
        notes.warn(warning)
    on_combination = on_sorafenib and sorafenib.start is not None and any(
        s.performed is not None and s.performed > sorafenib.start for s in sessions
    )
    if on_sorafenib and mrecist is not None and mrecist.current is not None and mrecist.category in ("SD", "PR", "CR", "NE"):
        worsened = [r for r in snapshot.disease_status if r.trend == "worsened" and mrecist.current.date <= r.when <= as_of]
        for report in worsened:
            notes.warn(
                f"Disease status reported worsened on {report.when.isoformat()} ({report.ref}) beside an mRECIST "
                f"{mrecist.category} on sorafenib ({mrecist.current.date.isoformat()}): review the imaging for "
                "progression that the measurements do not show."
            )
    if recommendation.code == "sorafenib-plus-tace" or on_combination:
        notes.warn(k.criteria.recommendation.combination_warning)
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
        sorafenib=sorafenib,
        on_sorafenib=on_sorafenib,
        child_pugh=child_pugh,
        child_pugh_at_first_tace=cp_first,
        performance_status=performance,
        bclc=bclc,
        tace_resistance=resistance,
        mrecist=mrecist,
        mrecist_note=mrecist_note,
        sorafenib_eligibility=eligibility,
        tace_candidacy=candidacy,
        recommendation=recommendation,
        safety=safety,
        adverse_events=events,
        dose=dose,
        warnings=tuple(notes.warnings),
        snapshot=snapshot,
    )
