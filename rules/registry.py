"""Every rule in one ordered list, each with the same shape.

A rule is ``evaluate(snapshot, as_of, k, prior) -> result``: the patient's snapshot, the
assessment date, the clinical knowledge (typed criteria: ``k.criteria``) and the findings of
the rules before it (``prior``, which also collects the assessment's assumptions and
warnings). :data:`RULES` runs in dependency order; ``rules.assessment.assess`` runs them and
shapes the :class:`~rules.assessment.Assessment`. A new rule is a function of that shape
added to :data:`RULES` after the rules whose findings it reads.

mRECIST and TACE resistance keep their own signatures (``rules.mrecist``,
``rules.tace_resistance``): the entries here adapt them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from rules import wording
from rules.bclc import BclcAssessment, assess_bclc
from rules.candidacy import Candidacy, evaluate_tace_candidacy
from rules.child_pugh import ChildPugh, evaluate_child_pugh
from rules.ctcae import adverse_events
from rules.diagnosis import evaluate_hcc_diagnosis
from rules.dose import DoseAdvice, dose_advice
from rules.eligibility import Eligibility, bclc_b_at_first_tace, evaluate_eligibility, tace_resistant
from rules.findings import Finding, Notes, Status
from rules.knowledge import Knowledge
from rules.mrecist import LesionStudies, MrecistResult, mrecist_for_snapshot
from rules.mrecist import lesion_studies as read_lesion_studies
from rules.performance_status import PerformanceStatus, ValidScores, performance_status_at, valid_scores
from rules.recommendation import Recommendation, recommend
from rules.safety import safety_notes
from rules.snapshot import ProcedureFact, Snapshot
from rules.tace_resistance import TaceResistance, evaluate_tace_resistance
from rules.treatment import SorafenibHistory, completed_tace, sorafenib_history

T = TypeVar("T")


class Prior:
    """The results of the rules run so far, by rule id, and the assessment's notes."""

    def __init__(self) -> None:
        self.notes = Notes()
        self._results: dict[str, object] = {}

    def record(self, rule_id: str, result: object) -> None:
        self._results[rule_id] = result

    def of(self, rule_id: str, kind: type[T]) -> T:
        """The result of ``rule_id``, which must be a ``kind`` (a rule that has not run is a programming error)."""
        result = self._results[rule_id]
        if not isinstance(result, kind):
            raise TypeError(f"rule {rule_id!r} gave {type(result).__name__}, not {kind.__name__}")
        return result

    def maybe(self, rule_id: str, kind: type[T]) -> T | None:
        """The result of ``rule_id``: a ``kind`` or None."""
        result = self._results[rule_id]
        return None if result is None else self.of(rule_id, kind)


Evaluate = Callable[[Snapshot, date, Knowledge, Prior], Any]


@dataclass(frozen=True)
class Rule:
    id: str
    evaluate: Evaluate


@dataclass(frozen=True)
class TaceSeries:
    """The completed TACE sessions up to ``as_of`` (same-day records are one session), oldest first."""

    sessions: tuple[ProcedureFact, ...]

    @property
    def first(self) -> date | None:
        return self.sessions[0].performed if self.sessions else None


@dataclass(frozen=True)
class Response:
    """mRECIST of the current treatment (sorafenib, else the TACE series), None without one, and what it measures."""

    result: MrecistResult | None
    note: str


# -- the rules, in the order PRODUCT.md builds them up ---------------------------------------------------


def hcc_diagnosis(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> Finding:
    hcc = evaluate_hcc_diagnosis(snapshot, as_of)
    for ref in hcc.evidence:
        if any(c.ref == ref and c.verification_status is None for c in snapshot.conditions_of("hcc")):
            prior.notes.assume(wording.registry_hcc_diagnosis_has_no_verificationstatus(ref))
    return hcc


def sorafenib(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> SorafenibHistory:
    return sorafenib_history(snapshot, as_of)


def child_pugh(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> ChildPugh:
    return evaluate_child_pugh(snapshot, as_of, k, prior.notes)


def performance_scores(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> ValidScores:
    """The record's ECOG and Karnofsky scores read once a call (``rules.performance_status.valid_scores``) for
    the three dates performance status is judged at: now, the first TACE and the sorafenib start."""
    return valid_scores(snapshot, k.criteria.performance_status)


def _performance(snapshot: Snapshot, anchor: date, k: Knowledge, prior: Prior) -> PerformanceStatus:
    return performance_status_at(
        snapshot,
        anchor,
        max_age_days=k.criteria.freshness.performance_status_max_age_days,
        criteria=k.criteria.performance_status,
        scores=prior.of("performance_scores", ValidScores),
    )


def performance_status(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> PerformanceStatus:
    return _performance(snapshot, as_of, k, prior)


def tace_series(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> TaceSeries:
    return TaceSeries(completed_tace(snapshot, as_of, inclusive=True))


def child_pugh_at_first_tace(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> ChildPugh | None:
    first = prior.of("tace_series", TaceSeries).first
    return evaluate_child_pugh(snapshot, first, k, Notes(), as_of=as_of) if first else None


def performance_status_at_first_tace(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> PerformanceStatus | None:
    first = prior.of("tace_series", TaceSeries).first
    return _performance(snapshot, first, k, prior) if first else None


def bclc(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> BclcAssessment:
    cp_first = prior.maybe("child_pugh_at_first_tace", ChildPugh)
    ps_first = prior.maybe("performance_status_at_first_tace", PerformanceStatus)
    cp_now = prior.of("child_pugh", ChildPugh)
    ps_now = prior.of("performance_status", PerformanceStatus)
    result = assess_bclc(
        snapshot,
        as_of=as_of,
        first_tace=prior.of("tace_series", TaceSeries).first,
        child_pugh_at_first_tace=cp_first.klass if cp_first else None,
        ecog_at_first_tace=ps_first.ecog if ps_first else None,
        child_pugh_now=cp_now.klass,
        ecog_now=ps_now.ecog,
        criteria=k.criteria.bclc,
        evidence_at_first_tace=(cp_first.evidence if cp_first else ()) + (ps_first.evidence if ps_first else ()),
        evidence_now=cp_now.evidence + ps_now.evidence,
    )
    for assumption in result.assumptions:
        prior.notes.assume(assumption)
    return result


def lesion_studies(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> LesionStudies:
    """The lesion measurements read once a call (``rules.mrecist.lesion_studies``) for both mRECIST evaluations:
    the TACE series' (in ``tace_resistance``) and the current treatment's (``mrecist``)."""
    return read_lesion_studies(snapshot.lesions)


def tace_resistance(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> TaceResistance:
    """Adapter: ``rules.tace_resistance.evaluate_tace_resistance`` (JSH 2010, with JSH 2014 beside it)."""
    return evaluate_tace_resistance(
        snapshot,
        as_of,
        k,
        sorafenib_start=prior.of("sorafenib", SorafenibHistory).start,
        studies=prior.of("lesion_studies", LesionStudies),
    )


def mrecist(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> Response:
    """Adapter: ``rules.mrecist.evaluate_mrecist`` against the current treatment's start (PRODUCT.md, mRECIST):
    sorafenib's start once started, else the TACE series' first session (whose mRECIST the series has, when it
    was judged)."""
    start = prior.of("sorafenib", SorafenibHistory).start
    first_tace = prior.of("tace_series", TaceSeries).first
    if start is not None:
        treatment_start, why = start, wording.registry_response_sorafenib_started(start.isoformat())
    elif first_tace is not None:
        treatment_start, why = first_tace, wording.registry_response_tace_series_first_session(first_tace.isoformat())
        series = prior.of("tace_resistance", TaceResistance).series_mrecist
        if series is not None:
            return Response(series, why)
    else:
        return Response(None, wording.registry_no_treatment_to_measure())
    result = mrecist_for_snapshot(
        snapshot,
        treatment_start=treatment_start,
        as_of=as_of,
        criteria=k.mrecist,
        prepared=prior.of("lesion_studies", LesionStudies),
    )
    return Response(result, why)


def sorafenib_eligibility(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> Eligibility:
    """The study's criteria; on or past sorafenib they are judged at the sorafenib start (PRODUCT.md)."""
    judged_at = prior.of("sorafenib", SorafenibHistory).start or as_of
    at_start = judged_at != as_of
    citation = k.criteria.sorafenib_eligibility.citation
    return evaluate_eligibility(
        snapshot,
        as_of,
        k,
        prior.notes,
        child_pugh=(
            evaluate_child_pugh(snapshot, judged_at, k, Notes(), as_of=as_of) if at_start else prior.of("child_pugh", ChildPugh)
        ),
        performance=_performance(snapshot, judged_at, k, prior) if at_start else prior.of("performance_status", PerformanceStatus),
        bclc_b_at_first_tace=bclc_b_at_first_tace(
            prior.of("bclc", BclcAssessment), prior.maybe("child_pugh_at_first_tace", ChildPugh), citation
        ),
        tace_resistance=tace_resistant(prior.of("tace_resistance", TaceResistance).finding),
        judged_at=judged_at,
    )


def tace_candidacy(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> Candidacy:
    return evaluate_tace_candidacy(snapshot, as_of, k, child_pugh=prior.of("child_pugh", ChildPugh))


def _failing_criteria(eligibility: Eligibility) -> list[str]:
    """The eligibility criteria that keep the patient from ``eligible``, each with its reasons."""
    return [
        f"{c.id}: {' '.join(c.reasons)}"
        for c in eligibility.criteria
        if (c.kind == "inclusion" and c.status is not Status.MET) or (c.kind == "exclusion" and c.status is not Status.NOT_MET)
    ]


def recommendation(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> Recommendation:
    eligibility = prior.of("sorafenib_eligibility", Eligibility)
    history = prior.of("sorafenib", SorafenibHistory)
    return recommend(
        snapshot,
        as_of,
        k,
        has_hcc=prior.of("hcc_diagnosis", Finding),
        tace_sessions_recorded=len(prior.of("tace_series", TaceSeries).sessions),  # completed sessions only (PRODUCT.md)
        on_sorafenib=history.taking_on(as_of),
        tace_resistance=prior.of("tace_resistance", TaceResistance).finding,
        eligibility_status=eligibility.status,
        eligibility_reasons=_failing_criteria(eligibility),
        candidacy=prior.of("tace_candidacy", Candidacy).finding,
        performance=prior.of("performance_status", PerformanceStatus),
    )


def safety(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> tuple[Any, ...]:
    return safety_notes(snapshot, as_of, k)


def adverse_event_grades(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> tuple[Any, ...]:
    return adverse_events(snapshot, as_of, k, sorafenib_start=prior.of("sorafenib", SorafenibHistory).start)


def dose(snapshot: Snapshot, as_of: date, k: Knowledge, prior: Prior) -> DoseAdvice | None:
    history = prior.of("sorafenib", SorafenibHistory)
    if not history.taking_on(as_of):
        return None
    return dose_advice(history, prior.of("adverse_events", tuple), as_of, k)


RULES: tuple[Rule, ...] = (
    Rule("hcc_diagnosis", hcc_diagnosis),
    Rule("sorafenib", sorafenib),
    Rule("child_pugh", child_pugh),
    Rule("performance_scores", performance_scores),
    Rule("performance_status", performance_status),
    Rule("tace_series", tace_series),
    Rule("child_pugh_at_first_tace", child_pugh_at_first_tace),
    Rule("performance_status_at_first_tace", performance_status_at_first_tace),
    Rule("bclc", bclc),
    Rule("lesion_studies", lesion_studies),
    Rule("tace_resistance", tace_resistance),
    Rule("mrecist", mrecist),
    Rule("sorafenib_eligibility", sorafenib_eligibility),
    Rule("tace_candidacy", tace_candidacy),
    Rule("recommendation", recommendation),
    Rule("safety", safety),
    Rule("adverse_events", adverse_event_grades),
    Rule("dose", dose),
)


def run_rules(snapshot: Snapshot, as_of: date, k: Knowledge, rules: tuple[Rule, ...] = RULES) -> Prior:
    """Every rule in order, each seeing the results of those before it."""
    prior = Prior()
    for rule in rules:
        prior.record(rule.id, rule.evaluate(snapshot, as_of, k, prior))
    return prior
