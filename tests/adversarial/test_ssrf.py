"""SSRF: a hook's ``fhirServer`` (and the links in a prefetch) must never make the service call an address the
allowlist does not name; credentials go only where they belong.

Production mode allows exactly the allowlist (loopback only when listed); demo mode allows loopback
hosts and nothing else. Every refused URL is a 400 with a message and no connection at all (the
app's HTTP client is watched; a host off the loopback interface is stopped before any DNS lookup).
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.adversarial.conftest import demo_settings, guard_network, register_secret
from tests.adversarial.fault_proxy import Listener
from tests.adversarial.jwt_tools import claims_for, client_token, trusted_clients_file
from tests.api.hook_requests import SERVICE_ID, patient_view

PUBLIC = "https://cds.example.org"
ISS = "https://ehr.example.org"
HOOK = f"/cds-services/{SERVICE_ID}"
PATIENT = "p-ssrf"


@pytest.fixture(scope="module")
def allowed():
    """The one loopback FHIR server production lists (answers every GET with an empty searchset)."""
    with Listener() as listener:
        yield listener


@pytest.fixture(scope="module")
def other():
    """Another loopback server, not listed: must never be called in production."""
    with Listener() as listener:
        yield listener


@pytest.fixture(scope="module")
def production(tmp_path_factory, allowed):
    settings = demo_settings(
        mode="production",
        trusted_clients=trusted_clients_file(tmp_path_factory.mktemp("prod-ssrf"), ISS),
        fhir_allowlist=f"https://ehr.example.org/fhir,{allowed.origin}/fhir",
        fhir_base_url=f"{allowed.origin}/fhir",
        fhir_token=register_secret("adv-configured-fhir-token-" + uuid.uuid4().hex),
        public_base_url=PUBLIC,
        fhir_timeout_seconds=2.0,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        client.guard = guard_network(app)
        yield client
        assert not client.guard.refused, f"the app tried to reach {client.guard.refused}"


@pytest.fixture(scope="module")
def demo():
    app = create_app(demo_settings(fhir_timeout_seconds=2.0))
    with TestClient(app) as client:
        client.guard = guard_network(app)
        yield client
        assert not client.guard.refused, f"the app tried to reach {client.guard.refused}"


def hook(client: TestClient, fhir_server: str, *, production: bool, token: str | None = None, prefetch=None,
         patient: str = PATIENT):
    headers = {}
    if production:
        headers["Authorization"] = "Bearer " + client_token(claims_for(ISS, PUBLIC + HOOK))
    body = patient_view(patient, fhir_server=fhir_server, token=token, prefetch=prefetch)
    return client.post(HOOK, json=body, headers=headers)


def refused_without_a_connection(client: TestClient, url: str, *, production: bool, listeners=()) -> None:
    sent = len(client.guard.requests)
    patient = "p-ssrf-" + uuid.uuid4().hex[:8]
    response = hook(client, url, production=production, token=register_secret("adv-ssrf-token-" + uuid.uuid4().hex),
                    patient=patient)
    # 400 names the fhirServer problem; an empty fhirServer is a malformed request (422)
    assert response.status_code == (422 if url == "" else 400), f"{url!r}: {response.status_code} {response.text[:200]}"
    assert "fhirServer" in response.json()["detail"], response.text
    assert len(client.guard.requests) == sent, f"{url!r}: a request was sent"
    assert not any(_requests_for(listener, patient) for listener in listeners), f"{url!r} reached a server"


def production_refusals(allowed_origin: str, port: int, other_port: int) -> list[str]:
    return [
        # path tricks on the listed loopback entry
        f"{allowed_origin}/fhirx", f"{allowed_origin}", f"{allowed_origin}/", f"{allowed_origin}/fhir/../admin",
        f"{allowed_origin}/fhir/%2e%2e/admin", f"{allowed_origin}/fhir/./x", f"{allowed_origin}/FHIR",
        # the same machine by other names and forms: loopback is not allowed unless listed exactly
        f"http://127.0.0.1:{other_port}/fhir", f"http://localhost:{port}/fhir", f"http://localhost.:{port}/fhir",
        f"http://LOCALHOST:{port}/fhir", f"http://[::1]:{port}/fhir", f"http://[::ffff:127.0.0.1]:{port}/fhir",
        f"http://[::ffff:7f00:1]:{port}/fhir", f"http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/fhir",
        f"http://2130706433:{port}/fhir", f"http://0x7f000001:{port}/fhir", f"http://0177.0.0.1:{port}/fhir",
        f"http://0x7f.0.0.1:{port}/fhir", f"http://127.1:{port}/fhir", f"http://127.0.0.2:{port}/fhir",
        f"http://0.0.0.0:{port}/fhir", f"http://0:{port}/fhir", f"http://127.0.0.1.nip.io:{port}/fhir",
        f"http://localtest.me:{port}/fhir", f"https://127.0.0.1:{port}/fhir",
        # user information, look-alike hosts and ports
        f"https://ehr.example.org@127.0.0.1:{port}/fhir", f"http://127.0.0.1:{port}@ehr.example.org/fhir",
        "https://ehr.example.org:443@evil.example/fhir", "https://user:pass@ehr.example.org/fhir",
        "https://ehr.example.org.evil.example/fhir", "https://evil.example/ehr.example.org/fhir",
        "https://ehr.example.org:8443/fhir", "http://ehr.example.org/fhir", "https://ehr.example.org./fhir",
        "https://xn--ehr-example-org.evil.example/fhir", "https://%65hr.example.org/fhir",
        # unicode dots and other non-ASCII look-alikes
        "https://ehr\u3002example\u3002org/fhir", "https://ehr\uff0eexample\uff0eorg/fhir",
        "https://ehr\uff61example\uff61org/fhir", "https://ehr.example.org\u2024/fhir", "https://\u0435hr.example.org/fhir",
        # parser confusion: backslashes, whitespace, control characters, query, fragment, other schemes
        "https://ehr.example.org\\@evil.example/fhir", "https://evil.example\\.ehr.example.org/fhir",
        " https://ehr.example.org/fhir", "https://ehr.example.org/fhir\t", "https://ehr.example.org/fhir\r\nHost: evil",
        "https://ehr.example.org/fhir?next=http://evil.example", "https://ehr.example.org/fhir#@evil.example",
        "file:///etc/passwd", "gopher://127.0.0.1:70/_", "ftp://ehr.example.org/fhir", "//ehr.example.org/fhir",
        "ehr.example.org/fhir", "", "http://", "https://[::1", "http://[fe80::1%25lo]:80/fhir",
    ]


def test_production_refuses_everything_off_the_allowlist_without_connecting(production, allowed, other):
    port = int(allowed.origin.rsplit(":", 1)[1])
    other_port = int(other.origin.rsplit(":", 1)[1])
    for url in production_refusals(allowed.origin, port, other_port):
        refused_without_a_connection(production, url, production=True, listeners=(allowed, other))


@pytest.mark.parametrize("suffix", ["/fhir", "/fhir/", "/fhir/tenant-a"])
def test_production_connects_to_a_listed_server_and_its_sub_paths(production, allowed, suffix):
    before = len(allowed.requests)
    response = hook(production, allowed.origin + suffix, production=True, token=register_secret("adv-" + uuid.uuid4().hex))
    assert response.status_code != 400, response.text
    assert len(allowed.requests) > before, "the listed server was not called"


def _requests_for(listener: Listener, patient: str) -> list[tuple[str, dict]]:
    """The listener's requests for one patient (calls of earlier tests may still be arriving)."""
    return [(path, headers) for path, headers in list(listener.requests) if patient in path]


def test_the_configured_fhir_token_never_goes_to_a_hooks_server(production, allowed):
    """HCC_FHIR_TOKEN is for HCC_FHIR_BASE_URL: a hook naming that same server without fhirAuthorization sends none."""
    patient = "p-ssrf-" + uuid.uuid4().hex[:8]
    response = hook(production, allowed.origin + "/fhir", production=True, token=None, patient=patient)
    assert response.status_code != 400, response.text
    sent = _requests_for(allowed, patient)
    assert sent and all("Authorization" not in headers for _, headers in sent), "a hook's call carried a token"


def test_the_configured_fhir_token_goes_to_the_configured_server(production, allowed):
    patient = "p-ssrf-" + uuid.uuid4().hex[:8]
    path = f"/api/v1/patients/{patient}/assessment"
    production.get(path, headers={"Authorization": "Bearer " + client_token(claims_for(ISS, PUBLIC + path))})
    sent = _requests_for(allowed, patient)
    assert sent and all(h.get("Authorization", "").startswith("Bearer adv-configured-fhir-token-") for _, h in sent)


def demo_refusals(port: int) -> list[str]:
    return [
        f"http://localhost.:{port}/fhir", f"http://127.0.0.1.nip.io:{port}/fhir", f"http://localtest.me:{port}/fhir",
        f"http://2130706433:{port}/fhir", f"http://0x7f000001:{port}/fhir", f"http://0177.0.0.1:{port}/fhir",
        f"http://0.0.0.0:{port}/fhir", f"http://0:{port}/fhir", f"http://[::ffff:127.0.0.1]:{port}/fhir",
        f"http://ehr.example.org@127.0.0.1:{port}/fhir", f"http://127.0.0.1:{port}@ehr.example.org/fhir",
        "https://ehr.example.org/fhir", "http://10.0.0.1/fhir", "http://169.254.169.254/latest/meta-data",
        "http://192.168.0.1/fhir", "http://[fd00::1]/fhir", "http://metadata.google.internal/computeMetadata/v1",
        f"http://127\u30020\u30020\u30021:{port}/fhir", f"http://127.0.0.1:{port}/fhir/../../admin",
    ]


def test_demo_mode_allows_loopback_only_and_no_dns_tricks(demo, allowed):
    port = int(allowed.origin.rsplit(":", 1)[1])
    for url in demo_refusals(port):
        refused_without_a_connection(demo, url, production=False, listeners=(allowed,))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_demo_mode_connects_to_loopback(demo, allowed, host):
    port = int(allowed.origin.rsplit(":", 1)[1])
    before = len(allowed.requests)
    response = hook(demo, f"http://{host}:{port}/fhir", production=False)
    assert response.status_code != 400, response.text
    assert len(allowed.requests) > before


def _prefetch_with_next(next_url: str) -> dict:
    patient = {"resourceType": "Patient", "id": PATIENT, "birthDate": "1950-01-01", "gender": "male"}
    page = {"resourceType": "Bundle", "type": "searchset", "entry": [],
            "link": [{"relation": "next", "url": next_url}]}
    return {"patient": patient, "observations": page}


def test_a_prefetch_next_link_to_another_origin_is_never_followed(production, allowed, other):
    """The whole search is fetched again from the hook's own (listed) server instead."""
    before_other, before_allowed = len(other.requests), len(allowed.requests)
    prefetch = _prefetch_with_next(f"{other.origin}/fhir/Observation?patient={PATIENT}&page=2")
    response = hook(production, allowed.origin + "/fhir", production=True, prefetch=prefetch,
                    token=register_secret("adv-" + uuid.uuid4().hex))
    assert response.status_code != 400, response.text
    assert len(other.requests) == before_other, "the foreign next link was followed"
    assert len(allowed.requests) > before_allowed


def test_a_prefetch_next_link_without_a_fhir_server_is_412_and_not_followed(production, other):
    before = len(other.requests)
    body = patient_view(PATIENT, prefetch=_prefetch_with_next(f"{other.origin}/fhir/Observation?page=2"))
    headers = {"Authorization": "Bearer " + client_token(claims_for(ISS, PUBLIC + HOOK))}
    response = production.post(HOOK, json=body, headers=headers)
    assert response.status_code == 412, response.text
    assert len(other.requests) == before
