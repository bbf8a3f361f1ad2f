"""The audit trail: who called what, when, with which outcome.

An event holds a patient *reference* (``Patient/123``, checked) and identifiers, never clinical data;
the table has no column that could hold any. ``route`` is the route *template*
(``/assessments/{assessment_id}``), never the concrete path: a page's id is its authorisation.

Calls are audited off the response path: :meth:`AuditRepository.enqueue` keeps the event in memory
and a background task (started and stopped with the database) writes the pending events in one
transaction, at most ``flush_seconds`` after the first of them or as soon as ``flush_events`` are
pending. Nothing is lost on shutdown: :meth:`Database.stop` (the app's lifespan) writes what is
still pending before closing the engine, and :meth:`AuditRepository.list_events` writes it before
reading, so a process reads its own events. A failed write keeps the events pending (retried,
logged without their content); more than ``max_pending`` waiting drops the oldest, logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, cast, get_args

from sqlalchemy import Table, and_, insert, or_, select

from service.db._engine import EngineSource
from service.db.models import (
    ACTOR_LENGTH,
    AUDIT_KINDS,
    HOOK_INSTANCE_LENGTH,
    ISS_LENGTH,
    REQUEST_ID_LENGTH,
    ROUTE_LENGTH,
    SERVICE_ID_LENGTH,
    TENANT_LENGTH,
    VERSION_LENGTH,
    AuditEventRow,
)
from service.db.types import ClientScope, as_utc, check_length, check_reference, utcnow, where_scope

AuditKind = Literal[
    "hook-call", "rest-call", "page-view", "feedback", "smart-launch", "smart-view", "smart-write"
]
assert get_args(AuditKind) == AUDIT_KINDS
MAX_LIST_LIMIT = 10_000
FLUSH_SECONDS = 0.25  # the longest an audited call waits in memory while the service runs
FLUSH_EVENTS = 200  # a batch this large is written at once
MAX_PENDING = 100_000  # beyond this (the database down for long), the oldest are dropped, logged

log = logging.getLogger("hcc_cds.audit")


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
    issuer: str | None = None  # the authenticated client's iss and tenant (None: demo mode, refused)
    tenant: str | None = None
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
        check_length("issuer", self.issuer, ISS_LENGTH)
        check_length("tenant", self.tenant, TENANT_LENGTH)


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
    "issuer",
    "tenant",
)


class AuditRepository:
    """``db.audit``."""

    def __init__(
        self,
        source: EngineSource,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        flush_events: int = FLUSH_EVENTS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._source = source
        self.flush_seconds = flush_seconds
        self.flush_events = flush_events
        self.max_pending = max_pending
        self._pending: list[AuditEvent] = []
        self._wake: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()  # one write at a time: a reader waits for the batch in flight
        self._in_flight = 0
        self.dropped = 0

    async def record(self, event: AuditEvent) -> int:
        """Append one event now; return its id."""
        async with self._source.engine.begin() as conn:
            result = await conn.execute(insert(AuditEventRow).values({name: getattr(event, name) for name in _COLUMNS}))
        key = result.inserted_primary_key
        assert key is not None, "an INSERT of one row has its primary key"
        return int(key[0])

    async def record_many(self, events: Iterable[AuditEvent]) -> int:
        """Append events now, in one transaction; return how many."""
        rows = [{name: getattr(event, name) for name in _COLUMNS} for event in events]
        if not rows:
            return 0
        async with self._source.engine.begin() as conn:
            await conn.execute(insert(cast(Table, AuditEventRow.__table__)), rows)
        return len(rows)

    # -- batched, off the response path ------------------------------------------------------------

    def enqueue(self, event: AuditEvent) -> None:
        """Keep ``event`` for the next batch (see the module's doc). Never blocks, never raises for the database."""
        self._pending.append(event)
        if len(self._pending) > self.max_pending:
            excess = len(self._pending) - self.max_pending
            del self._pending[:excess]
            self.dropped += excess
            log.error("audit: %d events could not be written and were dropped (the database is unavailable)", excess)
        if self._wake is not None and (len(self._pending) == 1 or len(self._pending) >= self.flush_events):
            self._wake.set()

    @property
    def pending(self) -> int:
        """Events not written yet: kept in memory, or in a write not committed yet."""
        return len(self._pending) + self._in_flight

    async def flush(self) -> int:
        """Write every pending event now, in one transaction; return how many. On failure they stay pending."""
        async with self._flushing:
            if not self._pending:
                return 0
            batch, self._pending = self._pending, []
            self._in_flight = len(batch)
            try:
                return await self.record_many(batch)
            except BaseException:
                self._pending[:0] = batch  # back in front of newer events, in order
                raise
            finally:
                self._in_flight = 0

    def start(self) -> None:
        """Start writing batches in the background (:meth:`Database.start`)."""
        if self._flusher is not None and not self._flusher.done():
            return
        self._wake = asyncio.Event()
        if self._pending:
            self._wake.set()
        self._flusher = asyncio.get_running_loop().create_task(self._write_batches(), name="hcc-cds audit writer")

    async def stop(self) -> None:
        """Stop the background writer and write what is pending (:meth:`Database.stop`, before closing)."""
        flusher, self._flusher, self._wake = self._flusher, None, None
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        if self._pending:
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the class only: an error's text can quote the statement
                log.error("audit: %d events could not be written at shutdown (%s)", len(self._pending), type(exc).__name__)

    async def _write_batches(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            await wake.wait()  # the first pending event, or a full batch
            wake.clear()
            if len(self._pending) < self.flush_events:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.flush_seconds)  # gather a batch
                wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - kept pending, retried; the content is never logged
                log.warning("audit: %d events not written yet (%s); retrying", len(self._pending), type(exc).__name__)
                await asyncio.sleep(self.flush_seconds)
                wake.set()

    async def list_events(
        self,
        *,
        since: datetime | None = None,
        patient_ref: str | None = None,
        limit: int = 100,
        newest_first: bool = False,
        after: tuple[datetime, int] | None = None,
        scope: ClientScope | None = None,
    ) -> list[AuditEvent]:
        """Events at or after ``since``, optionally for one patient reference, at most ``limit``.

        Oldest first, or ``newest_first``. ``after`` is the (``at``, ``id``) of the last event of the
        previous page (a keyset cursor): the page goes on after it in the same order, however many
        events are written meanwhile. ``scope``: only the events of that client (issuer, tenant).
        Pending events are written first: a process reads its own trail.
        """
        await self.flush()
        table = AuditEventRow.__table__
        at, ident = table.c.at, table.c.id
        order = (at.desc(), ident.desc()) if newest_first else (at, ident)
        query = select(table).order_by(*order).limit(max(1, min(limit, MAX_LIST_LIMIT)))
        if since is not None:
            query = query.where(at >= as_utc(since, "since"))
        if patient_ref is not None:
            query = query.where(table.c.patient_ref == patient_ref)
        query = where_scope(query, table, scope)
        if after is not None:
            after_at, after_id = as_utc(after[0], "after"), int(after[1])
            if newest_first:
                query = query.where(or_(at < after_at, and_(at == after_at, ident < after_id)))
            else:
                query = query.where(or_(at > after_at, and_(at == after_at, ident > after_id)))
        async with self._source.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [AuditEvent(id=row.id, **{name: getattr(row, name) for name in _COLUMNS}) for row in rows]
