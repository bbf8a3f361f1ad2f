"""Where a hook call's mapping and rules run: a record of the usual size on the event loop (no hop to a thread),
a large record, or whole-resource validation, in a worker thread within the call's deadline."""

from __future__ import annotations

import threading
from datetime import date

import pytest

import service.pipeline as pipeline
from service.cohort.load import cohort_bundles
from service.demo import demo_bundles
from service.main import create_app
from service.settings import Settings
from tests.api.hook_requests import full_prefetch

pytestmark = pytest.mark.anyio
DAY = date(2026, 11, 28)


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


def _record() -> tuple[dict, list[dict]]:
    bundle = cohort_bundles(DAY)[0]
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    return patient, [r for r in resources if r is not patient]


@pytest.mark.parametrize(
    ("limit", "strict", "inline"),
    [(10_000, False, True), (0, False, False), (10_000, True, False)],
    ids=["usual-size", "large", "strict-validation"],
)
async def test_where_the_record_is_assessed(monkeypatch, tmp_path, limit, strict, inline):
    settings = Settings(database_url=f"sqlite:///{tmp_path}/db.sqlite3", fhir_strict_validation=strict)
    state = create_app(settings, demo_day=DAY).state.hcc
    patient, resources = _record()
    monkeypatch.setattr(pipeline, "INLINE_MAX_RESOURCES", limit)
    threads: list[threading.Thread] = []
    real = pipeline.assess_record

    def recording(*args):
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(pipeline, "assess_record", recording)
    loop_thread = threading.current_thread()
    assessment = await pipeline.assess_patient(
        state,
        patient["id"],
        templates=state.services["hcc-tace-resistance"].prefetch,
        prefetch=full_prefetch(resources, patient),
        source=None,
        as_of=DAY,
    )
    assert assessment.patient_id == patient["id"]
    assert (threads == [loop_thread]) is inline, threads
    assert len(threads) == 1


def test_the_cohort_records_are_of_the_usual_size():
    """The bound leaves every demo and cohort record (59-100 resources) on the event loop, with room."""
    sizes = [len(b["entry"]) for b in [*demo_bundles(DAY), *cohort_bundles(DAY)]]
    assert max(sizes) * 2 <= pipeline.INLINE_MAX_RESOURCES
