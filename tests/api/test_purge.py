"""Expired assessments and jtis are deleted: by the service on a schedule, and by ``hcc-cds purge``.

Issue 18 item 9: ``purge_expired`` was never called; expired assessments (clinical results) and the
``jti`` rows of expired tokens accumulated for ever.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from service.cli import main
from service.db import Database
from service.main import create_app
from service.settings import Settings

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _settings(path, **overrides) -> Settings:
    values = {"mode": "demo", "database_url": f"sqlite:///{path}", "fhir_base_url": None, "trusted_clients": None,
              "clinical_overrides": None}
    values.update(overrides)
    return Settings(**values)


async def _plant(url: str) -> tuple[str, str, str]:
    """An assessment expired long ago, one expired an hour ago, one current; an expired and a current jti."""
    async with Database.from_url(url) as db:
        await db.migrate()
        now = datetime.now(UTC)
        ids = []
        for created, lifetime in ((LONG_AGO, timedelta(hours=1)), (now - timedelta(hours=2), timedelta(hours=1)),
                                  (now, timedelta(hours=24))):
            ids.append(await db.assessments.save_assessment(db.assessments.new_row(
                patient_ref="Patient/purge-1", service_id="s", rules_version="r", assessment={}, now=created,
                lifetime=lifetime)))
        assert await db.jti.remember("https://iss.example", "old", LONG_AGO, now=LONG_AGO)
        assert await db.jti.remember("https://iss.example", "new", now + timedelta(hours=1))
    return ids[0], ids[1], ids[2]


async def _state(url: str, ids: tuple[str, ...]) -> tuple[list[str], list[str]]:
    from sqlalchemy import select

    from service.db.models import JtiSeenRow

    async with Database.from_url(url) as db:
        kinds = []
        for i in ids:
            stored = await db.assessments.get_assessment(i)
            kinds.append("gone" if stored is None else "expired" if stored.expired else "current")
        async with db.engine.connect() as conn:
            jtis = sorted(r.jti for r in (await conn.execute(select(JtiSeenRow.jti))).all())
    return kinds, jtis


def test_the_service_purges_expired_assessments_and_jtis_on_a_schedule(tmp_path):
    path = tmp_path / "scheduled.sqlite3"
    ids = asyncio.run(_plant(f"sqlite:///{path}"))
    app = create_app(_settings(path, purge_interval_minutes=0.005, expired_retention_hours=1.5))
    with TestClient(app):
        time.sleep(1.0)
    kinds, jtis = asyncio.run(_state(f"sqlite:///{path}", ids))
    # expired beyond the retention: deleted; expired within it: kept, its page says "expired"
    assert kinds == ["gone", "expired", "current"]
    assert jtis == ["new"]


def test_no_scheduled_purge_when_the_interval_is_zero(tmp_path):
    path = tmp_path / "unscheduled.sqlite3"
    ids = asyncio.run(_plant(f"sqlite:///{path}"))
    with TestClient(create_app(_settings(path, purge_interval_minutes=0))):
        time.sleep(0.3)
    assert asyncio.run(_state(f"sqlite:///{path}", ids)) == (["expired", "expired", "current"], ["new", "old"])


def test_hcc_cds_purge_deletes_once_and_reports_the_counts(tmp_path, monkeypatch, capsys):
    path = tmp_path / "cli.sqlite3"
    ids = asyncio.run(_plant(f"sqlite:///{path}"))
    monkeypatch.setenv("HCC_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("HCC_EXPIRED_RETENTION_HOURS", "0")
    assert main(["purge"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": {"assessments": 2, "jtis": 1, "screening_runs": 0, "smart": 0}}
    assert asyncio.run(_state(f"sqlite:///{path}", ids)) == (["gone", "gone", "current"], ["new"])
