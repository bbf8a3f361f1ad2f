"""Assessment -> CDS Hooks cards for ``patient-view``.

Wording stays within the spec's limits (summary < 140 characters); the detail
is Markdown with the reasons, evidence, citations and the context sentence
every card carries. Study criteria are never ``critical``.
"""

from __future__ import annotations

import uuid

from rules.assessment import Assessment
from rules.findings import Finding, Status
from service.cds.models import Card, Coding, Source

CONTEXT_SENTENCE = (
    "Based on a 2008–2015 retrospective cohort (n=34). Current first-line systemic therapy for advanced HCC "
    "is immunotherapy-based (BCLC 2022); discuss at a tumour board."
)
SOURCE_LABEL = "hcc-cds: sorafenib after TACE failure (study criteria)"
TOPIC_SYSTEM = "urn:hcc-cds:card-topic"
STATUS_WORDS = {
    "eligible": "within the study's criteria",
    "ineligible": "outside the study's criteria",
    "indeterminate": "cannot be decided yet",
}
MARK = {Status.MET: "met", Status.NOT_MET: "not met", Status.UNKNOWN: "unknown"}


def _criterion_line(c: Finding) -> str:
    label = (c.id or "criterion").replace("_", " ")
    kind = f" ({c.kind})" if c.kind else ""
    reasons = " ".join(c.reasons) or "no reason recorded"
    evidence = f" Evidence: {', '.join(c.evidence)}." if c.evidence else ""
    return f"- **{label}**{kind}: {MARK[c.status]}. {reasons}{evidence} _Source: {c.citation}_"


def _detail(assessment: Assessment) -> str:
    cp = assessment.child_pugh
    elig = assessment.sorafenib_eligibility
    lines = [
        f"**Sorafenib eligibility (study criteria): {elig.status}** as of {assessment.as_of.isoformat()}.",
        "",
        f"**Child-Pugh:** {cp.klass or 'unknown'}"
        + (f" (score {cp.score})" if cp.score is not None else "")
        + f". {' '.join(cp.reasons)}",
        "",
        "**Criteria**",
        *(_criterion_line(c) for c in elig.criteria),
    ]
    if assessment.warnings:
        lines += ["", "**Warnings**", *(f"- {w}" for w in assessment.warnings)]
    if assessment.assumptions:
        lines += ["", "**Assumptions**", *(f"- {a}" for a in assessment.assumptions)]
    if elig.to_confirm:
        lines += ["", "**For the clinician to confirm**", *(f"- {t}" for t in elig.to_confirm)]
    if assessment.data_issues:
        lines += ["", "**Data not used**", *(f"- {i.resource}: {i.problem}" for i in assessment.data_issues)]
    versions = assessment.versions
    lines += [
        "",
        f"_{CONTEXT_SENTENCE}_",
        "",
        f"Rules {versions['rules']}, value sets {versions['value_sets']}, build {versions['build']}.",
    ]
    return "\n".join(lines)


def _summary(assessment: Assessment) -> str:
    elig = assessment.sorafenib_eligibility
    cp = assessment.child_pugh.klass
    summary = f"Sorafenib after TACE failure: {STATUS_WORDS[elig.status]} (Child-Pugh {cp or 'unknown'})."
    return summary if len(summary) < 140 else summary[:136] + "..."


def render_patient_view_cards(assessment: Assessment, public_base_url: str) -> list[Card]:
    """Cards for patient-view; none when there is no active confirmed HCC diagnosis."""
    if not assessment.has_hcc:
        return []
    status = assessment.sorafenib_eligibility.status
    # missing data deserves attention; a decided status is information (study criteria are never critical)
    indicator = "warning" if status == "indeterminate" else "info"
    return [
        Card(
            uuid=str(uuid.uuid4()),
            summary=_summary(assessment),
            detail=_detail(assessment),
            indicator=indicator,
            source=Source(
                label=SOURCE_LABEL,
                url=f"{public_base_url}/docs",
                topic=Coding(system=TOPIC_SYSTEM, code="sorafenib-eligibility", display="Sorafenib eligibility"),
            ),
        )
    ]
