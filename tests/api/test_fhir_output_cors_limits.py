"""FHIR outputs for application/fhir+json, CORS for browser CDS clients, and the body-size limit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle

from service.main import create_app
from service.settings import Settings
from tests import fhir_factories as f
from tests.api.test_recommendations import scenario

FHIR = "application/fhir+json"


@pytest.mark.parametrize("name", ["sorafenib-plus-tace", "insufficient-data", "not-applicable:no-tace"])
def test_fhir_output_is_a_valid_r4_bundle(client, settings, name):
    today = settings.today()
    r = client.post(f"/api/v1/assessments?as_of={today}", json=f.bundle(*scenario(name, today)), headers={"Accept": FHIR})
    assert r.status_code == 200 and r.headers["content-type"].startswith(FHIR)
    bundle = Bundle.model_validate(r.json())
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds[0] == "GuidanceResponse" and "Observation" in kinds
    guidance = r.json()["entry"][0]["resource"]
    assert guidance["reasonCode"][0]["coding"][0]["code"] == name.split(":")[0]
    assert guidance["status"] == ("data-required" if name == "insufficient-data" else "success")
    assert ("RiskAssessment" in kinds) is (name == "sorafenib-plus-tace")


def test_risk_assessment_is_one_minus_survival_and_says_it_is_a_benchmark(client, settings):
    today = settings.today()
    body = client.post("/api/v1/assessments", json=f.bundle(*scenario("sorafenib-plus-tace", today)), headers={"Accept": FHIR}).json()
    risk = next(e["resource"] for e in body["entry"] if e["resource"]["resourceType"] == "RiskAssessment")
    plain = client.post("/api/v1/assessments", json=f.bundle(*scenario("sorafenib-plus-tace", today))).json()
    s12 = next(p["estimate"] for p in plain["benchmark"]["survival"] if p["month"] == 12)
    p12 = next(p for p in risk["prediction"] if p["whenRange"]["high"]["value"] == 12)
    assert p12["probabilityDecimal"] == pytest.approx(1 - s12)
    assert "not an individual prediction" in risk["code"]["text"]


def test_the_configured_source_route_also_answers_in_fhir(client):
    r = client.get("/api/v1/patients/demo-eligible/assessment", headers={"Accept": FHIR})
    assert Bundle.model_validate(r.json()).type == "collection"


def test_findings_cite_their_evidence(client):
    body = client.get("/api/v1/patients/demo-eligible/assessment", headers={"Accept": FHIR}).json()
    tr = next(e["resource"] for e in body["entry"] if e["resource"].get("code", {}).get("coding", [{}])[0].get("code") == "tace-resistance-jsh-2010")
    assert tr["valueCodeableConcept"]["text"] == "met" and tr["derivedFrom"]


@pytest.fixture()
def app_with(monkeypatch):
    def make(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return TestClient(create_app(Settings()))
    return make


def test_cors_preflight_allows_authorization_from_a_configured_origin(app_with):
    with app_with(HCC_CORS_ORIGINS="https://sandbox.cds-hooks.org") as c:
        r = c.options("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "authorization,content-type"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        other = c.options("/cds-services", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers


def test_without_cors_origins_no_cors_headers_are_sent(client):
    r = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert "access-control-allow-origin" not in r.headers


def test_a_body_over_the_limit_is_413_with_a_message(app_with):
    with app_with(HCC_MAX_BODY_BYTES="2000") as c:
        big = f.bundle(f.patient("p1"), *[f.lab("1975-2", 1.0, "mg/dL", "2026-11-01") for _ in range(40)])
        r = c.post("/api/v1/assessments", json=big)
        assert r.status_code == 413 and "HCC_MAX_BODY_BYTES" in r.json()["detail"]
        ok = c.post("/api/v1/assessments", json=f.bundle(f.patient("p1")))
        assert ok.status_code == 200


def test_a_chunked_body_over_the_limit_is_413(app_with):
    with app_with(HCC_MAX_BODY_BYTES="1000") as c:
        def chunks():
            for _ in range(20):
                yield b" " * 100
        r = c.post("/api/v1/assessments", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
