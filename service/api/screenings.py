"""The screening job API (operator-role clients only; a CDS client never starts a screening).

``POST /api/v1/screenings`` names a source configured by the site (``HCC_SCREEN_SOURCES``), never a URL
from the caller; the run goes on in this worker (its partitions in worker processes) while the caller
polls ``GET /api/v1/screenings/{id}``. A run this worker did not finish (the service stopped) is
resumed with ``hcc-cds screen --run-id <id>``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api.schemas import ErrorMessage
from service.audit import note_audit
from service.auth.dependency import caller, require_operator
from service.db.screenings import ScreeningRun
from service.deps import StateDep
from service.main_state import AppState
from service.screening.job import ExecutionOptions, execute_run, run_folder
from service.screening.source_spec import AsOfSpec, SourceError, configured_sources
from service.screening.worklist_files import csv_lines, json_lines

log = logging.getLogger("hcc_cds.screening")
router = APIRouter(prefix="/api/v1/screenings", tags=["screenings"], dependencies=[Depends(require_operator)])
RUN_ID = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the run's id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorMessage, "description": "No such screening run"}}
OPERATOR: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorMessage, "description": "The client's role is not operator"},
    422: {"model": ErrorMessage, "description": "The request body or a parameter is malformed"},
}


class ScreeningRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="a source name of HCC_SCREEN_SOURCES", min_length=1, max_length=200)
    as_of: date | None = Field(default=None, description="screen as of this date (default: today)")
    since: str | None = Field(
        default=None, description="'auto': only what changed since the previous run's export; 'none': a full export"
    )


class ScreeningStatus(BaseModel):
    id: str
    status: Literal["queued", "exporting", "partitioning", "assessing", "complete", "failed", "cancelled"]
    created_at: str
    finished_at: str | None
    source: str
    as_of: dict[str, Any]
    patients_total: int | None
    patients_done: int
    patient_errors: int
    patients_per_second: float | None
    eta_seconds: float | None
    counts: dict[str, Any]
    transaction_time: str | None
    previous_run_id: str | None
    rules_version: str | None
    message: str | None
    status_url: str
    results_csv: str
    results_jsonl: str
    worklist_url: str


def _status(state: AppState, run: ScreeningRun) -> ScreeningStatus:
    base = f"{state.settings.public_base_url}/api/v1/screenings/{run.id}"
    progress = run.counts.get("progress") or {}
    return ScreeningStatus(
        id=run.id,
        status=run.status,  # the table's check constraint holds it to the Literal
        created_at=run.created_at.isoformat(),
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
        source=run.source.get("name") or run.source_key,
        as_of=run.as_of,
        patients_total=run.patients_total,
        patients_done=run.patients_done,
        patient_errors=run.patient_errors,
        patients_per_second=progress.get("patients_per_second"),
        eta_seconds=progress.get("eta_seconds"),
        counts={k: v for k, v in run.counts.items() if k != "progress"},
        transaction_time=run.transaction_time,
        previous_run_id=run.previous_run_id,
        rules_version=run.rules_version,
        message=run.message,
        status_url=base,
        results_csv=f"{base}/results?format=csv",
        results_jsonl=f"{base}/results?format=jsonl",
        worklist_url=f"{state.settings.public_base_url}/worklists/{run.page_token}",
    )


async def _run_or_404(state: AppState, run_id: str) -> ScreeningRun:
    run = await state.db.screenings.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"no screening run {run_id}")
    return run


def _start_in_background(state: AppState, run_id: str) -> None:
    options = ExecutionOptions(
        workers=state.settings.screen_workers,
        patients_per_partition=state.settings.screen_patients_per_partition,
    )

    async def job() -> None:
        try:
            await execute_run(state.db, state.settings, run_id, options=options)
        except Exception:  # execute_run records failures itself; this is the last guard
            log.exception("screening %s: the job ended unexpectedly", run_id)

    task = asyncio.get_running_loop().create_task(job(), name=f"screening {run_id}")
    state.screening_jobs.add(task)
    task.add_done_callback(state.screening_jobs.discard)


@router.post(
    "",
    status_code=202,
    response_model=ScreeningStatus,
    responses={**OPERATOR, 400: {"model": ErrorMessage, "description": "Unknown source or bad request"}},
    summary="Start a screening of a configured source (operator-role clients only)",
)
async def start_screening(body: ScreeningRequest, state: StateDep, request: Request) -> JSONResponse:
    try:
        sources = configured_sources(state.settings.screen_sources)
    except SourceError as exc:
        raise HTTPException(400, f"the service's screening sources are misconfigured: {exc}") from None
    spec = sources.get(body.source)
    if spec is None:
        names = ", ".join(sorted(sources)) or "none configured (HCC_SCREEN_SOURCES)"
        raise HTTPException(400, f"unknown screening source {body.source!r}; known: {names}")
    if body.since is not None and spec.kind == "fhir":
        spec = dataclasses.replace(spec, since=None if body.since == "none" else body.since)
    identity = caller(request)
    run = await state.db.screenings.create_run(
        source_key=spec.key,
        source={**spec.as_json(), "name": body.source},
        as_of=AsOfSpec(default=body.as_of.isoformat() if body.as_of else None).as_json(),
        started_by=identity.sub or identity.iss or "demo",
        issuer=identity.iss,
        tenant=identity.tenant,
    )
    await state.db.screenings.update_run(run.id, work_dir=str(run_folder(state.settings, run.id).resolve()))
    note_audit(request)
    _start_in_background(state, run.id)
    status = _status(state, run)
    return JSONResponse(status.model_dump(), status_code=202, headers={"Location": status.status_url})


@router.get("/{run_id}", response_model=ScreeningStatus, responses={**OPERATOR, **NOT_FOUND}, summary="A run's status")
async def screening_status(run_id: RUN_ID, state: StateDep) -> ScreeningStatus:
    return _status(state, await _run_or_404(state, run_id))


@router.get(
    "/{run_id}/results",
    responses={
        **OPERATOR,
        **NOT_FOUND,
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}, "description": "The worklist"},
        409: {"model": ErrorMessage, "description": "The run is not complete"},
    },
    response_class=StreamingResponse,
    summary="A complete run's worklist as CSV or JSON lines",
)
async def screening_results(
    run_id: RUN_ID,
    state: StateDep,
    request: Request,
    format: Annotated[Literal["csv", "jsonl"] | None, Query(description="default: from Accept, else jsonl")] = None,
    recommendation: Annotated[str | None, Query(max_length=40)] = None,
) -> StreamingResponse:
    run = await _run_or_404(state, run_id)
    if run.status != "complete":
        raise HTTPException(409, f"the run is {run.status}; results are served once it is complete")
    note_audit(request)
    wanted = format or ("csv" if "text/csv" in request.headers.get("accept", "") else "jsonl")
    if wanted == "csv":
        body: Any = csv_lines(state.db, run_id, recommendation=recommendation)
        media, name = "text/csv; charset=utf-8", "worklist.csv"
    else:
        body = json_lines(state.db, run_id, recommendation=recommendation)
        media, name = "application/x-ndjson", "worklist.jsonl"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    return StreamingResponse(body, media_type=media, headers=headers)


@router.delete(
    "/{run_id}",
    status_code=202,
    response_model=ScreeningStatus,
    responses={**OPERATOR, **NOT_FOUND, 409: {"model": ErrorMessage, "description": "The run has already finished"}},
    summary="Cancel a run (it stops after the partition in hand)",
)
async def cancel_screening(run_id: RUN_ID, state: StateDep, request: Request) -> ScreeningStatus:
    run = await _run_or_404(state, run_id)
    if run.finished:
        raise HTTPException(409, f"the run has already finished ({run.status})")
    note_audit(request)
    await state.db.screenings.update_run(run_id, status="cancelled")
    return _status(state, await _run_or_404(state, run_id))
