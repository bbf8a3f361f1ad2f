"""Screening runs and their per-patient results (``db.screenings``).

A run's results are written a partition at a time, in one transaction that first deletes what an
earlier attempt at the same partition wrote: a resumed or retried partition never duplicates a row.
The assessment and page JSON of each patient are stored zlib-compressed (the worklist never reads
them; the patient's page does).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db._engine import EngineSource
from service.db.models import (
    ACTOR_LENGTH,
    DISPLAY_LENGTH,
    ID_LENGTH,
    SCREENING_STATUSES,
    SYSTEM_LENGTH,
    ScreeningResultRow,
    ScreeningRunRow,
)
from service.db.types import check_length, utcnow
from service.screening.blobs import to_bytes, unpack_bytes
from service.screening.changes import changes_since
from service.screening.summary import FIELDS, RECOMMENDATION_PRIORITY

RUNS = cast(Table, ScreeningRunRow.__table__)
RESULTS = cast(Table, ScreeningResultRow.__table__)
FINISHED = ("complete", "failed", "cancelled")
# a result row's columns (besides run_id and the stored JSON): its keys, the worklist's columns
# (summary.FIELDS, in order), what changed, and the error of a patient who could not be assessed
ROW_COLUMNS = (
    "patient_id",
    "partition",
    "as_of",
    "rules_version",
    *FIELDS,
    "changes",
    "error_kind",
    "error_message",
)
# "priority": the recommendation in the order a tumour board acts on (summary.RECOMMENDATION_PRIORITY)
SORTABLE = frozenset(ROW_COLUMNS) - {"missing", "changes", "partition", "error_message"} | {"priority"}
UPDATABLE = frozenset(
    {
        "status",
        "phase_detail",
        "patients_total",
        "patients_done",
        "patient_errors",
        "counts",
        "transaction_time",
        "rules_version",
        "message",
        "work_dir",
        "finished_at",
    }
)


@dataclass(frozen=True, slots=True)
class ScreeningRun:
    id: str
    page_token: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    started_by: str
    issuer: str | None
    tenant: str | None
    source_key: str
    source: dict[str, Any]
    as_of: dict[str, Any]
    status: str
    phase_detail: str | None
    patients_total: int | None
    patients_done: int
    patient_errors: int
    counts: dict[str, Any]
    transaction_time: str | None
    previous_run_id: str | None
    rules_version: str | None
    message: str | None
    work_dir: str | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True, slots=True)
class PatientResult:
    """One patient of a run, with the stored assessment and page data (None for a patient in error)."""

    run_id: str
    row: dict[str, Any]
    assessment: dict[str, Any] | None
    page: dict[str, Any] | None


def result_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """A worker's result line (``service.screening.runner``) as the worklist columns."""
    fields = item.get("fields") or {}
    error = item.get("error") or {}
    row: dict[str, Any] = {
        "patient_id": item["patient_id"],
        "partition": int(item.get("partition") or 0),
        "as_of": str(item["as_of"]),
        "rules_version": item.get("rules_version"),
    }
    row.update((name, fields.get(name)) for name in FIELDS)
    row["missing"] = list(fields.get("missing") or [])
    row["data_issues"] = int(fields.get("data_issues") or 0)
    row["error_kind"] = error.get("kind")
    row["error_message"] = error.get("message")
    return row


def _priority() -> Any:
    ranks = {code: rank for rank, code in enumerate(RECOMMENDATION_PRIORITY)}
    return case(ranks, value=RESULTS.c.recommendation, else_=len(ranks))


class ScreeningRepository:
    """``db.screenings``."""

    def __init__(self, source: EngineSource) -> None:
        self._source = source

    async def create_run(
        self,
        *,
        source_key: str,
        source: Mapping[str, Any],
        as_of: Mapping[str, Any],
        started_by: str,
        issuer: str | None = None,
        tenant: str | None = None,
        work_dir: str | None = None,
        now: datetime | None = None,
    ) -> ScreeningRun:
        """A new queued run; its previous run is the newest complete one of the same ``source_key``."""
        check_length("source_key", source_key, SYSTEM_LENGTH, required=True)
        check_length("started_by", started_by, ACTOR_LENGTH, required=True)
        created = now or utcnow()
        async with self._source.engine.begin() as conn:
            previous = await conn.scalar(
                select(RUNS.c.id)
                .where(and_(RUNS.c.source_key == source_key, RUNS.c.status == "complete"))
                .order_by(RUNS.c.created_at.desc())
                .limit(1)
            )
            row: dict[str, Any] = {
                "id": secrets.token_hex(16),
                "page_token": secrets.token_urlsafe(32),
                "created_at": created,
                "updated_at": created,
                "finished_at": None,
                "started_by": started_by,
                "issuer": issuer,
                "tenant": tenant,
                "source_key": source_key,
                "source": dict(source),
                "as_of": dict(as_of),
                "status": "queued",
                "phase_detail": None,
                "patients_total": None,
                "patients_done": 0,
                "patient_errors": 0,
                "counts": {},
                "transaction_time": None,
                "previous_run_id": previous,
                "rules_version": None,
                "message": None,
                "work_dir": work_dir,
            }
            await conn.execute(insert(RUNS), row)
        return ScreeningRun(**row)

    async def update_run(self, run_id: str, **values: Any) -> None:
        unknown = set(values) - UPDATABLE
        if unknown:
            raise ValueError(f"not a run field one may update: {sorted(unknown)}")
        if "status" in values and values["status"] not in SCREENING_STATUSES:
            raise ValueError(f"unknown run status {values['status']!r}")
        if values.get("phase_detail") is not None:
            values["phase_detail"] = str(values["phase_detail"])[:DISPLAY_LENGTH]
        where = RUNS.c.id == run_id
        if values.get("status", "cancelled") != "cancelled":
            where = and_(where, RUNS.c.status != "cancelled")  # a cancelled run stays cancelled
        async with self._source.engine.begin() as conn:
            await conn.execute(update(RUNS).where(where).values(updated_at=utcnow(), **values))

    async def get_run(self, run_id: str) -> ScreeningRun | None:
        return await self._one_run(RUNS.c.id == run_id, run_id)

    async def get_run_by_page_token(self, token: str) -> ScreeningRun | None:
        return await self._one_run(RUNS.c.page_token == token, token)

    async def _one_run(self, where: Any, key: str) -> ScreeningRun | None:
        if not key or len(key) > ID_LENGTH:
            return None
        async with self._source.engine.connect() as conn:
            row = (await conn.execute(select(RUNS).where(where))).mappings().first()
        return ScreeningRun(**row) if row is not None else None

    async def list_runs(self, *, limit: int = 50) -> list[ScreeningRun]:
        async with self._source.engine.connect() as conn:
            rows = (await conn.execute(select(RUNS).order_by(RUNS.c.created_at.desc()).limit(limit))).mappings()
            return [ScreeningRun(**r) for r in rows]

    async def ingest_partition(self, run: ScreeningRun, partition: int, items: Sequence[Mapping[str, Any]]) -> int:
        """Store one partition's result lines (replacing an earlier attempt's); return the patients in error."""
        rows = [result_row(item) for item in items]
        async with self._source.engine.begin() as conn:
            previous = await self._previous_rows(conn, run, [r["patient_id"] for r in rows])
            for row, item in zip(rows, items, strict=True):
                row["run_id"] = run.id
                row["changes"] = changes_since(
                    previous.get(row["patient_id"]), row, has_previous_run=run.previous_run_id is not None
                )
                row["assessment_z"] = to_bytes(item.get("assessment_z"))
                row["page_z"] = to_bytes(item.get("page_z"))
            await conn.execute(
                delete(RESULTS).where(and_(RESULTS.c.run_id == run.id, RESULTS.c.partition == partition))
            )
            if rows:
                await conn.execute(insert(RESULTS), rows)
        return sum(1 for r in rows if r["error_kind"] is not None)

    async def _previous_rows(
        self, conn: AsyncConnection, run: ScreeningRun, patient_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        if run.previous_run_id is None or not patient_ids:
            return {}
        columns = [
            RESULTS.c[name] for name in ("patient_id", "recommendation", "tace_resistance", "missing", "error_kind")
        ]
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(patient_ids), 500):  # bounded IN lists
            chunk = list(patient_ids[start : start + 500])
            query = select(*columns).where(
                and_(RESULTS.c.run_id == run.previous_run_id, RESULTS.c.patient_id.in_(chunk))
            )
            for r in (await conn.execute(query)).mappings():
                out[r["patient_id"]] = dict(r)
        return out

    async def counts(self, run_id: str) -> dict[str, int]:
        """Patients and patients in error stored for the run (what a resumed run starts from)."""
        async with self._source.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(func.count(), func.count(RESULTS.c.error_kind)).where(RESULTS.c.run_id == run_id)
                )
            ).first()
        return {"patients": int(row[0]) if row else 0, "errors": int(row[1]) if row else 0}

    async def results(
        self,
        run_id: str,
        *,
        recommendation: str | None = None,
        changed_only: bool = False,
        sort: str = "priority",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The worklist rows of a run (no assessment JSON), filtered and sorted in the database."""
        rows = []
        async for row in self.iter_results(
            run_id, recommendation=recommendation, sort=sort, descending=descending, limit=limit, offset=offset
        ):
            if not changed_only or row["changes"]:
                rows.append(row)
        return rows

    async def iter_results(
        self,
        run_id: str,
        *,
        recommendation: str | None = None,
        sort: str = "priority",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> AsyncIterator[dict[str, Any]]:
        """Streamed worklist rows (the CSV and JSON lines of a 100 000-patient run never sit in memory)."""
        if sort not in SORTABLE:
            raise ValueError(f"cannot sort by {sort!r}; one of {', '.join(sorted(SORTABLE))}")
        column = _priority() if sort == "priority" else RESULTS.c[sort]
        order = [column.desc() if descending else column.asc(), RESULTS.c.patient_id.asc()]
        query = select(*[RESULTS.c[name] for name in ROW_COLUMNS]).where(RESULTS.c.run_id == run_id)
        if recommendation is not None:
            query = query.where(RESULTS.c.recommendation == recommendation)
        query = query.order_by(*order).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        async with self._source.engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=1000))
            async for row in result.mappings():
                yield dict(row)

    async def recommendation_counts(self, run_id: str) -> dict[str | None, int]:
        async with self._source.engine.connect() as conn:
            query = (
                select(RESULTS.c.recommendation, func.count())
                .where(RESULTS.c.run_id == run_id)
                .group_by(RESULTS.c.recommendation)
            )
            return {r[0]: int(r[1]) for r in await conn.execute(query)}

    async def patient_result(self, run_id: str, patient_id: str) -> PatientResult | None:
        if len(patient_id) > ID_LENGTH:
            return None
        query = select(*[RESULTS.c[name] for name in ROW_COLUMNS], RESULTS.c.assessment_z, RESULTS.c.page_z).where(
            and_(RESULTS.c.run_id == run_id, RESULTS.c.patient_id == patient_id)
        )
        async with self._source.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        data = dict(row)
        assessment, page = unpack_bytes(data.pop("assessment_z")), unpack_bytes(data.pop("page_z"))
        return PatientResult(run_id, data, assessment, page)

    async def departed(self, run: ScreeningRun, *, limit: int = 1000) -> list[str]:
        """Patients of the previous run that this run's export no longer holds."""
        if run.previous_run_id is None:
            return []
        current = select(RESULTS.c.patient_id).where(RESULTS.c.run_id == run.id)
        query = (
            select(RESULTS.c.patient_id)
            .where(and_(RESULTS.c.run_id == run.previous_run_id, RESULTS.c.patient_id.not_in(current)))
            .order_by(RESULTS.c.patient_id)
            .limit(limit)
        )
        async with self._source.engine.connect() as conn:
            return [r[0] for r in await conn.execute(query)]

    async def purge_older_than(self, age: timedelta, now: datetime | None = None) -> int:
        """Delete finished runs (and their results) created more than ``age`` ago; return how many."""
        cutoff = (now or utcnow()) - age
        async with self._source.engine.begin() as conn:
            ids = [
                r[0]
                for r in await conn.execute(
                    select(RUNS.c.id).where(and_(RUNS.c.created_at < cutoff, RUNS.c.status.in_(FINISHED)))
                )
            ]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                await conn.execute(delete(RESULTS).where(RESULTS.c.run_id.in_(chunk)))
                await conn.execute(delete(RUNS).where(RUNS.c.id.in_(chunk)))
        return len(ids)
