"""Tenants and roles: a CDS client reads only its own issuer's and tenant's records, and never uses the
service's own FHIR credentials.

Issue 18 item 8: a client of tenant A read the whole audit trail, every tenant's feedback, and any
patient's assessment fetched from HCC_FHIR_BASE_URL with the service's HCC_FHIR_TOKEN. Now every trusted
client has a role (``cds-client`` by default, or ``operator``); audit events, issued cards and feedback
carry the caller's issuer and tenant; a CDS client's reads are filtered to its own; only an operator may
call ``GET /api/v1/patients/{id}/assessment``.
"""

from __future__ import annotations

import uuid

import pytest
import yaml
from fastapi.testclient import TestClient

from service.main import create_app
from tests.adversarial.conftest import demo_settings, register_secret
from tests.adversarial.fault_proxy import Listener
from tests.adversarial.jwt_tools import ALG, KID, claims_for, client_token
from tests.unit.service.test_jwt_auth import keys, public_jwk

PUBLIC = "https://cds.example.org"
EHR_A = "https://ehr-a.example.org"  # a CDS client with two tenants
EHR_B = "https://ehr-b.example.org"  # another CDS client, no tenants
OPS = "https://ops.example.org"  # the hospital's operator
FEEDBACK = "/cds-services/hcc-tace-resistance/feedback"


@pytest.fixture(scope="module")
def fhir_listener():
    with Listener() as listener:
        yield listener


@pytest.fixture(scope="module")
def service(tmp_path_factory, fhir_listener):
    jwks = {"keys": [public_jwk(keys().ec384, KID, alg=ALG)]}
    path = tmp_path_factory.mktemp("tenants") / "trusted_clients.yaml"
    path.write_text(yaml.safe_dump({"clients": [
        {"iss": EHR_A, "jwks": jwks, "tenants": ["hospital-a1", "hospital-a2"]},  # role: cds-client (the default)
        {"iss": EHR_B, "jwks": jwks, "role": "cds-client"},
        {"iss": OPS, "jwks": jwks, "role": "operator"},
    ]}))
    settings = demo_settings(
        mode="production", trusted_clients=path, public_base_url=PUBLIC,
        fhir_allowlist=f"{fhir_listener.origin}/fhir", fhir_base_url=f"{fhir_listener.origin}/fhir",
        fhir_token=register_secret("adv-service-fhir-token-" + uuid.uuid4().hex),
    )
    with TestClient(create_app(settings)) as client:
        yield client


def call(client, method, path, iss, tenant=None, **kwargs):
    claims = claims_for(iss, PUBLIC + path, **({"tenant": tenant} if tenant else {}))
    headers = {"Authorization": f"Bearer {client_token(claims)}", **kwargs.pop("headers", {})}
    return client.request(method, path, headers=headers, **kwargs)


def _feedback() -> dict:
    return {"feedback": [{"card": str(uuid.uuid4()), "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}


def _audit(client, iss, tenant=None) -> set[str]:
    events = call(client, "GET", "/api/v1/audit", iss, tenant, params={"limit": 1000}).json()["events"]
    return {e["request_id"] for e in events}


def _overridden(client, iss, tenant=None) -> int:
    topics = call(client, "GET", "/api/v1/feedback", iss, tenant).json()["topics"]
    return sum(t["overridden"] for t in topics)


def test_a_cds_client_reads_only_its_own_tenants_audit_trail_and_feedback(service):
    marks = {who: f"adv-tenant-{who}-{uuid.uuid4().hex[:8]}" for who in ("a1", "a2", "b", "ops")}
    callers = {"a1": (EHR_A, "hospital-a1"), "a2": (EHR_A, "hospital-a2"), "b": (EHR_B, None), "ops": (OPS, None)}
    before = {who: _overridden(service, *callers[who]) for who in callers}
    for who, (iss, tenant) in callers.items():
        r = call(service, "POST", FEEDBACK, iss, tenant, json=_feedback(), headers={"X-Request-ID": marks[who]})
        assert r.status_code == 200, r.text
    seen = {who: _audit(service, *callers[who]) & set(marks.values()) for who in callers}
    assert seen["a1"] == {marks["a1"]}, "tenant a1 read another tenant's or client's audit events"
    assert seen["a2"] == {marks["a2"]}
    assert seen["b"] == {marks["b"]}
    assert seen["ops"] == set(marks.values()), "the operator sees every tenant's events"
    after = {who: _overridden(service, *callers[who]) for who in callers}
    for who in ("a1", "a2", "b"):
        assert after[who] - before[who] == 1, f"{who} counted another tenant's feedback"
    assert after["ops"] - before["ops"] == 4


def test_a_cds_client_cannot_use_the_services_own_fhir_server(service, fhir_listener):
    sent = len(fhir_listener.requests)
    for iss, tenant in ((EHR_A, "hospital-a1"), (EHR_B, None)):
        r = call(service, "GET", "/api/v1/patients/demo-eligible/assessment", iss, tenant)
        assert r.status_code == 403, r.text
        assert "operator" in r.json()["detail"]
    assert len(fhir_listener.requests) == sent, "a CDS client's call reached the configured FHIR server"
    r = call(service, "GET", "/api/v1/patients/demo-eligible/assessment", OPS)
    assert r.status_code != 403, r.text
    assert len(fhir_listener.requests) > sent, "the operator's call did not reach the configured FHIR server"


def test_a_role_other_than_cds_client_or_operator_stops_start_up(tmp_path):
    from service.auth.trusted_clients import load_trusted_clients
    from service.settings import SettingsError

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump([{"iss": EHR_A, "jwks": {"keys": [public_jwk(keys().ec384, KID, alg=ALG)]},
                                     "role": "admin"}]))
    with pytest.raises(SettingsError, match="role"):
        load_trusted_clients(path)


def test_only_an_operator_may_start_or_read_a_screening(service):
    body = {"source": "nowhere"}
    for iss, tenant in ((EHR_A, "hospital-a1"), (EHR_B, None)):
        assert call(service, "POST", "/api/v1/screenings", iss, tenant, json=body).status_code == 403
        assert call(service, "GET", "/api/v1/screenings/" + "0" * 32, iss, tenant).status_code == 403
    refused = call(service, "POST", "/api/v1/screenings", OPS, json=body)
    assert refused.status_code == 400 and "unknown screening source 'nowhere'" in refused.json()["detail"]
    assert call(service, "GET", "/api/v1/screenings/" + "0" * 32, OPS).status_code == 404
    assert service.post("/api/v1/screenings", json=body).status_code == 401  # no JWT at all
