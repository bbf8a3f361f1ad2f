"""Issue 17 end to end: POST /api/v1/assessments from FHIR Bundles, and the patient-view hook with prefetch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rules.recommendation import SUMMARIES
from tests import fhir_factories as f
from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view
from tests.api.test_recommendations import RX, ago, eligible_resources

PID = "demo-eligible"
CONFIRM = "main portal trunk involvement not excluded: confirm"


def thrombosis(today) -> dict:
    return f.condition("17920008", ago(today, 30), pid=PID, rid="pvt-1")


def post(client, resources, as_of=None):
    query = f"?as_of={as_of.isoformat()}" if as_of else ""
    response = client.post(f"/api/v1/assessments{query}", json=f.bundle(*resources))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_portal_vein_thrombosis_stops_candidacy_and_gives_sorafenib_alone(client, settings):
    today = settings.today()
    body = post(client, eligible_resources(today) + [thrombosis(today)])
    assert body["tace_candidacy"]["status"] == "not-met"
    assert any(CONFIRM in r for r in body["tace_candidacy"]["reasons"])
    assert "Condition/pvt-1" in body["tace_candidacy"]["evidence"]
    assert body["recommendation"]["code"] == "sorafenib-alone"
    assert body["sorafenib_eligibility"]["status"] == "eligible"


def test_the_patient_view_hook_with_prefetch_gives_sorafenib_alone_for_a_thrombosis(client, settings):
    today = settings.today()
    resources = eligible_resources(today)
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    others = [r for r in resources if r is not patient] + [thrombosis(today)]
    cards = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view(PID, prefetch=full_prefetch(others, patient))).json()["cards"]
    assert cards and cards[0]["summary"] == SUMMARIES["sorafenib-alone"]
    assert all(c["summary"] != SUMMARIES["sorafenib-plus-tace"] for c in cards)


@pytest.mark.parametrize("status", ["preparation", "in-progress", "not-done"])
def test_planned_in_progress_or_not_done_tace_only_is_not_applicable(client, settings, status):
    today = settings.today()
    resources = [
        {**r, "status": status} if r["resourceType"] == "Procedure" else r for r in eligible_resources(today)
    ]
    body = post(client, resources)
    assert body["recommendation"]["code"] == "not-applicable"
    assert body["recommendation"]["reasons"][0].startswith("No completed TACE session recorded")


def stopped_sorafenib(today) -> dict:
    return {
        "resourceType": "MedicationRequest", "id": "sora-stopped", "status": "stopped", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RX, "code": "597747", "display": "sorafenib 200 MG Oral Tablet"}]},
        "subject": {"reference": f"Patient/{PID}"}, "authoredOn": ago(today, 60),
        "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": ago(today, 60), "end": ago(today, 20)},
                                                     "frequency": 2, "period": 1, "periodUnit": "d"}}}],
    }


def test_a_stopped_sorafenib_course_is_referred_to_the_tumour_board_with_its_dates(client, settings):
    today = settings.today()
    body = post(client, eligible_resources(today) + [stopped_sorafenib(today)])
    rec = body["recommendation"]
    assert rec["code"] == "refer-mdt"
    course = [r for r in rec["reasons"] if r.startswith("Earlier sorafenib course")]
    assert course and course[0].startswith(f"Earlier sorafenib course {ago(today, 60)} to {ago(today, 20)} (stopped;")
    assert "MedicationRequest/sora-stopped" in course[0]


@pytest.mark.parametrize(("days_later", "code"), [(10, "sorafenib-plus-tace"), (11, "insufficient-data")])
def test_imaging_more_than_90_days_old_gives_insufficient_data(client, settings, days_later, code):
    """The demo patient's latest scan is 80 days old today: 90 days old ten days later, 91 the day after."""
    today = settings.today()
    body = post(client, eligible_resources(today), as_of=today + timedelta(days=days_later))
    assert body["recommendation"]["code"] == code
    if code == "insufficient-data":
        assert body["tace_candidacy"]["status"] == "unknown"
        assert any("91 days old, more than 90" in r for r in body["tace_candidacy"]["reasons"])
        assert body["bclc"]["tumour_extent_stage"] is None


BRANCH_OVERRIDES = """
value_sets:
  concepts:
    portal_vein_branch_thrombus:
      resource: Condition
      codes:
        - {system: "urn:oid:1.2.3.local", code: "PVT-BRANCH", display: "Tumour thrombus, right portal branch"}
thresholds:
  tace_candidacy:
    portal_vein_branch_only_concepts: [portal_vein_branch_thrombus]
"""


def test_a_site_declared_branch_only_thrombus_keeps_tace_possible_and_stages_c(monkeypatch, tmp_path, settings):
    from fastapi.testclient import TestClient

    from service.main import create_app
    from service.settings import Settings

    path = tmp_path / "overrides.yaml"
    path.write_text(BRANCH_OVERRIDES)
    monkeypatch.setenv("HCC_CLINICAL_OVERRIDES", str(path))
    today = settings.today()
    branch = f.condition("PVT-BRANCH", ago(today, 30), system="urn:oid:1.2.3.local", pid=PID, rid="pvt-branch")
    with TestClient(create_app(Settings())) as client:
        body = post(client, eligible_resources(today) + [branch], as_of=today)
    assert body["tace_candidacy"]["status"] == "met"
    assert body["bclc"]["tumour_extent_stage"] == "C"
    assert body["recommendation"]["code"] == "sorafenib-plus-tace"
