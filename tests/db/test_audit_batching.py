"""The audit trail off the response path: events kept in memory, written in batches, never lost on stop."""

from __future__ import annotations

import anyio
import pytest

from service.db import Database
from tests.db.test_audit import event

pytestmark = pytest.mark.anyio


def hold(db: Database) -> None:
    """No background write for the rest of the test: only stop() and list_events() write."""
    db.audit.flush_seconds = 3600
    db.audit.flush_events = 10**9


async def count_in_a_fresh_connection(url: str, patient_ref: str) -> int:
    """What another process would read: a second Database on the same URL."""
    other = Database.from_url(url)
    await other.start()
    try:
        return len(await other.audit.list_events(patient_ref=patient_ref, limit=10_000))
    finally:
        await other.stop()


async def test_enqueued_events_are_written_by_stop(database_url):
    db = Database.from_url(database_url)
    await db.migrate()
    await db.start()
    hold(db)
    for n in range(25):
        db.audit.enqueue(event(patient_ref="Patient/stop-1", request_id=f"req-{n}"))
    assert db.audit.pending == 25
    assert await count_in_a_fresh_connection(database_url, "Patient/stop-1") == 0  # really deferred
    await db.stop()
    assert db.audit.pending == 0
    assert await count_in_a_fresh_connection(database_url, "Patient/stop-1") == 25


async def test_list_events_writes_what_is_pending_first(database):
    hold(database)
    database.audit.enqueue(event(patient_ref="Patient/read-own", request_id="a"))
    database.audit.enqueue(event(patient_ref="Patient/read-own", request_id="b"))
    events = await database.audit.list_events(patient_ref="Patient/read-own")
    assert [e.request_id for e in events] == ["a", "b"]
    assert database.audit.pending == 0


async def test_the_background_writer_writes_within_flush_seconds(database, database_url):
    database.audit.flush_seconds = 0.05
    database.audit.enqueue(event(patient_ref="Patient/timer"))
    with anyio.fail_after(5):
        while database.audit.pending:
            await anyio.sleep(0.01)
    assert await count_in_a_fresh_connection(database_url, "Patient/timer") == 1


async def test_a_full_batch_is_written_at_once(database, database_url):
    database.audit.flush_seconds = 3600
    database.audit.flush_events = 10
    for n in range(10):
        database.audit.enqueue(event(patient_ref="Patient/full", request_id=f"r{n}"))
    with anyio.fail_after(5):
        while database.audit.pending:
            await anyio.sleep(0.01)
    assert await count_in_a_fresh_connection(database_url, "Patient/full") == 10


async def test_a_failed_write_keeps_the_events_in_order_for_the_next(database, monkeypatch):
    hold(database)
    database.audit.enqueue(event(patient_ref="Patient/retry", request_id="first"))
    real = database.audit.record_many

    async def down(events):
        raise OSError("database unreachable")

    monkeypatch.setattr(database.audit, "record_many", down)
    with pytest.raises(OSError):
        await database.audit.flush()
    assert database.audit.pending == 1
    database.audit.enqueue(event(patient_ref="Patient/retry", request_id="second"))
    monkeypatch.setattr(database.audit, "record_many", real)
    assert await database.audit.flush() == 2
    events = await database.audit.list_events(patient_ref="Patient/retry")
    assert [e.request_id for e in events] == ["first", "second"]


async def test_beyond_max_pending_the_oldest_are_dropped_and_counted(database):
    hold(database)
    database.audit.max_pending = 3
    for n in range(5):
        database.audit.enqueue(event(patient_ref="Patient/bounded", request_id=f"r{n}"))
    assert database.audit.pending == 3 and database.audit.dropped == 2
    events = await database.audit.list_events(patient_ref="Patient/bounded")
    assert [e.request_id for e in events] == ["r2", "r3", "r4"]
