"""The audit trail: round trip, filters, and no clinical data."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from service.db import AuditEvent
from service.db.models import AuditEventRow

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALLOWED_COLUMNS = {
    "id", "at", "actor", "kind", "route", "service_id", "patient_ref", "hook_instance", "rules_version", "outcome", "request_id",
    "issuer", "tenant",  # the authenticated client (issue 18 item 8: a CDS client reads only its own)
}  # fmt: skip


def event(**overrides) -> AuditEvent:
    values = {
        "kind": "hook-call",
        "actor": "https://ehr.example.org",
        "route": "/cds-services/{service_id}",
        "outcome": 200,
        "at": T0,
        "service_id": "hcc-sorafenib",
        "patient_ref": "Patient/123",
        "hook_instance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "rules_version": "rules-1.0+abc123",
        "request_id": "req-1",
    }
    values.update(overrides)
    return AuditEvent(**values)


async def test_round_trip(database):
    original = event()
    event_id = await database.audit.record(original)
    (stored,) = await database.audit.list_events()
    assert stored == dataclasses.replace(original, id=event_id)
    assert stored.at.tzinfo == UTC


async def test_minimal_event(database):
    await database.audit.record(
        AuditEvent(kind="page-view", actor="demo", route="/assessments/{assessment_id}", outcome=410)
    )
    (stored,) = await database.audit.list_events()
    assert (stored.kind, stored.outcome, stored.patient_ref, stored.service_id) == ("page-view", 410, None, None)
    assert abs(stored.at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_filters_order_and_limit(database):
    for minutes, kind, patient in [
        (0, "hook-call", "Patient/1"),
        (1, "rest-call", "Patient/2"),
        (2, "page-view", "Patient/1"),
        (3, "feedback", None),
    ]:
        await database.audit.record(event(at=T0 + timedelta(minutes=minutes), kind=kind, patient_ref=patient))
    all_events = await database.audit.list_events()
    assert [e.kind for e in all_events] == ["hook-call", "rest-call", "page-view", "feedback"]
    assert [e.kind for e in await database.audit.list_events(since=T0 + timedelta(minutes=1))] == [
        "rest-call",
        "page-view",
        "feedback",
    ]
    assert [e.kind for e in await database.audit.list_events(patient_ref="Patient/1")] == ["hook-call", "page-view"]
    assert [e.kind for e in await database.audit.list_events(limit=2)] == ["hook-call", "rest-call"]
    assert await database.audit.list_events(since=T0 + timedelta(minutes=1), patient_ref="Patient/1", limit=1) == [
        all_events[2]
    ]


def test_the_table_has_no_clinical_columns():
    assert {c.name for c in AuditEventRow.__table__.columns} == ALLOWED_COLUMNS
    assert {f.name for f in dataclasses.fields(AuditEvent)} == ALLOWED_COLUMNS


async def test_the_migrated_table_has_no_clinical_columns(database):
    async with database.engine.connect() as conn:
        columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("audit_events")})
    assert columns == ALLOWED_COLUMNS


@pytest.mark.parametrize(
    "patient_ref",
    [
        "Bilirubin 3.2 mg/dL",
        "Patient/123 Child-Pugh B",
        "John Smith",
        "Patient/",
        "patient/123",
        "Patient/123/_history/1",
        '{"resourceType": "Patient"}',
    ],
)
def test_patient_ref_must_be_a_bare_reference(patient_ref):
    with pytest.raises(ValueError, match="patient_ref"):
        event(patient_ref=patient_ref)


@pytest.mark.parametrize(
    "overrides",
    [
        {"kind": "export"},
        {"outcome": 42},
        {"actor": ""},
        {"route": "/x" * 200},
        {"at": datetime(2026, 3, 1, 12, 0)},
        {"request_id": "r" * 101},
    ],
)
def test_invalid_events_are_refused(overrides):
    with pytest.raises((ValueError, TypeError)):
        event(**overrides)
