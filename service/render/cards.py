"""Assessment -> CDS Hooks cards for ``patient-view``.

Wording stays within the spec's limits (summary < 140 characters); the detail
is Markdown with the reasons, evidence, citations and the context sentence
every card carries; text from the record is shown literally, never as HTML or
a link (``service.render.markdown``). ``critical`` is reserved for drug-label
contraindications, never for study criteria.
"""

from __future__ import annotations

import uuid

from rules.assessment import Assessment
from rules.findings import Finding, Status
from service.cds.models import Card, Coding, Source
from service.render.markdown import escape, escape_all, neutralise

SOURCE_LABEL = "hcc-cds: sorafenib after TACE failure (study criteria)"
TOPIC_SYSTEM = "urn:hcc-cds:recommendation"
MARK = {Status.MET: "met", Status.NOT_MET: "not met", Status.UNKNOWN: "unknown"}
SUMMARY_LIMIT = 139
ATTENTION_CODES = frozenset({"insufficient-data", "refer-mdt", "outside-study-criteria"})


def _finding_line(label: str, f: Finding) -> str:
    kind = f" ({escape(f.kind)})" if f.kind else ""
    reasons = " ".join(escape_all(f.reasons)) or "no reason recorded"
    evidence = f" Evidence: {', '.join(escape_all(f.evidence))}." if f.evidence else ""
    return f"- **{escape(label)}**{kind}: {MARK[f.status]}. {reasons}{evidence} _Source: {escape(f.citation)}_"


def versions_line(a: Assessment) -> str:
    v = a.versions
    return escape(f"Rules {v['rules']}, value sets {v['value_sets']}, thresholds {v['thresholds']}, build {v['build']}.")


def _detail(a: Assessment) -> str:
    # every string put into the Markdown is escaped (reasons, notes and data issues quote record
    # text: a status reason, a unit, an id); the Markdown around them is written here
    rec = a.recommendation
    cp = a.child_pugh
    elig = a.sorafenib_eligibility
    ps = a.performance_status
    e = escape
    lines = [
        f"**{e(rec.summary)}** (as of {a.as_of.isoformat()})",
        "",
        *(f"- {r}" for r in escape_all(rec.reasons)),
        "",
        "**Findings**",
        _finding_line("TACE resistance (JSH 2010, the study's definition)", a.tace_resistance.finding),
        _finding_line("JSH-LCSGJ 2014 refractoriness", a.tace_resistance.jsh_2014),
        f"- **mRECIST**: {e(a.mrecist.category) if a.mrecist and a.mrecist.category else 'not evaluable'}. "
        + e(a.mrecist_note or "")
        + (" " + " ".join(escape_all(a.mrecist.reasons)) if a.mrecist else ""),
        f"- **Child-Pugh**: {e(cp.klass or 'unknown')}" + (f" (score {cp.score})" if cp.score is not None else "")
        + f". {' '.join(escape_all(cp.reasons))}",
        "- **Performance status**: " + (
            f"ECOG {ps.ecog}" if ps.source == "ecog" else f"Karnofsky {ps.karnofsky}" if ps.source else "unknown"
        ) + f". {' '.join(escape_all(ps.reasons))}",
        f"- **BCLC (2010)**: at the first TACE {e(str(a.bclc.at_first_tace.stage)) if a.bclc.at_first_tace else 'n/a'}, "
        f"now {e(a.bclc.current.stage or 'unknown')}, tumour extent {e(a.bclc.tumour_extent.stage or 'unknown')}. "
        f"{e(a.bclc.note or '')}",
        _finding_line("TACE candidacy", a.tace_candidacy.finding),
        "",
        f"**Sorafenib eligibility (study criteria): {e(elig.status)}**",
        *(_finding_line((c.id or "criterion").replace("_", " "), c) for c in elig.criteria),
    ]
    if a.warnings:
        lines += ["", "**Warnings**", *(f"- {w}" for w in escape_all(a.warnings))]
    if a.assumptions:
        lines += ["", "**Assumptions**", *(f"- {x}" for x in escape_all(a.assumptions))]
    to_confirm = list(dict.fromkeys(elig.to_confirm + a.tace_candidacy.to_confirm))
    if to_confirm:
        lines += ["", "**For the clinician to confirm**", *(f"- {t}" for t in escape_all(to_confirm))]
    if a.data_issues:  # ids and values as received, valid or not: shown literally
        lines += ["", "**Data not used**", *(f"- {e(i.resource)}: {e(i.problem)}" for i in a.data_issues)]
    lines += ["", f"_{e(rec.context)}_", "", versions_line(a)]
    return neutralise("\n".join(lines))


def _summary(a: Assessment) -> str:
    summary = a.recommendation.summary
    return summary if len(summary) <= SUMMARY_LIMIT else summary[: SUMMARY_LIMIT - 1] + "…"


def _indicator(a: Assessment) -> str:
    if any(n.label_contraindication for n in a.safety):
        return "critical"
    if a.recommendation.code in ATTENTION_CODES or a.safety:
        return "warning"
    return "info"


def render_patient_view_cards(assessment: Assessment, public_base_url: str) -> list[Card]:
    """Cards for patient-view; none when there is no active confirmed HCC diagnosis."""
    if not assessment.has_hcc:
        return []
    cards = [
        Card(
            uuid=str(uuid.uuid4()),
            summary=_summary(assessment),
            detail=_detail(assessment),
            indicator=_indicator(assessment),
            source=Source(
                label=SOURCE_LABEL,
                url=f"{public_base_url}/about",
                topic=Coding(
                    system=TOPIC_SYSTEM,
                    code=assessment.recommendation.code,
                    display=assessment.recommendation.code.replace("-", " "),
                ),
            ),
        )
    ]
    for note in assessment.safety:
        if note.label_contraindication:
            cards.append(
                Card(
                    uuid=str(uuid.uuid4()),
                    summary=note.text[:SUMMARY_LIMIT],
                    detail=neutralise(
                        f"{escape(note.text)}\n\nEvidence: {', '.join(escape_all(note.evidence))}.\n\n"
                        f"_Source: {escape(note.citation)}_\n\n_{escape(assessment.recommendation.context)}_"
                    ),
                    indicator="critical",
                    source=Source(
                        label=SOURCE_LABEL,
                        topic=Coding(system=TOPIC_SYSTEM, code=note.id, display=note.id.replace("-", " ")),
                    ),
                )
            )
    return cards
