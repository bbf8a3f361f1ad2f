"""The clinician page a card links to: ``GET /assessments/{assessment_id}``.

It renders the assessment stored when the hook answered (never refetches): the
recommendation with its context sentence, every finding with its reasons,
evidence and citation, and the survival curves with the patient's position.
The unguessable, expiring id is the page's only authorisation (a browser sends
no JWT); each view is audited. Server-rendered with Jinja2, readable without
JavaScript, printable.
"""

from __future__ import annotations

from datetime import date
from importlib import resources

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from rules.knowledge import RULES_VERSION
from service.audit import note_audit
from service.benchmarks.patient import COHORT_ID, months_between
from service.benchmarks.plots import svg_with_marker
from service.db import ExpiredAssessment
from service.deps import StateDep
from service.main_state import AppState

router = APIRouter(tags=["page"])

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
}
_TEMPLATES = Environment(
    loader=FileSystemLoader(str(resources.files("service").joinpath("templates"))),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _inline(svg: str) -> str:
    """The <svg> element alone (no XML declaration or doctype inside HTML)."""
    return svg[svg.index("<svg"):]


def _curves(state: AppState, assessment: dict) -> list[dict]:
    """SVG curves: the benchmark arm with the patient's position, else both arms for context."""
    bench = assessment.get("benchmark")
    if bench:
        files = state.plots[(COHORT_ID, bench["arm"])]
        arm = state.benchmarks.cohort(COHORT_ID).arm(bench["arm"])
        start = assessment.get("sorafenib", {}).get("start")
        if assessment["recommendation"]["code"] == "on-sorafenib" and start:
            month = months_between(date.fromisoformat(start), date.fromisoformat(assessment["as_of"]))
            label = f"This patient: {month:g} months on sorafenib"
        else:
            month, label = 0.0, "This patient: before sorafenib (month 0)"
        point = arm.survival_at(month)
        survival = point.estimate if point and point.estimate is not None else 0.0
        return [{"title": bench["label"], "svg": _inline(svg_with_marker(files.svg, files.mapping, month, survival, label))}]
    return [
        {"title": state.benchmarks.cohort(COHORT_ID).arm(arm_id).label, "svg": _inline(state.plots[(COHORT_ID, arm_id)].svg)}
        for arm_id in ("sorafenib-plus-tace", "sorafenib-alone")
    ]


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
        context=k.thresholds["recommendation"]["context"],
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
    assessment = stored.assessment
    html = _TEMPLATES.get_template("assessment.html").render(
        a=assessment,
        curves=_curves(state, assessment),
        created=stored.created_at,
        expires=stored.expires_at,
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)
