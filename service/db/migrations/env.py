"""Alembic environment: run by ``service.db.migrate`` with a connection already in a transaction."""

from __future__ import annotations

from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import text

from service.db.models import Base
from service.db.types import UTCDateTime

# Processes migrating one database at start-up take turns; the second finds it at head and does
# nothing. PostgreSQL: a transaction-scoped advisory lock. SQLite: BEGIN IMMEDIATE takes the write lock
# first (other writers wait for the busy timeout), and SQLite's DDL is transactional.
MIGRATION_LOCK_KEY = 0x6863635F6462  # "hcc_db"


def render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    """Migrations spell the column type out, so they never depend on application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through service.db (python -m service.db upgrade), not the alembic CLI")
    sqlite = connection.dialect.name == "sqlite"
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif sqlite:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    context.configure(
        connection=connection,
        transactional_ddl=True,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
run_migrations_online()
