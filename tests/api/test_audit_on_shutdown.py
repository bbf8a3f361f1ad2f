"""Hook calls are audited off the response path, and no audit record is lost when the app shuts down."""

from __future__ import annotations

import asyncio
import uuid

from service.db import Database
from service.main import create_app
from service.settings import Settings
from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view
from tests.api.test_hooks import demo_record
from tests.conftest import cds_client


def audited(url: str, patient_ref: str) -> list:
    """The audit events of ``patient_ref`` as another process reads them (a Database of its own)."""

    async def read() -> list:
        db = Database.from_url(url)
        await db.start()
        try:
            return await db.audit.list_events(patient_ref=patient_ref, limit=10_000)
        finally:
            await db.stop()

    return asyncio.run(read())


def test_every_hook_call_is_audited_even_when_the_app_stops_before_the_batch_is_written(
    settings, _database_for_the_session
):
    pid = "demo-eligible"
    patient, resources = demo_record(pid, settings.today())
    markers = [str(uuid.uuid4()) for _ in range(5)]
    app = create_app(Settings())
    audit = app.state.hcc.db.audit
    audit.flush_seconds, audit.flush_events = 3600, 10**9  # only the shutdown can write them
    with cds_client(app) as client:
        for marker in markers:
            body = patient_view(pid, prefetch=full_prefetch(resources, patient))
            body["hookInstance"] = marker
            r = client.post(f"/cds-services/{SERVICE_ID}", json=body)
            assert r.status_code == 200 and r.json()["cards"]
            page = client.get("/" + r.json()["cards"][0]["links"][0]["url"].split("/", 3)[3])
            assert page.status_code == 200  # the stored assessment is there when the card is
        assert audit.pending >= len(markers) * 2  # hook calls and page views: not written yet
        written = {e.hook_instance for e in audited(_database_for_the_session, f"Patient/{pid}")}
        assert not written & set(markers)
    # the lifespan has ended: everything was written
    events = audited(_database_for_the_session, f"Patient/{pid}")
    hooks = [e for e in events if e.hook_instance in markers]
    assert sorted(e.hook_instance for e in hooks) == sorted(markers)
    assert all(e.kind == "hook-call" and e.outcome == 200 and e.rules_version for e in hooks)
    assert audit.pending == 0
