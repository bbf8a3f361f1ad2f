"""CDS Hooks through the ASGI app: discovery, patient-view with and without prefetch, bad requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.demo import demo_bundles
from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "cds-hooks-spec-examples"


def demo_record(patient_id: str, today):
    for b in demo_bundles(today):
        resources = [e["resource"] for e in b["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        if patient["id"] == patient_id:
            return patient, [r for r in resources if r is not patient]
    raise KeyError(patient_id)


def test_discovery_lists_the_patient_view_service_with_prefetch_templates(client):
    body = client.get("/cds-services").json()
    service = next(s for s in body["services"] if s["id"] == SERVICE_ID)
    assert service["hook"] == "patient-view" and service["description"]
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert service["prefetch"]["observations"].startswith("Observation?patient={{context.patientId}}&code=")
    assert "http://loinc.org|1975-2" in service["prefetch"]["observations"]
    assert "usageRequirements" in service and None not in service.values()


def test_patient_view_with_full_prefetch_returns_one_spec_valid_card(client, settings):
    patient, resources = demo_record("demo-eligible", settings.today())
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible", prefetch=full_prefetch(resources, patient)))
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    assert len(cards) == 1
    card = cards[0]
    assert len(card["summary"]) < 140 and card["indicator"] in ("info", "warning")
    assert card["source"]["label"] and card["uuid"]
    assert "TACE-resistant" in card["detail"] and "Based on a 2008–2015 retrospective cohort" in card["detail"]
    assert card["indicator"] == "warning"  # demo-eligible has hepatitis B without antiviral therapy: a safety note
    assert card["summary"].startswith("TACE-resistant HCC within the study's criteria")
    assert card["source"]["topic"]["code"] == "sorafenib-plus-tace"


def test_patient_view_without_prefetch_or_fhir_server_is_412(client):
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible"))
    assert r.status_code == 412 and "prefetch is missing" in r.json()["detail"]


def test_partial_prefetch_without_fhir_server_is_412_naming_the_missing_keys(client, settings):
    patient, resources = demo_record("demo-eligible", settings.today())
    prefetch = full_prefetch(resources, patient)
    del prefetch["observations"]
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible", prefetch=prefetch))
    assert r.status_code == 412 and "observations" in r.json()["detail"]


def test_null_prefetch_values_mean_no_data_not_missing(client, settings):
    patient, _ = demo_record("demo-eligible", settings.today())
    prefetch = {k: None for k in full_prefetch([], patient)}
    prefetch["patient"] = patient
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible", prefetch=prefetch))
    assert r.status_code == 200 and r.json() == {"cards": []}  # no HCC diagnosis recorded


def test_an_operation_outcome_in_prefetch_must_be_fetched(client, settings):
    patient, resources = demo_record("demo-eligible", settings.today())
    prefetch = full_prefetch(resources, patient)
    prefetch["conditions"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible", prefetch=prefetch))
    assert r.status_code == 412 and "conditions" in r.json()["detail"]


def test_a_prefetched_patient_with_another_id_is_refused(client, settings):
    patient, resources = demo_record("demo-eligible", settings.today())
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("someone-else", prefetch=full_prefetch(resources, patient)))
    assert r.status_code == 400 and "not the context's Patient/someone-else" in r.json()["detail"]


def test_no_hcc_diagnosis_gives_an_empty_card_list(client, settings):
    patient, resources = demo_record("demo-eligible", settings.today())
    resources = [r for r in resources if r["resourceType"] != "Condition"]
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible", prefetch=full_prefetch(resources, patient)))
    assert r.status_code == 200 and r.json() == {"cards": []}


def test_unknown_service_id_is_404_with_a_message(client):
    r = client.post("/cds-services/nope", json=patient_view("demo-eligible"))
    assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_wrong_hook_is_400_with_a_message(client):
    body = patient_view("demo-eligible")
    body["hook"] = "order-sign"
    r = client.post(f"/cds-services/{SERVICE_ID}", json=body)
    assert r.status_code == 400 and "patient-view" in r.json()["detail"]


def test_malformed_json_is_422_with_a_message(client):
    r = client.post(f"/cds-services/{SERVICE_ID}", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "Invalid request" in r.json()["detail"]


@pytest.mark.parametrize("missing", ["hook", "hookInstance", "context"])
def test_a_request_missing_a_required_field_is_422_naming_it(client, missing):
    body = patient_view("demo-eligible")
    del body[missing]
    r = client.post(f"/cds-services/{SERVICE_ID}", json=body)
    assert r.status_code == 422 and missing in r.json()["detail"]


def test_a_context_without_patient_id_is_422(client):
    body = patient_view("demo-eligible")
    del body["context"]["patientId"]
    r = client.post(f"/cds-services/{SERVICE_ID}", json=body)
    assert r.status_code == 422 and "patientId" in r.json()["detail"]


def test_fhir_authorization_without_fhir_server_is_422(client):
    body = patient_view("demo-eligible", token="t")
    r = client.post(f"/cds-services/{SERVICE_ID}", json=body)
    assert r.status_code == 422 and "fhirServer" in r.json()["detail"]


def test_a_fhir_server_outside_the_allowlist_is_refused_before_any_connection(client):
    body = patient_view("demo-eligible", fhir_server="https://ehr.example.org/fhir", token="t")
    r = client.post(f"/cds-services/{SERVICE_ID}", json=body)
    assert r.status_code == 400 and "allowlist" in r.json()["detail"]


def test_the_spec_examples_without_patient_id_or_with_old_fields_are_refused(client):
    for name in ("cds-hooks-examples-00-request.json", "HL7-index-28-request.json", "cds-hooks-current-22-request.json"):
        body = json.loads((EXAMPLES / name).read_text())
        r = client.post(f"/cds-services/{SERVICE_ID}", json=body)
        assert 400 <= r.status_code < 500, name


def test_the_spec_patient_view_example_passes_validation_and_is_refused_for_its_fhir_server(client):
    body = json.loads((EXAMPLES / "HL7-index-01-request.json").read_text())
    r = client.post(f"/cds-services/{SERVICE_ID}", json=body)
    assert r.status_code == 400 and "allowlist" in r.json()["detail"]
