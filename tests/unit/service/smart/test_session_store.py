"""``db.smart`` on SQLite: secrets encrypted at rest, expiry, single-use launch state and form ids, a wrong
key failing closed, the purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from cryptography.fernet import Fernet, MultiFernet
from pydantic import SecretStr

from service.db import Database
from service.db.smart import LAUNCH_LIFETIME, digest
from service.settings import SettingsError
from service.smart.crypto import parse_keys, session_cipher
from service.smart.session import SmartSession
from tests.db.conftest import fresh_postgres_database, postgres_url

pytestmark = pytest.mark.anyio

ISS = "http://127.0.0.1:9/v/r4/fhir"
TOKEN = "access-token-" + "s3cr3t" * 10
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request, tmp_path):
    """SQLite, and PostgreSQL when ``HCC_TEST_POSTGRES_URL`` names a server (as tests/db)."""
    if request.param == "sqlite":
        database = Database.from_url(f"sqlite:///{tmp_path}/smart.sqlite3")
        await database.migrate()
        async with database:
            yield database
        return
    server = postgres_url()
    if server is None:
        pytest.skip("PostgreSQL not configured: set HCC_TEST_POSTGRES_URL")
    with fresh_postgres_database(server) as url:
        database = Database.from_url(url)
        await database.migrate()
        async with database:
            yield database


async def _session(db: Database, **overrides) -> tuple[str, SmartSession]:
    values: dict[str, Any] = dict(
        iss=ISS,
        patient_id="demo-missing-data",
        fhir_user="Practitioner/example",
        client_id="hcc-cds",
        scope="launch openid fhirUser patient/Observation.write",
        access_token=TOKEN,
        expires_at=T0 + timedelta(minutes=30),
        assessment_hint="a" * 32,
        now=T0,
    )
    values.update(overrides)
    return await db.smart.create_session(**values)


async def test_session_round_trip_and_expiry(db):
    cookie, created = await _session(db)
    assert created.key == digest(cookie) and cookie not in created.key
    read = await db.smart.get_session(cookie, now=T0 + timedelta(minutes=29))
    assert read == created
    assert read.access_token.get_secret_value() == TOKEN
    assert read.patient_id == "demo-missing-data" and read.fhir_user == "Practitioner/example"
    assert read.expires_at == T0 + timedelta(minutes=30) and read.expires_at.tzinfo is not None
    assert len(read.csrf_token) >= 40
    assert await db.smart.get_session(cookie, now=T0 + timedelta(minutes=30)) is None  # expired
    assert await db.smart.get_session("not-a-cookie", now=T0) is None
    assert await db.smart.get_session("", now=T0) is None
    assert TOKEN not in repr(read) and read.csrf_token not in repr(read)


async def test_secrets_are_not_in_the_database_file(db, tmp_path):
    if db.backend != "sqlite":
        pytest.skip("reads the SQLite file")
    cookie, session = await _session(db)
    await db.smart.create_launch("state-value-123", iss=ISS, launch="L", assessment_hint=None,
                                 code_verifier="verifier-" + "v" * 50, nonce="nonce-" + "n" * 30, now=T0)
    await db.stop()  # every write on disk (WAL checkpointed on close)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("smart.sqlite3*"))
    await db.start()
    assert b"Practitioner/example" in raw  # the file is the one written
    for secret in (TOKEN, cookie, session.csrf_token, "state-value-123", "verifier-" + "v" * 50, "nonce-" + "n" * 30):
        assert secret.encode() not in raw, secret[:12]


async def test_wrong_key_fails_closed(db):
    cookie, _ = await _session(db)
    await db.smart.create_launch("s1", iss=ISS, launch="L", assessment_hint=None, code_verifier="v", nonce="n", now=T0)
    db.smart.cipher = MultiFernet([Fernet(Fernet.generate_key())])
    assert await db.smart.get_session(cookie, now=T0) is None
    assert await db.smart.take_launch("s1", now=T0) is None


async def test_rotated_keys_still_decrypt(db):
    old = Fernet(Fernet.generate_key())
    db.smart.cipher = MultiFernet([old])
    cookie, _ = await _session(db)
    db.smart.cipher = MultiFernet([Fernet(Fernet.generate_key()), old])  # new key first, old kept
    assert (await db.smart.get_session(cookie, now=T0)).access_token.get_secret_value() == TOKEN


async def test_launch_is_taken_once_and_expires(db):
    await db.smart.create_launch("s1", iss=ISS, launch="L1", assessment_hint="hint-1", code_verifier="v1",
                                 nonce="n1", now=T0)
    taken = await db.smart.take_launch("s1", now=T0 + timedelta(minutes=1))
    assert (taken.iss, taken.launch, taken.assessment_hint, taken.code_verifier, taken.nonce) == (
        ISS, "L1", "hint-1", "v1", "n1")
    assert await db.smart.take_launch("s1", now=T0 + timedelta(minutes=1)) is None  # replay
    await db.smart.create_launch("s2", iss=ISS, launch="L2", assessment_hint=None, code_verifier="v", nonce="n", now=T0)
    assert await db.smart.take_launch("s2", now=T0 + LAUNCH_LIFETIME) is None  # too late
    assert await db.smart.take_launch("unknown", now=T0) is None


async def test_concurrent_callbacks_take_a_launch_once(db):
    await db.smart.create_launch("race", iss=ISS, launch="L", assessment_hint=None, code_verifier="v", nonce="n")
    results = []

    async def take():
        results.append(await db.smart.take_launch("race"))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(take)
    assert sum(r is not None for r in results) == 1


async def test_form_ids_are_single_use(db):
    cookie, session = await _session(db)
    other_cookie, other = await _session(db)
    assert await db.smart.consume_form_id(session, "form-1", now=T0) is True
    assert await db.smart.consume_form_id(session, "form-1", now=T0) is False
    assert await db.smart.consume_form_id(other, "form-1", now=T0) is True  # per session
    assert await db.smart.consume_form_id(session, "", now=T0) is False
    results = []

    async def submit():
        results.append(await db.smart.consume_form_id(session, "form-2"))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(submit)
    assert results.count(True) == 1
    await db.smart.end_session(session)
    assert await db.smart.get_session(cookie, now=T0) is None
    assert await db.smart.consume_form_id(session, "form-3", now=T0) is False  # the session is gone
    assert await db.smart.get_session(other_cookie, now=T0) is not None


async def test_purge_removes_expired_launches_and_sessions(db):
    old_cookie, old = await _session(db, expires_at=T0 + timedelta(minutes=5))
    live_cookie, _ = await _session(db, expires_at=T0 + timedelta(hours=1))
    assert await db.smart.consume_form_id(old, "f", now=T0)
    await db.smart.create_launch("old", iss=ISS, launch="L", assessment_hint=None, code_verifier="v", nonce="n", now=T0)
    counts = await db.purge_expired(T0 + timedelta(minutes=20))
    assert counts.smart == 2  # the launch (10 min) and the 5-minute session
    assert await db.smart.get_session(live_cookie, now=T0) is not None
    assert await db.smart.get_session(old_cookie, now=T0) is None
    assert (await db.purge_expired(T0 + timedelta(minutes=20))).smart == 0


async def test_hint_is_kept_only_when_plausible(db):
    _, long_hint = await _session(db, assessment_hint="x" * 101)
    _, odd_hint = await _session(db, assessment_hint="a\nb")
    assert long_hint.assessment_hint is None and odd_hint.assessment_hint is None


def test_session_keys_parsing():
    key1, key2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert len(parse_keys(SecretStr(f"{key1}, {key2}"))) == 2
    assert parse_keys(None) == []
    with pytest.raises(SettingsError) as refused:
        parse_keys(SecretStr(f"{key1},not-a-key-at-all"))
    assert "key 2" in str(refused.value) and "not-a-key" not in str(refused.value)
    token = session_cipher(SecretStr(key1)).encrypt(b"x")
    assert MultiFernet([Fernet(key1)]).decrypt(token) == b"x"


async def test_audit_kinds_of_the_app_and_the_rebuilt_check(db):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from service.audit import audit_kind
    from service.db import AuditEvent

    assert audit_kind("/smart/launch") == audit_kind("/smart/callback", "GET") == "smart-launch"
    assert audit_kind("/smart/app") == audit_kind("/smart/app/result/x", "GET") == "smart-view"
    assert audit_kind("/smart/app/measurements", "POST") == "smart-write"
    assert audit_kind("/smart/other") is None and audit_kind("/assessments/x") == "page-view"
    for kind in ("smart-launch", "smart-view", "smart-write"):
        await db.audit.record(AuditEvent(kind=kind, actor="Practitioner/example", route="/smart/app", outcome=200,
                                         issuer=ISS, patient_ref="Patient/demo-missing-data"))
    assert {e.kind for e in await db.audit.list_events()} == {"smart-launch", "smart-view", "smart-write"}
    with pytest.raises(IntegrityError):  # the CHECK survived its rebuild
        async with db.engine.begin() as conn:
            await conn.execute(text("INSERT INTO audit_events (at, actor, kind, route, outcome) "
                                    "VALUES ('2026-01-01 00:00:00', 'a', 'bogus', '/x', 200)"))
