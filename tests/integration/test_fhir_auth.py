"""A FHIR server that requires a bearer token: hooks (fhirAuthorization) and REST (HCC_FHIR_TOKEN)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from service.demo import as_transaction, demo_bundles
from service.main import create_app
from service.settings import Settings
from tests.api.hook_requests import SERVICE_ID, comparable_cards, full_prefetch, patient_view
from tests.api.test_hooks import demo_record
from tests.integration.fhir_server import start_fhir_server

RIGHT = "right-token"
WRONG = "wrong-token-5f2a9c"


@pytest.fixture(scope="module")
def secured_server(tmp_path_factory):
    server = start_fhir_server(tmp_path_factory.mktemp("fhir-bearer"), bearer_tokens=[RIGHT])
    server.load(as_transaction(demo_bundles(Settings().today())), token=RIGHT)
    yield server
    server.stop()


def hook(client, patient_id: str, server, token: str | None):
    return client.post(
        f"/cds-services/{SERVICE_ID}", json=patient_view(patient_id, fhir_server=server.base_url, token=token)
    )


def test_the_right_token_gives_the_same_card_as_full_prefetch(client, settings, secured_server):
    patient, resources = demo_record("demo-eligible", settings.today())
    fetched = hook(client, "demo-eligible", secured_server, RIGHT)
    prefetched = client.post(
        f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible", prefetch=full_prefetch(resources, patient))
    )
    assert fetched.status_code == 200, fetched.text
    strip = comparable_cards
    assert strip(fetched.json()["cards"]) == strip(prefetched.json()["cards"]) != []


def test_a_wrong_token_on_a_hook_is_412_and_the_token_is_never_echoed_or_logged(client, secured_server, caplog):
    caplog.set_level(logging.DEBUG)
    r = hook(client, "demo-eligible", secured_server, WRONG)
    assert r.status_code == 412 and "refused the access token (401)" in r.json()["detail"]
    assert WRONG not in r.text and WRONG not in caplog.text


def test_no_token_on_a_hook_is_412(client, secured_server):
    r = hook(client, "demo-eligible", secured_server, None)
    assert r.status_code == 412 and "refused the access token" in r.json()["detail"]


def test_a_token_that_cannot_be_sent_is_412_without_echoing_it(client, secured_server):
    body = patient_view("demo-eligible", fhir_server=secured_server.base_url, token=RIGHT)
    body["fhirAuthorization"]["access_token"] = "bad token\r\nX-Injected: 1"
    r = client.post(f"/cds-services/{SERVICE_ID}", json=body)
    assert r.status_code == 412 and "X-Injected" not in r.text


@pytest.fixture()
def rest_with_token(monkeypatch, settings, secured_server):
    """A REST app reading the secured server with HCC_FHIR_TOKEN (the token chosen by the test)."""

    def build(token: str) -> TestClient:
        monkeypatch.setenv("HCC_FHIR_BASE_URL", secured_server.base_url)
        monkeypatch.setenv("HCC_FHIR_TOKEN", token)
        return TestClient(create_app(Settings()))

    return build


def test_rest_with_the_right_configured_token_equals_the_embedded_demo(client, rest_with_token):
    with rest_with_token(RIGHT) as remote:
        via_server = remote.get("/api/v1/patients/demo-eligible/assessment")
    assert via_server.status_code == 200, via_server.text
    assert via_server.json() == client.get("/api/v1/patients/demo-eligible/assessment").json()


def test_rest_with_a_wrong_configured_token_is_502_without_the_token(rest_with_token, caplog):
    caplog.set_level(logging.DEBUG)
    with rest_with_token(WRONG) as remote:
        r = remote.get("/api/v1/patients/demo-eligible/assessment")
    assert r.status_code == 502 and "refused the access token" in r.json()["detail"]
    assert WRONG not in r.text and WRONG not in caplog.text


def test_rest_unknown_patient_with_the_right_token_is_404_operation_outcome(rest_with_token):
    with rest_with_token(RIGHT) as remote:
        r = remote.get("/api/v1/patients/no-such-patient/assessment")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome" and r.json()["issue"][0]["code"] == "not-found"
