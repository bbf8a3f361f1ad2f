"""Screening runs and results in the database: idempotent partitions, changes since the previous run,
sorted and filtered worklists, departed patients, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.screening.blobs import pack
from service.screening.changes import DATA_NOW_COMPLETE, NEW_PATIENT, NEWLY_RESISTANT

pytestmark = pytest.mark.anyio

SOURCE = {"kind": "ndjson", "location": "/exports"}


def item(pid: str, *, rec="insufficient-data", tace="unknown", missing=("child-pugh",), partition=0, error=None):
    if error:
        return {"patient_id": pid, "as_of": "2026-12-01", "partition": partition, "rules_version": "r1",
                "fields": None, "assessment_z": None, "page_z": None,
                "error": {"kind": "MappingError", "message": error}}
    return {
        "patient_id": pid, "as_of": "2026-12-01", "partition": partition, "rules_version": "r1",
        "fields": {"recommendation": rec, "tace_resistance": tace, "mrecist": "SD", "sorafenib_eligibility": "eligible",
                   "tace_candidacy": "met", "child_pugh": "A", "bclc": "B", "ecog": 1, "missing": list(missing),
                   "data_issues": 0},
        "assessment_z": pack({"patient_id": pid, "big": "x" * 5000}), "page_z": pack({"format": "p"}), "error": None,
    }


async def new_run(database, key="ndjson:/exports"):
    return await database.screenings.create_run(source_key=key, source=SOURCE, as_of={"default": None},
                                                started_by="cli")


async def test_a_partition_stored_twice_holds_its_rows_once(database):
    run = await new_run(database)
    rows = [item("p1"), item("p2", error="no Patient resource")]
    assert await database.screenings.ingest_partition(run, 0, rows) == 1
    assert await database.screenings.ingest_partition(run, 0, rows) == 1  # a retried partition replaces itself
    assert await database.screenings.counts(run.id) == {"patients": 2, "errors": 1}
    stored = await database.screenings.patient_result(run.id, "p1")
    assert stored.assessment == {"patient_id": "p1", "big": "x" * 5000} and stored.page == {"format": "p"}
    failed = await database.screenings.patient_result(run.id, "p2")
    assert failed.assessment is None and failed.row["error_message"] == "no Patient resource"


async def test_changes_compare_with_the_previous_complete_run_of_the_same_source(database):
    first = await new_run(database)
    await database.screenings.ingest_partition(first, 0, [item("p1"), item("p2"), item("gone")])
    other_source = await new_run(database, key="ndjson:/elsewhere")
    await database.screenings.update_run(other_source.id, status="complete")
    unfinished = await new_run(database)
    assert unfinished.previous_run_id is None  # the first run is not complete yet
    await database.screenings.update_run(first.id, status="complete")
    second = await new_run(database)
    assert second.previous_run_id == first.id
    await database.screenings.ingest_partition(second, 0, [
        item("p1", rec="sorafenib-plus-tace", tace="met", missing=()),
        item("p2"),
        item("p3"),
    ])
    rows = {r["patient_id"]: r for r in await database.screenings.results(second.id)}
    assert rows["p1"]["changes"] == [NEWLY_RESISTANT, "recommendation:insufficient-data->sorafenib-plus-tace",
                                     DATA_NOW_COMPLETE]
    assert rows["p2"]["changes"] == []
    assert rows["p3"]["changes"] == [NEW_PATIENT]
    assert await database.screenings.departed(second) == ["gone"]
    assert [r["patient_id"] for r in await database.screenings.results(second.id, changed_only=True)] == ["p1", "p3"]


async def test_worklist_sorted_and_filtered_in_the_database(database):
    run = await new_run(database)
    await database.screenings.ingest_partition(run, 0, [item("b", rec="continue-tace"), item("a"), item("c")])
    await database.screenings.ingest_partition(run, 1, [item("d", rec="continue-tace", partition=1)])
    assert [r["patient_id"] for r in await database.screenings.results(run.id, sort="patient_id", descending=True)] == [
        "d", "c", "b", "a"]
    assert [r["patient_id"] for r in await database.screenings.results(run.id, recommendation="continue-tace")] == [
        "b", "d"]
    # by default, in the order a tumour board acts on: data to complete before TACE to continue
    assert [r["patient_id"] for r in await database.screenings.results(run.id)] == ["a", "c", "b", "d"]
    assert await database.screenings.recommendation_counts(run.id) == {"continue-tace": 2, "insufficient-data": 2}
    with pytest.raises(ValueError, match="cannot sort by"):
        await database.screenings.results(run.id, sort="assessment_z")


async def test_a_cancelled_run_stays_cancelled(database):
    run = await new_run(database)
    await database.screenings.update_run(run.id, status="cancelled")
    await database.screenings.update_run(run.id, status="assessing", patients_done=3)
    stored = await database.screenings.get_run(run.id)
    assert stored.status == "cancelled" and stored.patients_done == 0
    with pytest.raises(ValueError):
        await database.screenings.update_run(run.id, status="sleeping")
    with pytest.raises(ValueError):
        await database.screenings.update_run(run.id, page_token="x" * 40)


async def test_page_token_is_not_the_run_id(database):
    run = await new_run(database)
    assert run.page_token != run.id and len(run.page_token) >= 43
    assert (await database.screenings.get_run_by_page_token(run.page_token)).id == run.id
    assert await database.screenings.get_run_by_page_token(run.id) is None


async def test_purge_deletes_finished_runs_past_retention_only(database):
    old = await database.screenings.create_run(source_key="k", source=SOURCE, as_of={}, started_by="cli",
                                               now=datetime.now(UTC) - timedelta(days=100))
    running = await database.screenings.create_run(source_key="k", source=SOURCE, as_of={}, started_by="cli",
                                                   now=datetime.now(UTC) - timedelta(days=100))
    await database.screenings.update_run(old.id, status="complete")
    await database.screenings.update_run(running.id, status="assessing")
    await database.screenings.ingest_partition(old, 0, [item("p1")])
    assert await database.screenings.purge_older_than(timedelta(days=90)) == 1
    assert await database.screenings.get_run(old.id) is None
    assert await database.screenings.get_run(running.id) is not None
    assert await database.screenings.counts(old.id) == {"patients": 0, "errors": 0}
