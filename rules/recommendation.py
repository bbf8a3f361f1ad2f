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

from rules.candidacy import METASTASIS, PVTT, branch_only_concepts, thrombus_words
from rules.findings import Finding, Status
from rules.knowledge import Knowledge
from rules.performance_status import PerformanceStatus, karnofsky_range_for_ecog
from rules.snapshot import Snapshot
from rules.timing import condition_presence
from rules.treatment import ended_sorafenib_courses

SUMMARIES = {
    "not-applicable": "Not applicable: the study's question does not arise for this patient.",
    "on-sorafenib": "On sorafenib: response, toxicity and the study's survival benchmark below.",
    "continue-tace": "Not TACE-resistant by the study's definition and TACE still possible: TACE may continue.",
    "refer-mdt": "Discuss at the multidisciplinary tumour board: TACE is not straightforward or sorafenib was given before (see reasons).",
    "insufficient-data": "Cannot decide: data the study's criteria need is missing or stale (see reasons).",
    "outside-study-criteria": "Outside the study's criteria for sorafenib (see reasons).",
    "sorafenib-plus-tace": "TACE-resistant HCC within the study's criteria: consider sorafenib with continued TACE.",
    "sorafenib-alone": "TACE-resistant HCC within the study's criteria, TACE not possible: consider sorafenib alone.",
}


@dataclass(frozen=True)
class Recommendation:
    code: str
    summary: str
    reasons: tuple[str, ...]
    context: str
    citation: str

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "summary": self.summary,
            "reasons": list(self.reasons),
            "context": self.context,
            "citation": self.citation,
        }


def _invasion_or_spread(snapshot: Snapshot, as_of: date, k: Knowledge) -> tuple[list[str], list[str]]:
    """Vascular invasion and extrahepatic spread at ``as_of``: (present, unknown), each in words."""
    found: list[str] = []
    unknown: list[str] = []
    thrombi = [c for concept in (PVTT, *branch_only_concepts(k)) for c in snapshot.conditions_of(concept)]
    for concept_conditions, label in ((thrombi, "vascular invasion"), (snapshot.conditions_of(METASTASIS), "extrahepatic spread")):
        present = [c for c in concept_conditions if condition_presence(c, as_of, as_of) is True]
        doubtful = [c for c in concept_conditions if condition_presence(c, as_of, as_of) is None]
        if present:
            found.append(f"{label} ({thrombus_words(present)})")
        if doubtful:
            unknown.append(f"{label}: recorded after {as_of.isoformat()}, presence then unknown ({thrombus_words(doubtful)})")
    seen = [m for m in snapshot.lesions if m.when <= as_of and m.viable_diameter_mm > 0]
    extrahepatic = sorted({m.lesion for m in seen if m.organ not in (None, "liver")})
    if extrahepatic:
        found.append(f"extrahepatic lesions ({', '.join(extrahepatic)})")
    unknown_organ = sorted({m.lesion for m in seen if m.organ is None})
    if unknown_organ:
        unknown.append(f"extrahepatic spread: viable lesion(s) of unknown organ ({', '.join(unknown_organ)})")
    return found, unknown


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
    """The decision table. ``tace_sessions_recorded``: *completed* TACE sessions by ``as_of`` (only those count)."""
    context = k.criteria.recommendation.context
    citation = k.criteria.recommendation.citation

    def rec(code: str, *reasons: str) -> Recommendation:
        return Recommendation(code, SUMMARIES[code], tuple(r for r in reasons if r), context, citation)

    patient = snapshot.patient
    # 1. deceased on or before the assessment date (a death recorded later did not stop an earlier assessment)
    if patient.deceased and (patient.deceased_date is None or patient.deceased_date <= as_of):
        when = f" ({patient.deceased_date.isoformat()})" if patient.deceased_date else ""
        return rec("not-applicable", f"The patient is recorded as deceased{when}.")
    if has_hcc.status is not Status.MET:
        return rec("not-applicable", "No active, confirmed HCC diagnosis.", *has_hcc.reasons)
    # 2. on sorafenib now
    if on_sorafenib:
        return rec("on-sorafenib", "Sorafenib is recorded as current: response, toxicity and survival information apply.")
    # 3. no completed TACE session
    if tace_sessions_recorded == 0:
        return rec(
            "not-applicable",
            "No completed TACE session recorded (planned, in-progress or not-done sessions do not count): "
            "the study concerns HCC after TACE.",
        )
    # 4. an earlier sorafenib course that has ended
    ended = ended_sorafenib_courses(snapshot, as_of)
    if ended:
        return rec(
            "refer-mdt",
            "Sorafenib was given before and has ended: the study's question (starting sorafenib) no longer arises as such.",
            *(course.describe() for course in ended),
        )

    # 5. not TACE-resistant
    resistance = tace_resistance.status
    if resistance is Status.NOT_MET:
        spread, spread_unknown = _invasion_or_spread(snapshot, as_of, k)
        ecog_max = k.criteria.recommendation.continue_tace_max_ecog
        ps_known = performance.source is not None
        ecog_ok = performance.ecog is not None and performance.ecog <= ecog_max
        if performance.source == "karnofsky" and performance.karnofsky is not None:
            # conservatively, the top of the limit's band (ECOG 1 = Karnofsky 70-80, dossier §3.2): 70 may be ECOG 2
            band = karnofsky_range_for_ecog(ecog_max, k.criteria.performance_status)
            ecog_ok = band is not None and performance.karnofsky >= band[1]
        base = ["TACE resistance not met (JSH 2010)."] + list(tace_resistance.reasons)
        if candidacy.status is Status.MET and not spread and not spread_unknown and ps_known and ecog_ok:
            return rec("continue-tace", *base, "TACE candidacy met; no vascular invasion or extrahepatic spread; performance status allows TACE.")
        if candidacy.status is Status.UNKNOWN or not ps_known or spread_unknown:
            window = k.criteria.freshness.performance_status_max_age_days
            missing = [] if ps_known else [f"no performance status within {window} days"]
            if candidacy.status is Status.UNKNOWN:
                missing.append("TACE candidacy unknown: " + " ".join(candidacy.reasons))
            if spread_unknown:
                missing.append("Unknown: " + "; ".join(spread_unknown) + ".")
            return rec("insufficient-data", *base, *missing)
        why = []
        if candidacy.status is Status.NOT_MET:
            why.append("TACE candidacy not met: " + " ".join(candidacy.reasons))
        if spread:
            why.append("Present: " + "; ".join(spread) + ".")
        if not ecog_ok:
            why.append(f"Performance status beyond ECOG {ecog_max}: " + " ".join(performance.reasons))
        return rec("refer-mdt", *base, *why)
    # 6. definitely outside the study's criteria
    if eligibility_status == "ineligible":
        resistance_words = "TACE resistance met." if resistance is Status.MET else "TACE resistance unknown."
        return rec("outside-study-criteria", resistance_words, *eligibility_reasons)
    # 7. resistance unknown or eligibility indeterminate
    if resistance is Status.UNKNOWN:
        return rec("insufficient-data", "TACE resistance unknown.", *tace_resistance.reasons)
    if eligibility_status == "indeterminate":
        return rec("insufficient-data", "TACE resistance met; eligibility indeterminate.", *eligibility_reasons)
    # 8. the arm, from TACE candidacy
    if candidacy.status is Status.MET:
        return rec("sorafenib-plus-tace", "TACE resistance met.", "Eligible by the study's criteria.", "TACE still possible: " + " ".join(candidacy.reasons))
    if candidacy.status is Status.NOT_MET:
        return rec(
            "sorafenib-alone",
            "TACE resistance met.",
            "Eligible by the study's criteria.",
            "TACE candidacy not met: " + " ".join(candidacy.reasons),
        )
    return rec(
        "insufficient-data",
        "TACE resistance met; eligible by the study's criteria.",
        "TACE candidacy unknown, so neither arm can be chosen: " + " ".join(candidacy.reasons),
    )
