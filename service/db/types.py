"""Column types and time helpers shared by the tables: every timestamp is timezone-aware UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from service.fhir.ids import FHIR_ID_PATTERN

# A FHIR reference "Type/id" (id per FHIR R4: service.fhir.ids). Audit rows and stored
# assessments keep only such a reference to the patient, never clinical data.
REFERENCE_PATTERN = re.compile(r"[A-Z][A-Za-z]{0,63}/" + FHIR_ID_PATTERN)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime, name: str = "timestamp") -> datetime:
    """``value`` converted to UTC; naive datetimes are refused (their zone would be a guess)."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got a naive datetime)")
    return value.astimezone(UTC)


def check_reference(value: str | None, name: str = "patient_ref") -> str | None:
    """Refuse anything but a plain ``Type/id`` reference (e.g. ``Patient/123``)."""
    if value is None:
        return None
    if not isinstance(value, str) or not REFERENCE_PATTERN.fullmatch(value):
        raise ValueError(f"{name} must be a FHIR reference like 'Patient/123', got {value!r:.80}")
    return value


def check_length(name: str, value: str | None, maximum: int, *, required: bool = False) -> str | None:
    """Refuse a string longer than its column (PostgreSQL would fail the statement; SQLite would not)."""
    if value is None:
        if required:
            raise ValueError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    if required and not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > maximum:
        raise ValueError(f"{name} is longer than {maximum} characters")
    return value


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware UTC.

    PostgreSQL: ``timestamp with time zone``. SQLite has no time zones: the value is stored as naive
    UTC text (one fixed format, so comparisons in SQL stay correct) and tagged UTC when read.
    Binding a naive datetime raises instead of guessing its zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: whose rows a CDS client may read: its issuer and its tenant (``None``: the client names no tenant)
ClientScope = tuple[str, str | None]


def where_scope(query: Any, table: Any, scope: ClientScope | None) -> Any:
    """``query`` limited to the rows of ``scope`` (``None``: every row, an operator's view)."""
    if scope is None:
        return query
    issuer, tenant = scope
    query = query.where(table.c.issuer == issuer)
    return query.where(table.c.tenant.is_(None) if tenant is None else table.c.tenant == tenant)

