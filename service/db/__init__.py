"""The database layer: SQLAlchemy 2.x, async, with Alembic migrations.

``HCC_DATABASE_URL`` picks the database: a SQLite file by default (``sqlite:///var/hcc-cds.sqlite3``,
relative to the working directory), PostgreSQL for several replicas (``postgresql://...``).

Why async: the app is FastAPI on asyncio; an async engine (aiosqlite, psycopg 3's async mode) keeps
database waits off the event loop without a thread per query, and lets ``ping`` be cancelled by a
timeout. Alembic is synchronous, so :meth:`Database.upgrade` uses a short-lived blocking engine (the
stdlib ``sqlite3`` / psycopg 3 sync) and is called from a worker thread (:meth:`Database.migrate`). On SQLite
the hook's own writes go through a second, blocking engine on the stdlib driver, in one worker-thread hop
(:meth:`Database.save_assessment_with_cards`): aiosqlite hops to its thread for every cursor step.

Usage::

    db = Database.from_url(settings.database_url)  # None: the default SQLite file
    await db.migrate()  # = anyio.to_thread.run_sync(db.upgrade): Alembic to head
    await db.start()
    ref = await db.assessments.save_assessment(db.assessments.new_row(...))
    await db.stop()

Repositories: ``db.assessments`` (stored results behind card links), ``db.feedback`` (issued cards and
CDS Hooks feedback), ``db.jti`` (JWT replay store, a :class:`JtiStore`), ``db.audit`` (audit trail),
``db.screenings`` (screening runs and their per-patient worklist), ``db.smart`` (the SMART app's launches,
sessions and used form ids, secrets encrypted: :mod:`service.db.smart`).
Every timestamp is timezone-aware UTC; naive datetimes are refused.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import orjson
from cryptography.fernet import MultiFernet
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

from service.db import migrate as _migrate
from service.db.assessments import (
    DEFAULT_ASSESSMENT_LIFETIME,
    AssessmentRepository,
    ExpiredAssessment,
    StoredAssessment,
    new_assessment_id,
)
from service.db.assessments import INSERT as ASSESSMENT_INSERT
from service.db.audit import AuditEvent, AuditKind, AuditRepository
from service.db.checkpoint import WalCheckpointer, service_connection_pragmas
from service.db.feedback import (
    FeedbackItem,
    FeedbackRepository,
    IssuedCard,
    StoredFeedback,
    TopicSummary,
    insert_cards,
)
from service.db.jti import JtiStore, SqlJtiStore
from service.db.models import Base
from service.db.screenings import ScreeningRepository
from service.db.smart import SmartLaunch, SmartRepository
from service.db.types import utcnow
from service.db.urls import DEFAULT_DATABASE_URL, DatabaseUrls, resolve

__all__ = [
    "DEFAULT_ASSESSMENT_LIFETIME",
    "DEFAULT_DATABASE_URL",
    "AssessmentRepository",
    "AuditEvent",
    "AuditKind",
    "AuditRepository",
    "Base",
    "Database",
    "DatabaseNotStartedError",
    "ExpiredAssessment",
    "FeedbackItem",
    "FeedbackRepository",
    "IssuedCard",
    "JtiStore",
    "PurgeCounts",
    "ScreeningRepository",
    "SmartLaunch",
    "SmartRepository",
    "SqlJtiStore",
    "StoredAssessment",
    "StoredFeedback",
    "TopicSummary",
    "new_assessment_id",
]

log = logging.getLogger("hcc_cds.db")

SQLITE_BUSY_TIMEOUT_SECONDS = _migrate.SQLITE_BUSY_TIMEOUT_SECONDS  # migrations (start-up) only
PG_CONNECT_TIMEOUT_SECONDS = _migrate.PG_CONNECT_TIMEOUT_SECONDS  # migrations (start-up) only
# the service's calls: the longest wait for a lock, a connection or the pool (HCC_DATABASE_TIMEOUT_SECONDS);
# then the call fails fast (503, service.errors) instead of holding the EHR for SQLite's 30 s
DEFAULT_TIMEOUT_SECONDS = 3.0


def dump_json(value: object) -> str:
    """JSON columns written with orjson (a stored assessment and its page: ~25 KB a call, ~60 times faster
    than ``json.dumps``); what orjson cannot write (a non-string key, an integer beyond 64 bits) falls
    back to the standard library, as before."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _sqlite_service_connection(dbapi_connection, record) -> None:
    """WAL, NORMAL sync and foreign keys (as the migrations' connections), and no checkpoint in a COMMIT:
    :class:`service.db.checkpoint.WalCheckpointer` does them in the background."""
    _migrate.sqlite_on_connect(dbapi_connection, record)
    service_connection_pragmas(dbapi_connection)


def _insert_together(engine: Engine, inserts: Sequence[tuple[Insert, Any]]) -> None:
    with engine.begin() as connection:
        for statement, rows in inserts:
            connection.execute(statement, rows)


class DatabaseNotStartedError(RuntimeError):
    """A repository was used before :meth:`Database.start` (or after :meth:`Database.stop`)."""


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    assessments: int
    jtis: int
    screening_runs: int = 0
    smart: int = 0  # SMART app launches and sessions


class Database:
    """The engine, the migrations and the repositories of one database."""

    def __init__(
        self,
        urls: DatabaseUrls,
        *,
        assessment_lifetime: timedelta = DEFAULT_ASSESSMENT_LIFETIME,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        echo: bool = False,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        smart_cipher: MultiFernet | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("the database timeout must be positive")
        self._urls = urls
        self.timeout = timeout
        # SQLite takes one writer at a time, and a connection that finds the file locked sleeps in
        # SQLite's busy handler (1, 2, 5, ... 100 ms steps): under load that starves some calls for
        # seconds. One connection per process queues the process's calls on the pool instead (each
        # holds it for well under a millisecond). PostgreSQL: a pool of connections.
        sqlite = urls.backend == "sqlite"
        self._pool_size = pool_size if pool_size is not None else (1 if sqlite else 5)
        self._max_overflow = max_overflow if max_overflow is not None else (0 if sqlite else 10)
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._sync_engine: Engine | None = None  # SQLite: the stdlib driver, for :meth:`save_assessment_with_cards`
        self._checkpointer: WalCheckpointer | None = None
        self.assessments = AssessmentRepository(self, assessment_lifetime)
        self.feedback = FeedbackRepository(self)
        self.jti = SqlJtiStore(self)
        self.audit = AuditRepository(self)
        self.screenings = ScreeningRepository(self)
        self.smart = SmartRepository(self, smart_cipher)

    @classmethod
    def from_url(cls, url: str | URL | None = None, **options) -> Database:
        """A database for ``url`` (``None``: the default SQLite file). No I/O until :meth:`start`.

        :class:`~service.settings.SettingsError` (a ``ValueError``) if the URL is unusable (unsupported
        backend, in-memory SQLite): ``hcc-cds serve`` reports it as a configuration error.
        """
        return cls(resolve(url), **options)

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._urls.backend

    @property
    def urls(self) -> DatabaseUrls:
        """The async URL (the service's), the sync URL (Alembic's), the SQLite file."""
        return self._urls

    @property
    def url(self) -> str:
        """The URL without its password (for logs)."""
        return self._urls.display()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise DatabaseNotStartedError("the database is not started (Database.start() in the app's lifespan)")
        return self._engine

    @property
    def started(self) -> bool:
        return self._engine is not None

    def _make_sqlite_directory(self) -> None:
        path = self._urls.sqlite_path
        if path is not None:
            path.expanduser().parent.mkdir(parents=True, exist_ok=True)

    async def start(self) -> None:
        """Create the engine (SQLite: the file's directory; WAL, foreign keys and a busy timeout on
        every connection). Connections are opened lazily: :meth:`ping` checks the database answers."""
        if self._engine is not None:
            return
        if self.backend == "sqlite":
            await anyio.to_thread.run_sync(self._make_sqlite_directory)
            engine = create_async_engine(
                self._urls.async_url,
                echo=self._echo,
                hide_parameters=True,  # an error's text never carries the values (patient data)
                json_serializer=dump_json,
                pool_size=self._pool_size,
                max_overflow=self._max_overflow,
                pool_timeout=self.timeout,
                connect_args={"timeout": self.timeout},  # SQLite's busy timeout: the wait for a lock
            )
            event.listen(engine.sync_engine, "connect", _sqlite_service_connection)
            self._sync_engine = create_engine(
                self._urls.sync_url,
                echo=self._echo,
                hide_parameters=True,
                json_serializer=dump_json,
                pool_size=self._pool_size,
                max_overflow=self._max_overflow,
                pool_timeout=self.timeout,
                connect_args={"timeout": self.timeout},
            )
            event.listen(self._sync_engine, "connect", _sqlite_service_connection)
            if self._urls.sqlite_path is not None:
                self._checkpointer = WalCheckpointer(self._urls.sqlite_path.expanduser())
        else:
            engine = create_async_engine(
                self._urls.async_url,
                echo=self._echo,
                hide_parameters=True,  # an error's text never carries the values (patient data)
                json_serializer=dump_json,
                pool_size=self._pool_size,
                max_overflow=self._max_overflow,
                pool_timeout=self.timeout,
                pool_pre_ping=True,
                connect_args={
                    "connect_timeout": max(1, math.ceil(self.timeout)),
                    "options": f"-c lock_timeout={int(self.timeout * 1000)}",
                },
            )
        self._engine = engine
        self.audit.start()
        if self._checkpointer is not None:
            self._checkpointer.start()
        log.info("database: %s", self.url)

    async def stop(self) -> None:
        """Write the pending audit events, then close every pooled connection. The repositories refuse
        work until the next :meth:`start`."""
        if self._engine is not None:
            await self.audit.stop()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            await checkpointer.stop()
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()
        sync_engine, self._sync_engine = self._sync_engine, None
        if sync_engine is not None:
            await anyio.to_thread.run_sync(sync_engine.dispose)

    async def save_assessment_with_cards(
        self, assessment: Mapping[str, Any], cards: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """A hook call's stored assessment (a row of :meth:`AssessmentRepository.new_row`) and the cards it
        returns (rows of :meth:`FeedbackRepository.card_rows`), in one transaction, committed on return.

        On the request path. SQLite: on the stdlib driver (:meth:`start`'s second engine) in ONE worker-thread
        hop; through aiosqlite every cursor step is a hop of its own (~11 for these two statements, about a
        millisecond of a call on a quiet 2-core machine). The transaction holds SQLite's one writer lock only
        while the thread runs the two statements, never while the event loop serves other calls.
        PostgreSQL: on the async engine.
        """
        inserts: list[tuple[Insert, Any]] = [(ASSESSMENT_INSERT, assessment)]
        if cards:
            inserts.append((insert_cards(self.backend), cards))
        if self._sync_engine is not None:
            await anyio.to_thread.run_sync(_insert_together, self._sync_engine, inserts)
            return
        async with self.engine.begin() as connection:
            for statement, rows in inserts:
                await connection.execute(statement, rows)

    async def __aenter__(self) -> Database:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def upgrade(self, revision: str = "head") -> None:
        """Run the Alembic migrations to ``revision`` (head). **Blocking**: in async code use :meth:`migrate`.

        Works before or after :meth:`start`; safe to run from several replicas at once on PostgreSQL.
        """
        self._make_sqlite_directory()
        _migrate.upgrade(self._urls.sync_url, revision)

    async def migrate(self) -> None:
        """:meth:`upgrade` to head in a worker thread, off the event loop."""
        await anyio.to_thread.run_sync(self.upgrade)

    async def ping(self, timeout: float = 2.0) -> bool:
        """``True`` if the database answers ``SELECT 1`` within ``timeout`` seconds."""
        try:
            with anyio.fail_after(timeout):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            return True
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("database ping failed: %s", type(exc).__name__)
            return False

    async def current_revisions(self) -> tuple[str, ...]:
        """The migration revisions the database is at (empty if never migrated)."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(_migrate.current_revisions)

    async def is_current(self, timeout: float = 5.0) -> bool:
        """``True`` if the database is migrated to head (for ``/readyz``); ``False`` if behind or unreachable."""
        heads = await anyio.to_thread.run_sync(_migrate.head_revisions)  # reads the scripts once, then cached
        try:
            with anyio.fail_after(timeout):
                current = await self.current_revisions()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("database revision check failed: %s", type(exc).__name__)
            return False
        return current == heads

    async def purge_expired(
        self,
        now: datetime | None = None,
        *,
        keep_expired: timedelta = timedelta(0),
        screening_retention: timedelta | None = None,
    ) -> PurgeCounts:
        """Delete stored assessments expired for longer than ``keep_expired`` (until then their page says
        "expired"; afterwards the id reads as unknown), the jtis of tokens that have expired and, with
        ``screening_retention``, finished screening runs older than that (their worklists), and the SMART
        app's expired launches and sessions."""
        now = now or utcnow()
        if keep_expired < timedelta(0):
            raise ValueError("keep_expired must not be negative")
        runs = await self.screenings.purge_older_than(screening_retention, now) if screening_retention else 0
        return PurgeCounts(
            assessments=await self.assessments.purge_expired(now - keep_expired),
            jtis=await self.jti.purge_expired(now),
            screening_runs=runs,
            smart=await self.smart.purge_expired(now),
        )

    async def purge_periodically(
        self,
        interval: timedelta,
        *,
        keep_expired: timedelta = timedelta(0),
        screening_retention: timedelta | None = None,
    ) -> None:
        """:meth:`purge_expired` now and then every ``interval``, until cancelled (the app's lifespan).

        A failed purge is logged (the error's class) and tried again at the next interval. Several
        replicas purging the same database is harmless: a row is deleted once.
        """
        if interval <= timedelta(0):
            raise ValueError("the purge interval must be positive")
        while True:
            try:
                counts = await self.purge_expired(keep_expired=keep_expired, screening_retention=screening_retention)
                if counts.assessments or counts.jtis or counts.screening_runs or counts.smart:
                    log.info(
                        "purge: %d expired assessments, %d expired jtis, %d screening runs, "
                        "%d SMART launches and sessions deleted",
                        counts.assessments,
                        counts.jtis,
                        counts.screening_runs,
                        counts.smart,
                    )
            except (SQLAlchemyError, OSError) as exc:
                log.warning("purge failed (%s); next try in %.0f s", type(exc).__name__, interval.total_seconds())
            await anyio.sleep(interval.total_seconds())
