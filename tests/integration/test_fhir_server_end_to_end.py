"""The service against a real FHIR server: hooks without prefetch, REST with a configured server."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.demo import DEMO_PATIENT_IDS
from service.main import create_app
from service.settings import Settings
from tests.api.hook_requests import SERVICE_ID, comparable_cards, full_prefetch, patient_view
from tests.api.test_hooks import demo_record

without_uuid = comparable_cards


@pytest.mark.parametrize("pid", DEMO_PATIENT_IDS)
def test_patient_view_via_fhir_server_gives_the_same_card_as_with_prefetch(client, settings, fhir_server, pid):
    patient, resources = demo_record(pid, settings.today())
    with_prefetch = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view(pid, prefetch=full_prefetch(resources, patient)))
    fetched = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view(pid, fhir_server=fhir_server.base_url, token="any"))
    assert with_prefetch.status_code == 200 and fetched.status_code == 200, fetched.text
    assert without_uuid(fetched.json()["cards"]) == without_uuid(with_prefetch.json()["cards"])
    assert fetched.json()["cards"], "each demo patient has HCC and gets a card"


def test_rest_with_a_configured_fhir_server_equals_the_embedded_demo(monkeypatch, client, fhir_server):
    monkeypatch.setenv("HCC_FHIR_BASE_URL", fhir_server.base_url)
    with TestClient(create_app(Settings())) as remote:
        for pid in DEMO_PATIENT_IDS:
            embedded = client.get(f"/api/v1/patients/{pid}/assessment").json()
            via_server = remote.get(f"/api/v1/patients/{pid}/assessment").json()
            assert via_server == embedded


def test_rest_unknown_patient_on_the_fhir_server_is_404(monkeypatch, fhir_server):
    monkeypatch.setenv("HCC_FHIR_BASE_URL", fhir_server.base_url)
    with TestClient(create_app(Settings())) as remote:
        r = remote.get("/api/v1/patients/no-such-patient/assessment")
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"


def test_hook_with_an_unreachable_fhir_server_is_503(client):
    body = patient_view("demo-eligible", fhir_server="http://127.0.0.1:9/fhir", token="t")
    r = client.post(f"/cds-services/{SERVICE_ID}", json=body)
    assert r.status_code == 503 and "unreachable" in r.json()["detail"]
