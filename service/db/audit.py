"""The audit trail: who called what, when, with which outcome.

An event holds a patient *reference* (``Patient/123``, checked) and identifiers, never clinical data;
the table has no column that could hold any. ``route`` is the route *template*
(``/assessments/{assessment_id}``), never the concrete path: a page's id is its authorisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import insert, select

from service.db._engine import EngineSource
from service.db.models import (
    ACTOR_LENGTH,
    AUDIT_KINDS,
    HOOK_INSTANCE_LENGTH,
    REQUEST_ID_LENGTH,
    ROUTE_LENGTH,
    SERVICE_ID_LENGTH,
    VERSION_LENGTH,
    AuditEventRow,
)
from service.db.types import as_utc, check_length, check_reference, utcnow

AuditKind = Literal["hook-call", "rest-call", "page-view", "feedback"]
assert get_args(AuditKind) == AUDIT_KINDS
MAX_LIST_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited call. ``actor``: the client's ``iss`` (or ``iss``/``sub``), ``"demo"`` in demo mode.
    ``outcome``: the HTTP status. ``id`` is set on events read back."""

    kind: AuditKind
    actor: str
    route: str
    outcome: int
    at: datetime = field(default_factory=utcnow)
    service_id: str | None = None
    patient_ref: str | None = None
    hook_instance: str | None = None
    rules_version: str | None = None
    request_id: str | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in AUDIT_KINDS:
            raise ValueError(f"audit kind must be one of {', '.join(AUDIT_KINDS)}, got {self.kind!r:.40}")
        check_length("actor", self.actor, ACTOR_LENGTH, required=True)
        check_length("route", self.route, ROUTE_LENGTH, required=True)
        if not isinstance(self.outcome, int) or not 100 <= self.outcome <= 599:
            raise ValueError(f"outcome must be an HTTP status, got {self.outcome!r:.40}")
        object.__setattr__(self, "at", as_utc(self.at, "at"))
        check_length("service_id", self.service_id, SERVICE_ID_LENGTH)
        check_reference(self.patient_ref, "patient_ref")
        check_length("hook_instance", self.hook_instance, HOOK_INSTANCE_LENGTH)
        check_length("rules_version", self.rules_version, VERSION_LENGTH)
        check_length("request_id", self.request_id, REQUEST_ID_LENGTH)


_COLUMNS = (
    "at",
    "actor",
    "kind",
    "route",
    "service_id",
    "patient_ref",
    "hook_instance",
    "rules_version",
    "outcome",
    "request_id",
)


class AuditRepository:
    """``db.audit``."""

    def __init__(self, source: EngineSource) -> None:
        self._source = source

    async def record(self, event: AuditEvent) -> int:
        """Append one event; return its id."""
        async with self._source.engine.begin() as conn:
            result = await conn.execute(insert(AuditEventRow).values({name: getattr(event, name) for name in _COLUMNS}))
        return int(result.inserted_primary_key[0])

    async def list_events(
        self, *, since: datetime | None = None, patient_ref: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        """Events at or after ``since``, optionally for one patient reference, oldest first, at most ``limit``."""
        table = AuditEventRow.__table__
        query = select(table).order_by(table.c.at, table.c.id).limit(max(1, min(limit, MAX_LIST_LIMIT)))
        if since is not None:
            query = query.where(table.c.at >= as_utc(since, "since"))
        if patient_ref is not None:
            query = query.where(table.c.patient_ref == patient_ref)
        async with self._source.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [AuditEvent(id=row.id, **{name: getattr(row, name) for name in _COLUMNS}) for row in rows]
