"""The JWT-id replay store (dossier §1.7 step 6), shared by every replica through the database.

:meth:`SqlJtiStore.remember` is atomic across replicas without check-then-insert: it INSERTs and lets
the primary key ``(iss, jti)`` decide; the loser of a race gets ``IntegrityError`` → ``False``. A row
whose token has expired is reclaimed by one conditional UPDATE (``... WHERE expires_at <= now``),
which again only one caller can win.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError

from service.db._engine import EngineSource
from service.db.models import ISS_LENGTH, JTI_LENGTH, JtiSeenRow
from service.db.types import as_utc, utcnow

log = logging.getLogger("hcc_cds.db")

# A jti is kept at least this long, even if the token's exp is sooner or already past, so a verifier
# that allows clock-skew leeway past exp cannot be replayed within that leeway.
JTI_MIN_RETENTION = timedelta(minutes=5)


@runtime_checkable
class JtiStore(Protocol):
    """What the JWT verifier needs: ``True`` the first time (iss, jti) is seen, ``False`` on a replay."""

    async def remember(self, iss: str, jti: str, expires_at: datetime) -> bool: ...


class SqlJtiStore:
    """``db.jti``: a :class:`JtiStore` in the ``jti_seen`` table."""

    def __init__(self, source: EngineSource) -> None:
        self._source = source

    async def remember(self, iss: str, jti: str, expires_at: datetime, *, now: datetime | None = None) -> bool:
        """Record (iss, jti) until ``expires_at`` (the token's ``exp``, aware). ``False`` if already seen
        and not yet expired.

        An empty or over-long ``iss``/``jti`` (over 1000/500 characters) is refused with ``False``, so an
        abusive token is rejected like a replay instead of failing the request.
        """
        now = as_utc(now, "now") if now is not None else utcnow()
        keep_until = max(as_utc(expires_at, "expires_at"), now + JTI_MIN_RETENTION)
        if not iss or not jti or len(iss) > ISS_LENGTH or len(jti) > JTI_LENGTH:
            log.warning("jti store: refused an empty or over-long iss/jti")
            return False
        engine = self._source.engine
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(JtiSeenRow).values(iss=iss, jti=jti, expires_at=keep_until))
            return True
        except IntegrityError:
            pass  # seen before: replayed, unless that earlier token has expired
        async with engine.begin() as conn:
            reclaimed = await conn.execute(
                update(JtiSeenRow)
                .where(JtiSeenRow.iss == iss, JtiSeenRow.jti == jti, JtiSeenRow.expires_at <= now)
                .values(expires_at=keep_until)
            )
        return reclaimed.rowcount == 1

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete jtis whose tokens have expired; return how many."""
        now = as_utc(now, "now") if now is not None else utcnow()
        async with self._source.engine.begin() as conn:
            result = await conn.execute(delete(JtiSeenRow).where(JtiSeenRow.expires_at <= now))
        return result.rowcount
