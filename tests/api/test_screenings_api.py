"""The screening job API end to end in one process: start a run of a configured NDJSON source, follow
its status to complete, read its worklist as CSV and JSON lines, open the worklist page and a patient's
page, cancel; and what a caller may not do (an unconfigured source, a malformed id, a finished run)."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.screening_export import DAY, demo_export_bundles, write_export


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("screening-api")
    bundles = demo_export_bundles(DAY)
    write_export(bundles, root / "export")
    settings = Settings(
        mode="demo", fhir_base_url=None, fhir_allowlist="", trusted_clients=None, clinical_overrides=None,
        database_url=f"sqlite:///{root}/db.sqlite3", screen_work_dir=root / "work", screen_workers=1,
        screen_patients_per_partition=10,
        screen_sources=json.dumps({"hospital": {"ndjson": str(root / "export")}}),
    )
    with TestClient(create_app(settings, demo_day=DAY)) as test_client:
        test_client.patients = len(bundles)
        yield test_client


def wait_for(client, url, deadline=180.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        status = client.get(url).json()
        if status["status"] in ("complete", "failed", "cancelled"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"the run did not finish in {deadline} s: {status}")


@pytest.fixture(scope="module")
def finished(client):
    started = client.post("/api/v1/screenings", json={"source": "hospital", "as_of": DAY.isoformat()})
    assert started.status_code == 202, started.text
    body = started.json()
    assert started.headers["location"] == body["status_url"]
    path = body["status_url"].split("127.0.0.1:8080", 1)[-1]
    return wait_for(client, path)


def test_a_run_completes_with_every_patient(client, finished):
    assert finished["status"] == "complete", finished["message"]
    assert finished["patients_total"] == finished["patients_done"] == client.patients == 37
    assert finished["patient_errors"] == 0
    assert finished["counts"]["partitioning"]


def test_results_as_csv_and_json_lines(client, finished):
    base = f"/api/v1/screenings/{finished['id']}/results"
    text = client.get(base, params={"format": "csv"}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 37 and {r["patient_id"] for r in rows} >= {"demo-eligible", "cohort-01"}
    eligible = next(r for r in rows if r["patient_id"] == "demo-eligible")
    assert eligible["recommendation"] == "sorafenib-plus-tace" and eligible["missing_data"] == ""
    lines = [json.loads(line) for line in client.get(base, headers={"Accept": "application/x-ndjson"}).text.splitlines()]
    assert len(lines) == 37
    only = client.get(base, params={"format": "jsonl", "recommendation": "insufficient-data"}).text.splitlines()
    assert only and all(json.loads(line)["recommendation"] == "insufficient-data" for line in only)


def test_the_worklist_page_and_a_patients_page(client, finished):
    page_path = finished["worklist_url"].split("127.0.0.1:8080", 1)[-1]
    page = client.get(page_path)
    assert page.status_code == 200 and "Tumour-board worklist" in page.text
    assert f'{page_path}/patients/demo-eligible' in page.text
    assert page.headers["cache-control"] == "no-store"
    filtered = client.get(page_path, params={"recommendation": "sorafenib-plus-tace"}).text
    assert "demo-eligible" in filtered and "demo-missing-data" not in filtered
    patient = client.get(f"{page_path}/patients/demo-eligible")
    assert patient.status_code == 200 and "demo-eligible" in patient.text
    assert client.get(f"{page_path}/patients/nobody").status_code == 404
    assert client.get("/worklists/" + "A" * 43).status_code == 404
    csv_text = client.get(f"{page_path}/worklist.csv").text
    assert csv_text.startswith("patient_id,as_of,recommendation")


def test_a_finished_run_cannot_be_cancelled(client, finished):
    refused = client.delete(f"/api/v1/screenings/{finished['id']}")
    assert refused.status_code == 409 and "already finished" in refused.json()["detail"]


def test_a_caller_names_a_configured_source_only(client):
    for body in ({"source": "https://attacker.example/fhir"}, {"source": "hospital", "url": "x"}, {}):
        assert client.post("/api/v1/screenings", json=body).status_code in (400, 422)
    assert client.get("/api/v1/screenings/not-a-run-id").status_code == 422
    assert client.get("/api/v1/screenings/" + "f" * 32).status_code == 404


def test_a_running_run_is_cancelled(client):
    started = client.post("/api/v1/screenings", json={"source": "hospital"}).json()
    path = f"/api/v1/screenings/{started['id']}"
    cancelled = client.delete(path)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert wait_for(client, path)["status"] == "cancelled"
    assert client.get(f"{path}/results").status_code == 409
