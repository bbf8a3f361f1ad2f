"""The clinician page a card links to: ``GET /assessments/{assessment_id}``.

It renders the assessment stored when the hook answered (never refetches), for a
tumour board: the decision in words with the facts that decided it and any
safety warning; the course of the disease as a timeline (drawn from the page
data stored beside the assessment, :mod:`service.render.course`); the survival
benchmark with both arms on one plot and its caveats; then every criterion by
its clinical name with readable evidence (the raw references on demand).
The unguessable, expiring id is the page's only authorisation (a browser sends
no JWT); each view is audited. Server-rendered with Jinja2, readable without
JavaScript, printable.
"""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from rules import RULES_VERSION
from service.audit import note_audit
from service.benchmarks.patient import COHORT_ID, FRAMING, LANDMARK_MONTHS, months_between
from service.db import ExpiredAssessment
from service.deps import StateDep
from service.main_state import AppState
from service.render.course import COURSE_FORMAT
from service.render.page_text import (
    ATTENTION_CODES,
    DECISION_TITLES,
    ELIGIBILITY_WORDS,
    benchmark_caveats,
    criterion_name,
    evidence_lines,
    outcome,
    readable,
)
from service.render.survival_chart import ARM_IDS, build_survival_chart
from service.render.templates import TEMPLATES
from service.render.timeline import build_timeline

router = APIRouter(tags=["page"])

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
}
_TEMPLATES = TEMPLATES


def _benchmark_view(state: AppState, assessment: dict) -> dict:
    """Both arms on one plot (the patient's highlighted, with their position), a table, the caveats."""
    cohort = state.benchmarks.cohort(COHORT_ID)
    arms = {arm_id: cohort.arm(arm_id) for arm_id in ARM_IDS if arm_id in cohort.arms}
    bench = assessment.get("benchmark")
    patient_arm = bench["arm"] if bench and bench.get("arm") in arms else None
    month = label = None
    if patient_arm:
        start = (assessment.get("sorafenib") or {}).get("start")
        if assessment["recommendation"]["code"] == "on-sorafenib" and start:
            month = months_between(date.fromisoformat(start), date.fromisoformat(assessment["as_of"]))
            label = f"This patient: {month:g} months on sorafenib"
        else:
            month, label = 0.0, "This patient: before sorafenib (month 0)"
    chart = build_survival_chart(arms, patient_arm, month, label)
    rows = []
    for arm_id, arm in arms.items():
        median = arm.median_os_months
        rows.append(
            {
                "label": arm.label,
                "n": arm.n,
                "mine": arm_id == patient_arm,
                "median": median,
                "points": [arm.survival_at(m) for m in LANDMARK_MONTHS],
            }
        )
    cohort_doc = cohort.document.get("cohort", cohort.document)
    general = list(cohort_doc.get("caveats", []))
    own = {arm_id: [c for c in arm.document.get("caveats", []) if c not in general] for arm_id, arm in arms.items()}
    return {
        "svg": chart.svg,
        "summary": chart.summary,
        "rows": rows,
        "months": LANDMARK_MONTHS,
        "patient_arm": arms[patient_arm].label if patient_arm else None,
        "caveats": benchmark_caveats(general, own, patient_arm, FRAMING),
    }


def _decision(assessment: dict) -> dict:
    rec = assessment["recommendation"]
    warnings = list(dict.fromkeys([*(assessment.get("warnings") or []), *(n["text"] for n in assessment.get("safety") or [])]))
    return {
        "title": DECISION_TITLES.get(rec["code"], rec["summary"]),
        "attention": rec["code"] in ATTENTION_CODES,
        "facts": rec.get("reasons", [])[:3],
        "more_facts": rec.get("reasons", [])[3:],
        "warnings": warnings,
    }


@router.get("/about", response_class=HTMLResponse, summary="What the service does, its sources and versions (HTML)")
async def about(state: StateDep) -> HTMLResponse:
    k = state.knowledge
    citations = [
        (group, content["citation"])
        for group, content in k.thresholds.items()
        if isinstance(content, dict) and content.get("citation")
    ]
    unconfirmed = [e for concept in k.value_sets["concepts"] for e in k.codes_of(concept) if not e.confirmed]
    html = _TEMPLATES.get_template("about.html").render(
        versions={
            "rules": RULES_VERSION,
            "value_sets": k.value_sets_version,
            "thresholds": k.thresholds_version,
            "build": state.build,
            "overrides_sha256": k.overrides_sha256,
        },
        context=k.criteria.recommendation.context,
        study=state.benchmarks.cohort(COHORT_ID).document["citation"],
        citations=citations,
        overrides=[o.describe() for o in k.overrides],
        unconfirmed=unconfirmed,
    )
    return HTMLResponse(html, headers={**PAGE_HEADERS, "Cache-Control": "public, max-age=3600"})


@router.get(
    "/assessments/{assessment_id}",
    response_class=HTMLResponse,
    summary="The clinician page behind a card's link (HTML)",
    responses={
        404: {"description": "Unknown link", "content": {"text/html": {}}},
        410: {"description": "The link has expired", "content": {"text/html": {}}},
        422: {
            "description": "The link id is malformed",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}},
        },
    },
)
async def assessment_page(
    request: Request,
    state: StateDep,
    assessment_id: str = Path(min_length=1, max_length=100),
) -> HTMLResponse:
    stored = await state.db.assessments.get_assessment(assessment_id)
    if stored is None:
        html = _TEMPLATES.get_template("message.html").render(
            title="Assessment not found",
            message="This link does not lead to an assessment. Open the card again in the patient's chart.",
        )
        return HTMLResponse(html, status_code=404, headers=PAGE_HEADERS)
    note_audit(request, service_id=stored.service_id)
    if isinstance(stored, ExpiredAssessment):
        html = _TEMPLATES.get_template("message.html").render(
            title="This link has expired",
            message="Assessment links work for a limited time and show the record as it was then. Open the "
            "patient's chart again for a current assessment.",
        )
        return HTMLResponse(html, status_code=410, headers=PAGE_HEADERS)
    note_audit(request, patient_ref=stored.patient_ref, rules_version=stored.rules_version)
    html = render_assessment_html(state, stored.assessment, stored.page, stored.created_at, stored.expires_at)
    return HTMLResponse(html, headers=PAGE_HEADERS)


def render_assessment_html(
    state: AppState, assessment: dict, page: dict | None, created: datetime, expires: datetime | None
) -> str:
    """The assessment page of one stored assessment (a card's link, or a worklist's patient)."""
    return _TEMPLATES.get_template("assessment.html").render(**assessment_view(state, assessment, page, created, expires))


def assessment_view(
    state: AppState, assessment: dict, page: dict | None, created: datetime, expires: datetime | None
) -> dict:
    """What assessment.html (and the SMART app's page, which extends it) renders of one assessment."""
    course = page if page and page.get("format") == COURSE_FORMAT else None
    evidence = (course or {}).get("evidence", {})
    return {
        "a": assessment,
        "decision": _decision(assessment),
        "timeline": build_timeline(course, assessment.get("mrecist"), assessment["as_of"]),
        "window_days": (course or {}).get("window_days"),
        "benchmark": _benchmark_view(state, assessment),
        "created": created,
        "expires": expires,
        "criterion_name": criterion_name,
        "eligibility_words": ELIGIBILITY_WORDS,
        "outcome": outcome,
        "lines": lambda refs: evidence_lines(refs, evidence),
        "readable": lambda text: readable(text, evidence),
    }
