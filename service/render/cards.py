"""Assessment -> CDS Hooks cards for ``patient-view`` (and the shared pieces of the order cards).

A card is read in seconds in an EHR's narrow panel (PRODUCT.md, Outputs), so its ``detail`` is at
most about six short lines of Markdown:

1. the recommendation in plain words;
2. the two or three facts that decided it (bullets), written from the assessment's structured
   findings in clinician wording;
3. safety warnings, on one line;
4. the guideline-context sentence.

No resource ids, internal codes, version strings or file names: reasons that quote resource ids
have them removed (:func:`plain`), versions go in the card's ``extension``, and everything else is one
click away on the assessment page the card links to. Every interpolated string passes through
:func:`service.render.markdown.escape` (record text is shown literally, never as HTML, a link or a
block). No card for ``not-applicable``. ``info`` unless a safety note needs attention (``warning``);
``critical`` only for a drug-label contraindication.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from rules import Assessment, SafetyNote, Status
from service.cds.models import Card, Coding, Source
from service.fhir.ids import FHIR_ID_PATTERN
from service.render.markdown import escape, neutralise

SOURCE_LABEL = "hcc-cds: sorafenib after TACE failure (study criteria)"
TOPIC_SYSTEM = "urn:hcc-cds:recommendation"
SUMMARY_LIMIT = 139
DETAIL_BUDGET = 880  # characters: "under ~900"
FACT_LIMITS = (240, 160, 120, 90, 60)  # a fact's characters, shortened until the detail fits the budget
VERSIONS_EXTENSION = "hcc-cds-versions"
REFERENCES_PATH = "/references"

# the recommendation in plain words (first line of the detail) and as the topic's display
PLAIN = {
    "sorafenib-plus-tace": "Consider adding sorafenib and continuing TACE.",
    "sorafenib-alone": "Consider sorafenib alone: TACE is no longer possible.",
    "continue-tace": "TACE may continue: not TACE-resistant by the study's definition.",
    "refer-mdt": "Discuss at the multidisciplinary tumour board.",
    "insufficient-data": "Cannot decide yet: data the study's criteria need is missing or out of date.",
    "outside-study-criteria": "Outside the study's criteria for sorafenib (not a contraindication).",
    "on-sorafenib": "On sorafenib: follow the response and the side effects.",
    "not-applicable": "The study's question does not arise for this patient.",
}
TOPIC = {
    "sorafenib-plus-tace": "Sorafenib with continued TACE",
    "sorafenib-alone": "Sorafenib alone",
    "continue-tace": "Continue TACE",
    "refer-mdt": "Tumour board discussion",
    "insufficient-data": "Insufficient data",
    "outside-study-criteria": "Outside the study's criteria",
    "on-sorafenib": "On sorafenib",
    "not-applicable": "Not applicable",
}
SAFETY_SHORT = {
    "sorafenib-hypersensitivity": "Sorafenib hypersensitivity recorded: sorafenib is contraindicated (drug label).",
    "hbv-without-antiviral": "Hepatitis B without antiviral therapy: start prophylaxis before further TACE.",
    "pregnancy": "Pregnancy recorded: sorafenib can cause fetal harm.",
}
SAFETY_TOPIC = {
    "sorafenib-hypersensitivity": "Sorafenib hypersensitivity",
    "hbv-without-antiviral": "Hepatitis B without antiviral therapy",
    "pregnancy": "Pregnancy",
}

# a FHIR reference ("Observation/lab-1", "Condition/cohort-10-cond-31"): never shown in a card
REFERENCE = re.compile(r"\b[A-Z][A-Za-z]{2,40}/" + FHIR_ID_PATTERN)
_INTERNAL_PREFIX = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+:\s*")  # "child_pugh_a_or_b: ..."
_PARENS = re.compile(r"\s*\([^()]*\)")


_GAP = "\x00"  # where a reference was: only the separators next to it are tidied, never record text
_GAP_RULES = (
    (re.compile(_GAP + r"(?:\s*[,;]\s*" + _GAP + ")+"), _GAP),  # "A/1, B/2" -> one gap
    (re.compile(r"\s*\(\s*" + _GAP + r"\s*\)"), ""),  # " (A/1)" -> ""
    (re.compile(r"\(\s*" + _GAP + r"\s*[,;]\s*"), "("),  # "(A/1; tumour" -> "(tumour"
    (re.compile(r"\s*[,;]\s*" + _GAP + r"\s*\)"), ")"),  # "lung, A/1)" -> "lung)"
    (re.compile(r"\s*:\s*" + _GAP + r"\s*(?=[).;,]|$)"), ""),  # "site: A/1)" -> "site)"
    (re.compile(r"\s*[,;]\s*" + _GAP), ""),  # "2026-01-01, A/1" -> "2026-01-01"
    (re.compile(_GAP + r"\s*[,;]?\s*"), ""),
)


def plain(text: str) -> str:
    """``text`` without resource references or an internal criterion id in front; the rest as written."""
    text = REFERENCE.sub(_GAP, _INTERNAL_PREFIX.sub("", text))
    for pattern, replacement in _GAP_RULES:
        text = pattern.sub(replacement, text)
    return re.sub(r"\s{2,}", " ", text).strip()


def without_parentheses(text: str) -> str:
    """``text`` without its parenthetical asides (dates, references, scores): the gist of a reason."""
    while True:
        shorter = _PARENS.sub("", text)
        if shorter == text:
            return plain(text)
        text = shorter


def _lower_first(text: str) -> str:
    """Mid-sentence case for a reason: "No ECOG" -> "no ECOG"; "Child-Pugh", "TACE", "CT" stay."""
    word = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if word[1:] == word[1:].lower() else text


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip(" ,;:(") + "…"


def _sentence(text: str) -> str:
    return text if not text or text.endswith((".", "…", "?", "!")) else text + "."


# -- the deciding facts -----------------------------------------------------------------------------

def resistance_fact(a: Assessment) -> str:
    f = a.tace_resistance.finding
    if not f.reasons:
        return "TACE resistance (JSH 2010): " + f.status.value.replace("-", " ") + "."
    if f.status is Status.MET:
        return "TACE-resistant (JSH 2010): " + without_parentheses(f.reasons[0])
    if f.status is Status.NOT_MET:
        return "Not TACE-resistant (JSH 2010): " + _lower_first(without_parentheses(f.reasons[-1]))
    return "TACE resistance unknown: " + _lower_first(plain(f.reasons[-1]))


def _failing(a: Assessment, undecided: bool) -> list[str]:
    out = []
    for c in a.sorafenib_eligibility.criteria:
        if not c.reasons or c.id == "tace_resistant":  # TACE resistance is a fact of its own
            continue
        unknown = c.status is Status.UNKNOWN
        failed = (c.kind == "inclusion" and c.status is Status.NOT_MET) or (c.kind == "exclusion" and c.status is Status.MET)
        if (undecided and unknown) or (not undecided and failed):
            out.append(_sentence(without_parentheses(c.reasons[0])).rstrip("."))
    return out


def eligibility_fact(a: Assessment) -> str:
    e = a.sorafenib_eligibility
    if e.status == "eligible":
        confirm = [_lower_first(without_parentheses(t)) for t in e.to_confirm]
        return "Eligible by the study's criteria" + (f"; to confirm: {', '.join(confirm)}." if confirm else ".")
    if e.status == "ineligible":
        return "Outside the study's criteria: " + "; ".join(_failing(a, undecided=False)) + "."
    undecided = [_lower_first(x) for x in _failing(a, undecided=True)]
    more = f" (and {len(undecided) - 3} more)" if len(undecided) > 3 else ""
    return "Study criteria not decidable: " + "; ".join(undecided[:3]) + more + "."


def candidacy_fact(a: Assessment) -> str:
    f = a.tace_candidacy.finding
    reasons = [plain(r) for r in f.reasons]
    if f.status is Status.MET:
        return "TACE still possible: " + _lower_first(" ".join(reasons))
    if f.status is Status.NOT_MET:
        stops = [r.removeprefix("TACE contraindicated:").strip() for r in reasons if r.startswith("TACE contraindicated")]
        return "TACE not possible: " + _lower_first(" ".join(stops or reasons))
    doubts = [r for r in reasons if r.startswith("Cannot exclude")]
    return "TACE candidacy unknown: " + _lower_first(" ".join(doubts or reasons))


def _extra_reasons(a: Assessment) -> list[str]:
    """The recommendation's reasons after its TACE-resistance part (decision-table row 5)."""
    skip = 1 + len(a.tace_resistance.finding.reasons)
    return [plain(r) for r in a.recommendation.reasons[skip:]]


def _on_sorafenib_facts(a: Assessment) -> list[str]:
    facts = []
    if a.sorafenib.start is not None:
        facts.append(f"Sorafenib since {a.sorafenib.start.isoformat()}.")
    m = a.mrecist
    if m is not None and m.current is not None:
        facts.append(f"Response on sorafenib (mRECIST): {m.category or 'not evaluable'} on {m.current.date.isoformat()}.")
    elif a.sorafenib.start is not None:
        facts.append("No response imaging on sorafenib yet.")
    if a.dose is not None and a.dose.next_step != "continue" and a.dose.reasons:
        facts.append("Dose: " + _lower_first(plain(a.dose.reasons[0])))
    return facts


def deciding_facts(a: Assessment) -> list[str]:
    """The two or three facts that decided the recommendation, in clinician wording, without ids."""
    code = a.recommendation.code
    resistance = a.tace_resistance.finding.status
    if code in ("sorafenib-plus-tace", "sorafenib-alone"):
        facts = [resistance_fact(a), eligibility_fact(a), candidacy_fact(a)]
    elif code == "outside-study-criteria":
        facts = [resistance_fact(a), eligibility_fact(a)]
    elif code == "on-sorafenib":
        facts = _on_sorafenib_facts(a)
    elif code in ("continue-tace", "refer-mdt", "insufficient-data") and resistance is Status.NOT_MET:
        facts = [resistance_fact(a), *_extra_reasons(a)]
    elif code == "insufficient-data" and resistance is Status.UNKNOWN:
        facts = [resistance_fact(a)]
        if a.sorafenib_eligibility.status != "eligible":
            facts.append(eligibility_fact(a))
    elif code == "insufficient-data" and a.sorafenib_eligibility.status == "indeterminate":
        facts = [resistance_fact(a), eligibility_fact(a)]
    elif code == "insufficient-data":
        facts = [resistance_fact(a), eligibility_fact(a), candidacy_fact(a)]
    else:  # an ended sorafenib course (refer-mdt), not-applicable: the recommendation's own reasons
        facts = [plain(r) for r in a.recommendation.reasons]
    return [_sentence(f) for f in facts if f][:3]


def safety_warnings(a: Assessment, notes: Iterable[SafetyNote] | None = None) -> list[str]:
    """Short safety warnings: the safety notes (``notes``, by default all) and the study's biloma warning."""
    warnings = [SAFETY_SHORT.get(n.id, plain(n.text)) for n in (a.safety if notes is None else notes)]
    # the combination's biloma risk (rules.assessment warns with the study's figures): its first clause
    warnings += [plain(w.split(";")[0]) + "." for w in a.warnings if w.lower().startswith("biloma")]
    return list(dict.fromkeys(warnings))


def detail_markdown(headline: str, facts: list[str], warnings: list[str], context: str) -> str:
    """At most six lines of content: headline, up to three facts, one safety line, the context sentence.

    Every string is escaped here; facts and warnings are shortened until the detail is under budget.
    """
    e = escape
    detail = ""
    for limit in FACT_LIMITS:
        lines = [f"**{e(headline)}**", ""]
        lines += [f"- {e(_cap(f, limit))}" for f in facts[:3]]
        if warnings:
            lines += ["", "**Safety:** " + " ".join(e(_cap(w, limit)) for w in warnings)]
        lines += ["", f"_{e(_cap(context, max(limit, 200)))}_"]
        detail = neutralise("\n".join(lines))
        if len(detail) < DETAIL_BUDGET:
            break
    return detail


def versions_extension(a: Assessment) -> dict:
    """The versions behind the card (rules, value sets, thresholds, build): machine-readable, not shown."""
    return {VERSIONS_EXTENSION: {k: v for k, v in a.versions.items() if v is not None}}


def references_url(public_base_url: str) -> str:
    return f"{public_base_url}{REFERENCES_PATH}"


def source(public_base_url: str, code: str, display: str) -> Source:
    return Source(
        label=SOURCE_LABEL,
        url=references_url(public_base_url),
        topic=Coding(system=TOPIC_SYSTEM, code=code, display=display),
    )


def _summary(text: str) -> str:
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


def indicator(a: Assessment) -> str:
    """``critical`` for a drug-label contraindication; ``warning`` for any other safety note; else ``info``."""
    if any(n.label_contraindication for n in a.safety):
        return "critical"
    return "warning" if a.safety else "info"


def _label_card(note: SafetyNote, a: Assessment, public_base_url: str) -> Card:
    facts = [plain(note.text)]
    return Card(
        uuid=str(uuid.uuid4()),
        summary=_summary(plain(note.text)),
        detail=detail_markdown("Sorafenib is contraindicated for this patient (drug label).", facts, [], a.recommendation.context),
        indicator="critical",
        source=source(public_base_url, note.id, SAFETY_TOPIC.get(note.id, note.id.replace("-", " "))),
        extension=versions_extension(a),
    )


def render_patient_view_cards(assessment: Assessment, public_base_url: str) -> list[Card]:
    """Cards for patient-view: none without an active confirmed HCC diagnosis or for ``not-applicable``."""
    a = assessment
    code = a.recommendation.code
    if not a.has_hcc or code == "not-applicable":
        return []
    labels = [n for n in a.safety if n.label_contraindication]
    cards = [
        Card(
            uuid=str(uuid.uuid4()),
            summary=_summary(a.recommendation.summary),
            detail=detail_markdown(
                PLAIN.get(code, a.recommendation.summary),
                deciding_facts(a),
                safety_warnings(a),
                a.recommendation.context,
            ),
            indicator=indicator(a),
            source=source(public_base_url, code, TOPIC.get(code, code.replace("-", " "))),
            extension=versions_extension(a),
        )
    ]
    cards += [_label_card(note, a, public_base_url) for note in labels]
    return cards

