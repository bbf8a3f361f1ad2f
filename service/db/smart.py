"""``db.smart``: the SMART app's launches awaiting their callback, its sessions and their used form ids.

Secrets never sit in the database in clear: a launch's PKCE verifier and nonce, a session's access token
and CSRF token are Fernet-encrypted with the session keys (``cipher``, :mod:`service.smart.crypto`); the
random values a browser holds (the OAuth ``state``, the cookie's session id) are stored as their SHA-256,
so a copy of the database opens no session. A row that cannot be decrypted (a key dropped from
``HCC_SMART_SESSION_KEYS``, a tampered value) reads as unknown: the user launches again (fails closed).

Single use without check-then-act: a launch is taken by a DELETE whose row count decides which of two
concurrent callbacks wins; a form id by an INSERT whose primary key refuses the second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from service.db._engine import EngineSource
from service.db.models import (
    HINT_LENGTH,
    ID_LENGTH,
    ISS_LENGTH,
    SmartFormIdRow,
    SmartLaunchRow,
    SmartSessionRow,
)
from service.db.types import as_utc, check_length, utcnow
from service.smart.session import SmartSession

log = logging.getLogger("hcc_cds.db")

LAUNCH_LIFETIME = timedelta(minutes=10)
MAX_LAUNCH_LENGTH = 8_000  # the launch parameter is opaque; the SMART launcher's is ~200 characters


def digest(value: str) -> str:
    """The key a browser-held random value is stored under (hex SHA-256)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def clean_hint(hint: str | None) -> str | None:
    """An assessment id hint as stored: a short printable string, else none (a hint is never authorisation)."""
    if hint is None or not hint or len(hint) > HINT_LENGTH or not hint.isascii() or not hint.isprintable():
        return None
    return hint


@dataclass(frozen=True)
class SmartLaunch:
    """A launch taken back by its callback's ``state``."""

    iss: str
    launch: str
    assessment_hint: str | None
    code_verifier: str
    nonce: str
    created_at: datetime
    expires_at: datetime
    browser_sha256: str | None = None  # the launching browser's binding cookie, hashed (login CSRF)


class SmartRepository:
    """``db.smart`` (see the module's doc). ``cipher``: set by ``create_app`` from the settings; by default
    one random key, so nothing written by another process can be read."""

    def __init__(self, source: EngineSource, cipher: MultiFernet | None = None) -> None:
        self._source = source
        self.cipher = cipher or MultiFernet([Fernet(Fernet.generate_key())])

    def _seal(self, secret: dict[str, str]) -> str:
        return self.cipher.encrypt(json.dumps(secret).encode("utf-8")).decode("ascii")

    def _open(self, sealed: str) -> dict[str, str] | None:
        try:
            value = json.loads(self.cipher.decrypt(sealed.encode("ascii")))
        except (InvalidToken, ValueError, UnicodeEncodeError):
            log.warning("smart: a stored secret could not be decrypted (session keys changed?); treated as unknown")
            return None
        return value if isinstance(value, dict) else None

    # -- launches --------------------------------------------------------------------------------

    async def create_launch(
        self,
        state: str,
        *,
        iss: str,
        launch: str,
        assessment_hint: str | None,
        code_verifier: str,
        nonce: str,
        browser_binding: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Keep a launch until its callback (at most :data:`LAUNCH_LIFETIME`); ``browser_binding`` is the random
        value of the cookie the launching browser got, kept hashed: the callback must come from that browser."""
        now = as_utc(now, "now") if now is not None else utcnow()
        check_length("iss", iss, ISS_LENGTH, required=True)
        check_length("launch", launch, MAX_LAUNCH_LENGTH, required=True)
        row = {
            "state_sha256": digest(state),
            "created_at": now,
            "expires_at": now + LAUNCH_LIFETIME,
            "iss": iss,
            "launch": launch,
            "assessment_hint": clean_hint(assessment_hint),
            "secret_enc": self._seal({"code_verifier": code_verifier, "nonce": nonce,
                                      **({"browser": digest(browser_binding)} if browser_binding else {})}),
        }
        async with self._source.engine.begin() as conn:
            await conn.execute(insert(SmartLaunchRow).values(row))

    async def take_launch(self, state: str, *, now: datetime | None = None) -> SmartLaunch | None:
        """The launch of ``state``, removed: ``None`` if unknown, already taken, expired or unreadable."""
        now = as_utc(now, "now") if now is not None else utcnow()
        key = digest(state)
        table = SmartLaunchRow.__table__
        async with self._source.engine.begin() as conn:
            row = (await conn.execute(select(table).where(table.c.state_sha256 == key))).first()
            if row is None:
                return None
            taken = await conn.execute(delete(SmartLaunchRow).where(SmartLaunchRow.state_sha256 == key))
        if taken.rowcount != 1 or row.expires_at <= now:
            return None  # another callback took it first, or too late
        secret = self._open(row.secret_enc)
        if secret is None:
            return None
        return SmartLaunch(
            iss=row.iss,
            launch=row.launch,
            assessment_hint=row.assessment_hint,
            code_verifier=secret["code_verifier"],
            nonce=secret["nonce"],
            created_at=row.created_at,
            expires_at=row.expires_at,
            browser_sha256=secret.get("browser"),
        )

    # -- sessions --------------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        iss: str,
        patient_id: str,
        fhir_user: str | None,
        client_id: str,
        scope: str,
        access_token: str,
        expires_at: datetime,
        assessment_hint: str | None = None,
        now: datetime | None = None,
    ) -> tuple[str, SmartSession]:
        """Store a session; return the cookie's value (shown to the browser once, never stored) and the session.

        ``expires_at``: the earlier of the token's expiry and the session's longest life (the caller's).
        """
        now = as_utc(now, "now") if now is not None else utcnow()
        expires_at = as_utc(expires_at, "expires_at")
        check_length("iss", iss, ISS_LENGTH, required=True)
        check_length("patient_id", patient_id, ID_LENGTH, required=True)
        cookie = secrets.token_urlsafe(32)
        session = SmartSession(
            key=digest(cookie),
            iss=iss,
            patient_id=patient_id,
            fhir_user=fhir_user,
            scope=scope,
            access_token=SecretStr(access_token),
            expires_at=expires_at,
            assessment_hint=clean_hint(assessment_hint),
            csrf_token=secrets.token_urlsafe(32),
        )
        row = {
            "id_sha256": session.key,
            "created_at": now,
            "expires_at": expires_at,
            "iss": iss,
            "patient_id": patient_id,
            "fhir_user": fhir_user,
            "client_id": client_id,
            "scope": scope,
            "assessment_hint": session.assessment_hint,
            "secret_enc": self._seal({"access_token": access_token, "csrf_token": session.csrf_token}),
        }
        async with self._source.engine.begin() as conn:
            await conn.execute(insert(SmartSessionRow).values(row))
        return cookie, session

    async def get_session(self, cookie: str | None, *, now: datetime | None = None) -> SmartSession | None:
        """The session a cookie names; ``None`` when unknown, expired or unreadable."""
        if not cookie or len(cookie) > 200:
            return None
        now = as_utc(now, "now") if now is not None else utcnow()
        table = SmartSessionRow.__table__
        async with self._source.engine.connect() as conn:
            row = (await conn.execute(select(table).where(table.c.id_sha256 == digest(cookie)))).first()
        if row is None or row.expires_at <= now:
            return None
        secret = self._open(row.secret_enc)
        if secret is None:
            return None
        return SmartSession(
            key=row.id_sha256,
            iss=row.iss,
            patient_id=row.patient_id,
            fhir_user=row.fhir_user,
            scope=row.scope,
            access_token=SecretStr(secret["access_token"]),
            expires_at=row.expires_at,
            assessment_hint=row.assessment_hint,
            csrf_token=secret["csrf_token"],
        )

    async def consume_form_id(self, session: SmartSession, form_id: str, *, now: datetime | None = None) -> bool:
        """``True`` the first time ``form_id`` is submitted in this (still stored) session, ``False`` after."""
        if not form_id or len(form_id) > ID_LENGTH:
            return False
        now = as_utc(now, "now") if now is not None else utcnow()
        try:
            async with self._source.engine.begin() as conn:
                await conn.execute(insert(SmartFormIdRow).values(session_id=session.key, form_id=form_id, used_at=now))
        except IntegrityError:  # used before, or the session is gone (the foreign key)
            return False
        return True

    async def release_form_id(self, session: SmartSession, form_id: str) -> None:
        """Make ``form_id`` usable again in this session (a save the server refused wrote nothing: it may be retried)."""
        async with self._source.engine.begin() as conn:
            await conn.execute(delete(SmartFormIdRow).where(SmartFormIdRow.session_id == session.key,
                                                            SmartFormIdRow.form_id == form_id))

    async def end_session(self, session: SmartSession) -> None:
        """Delete the session (and its used form ids): its cookie opens nothing any more."""
        async with self._source.engine.begin() as conn:
            await conn.execute(delete(SmartFormIdRow).where(SmartFormIdRow.session_id == session.key))
            await conn.execute(delete(SmartSessionRow).where(SmartSessionRow.id_sha256 == session.key))

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete expired launches and sessions (with their form ids); return how many launches and sessions."""
        now = as_utc(now, "now") if now is not None else utcnow()
        sessions = select(SmartSessionRow.id_sha256).where(SmartSessionRow.expires_at <= now)
        async with self._source.engine.begin() as conn:
            launches = await conn.execute(delete(SmartLaunchRow).where(SmartLaunchRow.expires_at <= now))
            await conn.execute(delete(SmartFormIdRow).where(SmartFormIdRow.session_id.in_(sessions)))
            ended = await conn.execute(delete(SmartSessionRow).where(SmartSessionRow.expires_at <= now))
        return launches.rowcount + ended.rowcount
