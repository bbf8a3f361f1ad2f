"""Stored assessments: the result a card's link shows, under a random unguessable id, for a limited time."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, cast

from sqlalchemy import Table, delete, insert, select

from service.db._engine import EngineSource
from service.db.models import (
    HOOK_INSTANCE_LENGTH,
    ID_LENGTH,
    SERVICE_ID_LENGTH,
    VERSION_LENGTH,
    StoredAssessmentRow,
)
from service.db.types import as_utc, check_length, check_reference, utcnow

DEFAULT_ASSESSMENT_LIFETIME = timedelta(hours=24)
ID_BYTES = 32  # secrets.token_urlsafe(32): 256 random bits, 43 URL-safe characters
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_assessment_id() -> str:
    """A fresh page id: 256 bits from the OS's CSPRNG; it is the page's only authorisation."""
    return secrets.token_urlsafe(ID_BYTES)


@dataclass(frozen=True, slots=True)
class StoredAssessment:
    """A stored result that has not expired."""

    id: str
    created_at: datetime
    expires_at: datetime
    patient_ref: str
    hook_instance: str | None
    service_id: str
    rules_version: str
    assessment: dict[str, Any]
    cards: list[Any] | None
    page: dict[str, Any] | None = None  # page-only data beside the assessment JSON (None: stored before it)

    expired: ClassVar[Literal[False]] = False


@dataclass(frozen=True, slots=True)
class ExpiredAssessment:
    """The id existed but its lifetime is over: the page says "this link has expired".

    Carries no assessment or cards, so an expired result cannot be shown by mistake.
    """

    id: str
    created_at: datetime
    expires_at: datetime
    service_id: str

    expired: ClassVar[Literal[True]] = True


# parameters, not .values(): no SQL expression is built around the (large) assessment JSON
INSERT = insert(cast(Table, StoredAssessmentRow.__table__))


class AssessmentRepository:
    """``db.assessments``."""

    def __init__(self, source: EngineSource, lifetime: timedelta = DEFAULT_ASSESSMENT_LIFETIME) -> None:
        if lifetime <= timedelta(0):
            raise ValueError("the stored assessment lifetime must be positive")
        self._source = source
        self.lifetime = lifetime

    def new_row(
        self,
        *,
        patient_ref: str,
        service_id: str,
        rules_version: str,
        assessment: Mapping[str, Any],
        cards: Sequence[Any] | None = None,
        page: Mapping[str, Any] | None = None,
        hook_instance: str | None = None,
        now: datetime | None = None,
        lifetime: timedelta | None = None,
    ) -> dict[str, Any]:
        """One call's result (JSON-ready: ``model_dump(mode="json")``) as a row of :data:`INSERT`, checked;
        ``row["id"]`` is its new random id. ``page`` is what only the clinician page draws (JSON-ready), stored
        beside the assessment so that the assessment JSON stays as the schema says. Written by
        :meth:`save_assessment` or, with the call's cards, :meth:`service.db.Database.save_assessment_with_cards`."""
        check_reference(patient_ref, "patient_ref")
        check_length("service_id", service_id, SERVICE_ID_LENGTH, required=True)
        check_length("rules_version", rules_version, VERSION_LENGTH, required=True)
        check_length("hook_instance", hook_instance, HOOK_INSTANCE_LENGTH)
        created = as_utc(now, "now") if now is not None else utcnow()
        lifetime = self.lifetime if lifetime is None else lifetime
        if lifetime <= timedelta(0):
            raise ValueError("lifetime must be positive")
        return {
            "id": new_assessment_id(),
            "created_at": created,
            "expires_at": created + lifetime,
            "patient_ref": patient_ref,
            "hook_instance": hook_instance,
            "service_id": service_id,
            "rules_version": rules_version,
            "assessment": dict(assessment),
            "cards": list(cards) if cards is not None else None,
            "page": dict(page) if page is not None else None,
        }

    async def save_assessment(self, row: Mapping[str, Any]) -> str:
        """Store one call's result, a row of :meth:`new_row`, in a transaction of its own; return its id."""
        async with self._source.engine.begin() as conn:
            await conn.execute(INSERT, row)
        return str(row["id"])

    async def get_assessment(
        self, assessment_id: str, now: datetime | None = None
    ) -> StoredAssessment | ExpiredAssessment | None:
        """The stored result; :class:`ExpiredAssessment` once ``expires_at <= now``; ``None`` if unknown."""
        now = as_utc(now, "now") if now is not None else utcnow()
        if (
            not isinstance(assessment_id, str)
            or len(assessment_id) > ID_LENGTH
            or not _ID_PATTERN.fullmatch(assessment_id)
        ):
            return None
        async with self._source.engine.connect() as conn:
            row = (
                await conn.execute(select(StoredAssessmentRow.__table__).where(StoredAssessmentRow.id == assessment_id))
            ).one_or_none()
        if row is None:
            return None
        if row.expires_at <= now:
            return ExpiredAssessment(
                id=row.id, created_at=row.created_at, expires_at=row.expires_at, service_id=row.service_id
            )
        return StoredAssessment(
            id=row.id,
            created_at=row.created_at,
            expires_at=row.expires_at,
            patient_ref=row.patient_ref,
            hook_instance=row.hook_instance,
            service_id=row.service_id,
            rules_version=row.rules_version,
            assessment=row.assessment,
            cards=row.cards,
            page=row.page,
        )

    async def purge_expired(self, now: datetime | None = None, *, batch: int = 500) -> int:
        """Delete results whose lifetime is over (their ids then read as unknown); return how many.

        In batches of ``batch`` rows, each its own transaction: a backlog never holds SQLite's write
        lock for long (the service's calls wait at most HCC_DATABASE_TIMEOUT_SECONDS for it).
        """
        now = as_utc(now, "now") if now is not None else utcnow()
        table = cast(Table, StoredAssessmentRow.__table__)
        deleted = 0
        while True:
            doomed = select(table.c.id).where(table.c.expires_at <= now).limit(max(1, batch)).scalar_subquery()
            async with self._source.engine.begin() as conn:
                result = await conn.execute(delete(table).where(table.c.id.in_(doomed)))
            deleted += result.rowcount
            if result.rowcount < batch:
                return deleted
