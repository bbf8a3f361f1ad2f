"""SQLite checkpoints leave the request path: a hook's COMMIT never copies the log back into the database
(that copy and its fsync were the p99 of a hook call), and the background checkpointer does."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from service.db import Database
from service.db.checkpoint import WalCheckpointer
from tests.db.test_assessments import save

pytestmark = pytest.mark.anyio
# the conftest's ``database`` (started, migrated) on its SQLite backend only
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PAGE = 4096
SQLITE_DEFAULT_AUTOCHECKPOINT = 1000  # pages: where a COMMIT used to checkpoint


def _wal_pages(db: Database) -> float:
    wal = db.urls.sqlite_path.with_name(db.urls.sqlite_path.name + "-wal")
    return wal.stat().st_size / PAGE if wal.exists() else 0.0


async def _write_past_the_old_mark(db: Database) -> None:
    """~1.5x SQLite's default autocheckpoint of log pages, one hook write at a time."""
    big = {"reasons": ["x" * 2000] * 20}  # ~40 KB a row
    for _ in range(100):
        row = db.assessments.new_row(
            patient_ref="Patient/1", service_id="s", rules_version="r", assessment=big, now=datetime.now(UTC)
        )
        await db.save_assessment_with_cards(row)


@sqlite_only
async def test_service_connections_never_checkpoint_in_a_commit(database):
    await database._checkpointer.stop()  # the background rounds out of the way
    async with database.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
    with database._sync_engine.connect() as conn:  # the hook's writes (save_assessment_with_cards)
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
    await _write_past_the_old_mark(database)
    # with SQLite's default, a COMMIT would have checkpointed and the log been rewound to its start
    assert _wal_pages(database) > SQLITE_DEFAULT_AUTOCHECKPOINT


@sqlite_only
async def test_the_background_checkpointer_copies_the_log_back(database):
    await database._checkpointer.stop()
    await _write_past_the_old_mark(database)
    busy, frames, copied = await asyncio.to_thread(database._checkpointer.checkpoint)
    assert busy == 0 and frames > SQLITE_DEFAULT_AUTOCHECKPOINT and copied == frames
    # the next write starts the log again from its beginning (the file is reused, not grown): it stays bounded
    await save(database, now=datetime.now(UTC))
    _busy, frames, copied = await asyncio.to_thread(database._checkpointer.checkpoint)
    assert 0 < frames < 50 and copied == frames


@sqlite_only
async def test_the_checkpointer_runs_by_itself_and_stops_cleanly(database):
    database._checkpointer.interval = 0.01
    await save(database, now=datetime.now(UTC))
    for _ in range(500):
        if database._checkpointer.checkpoints >= 2:
            break
        await asyncio.sleep(0.01)
    assert database._checkpointer.checkpoints >= 2
    checkpointer = database._checkpointer
    await database.stop()
    assert checkpointer._task is None


@sqlite_only
async def test_stop_waits_for_the_checkpoint_in_flight(database, monkeypatch):
    """Stopping never abandons a round to its thread (a connection closed under a running checkpoint crashed)."""
    checkpointer = database._checkpointer
    await checkpointer.stop()
    started, finished = threading.Event(), threading.Event()

    def slow_checkpoint() -> tuple[int, int, int]:
        started.set()
        time.sleep(0.3)
        finished.set()
        return (0, 0, 0)

    monkeypatch.setattr(checkpointer, "checkpoint", slow_checkpoint)
    checkpointer.interval = 0.01
    checkpointer.start()
    assert await asyncio.to_thread(started.wait, 10)
    await checkpointer.stop()
    assert finished.is_set()


async def test_a_database_not_created_yet_is_not_created_by_the_checkpointer(tmp_path):
    missing = tmp_path / "not-yet.sqlite3"
    checkpointer = WalCheckpointer(missing)
    with pytest.raises(sqlite3.OperationalError):
        checkpointer.checkpoint()
    assert not missing.exists()
