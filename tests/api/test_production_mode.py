"""Production mode on the real app: nothing is served to an untrusted caller; probes stay open."""

from __future__ import annotations

import time
import uuid

import pytest
import yaml
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.unit.service.test_jwt_auth import keys, make_token, public_jwk

PUBLIC = "https://cds.example.org"
ISS = "https://ehr.example.org"


@pytest.fixture()
def production(monkeypatch, tmp_path):
    path = tmp_path / "trusted.yaml"
    path.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "role": "operator", "jwks": {"keys": [public_jwk(keys().ec384, "ec-1", alg="ES384")]}}]}))
    for name, value in {
        "HCC_MODE": "production",
        "HCC_TRUSTED_CLIENTS": str(path),
        "HCC_FHIR_ALLOWLIST": "https://ehr.example.org/fhir",
        "HCC_PUBLIC_BASE_URL": PUBLIC,
    }.items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app(Settings())) as client:
        yield client


def token(path: str) -> str:
    now = int(time.time())
    payload = {"iss": ISS, "sub": "ehr", "aud": f"{PUBLIC}{path}", "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    return make_token(payload=payload)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/cds-services"),
        ("POST", "/cds-services/hcc-tace-resistance"),
        ("GET", "/api/v1/patients/p1/assessment"),
        ("POST", "/api/v1/assessments"),
        ("GET", "/api/v1/benchmarks"),
    ],
)
def test_every_cds_and_rest_route_needs_a_trusted_jwt(production, method, path):
    r = production.request(method, path, json={"resourceType": "Bundle"} if method == "POST" else None)
    assert r.status_code == 401 and r.json() == {"detail": "Unauthorized"}


def test_a_trusted_jwt_for_this_endpoint_is_served(production):
    r = production.get("/cds-services", headers={"Authorization": f"Bearer {token('/cds-services')}"})
    assert r.status_code == 200 and r.json()["services"]


def test_a_token_for_another_endpoint_is_refused(production):
    r = production.get("/api/v1/benchmarks", headers={"Authorization": f"Bearer {token('/cds-services')}"})
    assert r.status_code == 401


def test_a_replayed_token_is_refused(production):
    t = token("/cds-services")
    assert production.get("/cds-services", headers={"Authorization": f"Bearer {t}"}).status_code == 200
    assert production.get("/cds-services", headers={"Authorization": f"Bearer {t}"}).status_code == 401


def test_health_needs_no_token_and_says_production(production):
    assert production.get("/healthz").json()["mode"] == "production"


def test_production_serves_no_embedded_demo_data(production):
    r = production.get("/demo-fhir/Patient/demo-eligible")
    assert r.status_code == 404


def test_rest_without_a_configured_fhir_server_says_so(production):
    path = "/api/v1/patients/p1/assessment"
    r = production.get(path, headers={"Authorization": f"Bearer {token(path)}"})
    assert r.status_code == 502 and "HCC_FHIR_BASE_URL" in r.json()["detail"]


def test_a_token_replayed_to_another_replica_on_the_same_database_is_refused(production):
    # `production` is one replica; a second app on the same HCC_DATABASE_URL is another
    t = token("/cds-services")
    assert production.get("/cds-services", headers={"Authorization": f"Bearer {t}"}).status_code == 200
    with TestClient(create_app(Settings())) as replica:
        assert replica.get("/cds-services", headers={"Authorization": f"Bearer {t}"}).status_code == 401
        fresh = token("/cds-services")
        assert replica.get("/cds-services", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
