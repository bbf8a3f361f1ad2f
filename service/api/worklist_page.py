"""The tumour-board worklist of a screening run: ``GET /worklists/{page_token}``.

One row a patient: the recommendation, TACE resistance, mRECIST, eligibility, what data is missing
and what changed since the previous run; sortable and filterable by query parameters (links, no
JavaScript), each row linking to that patient's stored assessment page, plus the CSV. As a card's
assessment page, the unguessable token is the page's only authorisation (a browser sends no JWT); it
works until the run is purged (HCC_SCREENING_RETENTION_DAYS). Each view is audited.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from service.api.page import PAGE_HEADERS, render_assessment_html
from service.audit import note_audit
from service.db.screenings import SORTABLE, ScreeningRun
from service.deps import StateDep
from service.fhir.ids import FHIR_ID_PATTERN
from service.main_state import AppState
from service.render.page_text import DECISION_TITLES
from service.render.templates import TEMPLATES
from service.screening.changes import change_label
from service.screening.summary import missing_label, missing_short
from service.screening.worklist_files import csv_lines

router = APIRouter(tags=["page"])
MALFORMED: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "The link or a parameter is malformed",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}},
    }
}
TOKEN = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ROWS_PER_PAGE = 500
COLUMNS = (
    ("patient_id", "Patient"),
    ("priority", "Recommendation"),
    ("tace_resistance", "TACE resistance"),
    ("mrecist", "mRECIST"),
    ("sorafenib_eligibility", "Sorafenib eligibility"),
    ("child_pugh", "Child-Pugh"),
    ("bclc", "BCLC"),
    ("ecog", "ECOG"),
    ("as_of", "As of"),
)


def _not_found() -> HTMLResponse:
    html = TEMPLATES.get_template("message.html").render(
        title="Worklist not found",
        message="This link does not lead to a screening worklist, or the run has been deleted after its retention time.",
    )
    return HTMLResponse(html, status_code=404, headers=PAGE_HEADERS)


async def _run(state: AppState, token: str) -> ScreeningRun | None:
    return await state.db.screenings.get_run_by_page_token(token)


def _link(token: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "", False)})
    return f"/worklists/{token}" + (f"?{query}" if query else "")


@router.get(
    "/worklists/{page_token}",
    response_class=HTMLResponse,
    summary="A screening run's worklist (HTML)",
    responses={404: {"description": "Unknown worklist", "content": {"text/html": {}}}, **MALFORMED},
)
async def worklist(
    request: Request,
    state: StateDep,
    page_token: TOKEN,
    recommendation: Annotated[str | None, Query(max_length=40)] = None,
    sort: Annotated[str, Query(max_length=40)] = "priority",
    desc: bool = False,
    changed: bool = False,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    run = await _run(state, page_token)
    if run is None:
        return _not_found()
    note_audit(request)
    sort = sort if sort in SORTABLE else "priority"
    rows = await state.db.screenings.results(
        run.id, recommendation=recommendation, changed_only=changed, sort=sort, descending=desc,
        limit=None if changed else ROWS_PER_PAGE, offset=0 if changed else offset,
    )
    counts = await state.db.screenings.recommendation_counts(run.id)
    html = TEMPLATES.get_template("worklist.html").render(
        run=run,
        rows=rows,
        counts=sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] or "")),
        total=sum(counts.values()),
        columns=COLUMNS,
        current={"recommendation": recommendation, "sort": sort, "desc": desc, "changed": changed, "offset": offset},
        link=lambda **p: _link(page_token, **{"recommendation": recommendation, "sort": sort, "desc": desc,
                                              "changed": changed, **p}),
        per_page=ROWS_PER_PAGE,
        token=page_token,
        titles=DECISION_TITLES,
        missing_label=missing_label,
        missing_short=missing_short,
        change_label=change_label,
        departed=run.counts.get("departed") or {},
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get(
    "/worklists/{page_token}/worklist.csv",
    response_class=StreamingResponse,
    summary="A screening run's worklist as CSV",
    responses={200: {"content": {"text/csv": {}}}, 404: {"description": "Unknown worklist"}, **MALFORMED},
)
async def worklist_csv(request: Request, state: StateDep, page_token: TOKEN) -> Any:
    run = await _run(state, page_token)
    if run is None:
        return _not_found()
    note_audit(request)
    headers = {**PAGE_HEADERS, "Content-Disposition": f'attachment; filename="worklist-{run.created_at:%Y-%m-%d}.csv"'}
    return StreamingResponse(csv_lines(state.db, run.id), media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/worklists/{page_token}/patients/{patient_id}",
    response_class=HTMLResponse,
    summary="One screened patient's assessment page (HTML)",
    responses={404: {"description": "Unknown worklist or patient", "content": {"text/html": {}}}, **MALFORMED},
)
async def worklist_patient(
    request: Request,
    state: StateDep,
    page_token: TOKEN,
    patient_id: Annotated[str, Path(pattern=rf"^{FHIR_ID_PATTERN}$")],
) -> HTMLResponse:
    run = await _run(state, page_token)
    result = await state.db.screenings.patient_result(run.id, patient_id) if run is not None else None
    if run is None or result is None:
        return _not_found()
    note_audit(request, patient_ref=f"Patient/{patient_id}", rules_version=result.row.get("rules_version"))
    if result.assessment is None:
        html = TEMPLATES.get_template("message.html").render(
            title=f"Patient {patient_id} could not be assessed",
            message=f"{result.row.get('error_kind')}: {result.row.get('error_message')}",
        )
        return HTMLResponse(html, headers=PAGE_HEADERS)
    expires = run.created_at + timedelta(days=state.settings.screening_retention_days)
    html = render_assessment_html(state, result.assessment, result.page, run.created_at, expires)
    return HTMLResponse(html, headers=PAGE_HEADERS)
