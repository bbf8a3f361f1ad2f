"""The Database object: URLs, start/stop, SQLite settings, ping, failures reported as False."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from service.db import DEFAULT_DATABASE_URL, Database, DatabaseNotStartedError
from service.db.urls import resolve

pytestmark = pytest.mark.anyio


def test_default_url_is_a_sqlite_file_under_var():
    assert DEFAULT_DATABASE_URL == "sqlite:///var/hcc-cds.sqlite3"
    urls = resolve(None)
    assert urls.backend == "sqlite"
    assert str(urls.sqlite_path) == "var/hcc-cds.sqlite3"
    assert urls.async_url.drivername == "sqlite+aiosqlite"
    assert urls.sync_url.drivername == "sqlite+pysqlite"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secret@db:5432/hcc",
        "postgresql+psycopg2://u:secret@db:5432/hcc",
        "postgresql+asyncpg://u:secret@db:5432/hcc",
        "postgres://u:secret@db:5432/hcc",
    ],
)
def test_postgres_urls_use_psycopg(url):
    urls = resolve(url)
    assert urls.backend == "postgresql"
    assert urls.async_url.drivername == urls.sync_url.drivername == "postgresql+psycopg"
    assert urls.async_url.password == "secret"
    assert "secret" not in Database.from_url(url).url
    assert Database.from_url(url).url == "postgresql://u:***@db:5432/hcc"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db", "not a url"])
def test_unusable_urls_are_refused(url):
    with pytest.raises(ValueError, match="HCC_DATABASE_URL"):
        Database.from_url(url)


async def test_repositories_need_start(tmp_path):
    db = Database.from_url(f"sqlite:///{tmp_path}/x.sqlite3")
    with pytest.raises(DatabaseNotStartedError):
        await db.audit.list_events()
    with pytest.raises(DatabaseNotStartedError):
        await db.ping()


async def test_sqlite_start_creates_the_directory_and_sets_pragmas(tmp_path):
    path = tmp_path / "deep" / "var" / "hcc.sqlite3"
    async with Database.from_url(f"sqlite:///{path}") as db:
        assert path.parent.is_dir()
        assert await db.ping()
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    assert not db.started


async def test_relative_sqlite_path_is_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = Database.from_url(None)
    await db.migrate()
    async with db:
        assert await db.is_current()
    assert (tmp_path / "var" / "hcc-cds.sqlite3").is_file()


async def test_start_and_stop_are_idempotent(database_url):
    db = Database.from_url(database_url)
    await db.start()
    engine = db.engine
    await db.start()
    assert db.engine is engine
    await db.stop()
    await db.stop()


async def test_unreachable_postgres_reports_false():
    async with Database.from_url("postgresql://nobody@127.0.0.1:1/none") as db:
        assert await db.ping(timeout=5) is False
        assert await db.is_current(timeout=5) is False


async def test_ping_round_trip(database):
    assert await database.ping() is True
