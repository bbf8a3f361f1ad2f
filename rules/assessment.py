"""One patient's assessment at ``as_of``: every rule of ``rules.registry.RULES``, in dependency order.

Pure: the snapshot, the date and the knowledge in; an :class:`Assessment` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from rules import wording
from rules.bclc import BclcAssessment
from rules.candidacy import Candidacy
from rules.child_pugh import ChildPugh
from rules.ctcae import AdverseEvent
from rules.diagnosis import HCC_CITATION, evaluate_hcc_diagnosis
from rules.dose import DoseAdvice
from rules.eligibility import Eligibility
from rules.findings import DataIssue, Finding, Status
from rules.knowledge import RULES_VERSION, Knowledge
from rules.mrecist import MrecistResult
from rules.performance_status import PerformanceStatus
from rules.recommendation import Recommendation
from rules.registry import Prior, Response, TaceSeries, run_rules
from rules.safety import SafetyNote
from rules.snapshot import Snapshot
from rules.tace_resistance import TaceResistance
from rules.treatment import SorafenibHistory

__all__ = ["HCC_CITATION", "SORAFENIB_CODES", "Assessment", "assess", "evaluate_hcc_diagnosis"]

SORAFENIB_CODES = ("sorafenib-plus-tace", "sorafenib-alone", "on-sorafenib")


@dataclass(frozen=True)
class Assessment:
    patient_id: str
    as_of: date
    versions: dict[str, Any]
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


def _disease_status_warnings(snapshot: Snapshot, as_of: date, prior: Prior) -> None:
    """On sorafenib, a "worsened" disease-status report beside an mRECIST of SD or better: review the imaging."""
    mrecist = prior.of("mrecist", Response).result
    if not prior.of("sorafenib", SorafenibHistory).taking_on(as_of) or mrecist is None or mrecist.current is None:
        return
    if mrecist.category not in ("SD", "PR", "CR", "NE"):
        return
    worsened = [r for r in snapshot.disease_status if r.trend == "worsened" and mrecist.current.date <= r.when <= as_of]
    for report in worsened:
        prior.notes.warn(
            wording.assessment_disease_status_reported_worsened_beside(
                report.when.isoformat(), report.ref, mrecist.category, mrecist.current.date.isoformat()
            )
        )


def _on_combination(as_of: date, prior: Prior) -> bool:
    """On sorafenib with a TACE session after its start: sorafenib with TACE."""
    history = prior.of("sorafenib", SorafenibHistory)
    start = history.start
    return history.taking_on(as_of) and start is not None and any(
        s.performed is not None and s.performed > start for s in prior.of("tace_series", TaceSeries).sessions
    )


def _collect_warnings(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> None:
    """The assessment's warnings, in order: safety notes, Child-Pugh cautions, eligibility warnings,
    disease status beside the response, and the biloma warning with the combination."""
    notes = prior.notes
    for note in prior.of("safety", tuple):
        notes.warn(note.text)
    for caution in prior.of("child_pugh", ChildPugh).cautions:
        notes.warn(caution)
    for warning in prior.of("sorafenib_eligibility", Eligibility).warnings:
        notes.warn(warning)
    _disease_status_warnings(snapshot, as_of, prior)
    if prior.of("recommendation", Recommendation).code == "sorafenib-plus-tace" or _on_combination(as_of, prior):
        notes.warn(k.criteria.recommendation.combination_warning)


def _versions(k: Knowledge, build: str) -> dict[str, Any]:
    return {
        "rules": RULES_VERSION,
        "value_sets": k.value_sets_version,
        "thresholds": k.thresholds_version,
        "build": build,
        "overrides_sha256": k.overrides_sha256,
    }


def assess(snapshot: Snapshot, as_of: date, k: Knowledge, *, build: str = "unknown") -> Assessment:
    """Evaluate every rule for ``snapshot`` at ``as_of``."""
    prior = run_rules(snapshot, as_of, k)
    _collect_warnings(snapshot, as_of, k, prior)
    sorafenib = prior.of("sorafenib", SorafenibHistory)
    response = prior.of("mrecist", Response)
    return Assessment(
        patient_id=snapshot.patient.id,
        as_of=as_of,
        versions=_versions(k, build),
        data_issues=snapshot.data_issues,
        assumptions=tuple(prior.notes.assumptions),
        hcc_diagnosis=prior.of("hcc_diagnosis", Finding),
        sorafenib=sorafenib,
        on_sorafenib=sorafenib.taking_on(as_of),
        child_pugh=prior.of("child_pugh", ChildPugh),
        child_pugh_at_first_tace=prior.maybe("child_pugh_at_first_tace", ChildPugh),
        performance_status=prior.of("performance_status", PerformanceStatus),
        bclc=prior.of("bclc", BclcAssessment),
        tace_resistance=prior.of("tace_resistance", TaceResistance),
        mrecist=response.result,
        mrecist_note=response.note,
        sorafenib_eligibility=prior.of("sorafenib_eligibility", Eligibility),
        tace_candidacy=prior.of("tace_candidacy", Candidacy),
        recommendation=prior.of("recommendation", Recommendation),
        safety=prior.of("safety", tuple),
        adverse_events=prior.of("adverse_events", tuple),
        dose=prior.maybe("dose", DoseAdvice),
        warnings=tuple(prior.notes.warnings),
        snapshot=snapshot,
    )
