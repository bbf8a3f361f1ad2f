"""The recommendation: PRODUCT.md's decision table (rows 1-8), first match wins.

1. deceased, or no active confirmed HCC -> ``not-applicable``
2. on sorafenib now (an active or on-hold course) -> ``on-sorafenib`` (response, toxicity and
   survival, not a start)
3. no completed TACE session -> ``not-applicable`` (planned, in-progress, not-done do not count)
4. an earlier sorafenib course that has ended -> ``refer-mdt``, its dates and stop reason given
5. TACE resistance not met -> ``continue-tace`` when TACE candidacy is met, no vascular invasion
   or extrahepatic spread, and ECOG <= 1; ``insufficient-data`` when candidacy, performance
   status, vascular invasion or extrahepatic spread is unknown; else ``refer-mdt``
6. eligibility ineligible -> ``outside-study-criteria``
7. TACE resistance unknown, or eligibility indeterminate -> ``insufficient-data``
8. candidacy met -> ``sorafenib-plus-tace``; not met -> ``sorafenib-alone``; unknown ->
   ``insufficient-data`` (an unknown candidacy never picks an arm)

Every recommendation carries the guideline-context sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules import wording
from rules.candidacy import METASTASIS, PVTT, branch_only_concepts, thrombus_words
from rules.findings import Finding, Status
from rules.knowledge import Knowledge
from rules.performance_status import PerformanceStatus, karnofsky_range_for_ecog
from rules.snapshot import Snapshot
from rules.timing import condition_presence
from rules.treatment import ended_sorafenib_courses

SUMMARIES = {
    "not-applicable": wording.recommendation_not_applicable_study_question_does(),
    "on-sorafenib": wording.recommendation_sorafenib_response_toxicity_study_survival(),
    "continue-tace": wording.recommendation_not_tace_resistant_study_definition(),
    "refer-mdt": wording.recommendation_discuss_multidisciplinary_tumour_board_tace(),
    "insufficient-data": wording.recommendation_cannot_decide_data_study_criteria(),
    "outside-study-criteria": wording.recommendation_outside_study_criteria_sorafenib_see(),
    "sorafenib-plus-tace": wording.recommendation_tace_resistant_sorafenib_with_tace(),
    "sorafenib-alone": wording.recommendation_tace_resistant_sorafenib_alone(),
}


@dataclass(frozen=True)
class Recommendation:
    code: str
    summary: str
    reasons: tuple[str, ...]
    context: str
    citation: str


def _invasion_or_spread(snapshot: Snapshot, as_of: date, k: Knowledge) -> tuple[list[str], list[str]]:
    """Vascular invasion and extrahepatic spread at ``as_of``: (present, unknown), each in words."""
    found: list[str] = []
    unknown: list[str] = []
    thrombi = [c for concept in (PVTT, *branch_only_concepts(k)) for c in snapshot.conditions_of(concept)]
    for concept_conditions, label in (
        (thrombi, wording.recommendation_vascular_invasion()),
        (snapshot.conditions_of(METASTASIS), wording.recommendation_extrahepatic_spread()),
    ):
        present = [c for c in concept_conditions if condition_presence(c, as_of, as_of) is True]
        doubtful = [c for c in concept_conditions if condition_presence(c, as_of, as_of) is None]
        if present:
            found.append(f"{label} ({thrombus_words(present)})")
        if doubtful:
            unknown.append(
                wording.recommendation_recorded_after_presence_then_unknown(
                    label, as_of.isoformat(), thrombus_words(doubtful)
                )
            )
    seen = [m for m in snapshot.lesions if m.when <= as_of and m.viable_diameter_mm > 0]
    extrahepatic = sorted({m.lesion for m in seen if m.organ not in (None, "liver")})
    if extrahepatic:
        found.append(wording.recommendation_extrahepatic_lesions(', '.join(extrahepatic)))
    unknown_organ = sorted({m.lesion for m in seen if m.organ is None})
    if unknown_organ:
        unknown.append(wording.recommendation_extrahepatic_spread_viable_lesion_s(', '.join(unknown_organ)))
    return found, unknown


@dataclass(frozen=True)
class _Make:
    """Builds a recommendation with the guideline context and citation every one carries."""

    context: str
    citation: str

    def __call__(self, code: str, *reasons: str) -> Recommendation:
        return Recommendation(code, SUMMARIES[code], tuple(r for r in reasons if r), self.context, self.citation)


def _row_1_not_applicable(snapshot: Snapshot, as_of: date, has_hcc: Finding, rec: _Make) -> Recommendation | None:
    """1. deceased on or before the assessment date (a death recorded later did not stop an earlier assessment),
    or no active confirmed HCC."""
    patient = snapshot.patient
    if patient.deceased and (patient.deceased_date is None or patient.deceased_date <= as_of):
        when = f" ({patient.deceased_date.isoformat()})" if patient.deceased_date else ""
        return rec("not-applicable", wording.recommendation_patient_recorded_deceased(when))
    if has_hcc.status is not Status.MET:
        return rec("not-applicable", wording.recommendation_no_active_confirmed_hcc_diagnosis(), *has_hcc.reasons)
    return None


def _rows_2_to_4(snapshot: Snapshot, as_of: date, on_sorafenib: bool, tace_sessions: int, rec: _Make) -> Recommendation | None:
    """2. on sorafenib now; 3. no completed TACE session; 4. an earlier sorafenib course that has ended."""
    if on_sorafenib:
        return rec("on-sorafenib", wording.recommendation_sorafenib_recorded_current_response_toxicity())
    if tace_sessions == 0:
        return rec(
            "not-applicable",
            wording.recommendation_no_completed_tace_session_recorded(),
        )
    ended = ended_sorafenib_courses(snapshot, as_of)
    if ended:
        return rec(
            "refer-mdt",
            wording.recommendation_sorafenib_was_given_before_has(),
            *(course.describe() for course in ended),
        )
    return None


def _performance_allows_tace(performance: PerformanceStatus, k: Knowledge) -> bool:
    """ECOG at most ``continue_tace_max_ecog``; a Karnofsky score must reach the top of that grade's band."""
    ecog_max = k.criteria.recommendation.continue_tace_max_ecog
    if performance.source == "karnofsky" and performance.karnofsky is not None:
        # conservatively, the top of the limit's band (ECOG 1 = Karnofsky 70-80, dossier §3.2): 70 may be ECOG 2
        band = karnofsky_range_for_ecog(ecog_max, k.criteria.performance_status)
        return band is not None and performance.karnofsky >= band[1]
    return performance.ecog is not None and performance.ecog <= ecog_max


def _row_5_not_resistant(
    snapshot: Snapshot, as_of: date, k: Knowledge, tace_resistance: Finding, candidacy: Finding,
    performance: PerformanceStatus, rec: _Make,
) -> Recommendation:
    """5. not TACE-resistant: continue TACE when it is possible and nothing argues against it."""
    spread, spread_unknown = _invasion_or_spread(snapshot, as_of, k)
    ps_known = performance.source is not None
    ecog_ok = _performance_allows_tace(performance, k)
    base = [wording.recommendation_tace_resistance_not_met_jsh()] + list(tace_resistance.reasons)
    if candidacy.status is Status.MET and not spread and not spread_unknown and ps_known and ecog_ok:
        return rec("continue-tace", *base, wording.recommendation_tace_candidacy_met_no_vascular())
    if candidacy.status is Status.UNKNOWN or not ps_known or spread_unknown:
        window = k.criteria.freshness.performance_status_max_age_days
        missing = [] if ps_known else [wording.recommendation_no_performance_status_within_days(window)]
        if candidacy.status is Status.UNKNOWN:
            missing.append(wording.recommendation_tace_candidacy_unknown(" ".join(candidacy.reasons)))
        if spread_unknown:
            missing.append("Unknown: " + "; ".join(spread_unknown) + ".")
        return rec("insufficient-data", *base, *missing)
    why = []
    if candidacy.status is Status.NOT_MET:
        why.append(wording.recommendation_tace_candidacy_not_met(" ".join(candidacy.reasons)))
    if spread:
        why.append("Present: " + "; ".join(spread) + ".")
    if not ecog_ok:
        ecog_max = k.criteria.recommendation.continue_tace_max_ecog
        why.append(wording.recommendation_performance_status_beyond_ecog(ecog_max, " ".join(performance.reasons)))
    return rec("refer-mdt", *base, *why)


def _rows_6_to_8(
    resistance: Finding, eligibility_status: str, eligibility_reasons: list[str], candidacy: Finding, rec: _Make
) -> Recommendation:
    """6. outside the study's criteria; 7. resistance unknown or eligibility indeterminate; 8. the arm, by candidacy."""
    if eligibility_status == "ineligible":
        resistance_words = (
            wording.recommendation_tace_resistance_met()
            if resistance.status is Status.MET
            else wording.recommendation_tace_resistance_unknown()
        )
        return rec("outside-study-criteria", resistance_words, *eligibility_reasons)
    if resistance.status is Status.UNKNOWN:
        return rec("insufficient-data", wording.recommendation_tace_resistance_unknown(), *resistance.reasons)
    if eligibility_status == "indeterminate":
        return rec(
            "insufficient-data",
            wording.recommendation_tace_resistance_met_eligibility_indeterminate(),
            *eligibility_reasons,
        )
    if candidacy.status is Status.MET:
        return rec(
            "sorafenib-plus-tace",
            wording.recommendation_tace_resistance_met(),
            wording.recommendation_eligible_study_criteria(),
            wording.recommendation_tace_still_possible(" ".join(candidacy.reasons)),
        )
    if candidacy.status is Status.NOT_MET:
        return rec(
            "sorafenib-alone",
            wording.recommendation_tace_resistance_met(),
            wording.recommendation_eligible_study_criteria(),
            wording.recommendation_tace_candidacy_not_met(" ".join(candidacy.reasons)),
        )
    return rec(
        "insufficient-data",
        wording.recommendation_tace_resistance_met_eligible_study(),
        wording.recommendation_tace_candidacy_unknown_so_neither(" ".join(candidacy.reasons)),
    )


def recommend(
    snapshot: Snapshot,
    as_of: date,
    k: Knowledge,
    *,
    has_hcc: Finding,
    tace_sessions_recorded: int,
    on_sorafenib: bool,
    tace_resistance: Finding,
    eligibility_status: str,
    eligibility_reasons: list[str],
    candidacy: Finding,
    performance: PerformanceStatus,
) -> Recommendation:
    """The decision table, first match wins. ``tace_sessions_recorded``: *completed* TACE sessions by ``as_of``."""
    rec = _Make(k.criteria.recommendation.context, k.criteria.recommendation.citation)
    early = _row_1_not_applicable(snapshot, as_of, has_hcc, rec) or _rows_2_to_4(
        snapshot, as_of, on_sorafenib, tace_sessions_recorded, rec
    )
    if early is not None:
        return early
    if tace_resistance.status is Status.NOT_MET:
        return _row_5_not_resistant(snapshot, as_of, k, tace_resistance, candidacy, performance, rec)
    return _rows_6_to_8(tace_resistance, eligibility_status, eligibility_reasons, candidacy, rec)
