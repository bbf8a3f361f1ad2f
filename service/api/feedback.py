"""CDS Hooks feedback (``POST /cds-services/{id}/feedback``) and its summary for the hospital."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel

from service.api.schemas import ERROR_RESPONSES, ErrorMessage
from service.audit import note_audit
from service.auth.dependency import reader_scope, writer_scope
from service.db import AuditEvent, FeedbackItem
from service.deps import StateDep
from service.errors import ApiError
from service.fhir.ids import FHIR_ID_PATTERN

router = APIRouter(tags=["feedback"])
MAX_ITEMS = 100


class FeedbackStored(BaseModel):
    stored: int


class TopicRates(BaseModel):
    topic_code: str | None
    issued: int
    accepted: int
    overridden: int
    acceptance_rate: float | None
    override_rate: float | None


class FeedbackSummary(BaseModel):
    service_id: str | None
    topics: list[TopicRates]


@router.post(
    "/cds-services/{service_id}/feedback",
    response_model=FeedbackStored,
    responses={**ERROR_RESPONSES, 404: {"model": ErrorMessage, "description": "No CDS service with this id"}},
    summary="CDS Hooks 2.0 feedback on cards (accepted or overridden)",
)
async def post_feedback(
    service_id: str,
    state: StateDep,
    request: Request,
    body: Annotated[dict[str, Any], Body(description='{"feedback": [{"card", "outcome", "acceptedSuggestions", "overrideReason", "outcomeTimestamp"}]}')],
) -> FeedbackStored:
    note_audit(request, service_id=service_id)
    if service_id not in state.services:
        raise ApiError(404, f"no CDS service '{service_id}'; see GET /cds-services")
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise ApiError(422, "body must be {\"feedback\": [...]} with at least one item")
    if len(items) > MAX_ITEMS:
        raise ApiError(422, f"at most {MAX_ITEMS} feedback items per call")
    try:
        for i, item in enumerate(items):
            try:
                FeedbackItem.from_cds_hooks(item)
            except ValueError as exc:
                raise ValueError(f"feedback[{i}]: {exc}") from exc
    except ValueError as exc:
        raise ApiError(422, str(exc)) from exc
    stored = await state.db.feedback.add_feedback(service_id, items, scope=writer_scope(request))
    return FeedbackStored(stored=stored)


QUERY_ERROR: dict[int | str, dict[str, Any]] = {422: {"model": ErrorMessage, "description": "A query parameter is malformed"}}


@router.get(
    "/api/v1/feedback",
    response_model=FeedbackSummary,
    responses=QUERY_ERROR,
    summary="Acceptance and override rates per card type (a CDS client: its own issuer and tenant's)",
)
async def feedback_summary(
    state: StateDep,
    request: Request,
    service_id: Annotated[str | None, Query(max_length=100, description="only this CDS service")] = None,
) -> FeedbackSummary:
    rows = await state.db.feedback.feedback_summary(service_id=service_id, scope=reader_scope(request))
    return FeedbackSummary(
        service_id=service_id,
        topics=[
            TopicRates(
                topic_code=r.topic_code,
                issued=r.issued,
                accepted=r.accepted,
                overridden=r.overridden,
                acceptance_rate=r.acceptance_rate,
                override_rate=r.override_rate,
            )
            for r in rows
        ],
    )


class AuditRecord(BaseModel):
    at: str
    kind: str
    actor: str
    route: str
    outcome: int
    service_id: str | None
    patient_ref: str | None
    hook_instance: str | None
    rules_version: str | None
    request_id: str | None


class AuditList(BaseModel):
    events: list[AuditRecord]
    next_cursor: str | None = None


# an RFC 3339 date-time with its offset (a bare number is not read as a Unix time, a naive time not as UTC)
RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
AUDIT_PARAMETERS = frozenset({"patient_ref", "since", "limit", "cursor"})


def _encode_cursor(event: AuditEvent) -> str:
    assert event.id is not None
    raw = json.dumps([event.at.isoformat(), event.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, ident = json.loads(raw)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not isinstance(ident, int) or isinstance(ident, bool) or not 0 <= ident < 2**63:
            raise ValueError
        return when.astimezone(UTC), ident
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise ApiError(422, "cursor: not a cursor this service issued (next_cursor of a previous page)") from None


@router.get(
    "/api/v1/audit",
    response_model=AuditList,
    responses=QUERY_ERROR,
    summary="The audit trail (who called, when, which patient by reference), newest first",
    description=(
        "Newest first. `limit` events a page; when more are left, `next_cursor` is set: pass it as `cursor` "
        "for the next page (a keyset cursor: events written meanwhile neither repeat nor skip one). "
        "`since` keeps events at or after that time (with a time zone). Unknown parameters are refused. "
        "A CDS-client-role caller reads only the events of its own issuer and tenant; an operator, all."
    ),
)
async def audit_trail(
    state: StateDep,
    request: Request,
    patient_ref: Annotated[str | None, Query(pattern=rf"^[A-Za-z]+/{FHIR_ID_PATTERN}$", description="e.g. Patient/123")] = None,
    since: Annotated[
        str | None,
        Query(
            pattern=RFC3339,
            description="only events at or after this time (RFC 3339 with a time zone, e.g. 2026-01-01T00:00:00Z)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
) -> AuditList:
    unknown = sorted(set(request.query_params.keys()) - AUDIT_PARAMETERS)
    if unknown:
        raise ApiError(422, f"unknown query parameter(s): {', '.join(unknown)[:200]}; known: {', '.join(sorted(AUDIT_PARAMETERS))}")
    since_at = None
    if since is not None:
        try:
            since_at = datetime.fromisoformat(since).astimezone(UTC)
        except (ValueError, OverflowError):
            raise ApiError(422, "since: not an RFC 3339 date-time with a time zone (e.g. 2026-01-01T00:00:00Z)") from None
    after = _decode_cursor(cursor) if cursor is not None else None
    events = await state.db.audit.list_events(
        patient_ref=patient_ref, since=since_at, limit=limit + 1, newest_first=True, after=after,
        scope=reader_scope(request),
    )
    page, more = events[:limit], len(events) > limit
    return AuditList(
        events=[
            AuditRecord(
                at=e.at.isoformat(),
                kind=e.kind,
                actor=e.actor,
                route=e.route,
                outcome=e.outcome,
                service_id=e.service_id,
                patient_ref=e.patient_ref,
                hook_instance=e.hook_instance,
                rules_version=e.rules_version,
                request_id=e.request_id,
            )
            for e in page
        ],
        next_cursor=_encode_cursor(page[-1]) if more and page else None,
    )
