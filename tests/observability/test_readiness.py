"""GET /readyz: 200 when every check passes, 503 naming the failing ones, never a 500."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.db import Database
from service.observability import Readiness
from service.observability.readiness import benchmark_tables_check, database_checks, readiness_router


def ok():
    async def check() -> bool:
        return True

    return check


def failing():
    async def check() -> bool:
        return False

    return check


def raising():
    async def check() -> bool:
        raise RuntimeError("connection to postgresql://hcc:secret@db/hcc refused")

    return check


def slow(seconds: float):
    async def check() -> bool:
        await asyncio.sleep(seconds)
        return True

    return check


def app_with(checks, **options) -> TestClient:
    app = FastAPI()
    app.include_router(readiness_router(Readiness(checks, **options)))
    return TestClient(app)


def test_ready_when_every_injected_check_passes():
    r = app_with({"benchmark_tables": ok(), "database": ok(), "migrations": ok()}).get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"benchmark_tables": "ok", "database": "ok", "migrations": "ok"}}
    assert r.headers["cache-control"] == "no-store"


def test_a_failing_check_is_503_naming_it():
    r = app_with({"benchmark_tables": ok(), "database": failing(), "migrations": ok()}).get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "not ready", "checks": {"benchmark_tables": "ok", "database": "failed", "migrations": "ok"}}


def test_a_raising_check_is_503_error_never_500_and_its_message_is_not_shown():
    r = app_with({"database": raising()}).get("/readyz")
    assert r.status_code == 503 and r.json()["checks"] == {"database": "error"}
    assert "secret" not in r.text


def test_a_slow_check_times_out_as_503():
    r = app_with({"database": slow(5)}, timeout_seconds=0.1).get("/readyz")
    assert r.status_code == 503 and r.json()["checks"] == {"database": "timeout"}


def test_a_check_answering_something_else_than_true_is_failed():
    async def truthy():
        return "yes"

    r = app_with({"x": truthy}).get("/readyz")
    assert r.status_code == 503 and r.json()["checks"] == {"x": "failed"}


def test_the_checks_run_concurrently():
    checks = {f"c{i}": slow(0.3) for i in range(5)}
    client = app_with(checks)
    started = time.monotonic()
    assert client.get("/readyz").status_code == 200
    assert time.monotonic() - started < 1.2


def test_readiness_that_cannot_be_evaluated_is_503_not_500():
    app = FastAPI()
    app.include_router(readiness_router())  # reads app.state.observability, which is missing
    r = TestClient(app).get("/readyz")
    assert r.status_code == 503 and r.json() == {"status": "not ready", "checks": {"readiness": "error"}}


def test_the_installed_app_is_ready_with_tables_database_and_migrations(client):
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"benchmark_tables": "ok", "database": "ok", "fhir_pool": "ok", "migrations": "ok"}}


def test_the_installed_app_is_not_ready_with_a_database_behind_head(client, app, tmp_path):
    behind = Database.from_url(f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}")
    client.portal.call(behind.start)
    original, app.state.hcc.db = app.state.hcc.db, behind
    try:
        r = client.get("/readyz")
    finally:
        app.state.hcc.db = original
        client.portal.call(behind.stop)
    assert r.status_code == 503
    assert r.json()["checks"] == {"benchmark_tables": "ok", "database": "ok", "fhir_pool": "ok", "migrations": "failed"}
    assert 'hcc_cds_readiness_check_failures_total{check="migrations"} 1.0' in client.get("/metrics").text


def test_the_installed_app_is_not_ready_with_an_unreachable_database(client, app):
    # a port nothing listens on: refused at once
    unreachable = Database.from_url("postgresql://hcc:pw@127.0.0.1:9/hcc")
    client.portal.call(unreachable.start)
    original, app.state.hcc.db = app.state.hcc.db, unreachable
    try:
        r = client.get("/readyz")
    finally:
        app.state.hcc.db = original
        client.portal.call(unreachable.stop)
    assert r.status_code == 503
    assert r.json()["checks"]["database"] in ("failed", "timeout")
    assert r.json()["checks"]["migrations"] in ("failed", "timeout")


@pytest.mark.anyio
async def test_database_checks_fail_while_there_is_no_database():
    checks = database_checks(lambda: None)
    assert await checks["database"]() is False and await checks["migrations"]() is False


@pytest.mark.anyio
async def test_benchmark_tables_check_needs_a_cohort():
    class Empty:
        cohorts: dict = {}

    class One:
        cohorts = {"x": object()}

    assert await benchmark_tables_check(lambda: Empty())() is False
    assert await benchmark_tables_check(lambda: One())() is True
    assert await benchmark_tables_check()() is True  # the shipped tables
