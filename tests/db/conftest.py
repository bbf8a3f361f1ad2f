"""Fixtures of the database tests: each runs on SQLite and, when ``HCC_TEST_POSTGRES_URL`` names a
PostgreSQL server (``tools/start_postgres.sh DIR`` prints one), on PostgreSQL too, in a fresh
database created for the test and dropped after it."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

from service.db import Database

PG_ENV = "HCC_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"  # SQLAlchemy's async engine runs on asyncio only


def postgres_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server of ``server_url``; dropped afterwards."""
    import psycopg

    base = make_url(server_url).set(drivername="postgresql")
    name = f"hcc_test_{secrets.token_hex(6)}"
    admin = base.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    """An empty, never-migrated database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/var/hcc-cds.sqlite3"
        return
    server = postgres_url()
    if server is None:
        pytest.skip(f"PostgreSQL not configured: set {PG_ENV} (e.g. $(tools/start_postgres.sh /tmp/hcc-pg))")
    with fresh_postgres_database(server) as url:
        yield url


@pytest.fixture()
async def database(database_url) -> AsyncIterator[Database]:
    """A started database migrated to head."""
    db = Database.from_url(database_url)
    await db.migrate()
    await db.start()
    try:
        yield db
    finally:
        await db.stop()


@pytest.fixture()
async def replica(database_url, database) -> AsyncIterator[Database]:
    """A second Database instance on the same database (another replica)."""
    db = Database.from_url(database_url)
    await db.start()
    try:
        yield db
    finally:
        await db.stop()
