"""Migrations: at head, no drift from the models, idempotent, safe when replicas start together."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from service.db import Base, Database
from service.db import migrate as db_migrate

pytestmark = pytest.mark.anyio

TABLES = {
    "stored_assessments", "cards_issued", "feedback", "jti_seen", "audit_events", "screening_runs", "screening_results",
    "smart_launches", "smart_sessions", "smart_form_ids",
}


def test_one_head_shipped_inside_the_package():
    import service.db

    assert db_migrate.MIGRATIONS_DIR == Path(service.db.__file__).parent / "migrations"
    assert (db_migrate.MIGRATIONS_DIR / "versions" / "__init__.py").exists()  # a package: ships in the wheel
    assert len(db_migrate.head_revisions()) == 1


async def test_never_migrated_is_not_current(database_url):
    async with Database.from_url(database_url) as db:
        assert await db.ping()
        assert await db.current_revisions() == ()
        assert await db.is_current() is False


async def test_migrated_to_head(database):
    assert await database.is_current() is True
    assert await database.current_revisions() == db_migrate.head_revisions()
    async with database.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert tables == TABLES | {"alembic_version"}
    assert set(Base.metadata.tables) == TABLES


async def test_models_match_the_migrations(database):
    async with database.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)
        )
    assert diff == []


def test_models_match_the_migrations_sync(database_url):
    db = Database.from_url(database_url)
    db.upgrade()
    engine = db_migrate.sync_engine(db.urls.sync_url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
    finally:
        engine.dispose()


async def test_upgrade_twice_is_harmless(database, database_url):
    Database.from_url(database_url).upgrade()
    assert await database.is_current()


def test_replicas_migrating_together(database_url):
    """Four processes start on one empty database at once: each migrates or finds it done, none fails."""
    replicas = [
        subprocess.Popen(
            [sys.executable, "-m", "service.db", "--url", database_url, "upgrade"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=120), p.communicate()[1]) for p in replicas]
    assert [code for code, _ in outcomes] == [0] * 4, [err for _, err in outcomes]
    engine = db_migrate.sync_engine(Database.from_url(database_url).urls.sync_url)
    try:
        with engine.connect() as conn:
            assert db_migrate.current_revisions(conn) == db_migrate.head_revisions()
    finally:
        engine.dispose()


def _fresh_sqlite_file_locked_for_writing(path: Path) -> sqlite3.Connection:
    """A connection holding SQLite's write lock (BEGIN IMMEDIATE, as a migrating replica does) on a new,
    rollback-journal database file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE held (x)")
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_sqlite_new_file_waits_for_a_replica_holding_the_write_lock(tmp_path):
    """SQLite refuses to turn a file to WAL at once ("database is locked", no busy handler) while another
    connection holds the write lock: 2 of 15 starts of two workers on a new file failed this way.
    Start-up now waits for the lock as for any other write."""
    path = tmp_path / "var" / "hcc-cds.sqlite3"
    holder = _fresh_sqlite_file_locked_for_writing(path)
    release = threading.Timer(0.3, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        db = Database.from_url(f"sqlite:///{path}")
        db.upgrade()
    finally:
        release.join()
        holder.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert check.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head,) for head in db_migrate.head_revisions()
        ]
    finally:
        check.close()


def test_sqlite_write_lock_held_past_the_busy_timeout_still_fails(tmp_path, monkeypatch):
    """The wait is bounded by the busy timeout: a database locked for longer is an error, not a hang."""
    monkeypatch.setattr(db_migrate, "SQLITE_BUSY_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "var" / "hcc-cds.sqlite3"
    holder = _fresh_sqlite_file_locked_for_writing(path)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            Database.from_url(f"sqlite:///{path}").upgrade()
    finally:
        holder.close()


def test_threads_of_one_process_take_turns(database_url):
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        try:
            barrier.wait()
            Database.from_url(database_url).upgrade()
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []


def test_downgrade_and_upgrade_again(database_url):
    db = Database.from_url(database_url)
    db.upgrade()
    db_migrate.downgrade(db.urls.sync_url, "base")
    engine = db_migrate.sync_engine(db.urls.sync_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        db.upgrade()
        with engine.connect() as conn:
            assert TABLES <= set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
