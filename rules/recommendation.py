"""The recommendation: PRODUCT.md's decision table, first match wins.

1. deceased, no active confirmed HCC, or no TACE recorded -> ``not-applicable``
2. on sorafenib -> ``on-sorafenib`` (response, toxicity and survival, not a start)
3. TACE resistance not met -> ``continue-tace`` when TACE candidacy is met, no
   vascular invasion or extrahepatic spread, and ECOG <= 1; ``insufficient-data``
   when candidacy or performance status is unknown; else ``refer-mdt``
4. TACE resistance unknown -> ``insufficient-data``
5. eligibility ineligible -> ``outside-study-criteria``; indeterminate -> ``insufficient-data``
6. candidacy met -> ``sorafenib-plus-tace``; otherwise ``sorafenib-alone``

Every recommendation carries the guideline-context sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules.findings import Finding, Status
from rules.knowledge import Knowledge
from rules.performance_status import PerformanceStatus, karnofsky_range_for_ecog
from rules.snapshot import Snapshot
from rules.timing import condition_present_at

SUMMARIES = {
    "not-applicable": "Not applicable: the study's question does not arise for this patient.",
    "on-sorafenib": "On sorafenib: response, toxicity and the study's survival benchmark below.",
    "continue-tace": "Not TACE-resistant by the study's definition and TACE still possible: TACE may continue.",
    "refer-mdt": "Not TACE-resistant, but TACE is not straightforward: discuss at the multidisciplinary tumour board.",
    "insufficient-data": "Cannot decide: data the study's criteria need is missing or stale (see reasons).",
    "outside-study-criteria": "TACE-resistant HCC outside the study's criteria for sorafenib (see reasons).",
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


def _invasion_or_spread(snapshot: Snapshot, as_of: date) -> list[str]:
    found = []
    for concept, label in (("portal_vein_tumour_thrombus", "vascular invasion"), ("extrahepatic_metastasis", "extrahepatic spread")):
        refs = [c.ref for c in snapshot.conditions_of(concept) if condition_present_at(c, as_of)]
        if refs:
            found.append(f"{label} ({', '.join(refs)})")
    extrahepatic = sorted({m.lesion for m in snapshot.lesions if m.when <= as_of and m.organ not in (None, "liver") and m.viable_diameter_mm > 0})
    if extrahepatic:
        found.append(f"extrahepatic lesions ({', '.join(extrahepatic)})")
    return found


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
    g = "recommendation"
    context = str(k.thresholds[g]["context"])
    citation = k.citation(g)

    def rec(code: str, *reasons: str) -> Recommendation:
        return Recommendation(code, SUMMARIES[code], tuple(r for r in reasons if r), context, citation)

    patient = snapshot.patient
    # deceased on or before the assessment date (a death recorded later did not stop an earlier assessment)
    if patient.deceased and (patient.deceased_date is None or patient.deceased_date <= as_of):
        when = f" ({patient.deceased_date.isoformat()})" if patient.deceased_date else ""
        return rec("not-applicable", f"The patient is recorded as deceased{when}.")
    if has_hcc.status is not Status.MET:
        return rec("not-applicable", "No active, confirmed HCC diagnosis.", *has_hcc.reasons)
    if tace_sessions_recorded == 0:
        return rec("not-applicable", "No TACE recorded: the study concerns HCC after TACE.")
    if on_sorafenib:
        return rec("on-sorafenib", "Sorafenib is recorded as current: response, toxicity and survival information apply.")

    resistance = tace_resistance.status
    if resistance is Status.NOT_MET:
        spread = _invasion_or_spread(snapshot, as_of)
        ecog_max = int(k.threshold(g, "continue_tace_max_ecog"))
        ps_known = performance.source is not None
        ecog_ok = performance.ecog is not None and performance.ecog <= ecog_max
        if performance.source == "karnofsky" and performance.karnofsky is not None:
            # conservatively, the top of the limit's band (ECOG 1 = Karnofsky 70-80, dossier §3.2): 70 may be ECOG 2
            band = karnofsky_range_for_ecog(ecog_max, k.thresholds["performance_status"])
            ecog_ok = band is not None and performance.karnofsky >= band[1]
        base = ["TACE resistance not met (JSH 2010)."] + list(tace_resistance.reasons)
        if candidacy.status is Status.MET and not spread and ps_known and ecog_ok:
            return rec("continue-tace", *base, "TACE candidacy met; no vascular invasion or extrahepatic spread; performance status allows TACE.")
        if candidacy.status is Status.UNKNOWN or not ps_known:
            window = int(k.threshold("freshness", "performance_status_max_age_days"))
            missing = [] if ps_known else [f"no performance status within {window} days"]
            if candidacy.status is Status.UNKNOWN:
                missing.append("TACE candidacy unknown: " + " ".join(candidacy.reasons))
            return rec("insufficient-data", *base, *missing)
        why = []
        if candidacy.status is Status.NOT_MET:
            why.append("TACE candidacy not met: " + " ".join(candidacy.reasons))
        if spread:
            why.append("Present: " + "; ".join(spread) + ".")
        if not ecog_ok:
            why.append(f"Performance status beyond ECOG {ecog_max}: " + " ".join(performance.reasons))
        return rec("refer-mdt", *base, *why)
    if resistance is Status.UNKNOWN:
        return rec("insufficient-data", "TACE resistance unknown.", *tace_resistance.reasons)
    if eligibility_status == "ineligible":
        return rec("outside-study-criteria", "TACE resistance met.", *eligibility_reasons)
    if eligibility_status == "indeterminate":
        return rec("insufficient-data", "TACE resistance met; eligibility indeterminate.", *eligibility_reasons)
    if candidacy.status is Status.MET:
        return rec("sorafenib-plus-tace", "TACE resistance met.", "Eligible by the study's criteria.", "TACE still possible: " + " ".join(candidacy.reasons))
    return rec(
        "sorafenib-alone",
        "TACE resistance met.",
        "Eligible by the study's criteria.",
        "TACE candidacy " + candidacy.status.value + ": " + " ".join(candidacy.reasons),
    )
