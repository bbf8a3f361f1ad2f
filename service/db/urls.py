"""``HCC_DATABASE_URL`` → the async URL the service uses and the sync URL Alembic uses.

Accepted: ``sqlite:///relative/path.sqlite3`` / ``sqlite:////absolute/path.sqlite3`` (a file; in-memory
SQLite is refused: every connection would see another empty database) and ``postgresql://user:pw@host:port/db``.
Any driver named in the URL is replaced by the one this package ships: aiosqlite / the stdlib
``sqlite3`` for SQLite, psycopg 3 (async and sync) for PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from service.settings import SettingsError

DEFAULT_DATABASE_URL = "sqlite:///var/hcc-cds.sqlite3"  # relative to the working directory


@dataclass(frozen=True)
class DatabaseUrls:
    backend: str  # "sqlite" or "postgresql"
    async_url: URL
    sync_url: URL
    sqlite_path: Path | None

    def display(self) -> str:
        """The URL without its password, for logs and messages."""
        return self.async_url.set(drivername=self.backend).render_as_string(hide_password=True)


def resolve(url: str | URL | None) -> DatabaseUrls:
    """Parse and normalise a database URL (``None``: :data:`DEFAULT_DATABASE_URL`); :class:`SettingsError` if unusable."""
    raw = url if url is not None else DEFAULT_DATABASE_URL
    try:
        parsed = make_url(raw)
    except ArgumentError as exc:
        raise SettingsError(f"HCC_DATABASE_URL is not a SQLAlchemy URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:") or parsed.query.get("mode") == "memory":
            raise SettingsError(
                "HCC_DATABASE_URL: in-memory SQLite is not supported; name a file, e.g. sqlite:///var/hcc-cds.sqlite3"
            )
        return DatabaseUrls(
            backend="sqlite",
            async_url=parsed.set(drivername="sqlite+aiosqlite"),
            sync_url=parsed.set(drivername="sqlite+pysqlite"),
            sqlite_path=Path(database),
        )
    if backend in ("postgresql", "postgres"):
        return DatabaseUrls(
            backend="postgresql",
            async_url=parsed.set(drivername="postgresql+psycopg"),
            sync_url=parsed.set(drivername="postgresql+psycopg"),
            sqlite_path=None,
        )
    raise SettingsError(f"HCC_DATABASE_URL: unsupported database {backend!r} (use sqlite:/// or postgresql://)")
