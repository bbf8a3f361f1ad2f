"""The jti replay store: first use True, replay False, across replicas and under concurrency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from service.db import JtiStore, SqlJtiStore
from service.db.jti import JTI_MIN_RETENTION

pytestmark = pytest.mark.anyio

ISS = "https://ehr.example.org"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_satisfies_the_verifiers_protocol():
    from service.db import Database

    db = Database.from_url("sqlite:///unused.sqlite3")
    assert isinstance(db.jti, SqlJtiStore)
    assert isinstance(db.jti, JtiStore)
    store: JtiStore = db.jti  # the verifier's static type
    assert store is db.jti


async def test_remember_once(database):
    exp = T0 + timedelta(minutes=5)
    assert await database.jti.remember(ISS, "jti-1", exp, now=T0) is True
    assert await database.jti.remember(ISS, "jti-1", exp, now=T0 + timedelta(seconds=1)) is False
    assert await database.jti.remember("https://other.example.org", "jti-1", exp, now=T0) is True  # per issuer
    assert await database.jti.remember(ISS, "jti-2", exp, now=T0) is True


async def test_without_now_uses_the_clock(database):
    exp = datetime.now(UTC) + timedelta(minutes=5)
    assert await database.jti.remember(ISS, "clock", exp) is True
    assert await database.jti.remember(ISS, "clock", exp) is False


async def test_an_expired_jti_may_be_used_again(database):
    exp = T0 + timedelta(hours=1)
    assert await database.jti.remember(ISS, "jti", exp, now=T0) is True
    assert await database.jti.remember(ISS, "jti", exp, now=exp - timedelta(seconds=1)) is False
    later = exp + timedelta(seconds=1)
    assert await database.jti.remember(ISS, "jti", later + timedelta(hours=1), now=later) is True
    assert await database.jti.remember(ISS, "jti", later + timedelta(hours=1), now=later) is False


async def test_kept_at_least_the_minimum_retention(database):
    # a token already past exp (a verifier's clock-skew leeway) is still remembered for a while
    assert await database.jti.remember(ISS, "late", T0 - timedelta(seconds=30), now=T0) is True
    assert await database.jti.remember(ISS, "late", T0 - timedelta(seconds=30), now=T0 + timedelta(seconds=60)) is False
    assert await database.jti.remember(ISS, "late", T0, now=T0 + JTI_MIN_RETENTION + timedelta(seconds=1)) is True


async def test_purge_expired(database):
    await database.jti.remember(ISS, "a", T0 + timedelta(minutes=10), now=T0)
    await database.jti.remember(ISS, "b", T0 + timedelta(hours=2), now=T0)
    assert await database.jti.purge_expired(T0 + timedelta(hours=1)) == 1
    assert await database.jti.remember(ISS, "b", T0 + timedelta(hours=2), now=T0 + timedelta(hours=1)) is False
    assert await database.jti.remember(ISS, "a", T0 + timedelta(hours=2), now=T0 + timedelta(hours=1)) is True


async def test_abusive_values_are_refused_not_failed(database):
    exp = T0 + timedelta(minutes=5)
    assert await database.jti.remember(ISS, "j" * 501, exp, now=T0) is False
    assert await database.jti.remember("i" * 1001, "jti", exp, now=T0) is False
    assert await database.jti.remember(ISS, "", exp, now=T0) is False
    with pytest.raises(ValueError):
        await database.jti.remember(ISS, "naive", datetime(2026, 3, 1, 12, 5))


async def test_replay_across_replicas(database, replica):
    exp = T0 + timedelta(minutes=5)
    assert await database.jti.remember(ISS, "shared", exp, now=T0) is True
    assert await replica.jti.remember(ISS, "shared", exp, now=T0) is False
    assert await replica.jti.remember(ISS, "other", exp, now=T0) is True
    assert await database.jti.remember(ISS, "other", exp, now=T0) is False


async def test_concurrent_remember_of_one_jti_succeeds_once(database, replica):
    exp = datetime.now(UTC) + timedelta(minutes=5)
    results: list[bool] = []

    async def attempt(store: SqlJtiStore) -> None:
        results.append(await store.remember(ISS, "raced", exp))

    async with anyio.create_task_group() as tasks:
        for i in range(40):
            tasks.start_soon(attempt, (database if i % 2 else replica).jti)
    assert len(results) == 40
    assert results.count(True) == 1


async def test_concurrent_reclaim_of_an_expired_jti_succeeds_once(database, replica):
    await database.jti.remember(ISS, "old", T0, now=T0 - JTI_MIN_RETENTION)
    later = T0 + timedelta(hours=1)
    results: list[bool] = []

    async def attempt(store: SqlJtiStore) -> None:
        results.append(await store.remember(ISS, "old", later + timedelta(minutes=5), now=later))

    async with anyio.create_task_group() as tasks:
        for i in range(20):
            tasks.start_soon(attempt, (database if i % 2 else replica).jti)
    assert results.count(True) == 1


async def test_concurrent_distinct_jtis_all_succeed(database, replica):
    exp = datetime.now(UTC) + timedelta(minutes=5)
    results: list[bool] = []

    async def attempt(i: int) -> None:
        results.append(await (database if i % 2 else replica).jti.remember(ISS, f"jti-{i}", exp))

    async with anyio.create_task_group() as tasks:
        for i in range(30):
            tasks.start_soon(attempt, i)
    assert results == [True] * 30
