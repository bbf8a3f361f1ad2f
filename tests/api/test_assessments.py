"""REST assessments: configured source (embedded demo data) and posted Bundles."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from service.demo import DEMO_PATIENT_IDS, demo_bundles
from tests import fhir_factories as f

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "spec" / "assessment.schema.json").read_text())


def test_every_demo_assessment_matches_the_schema(client):
    for pid in DEMO_PATIENT_IDS:
        body = client.get(f"/api/v1/patients/{pid}/assessment").json()
        jsonschema.validate(body, SCHEMA)


@pytest.mark.parametrize(
    ("pid", "recommendation", "eligibility", "resistance", "child_pugh"),
    [
        ("demo-eligible", "sorafenib-plus-tace", "eligible", "met", "A"),
        ("demo-ineligible", "outside-study-criteria", "ineligible", "met", "C"),
        ("demo-missing-data", "insufficient-data", "indeterminate", "unknown", None),
    ],
)
def test_demo_patients_expected_statuses(client, pid, recommendation, eligibility, resistance, child_pugh):
    body = client.get(f"/api/v1/patients/{pid}/assessment").json()
    assert body["recommendation"]["code"] == recommendation
    assert body["sorafenib_eligibility"]["status"] == eligibility
    assert body["tace_resistance"]["status"] == resistance
    assert body["child_pugh"]["class"] == child_pugh


def test_demo_ineligible_is_excluded_by_bilirubin_and_child_pugh_c_with_evidence(client):
    body = client.get("/api/v1/patients/demo-ineligible/assessment").json()
    crit = {c["id"]: c for c in body["sorafenib_eligibility"]["criteria"]}
    assert crit["bilirubin_above_3"]["status"] == "met" and crit["bilirubin_above_3"]["evidence"]
    assert crit["child_pugh_a_or_b"]["status"] == "not-met"
    assert body["child_pugh"]["points"]["bilirubin"]["value"].endswith("(recorded 58 umol/L)")


def test_demo_missing_data_says_what_is_missing(client):
    body = client.get("/api/v1/patients/demo-missing-data/assessment").json()
    reasons = " ".join(body["child_pugh"]["reasons"])
    assert "stale" in reasons and "no unit" in reasons and "INR" in reasons
    assert any("no unit" in i["problem"] for i in body["data_issues"])


def test_as_of_moves_the_freshness_windows(client, settings):
    later = (settings.today() + timedelta(days=40)).isoformat()
    body = client.get(f"/api/v1/patients/demo-eligible/assessment?as_of={later}").json()
    assert body["as_of"] == later and body["child_pugh"]["class"] is None


def test_unknown_patient_is_404_operation_outcome(client):
    r = client.get("/api/v1/patients/nobody/assessment")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome" and r.headers["content-type"].startswith("application/fhir+json")


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday"])
def test_a_malformed_as_of_is_422(client, bad):
    r = client.get(f"/api/v1/patients/demo-eligible/assessment?as_of={bad}")
    assert r.status_code == 422 and "as_of" in r.json()["detail"]


def test_posted_bundle_gives_the_same_assessment_as_the_configured_source(client, settings):
    bundle = next(b for b in demo_bundles(settings.today()) if b["id"] == "demo-eligible-bundle")
    posted = client.post("/api/v1/assessments", json=bundle).json()
    fetched = client.get("/api/v1/patients/demo-eligible/assessment").json()
    assert posted == fetched


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"resourceType": "Patient", "id": "x"}, "must be a FHIR Bundle"),
        ({"resourceType": "Bundle", "type": "collection"}, "no entries"),
        (f.bundle(f.lab("1975-2", 1, "mg/dL", "2026-11-01")), "exactly one Patient"),
        (f.bundle(f.patient("a"), f.patient("b")), "exactly one Patient"),
        ({"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}, "has no resource"),
        ({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]}, "has no id"),
    ],
)
def test_bad_bundles_are_422_with_a_message(client, body, message):
    r = client.post("/api/v1/assessments", json=body)
    assert r.status_code == 422 and message in r.json()["detail"]


def test_a_posted_resource_of_another_patient_is_excluded_and_reported(client):
    bundle = f.bundle(f.patient("p1"), f.lab("1975-2", 9.0, "mg/dL", "2026-11-25", pid="p2", rid="other"))
    body = client.post("/api/v1/assessments?as_of=2026-11-28", json=bundle).json()
    assert body["child_pugh"]["points"]["bilirubin"]["points"] is None
    assert {"resource": "Observation/other", "problem": "belongs to another patient; excluded"} in body["data_issues"]


def test_non_json_body_is_422(client):
    r = client.post("/api/v1/assessments", content=b"<Bundle/>", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
