"""Words for the clinician page: criteria by their clinical names, outcomes in plain words, evidence
as readable lines, and the benchmark's caveats once each, those of the patient's arm only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from service.fhir.ids import FHIR_ID_PATTERN

# recommendation code -> the decision in words (the page's headline; the code never shows)
ELIGIBILITY_WORDS = {"eligible": "all fulfilled", "ineligible": "not fulfilled", "indeterminate": "cannot tell yet"}
DECISION_TITLES = {
    "sorafenib-plus-tace": "Consider sorafenib with continued TACE",
    "sorafenib-alone": "Consider sorafenib alone (TACE no longer suitable)",
    "continue-tace": "Continue TACE: not TACE-resistant",
    "on-sorafenib": "On sorafenib: follow response and toxicity",
    "outside-study-criteria": "Outside the study's criteria for sorafenib after TACE",
    "refer-mdt": "Refer to the multidisciplinary tumour board",
    "insufficient-data": "Not enough data to decide",
    "not-applicable": "This assessment does not apply",
}
ATTENTION_CODES = frozenset({"insufficient-data", "refer-mdt", "outside-study-criteria"})

CRITERION_NAMES = {
    "age": "Age 18 or over",
    "bclc_b_at_first_tace": "BCLC stage B at the first TACE",
    "tace_resistant": "TACE-resistant (JSH 2010)",
    "child_pugh_a_or_b": "Child-Pugh class A or B",
    "prior_resection_or_transplant": "Previous liver resection or transplant",
    "karnofsky_above_70": "Karnofsky 70 or below",
    "bilirubin_above_3": "Total bilirubin above 3 mg/dL",
}

ARM_WORDS = {
    "sorafenib-plus-tace": ("sorafenib + tace", "combination"),
    "sorafenib-alone": ("sorafenib alone", "monotherapy"),
}


def criterion_name(criterion: Mapping[str, Any]) -> str:
    cid = str(criterion.get("id") or "")
    return CRITERION_NAMES.get(cid, cid.replace("_", " ").capitalize())


def outcome(status: str, kind: str | None = None) -> tuple[str, str, str]:
    """(symbol, words, css class): what the finding means for the patient, not the raw token."""
    if kind == "exclusion":
        return {
            "met": ("✗", "Excludes", "bad"),
            "not-met": ("✓", "Does not exclude", "good"),
        }.get(status, ("?", "Cannot tell", "unknown"))
    return {
        "met": ("✓", "Yes", "good"),
        "not-met": ("✗", "No", "bad"),
    }.get(status, ("?", "Cannot tell", "unknown"))


_REF = re.compile(r"(?:\b[Ll]esion )?\b(?:Observation|Procedure|Condition|MedicationRequest|MedicationStatement|BodyStructure|Patient|"
                  r"AllergyIntolerance)/" + FHIR_ID_PATTERN)


def readable(text: str, evidence: Mapping[str, str]) -> str:
    """A reason with the lesion references it names replaced by "lesion A" (other references kept)."""

    def swap(match: re.Match[str]) -> str:
        text = match.group(0)
        ref = text.split(" ", 1)[1] if text.lower().startswith("lesion ") else text
        if ref.startswith("BodyStructure/") and ref in evidence:
            return ("Lesion " if text.startswith("Lesion ") else "lesion ") + evidence[ref].removeprefix("Lesion ")
        return text

    return _REF.sub(swap, text)


def evidence_lines(refs: Iterable[str], evidence: Mapping[str, str]) -> list[dict[str, str]]:
    """One readable line per reference (the raw reference kept for "show references")."""
    lines = []
    seen = set()
    for ref in refs:
        if ref in seen:
            continue
        seen.add(ref)
        lines.append({"text": evidence.get(ref, ref), "ref": ref})
    return sorted(lines, key=lambda line: line["text"] == line["ref"])


def _topic(text: str) -> str:
    low = text.lower()
    number = re.search(r"inconsistency (\d+)", low)
    if "not randomised" in low or "not a treatment effect" in low or "reflects who was in it" in low:
        return "randomisation"
    if "small retrospective cohort" in low:
        return "cohort"
    if "immortal-time" in low or "100% for the first 3 months" in low:
        return "immortal-time"
    if "pseudo individual patient data" in low:
        return "reconstruction"
    if "every step of the curve" in low:
        return "steps"
    if number:
        return f"inconsistency-{number.group(1)}"
    return low


TOPIC_HEADINGS = {
    "cohort": "Not a prediction",
    "randomisation": "Not randomised",
    "immortal-time": "Survival 100% for 3 months by design",
    "reconstruction": "Reconstructed curves",
}
# shown elsewhere on the page (the context sentence) or about figures the page does not draw
SKIPPED_TOPICS = ("predates immunotherapy", "time-to-progression")


def _arm_of(text: str) -> str | None:
    low = text.lower()
    hits = {arm for arm, words in ARM_WORDS.items() if any(f"for {w}" in low for w in words)}
    return hits.pop() if len(hits) == 1 else None


def benchmark_caveats(
    cohort_caveats: Iterable[str], arm_caveats: Mapping[str, Iterable[str]], patient_arm: str | None, framing: str
) -> list[dict[str, str]]:
    """Each caveat topic once; an arm's own caveats only on that arm's page, the patient's arm's wording
    preferred where a topic has both a general and an arm-specific one."""
    chosen: dict[str, dict[str, str]] = {}
    if patient_arm is not None:
        for text in arm_caveats.get(patient_arm, ()):
            topic = _topic(text)
            chosen[topic] = {"topic": topic, "heading": TOPIC_HEADINGS.get(topic, ""), "text": text}
    for text in [*cohort_caveats, framing]:
        low = text.lower()
        if any(skip in low for skip in SKIPPED_TOPICS):
            continue
        arm = _arm_of(text)
        if arm is not None and arm != patient_arm:
            continue
        topic = _topic(text)
        if topic in chosen:
            continue
        chosen[topic] = {"topic": topic, "heading": TOPIC_HEADINGS.get(topic, ""), "text": text}
    order = ["cohort", "randomisation", "immortal-time", "reconstruction"]
    ranked = sorted(chosen.values(), key=lambda c: order.index(c["topic"]) if c["topic"] in order else len(order))
    return ranked
