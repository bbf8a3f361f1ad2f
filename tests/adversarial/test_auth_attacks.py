"""The JWT attack matrix against every protected route of the real app in production mode.

Every route that carries the client-JWT dependency is found from the app itself (a new route is in
the matrix the day it is added, or this test fails until it gets a sample request). Each attack
must get the same bare ``401 {"detail": "Unauthorized"}`` with ``WWW-Authenticate: Bearer``, and
change nothing: no FHIR request, no key fetch from a URL the token names, no feedback stored; the
refusal is audited as ``unauthenticated``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from service.auth import require_cds_client
from service.main import create_app
from tests.adversarial.conftest import demo_settings, guard_network, register_secret
from tests.adversarial.fault_proxy import Listener
from tests.adversarial.jwt_tools import (
    attacker_token,
    claims_for,
    client_token,
    embedded_jwk_token,
    hs256_with_public_key,
    trusted_clients_file,
    unsigned_token,
)
from tests.api.hook_requests import patient_view

PUBLIC = "https://cds.example.org"
ISS = "https://ehr.example.org"
UNAUTHORIZED = {"detail": "Unauthorized"}
PATIENT = "demo-eligible"  # a demo patient's id: the log scan would catch it in a refusal's log line

FEEDBACK = {"feedback": [{"card": str(uuid.uuid4()), "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}
BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", "id": PATIENT}}]}

# a sample request for every protected route template: (method, path, json body)
SAMPLES: dict[str, tuple[str, str, dict | None]] = {
    "/cds-services": ("GET", "/cds-services", None),
    "/cds-services/{service_id}": ("POST", "/cds-services/hcc-tace-resistance", None),  # body: see _body
    "/cds-services/{service_id}/feedback": ("POST", "/cds-services/hcc-tace-resistance/feedback", FEEDBACK),
    "/api/v1/feedback": ("GET", "/api/v1/feedback", None),
    "/api/v1/audit": ("GET", "/api/v1/audit", None),
    "/api/v1/patients/{patient_id}/assessment": ("GET", f"/api/v1/patients/{PATIENT}/assessment", None),
    "/api/v1/assessments": ("POST", "/api/v1/assessments", BUNDLE),
    "/api/v1/benchmarks": ("GET", "/api/v1/benchmarks", None),
    "/api/v1/benchmarks/{cohort}/{arm}": ("GET", "/api/v1/benchmarks/tace-resistant-hcc/overall", None),
    "/api/v1/benchmarks/{cohort}/{arm}/plot.{fmt}": ("GET", "/api/v1/benchmarks/tace-resistant-hcc/overall/plot.svg", None),
    "/api/v1/screenings": ("POST", "/api/v1/screenings", {"source": "hospital"}),
    "/api/v1/screenings/{run_id}": ("GET", "/api/v1/screenings/" + "0" * 32, None),
    "/api/v1/screenings/{run_id}/results": ("GET", "/api/v1/screenings/" + "0" * 32 + "/results", None),
}
# probes, the page behind a card's link and a screening's worklist pages (their unguessable ids are their
# authorisation), the public "about" and
# "references" pages (versions and citations only; cards link to them) and the API documents
UNPROTECTED = {"/healthz", "/readyz", "/metrics", "/assessments/{assessment_id}", "/about", "/references",
               "/worklists/{page_token}", "/worklists/{page_token}/worklist.csv",
               "/worklists/{page_token}/patients/{patient_id}",
               # the SMART app's EHR launch: a browser, authorised by the EHR's OAuth (state, PKCE, then its cookie)
               "/smart/launch", "/smart/callback",
               # the launched app's pages: the session cookie (tests/smart/test_smart_app_flows.py: none -> 401)
               "/smart/app/{window}", "/smart/app/{window}/measurements",
               "/references.json", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/docs/static"}


def _body(template: str, fhir_server: str) -> dict | None:
    if template == "/cds-services/{service_id}":
        return patient_view(PATIENT, fhir_server=fhir_server, token=register_secret("adv-hook-token-" + uuid.uuid4().hex))
    return SAMPLES[template][2]


@pytest.fixture(scope="module")
def key_listener():
    """Where an attacker's jku points: the service must never fetch it."""
    with Listener() as listener:
        yield listener


@pytest.fixture(scope="module")
def fhir_listener():
    """An allowlisted FHIR server (loopback): a refused caller must cause no request to it."""
    with Listener() as listener:
        yield listener


@pytest.fixture(scope="module")
def production(tmp_path_factory, fhir_listener):
    path = trusted_clients_file(tmp_path_factory.mktemp("prod-auth"), ISS, jku=["https://ehr.example.org/keys/next.json"])
    settings = demo_settings(
        mode="production",
        trusted_clients=path,
        fhir_allowlist=f"{fhir_listener.origin}/fhir",
        fhir_base_url=f"{fhir_listener.origin}/fhir",
        public_base_url=PUBLIC,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        client.guard = guard_network(app)
        yield client
        assert not client.guard.refused


def route_templates(routes, prefix: str = "", inherited: tuple = ()) -> dict[str, bool]:
    """Every route's full template -> whether it carries the client-JWT dependency (walks included routers)."""
    found: dict[str, bool] = {}
    for route in routes:
        context = getattr(route, "include_context", None)
        if context is not None:  # FastAPI >= 0.16x keeps included routers as branches
            found.update(
                route_templates(route.original_router.routes, prefix + context.prefix, inherited + tuple(context.dependencies))
            )
            continue
        path = getattr(route, "path", None)
        if path is None:
            continue
        depends = inherited + tuple(getattr(route, "dependencies", ()) or ())
        found[prefix + path] = any(getattr(d, "dependency", None) is require_cds_client for d in depends)
    return found


def protected_templates(app) -> set[str]:
    return {template for template, protected in route_templates(app.routes).items() if protected}


def test_the_matrix_covers_every_protected_route_and_only_probes_are_open(production):
    protected = protected_templates(production.app)
    assert protected == set(SAMPLES), f"new or removed protected routes: give each a sample request: {protected ^ set(SAMPLES)}"
    templates = set(route_templates(production.app.routes))
    assert templates - protected <= UNPROTECTED, f"routes open without a JWT: {templates - protected - UNPROTECTED}"


def good(template: str, **overrides) -> dict:
    """Valid claims for the template's sample request; ``name=value`` overrides, ``name=None`` removes."""
    claims = claims_for(ISS, PUBLIC + SAMPLES[template][1])
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


now = lambda: int(time.time())  # noqa: E731

# attack name -> (template -> Authorization header values); each builds a fresh token per route
ATTACKS: dict[str, Callable[[str], list[str]]] = {
    "no-authorization": lambda t: [],
    "basic-scheme": lambda t: [f"Basic {client_token(good(t))}"],
    "token-without-scheme": lambda t: [client_token(good(t))],
    "two-authorization-headers": lambda t: [f"Bearer {client_token(good(t))}", f"Bearer {client_token(good(t))}"],
    "alg-none": lambda t: [f"Bearer {unsigned_token(good(t))}"],
    "hs256-keyed-with-the-public-key": lambda t: [f"Bearer {hs256_with_public_key(good(t))}"],
    "signed-by-an-untrusted-key": lambda t: [f"Bearer {attacker_token(good(t))}"],
    "attacker-key-embedded-as-jwk": lambda t: [f"Bearer {embedded_jwk_token(good(t))}"],
    "tampered-payload": lambda t: [f"Bearer {_swap_payload(client_token(good(t)), good(t, sub='admin'))}"],
    "wrong-aud-another-endpoint": lambda t: [f"Bearer {client_token(good(t, aud=PUBLIC + '/api/v1/benchmarks-x'))}"],
    "aud-from-the-host-header": lambda t: [f"Bearer {client_token(good(t, aud='http://testserver' + SAMPLES[t][1]))}"],
    "aud-with-a-query-string": lambda t: [f"Bearer {client_token(good(t, aud=PUBLIC + SAMPLES[t][1] + '?x=1'))}"],
    "aud-of-another-deployment": lambda t: [f"Bearer {client_token(good(t, aud='https://cds.evil.example' + SAMPLES[t][1]))}"],
    "aud-not-a-string": lambda t: [f"Bearer {client_token(good(t, aud=[PUBLIC + SAMPLES[t][1], 7]))}"],
    "expired": lambda t: [f"Bearer {client_token(good(t, iat=now() - 600, exp=now() - 120))}"],
    "issued-in-the-future": lambda t: [f"Bearer {client_token(good(t, iat=now() + 3600, exp=now() + 3900))}"],
    "not-yet-valid-nbf": lambda t: [f"Bearer {client_token(good(t, nbf=now() + 3600))}"],
    "lifetime-too-long": lambda t: [f"Bearer {client_token(good(t, exp=now() + 7200))}"],
    "exp-as-a-string": lambda t: [f"Bearer {client_token(good(t, exp=str(now() + 300)))}"],
    "unknown-kid": lambda t: [f"Bearer {client_token(good(t), kid='no-such-key')}"],
    "kid-path-traversal": lambda t: [f"Bearer {client_token(good(t), kid='../../../../etc/passwd')}"],
    "unknown-iss": lambda t: [f"Bearer {client_token(good(t, iss='https://evil.example'))}"],
    "jku-not-allowed": lambda t: [f"Bearer {client_token(good(t), jku=KEY_URL[0])}"],
    "alg-of-another-curve": lambda t: [f"Bearer {_es256_header(good(t))}"],
    "typ-missing": lambda t: [f"Bearer {client_token(good(t), typ=None)}"],
    "crit-header": lambda t: [f"Bearer {client_token(good(t), crit=['exp'])}"],
    "missing-exp": lambda t: [f"Bearer {client_token(good(t, exp=None))}"],
    "missing-iat": lambda t: [f"Bearer {client_token(good(t, iat=None))}"],
    "missing-jti": lambda t: [f"Bearer {client_token(good(t, jti=None))}"],
    "missing-iss": lambda t: [f"Bearer {client_token(good(t, iss=None))}"],
    "missing-aud": lambda t: [f"Bearer {client_token(good(t, aud=None))}"],
    "jti-too-long": lambda t: [f"Bearer {client_token(good(t, jti='j' * 300))}"],
    "sub-not-a-string": lambda t: [f"Bearer {client_token(good(t, sub={'role': 'admin'}))}"],
    "token-too-long": lambda t: [f"Bearer {client_token(good(t, pad='x' * 17000))}"],
    "garbage": lambda t: ["Bearer eyJhbGciOi.not.a-token"],
}
KEY_URL: list[str] = []  # filled with the key listener's URL by the matrix test


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _swap_payload(token: str, claims: dict) -> str:
    import json

    header, _, signature = token.split(".")
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _es256_header(claims: dict) -> str:
    """A P-256 signature under kid ec-1, whose key is P-384 (ES384): the algorithm does not fit the key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.unit.service.test_jwt_auth import make_token

    return make_token(ec.generate_private_key(ec.SECP256R1()), alg="ES256", payload=claims)


def feedback_count(client: TestClient) -> int:
    path = "/api/v1/feedback"
    token = client_token(claims_for(ISS, PUBLIC + path))
    topics = client.get(path, headers={"Authorization": f"Bearer {token}"}).json()["topics"]
    return sum(t["accepted"] + t["overridden"] for t in topics)


def assert_bare_401(response: httpx.Response, what: str) -> None:
    assert response.status_code == 401, f"{what}: {response.status_code} {response.text[:200]}"
    assert response.json() == UNAUTHORIZED, what
    assert response.headers.get("www-authenticate") == "Bearer", what


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_every_attack_on_every_protected_route_is_a_bare_401_with_no_effect(
    production, attack, key_listener, fhir_listener
):
    KEY_URL[:] = [f"{key_listener.origin}/attacker/jwks.json"]
    stored_before = feedback_count(production)
    sent_before = len(production.guard.requests)
    fhir_before, keys_before = len(fhir_listener.requests), len(key_listener.requests)
    for template, (method, path, _) in SAMPLES.items():
        values = ATTACKS[attack](template)
        for value in values:
            register_secret(value.split(" ", 1)[-1])
        headers = [("authorization", value) for value in values]
        response = production.request(method, path, json=_body(template, f"{fhir_listener.origin}/fhir"), headers=headers)
        assert_bare_401(response, f"{attack} on {method} {path}")
    assert len(production.guard.requests) == sent_before, "a refused call made the service send a request"
    assert len(fhir_listener.requests) == fhir_before, "a refused call reached the FHIR server"
    assert len(key_listener.requests) == keys_before == 0, "the service fetched keys from a URL the token named"
    assert feedback_count(production) == stored_before, "a refused call stored feedback"


def test_a_body_of_the_wrong_shape_without_a_token_is_401_not_422(production):
    """An unauthenticated caller learns nothing about the body the route expects."""
    for method, path, _ in SAMPLES.values():
        if method == "POST":
            assert_bare_401(production.post(path, json=["not", "an", "object"]), f"invalid body on {path}")


def test_a_body_that_is_not_json_without_a_token_is_401_not_422(production):
    for method, path, _ in SAMPLES.values():
        if method == "POST":
            response = production.post(path, content=b"{not json", headers={"content-type": "application/json"})
            assert_bare_401(response, f"malformed JSON on {path}")


UNDECODABLE = {  # bodies FastAPI cannot decode at all: it answers 400 before any dependency runs
    "invalid UTF-8": b'{"hook": "\xff\xfe"}',
    "UTF-16": "{}".encode("utf-16"),
    "gzip bytes": b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
    "nested 100 000 deep": b"[" * 100_000,
}


def test_an_undecodable_body_without_a_token_is_401_not_400(production):
    """Authentication first: a caller without a token learns nothing from the body's decoding either."""
    for method, path, _ in SAMPLES.values():
        if method == "POST":
            for name, body in UNDECODABLE.items():
                response = production.post(path, content=body, headers={"content-type": "application/json"})
                assert_bare_401(response, f"{name} body on {path}")


def test_an_undecodable_body_with_a_valid_token_is_still_a_4xx(production):
    for template, (method, path, _) in SAMPLES.items():
        if method == "POST":
            token = register_secret(client_token(good(template)))
            response = production.post(path, content=b"\xff\xfe", headers={"content-type": "application/json",
                                                                           "Authorization": f"Bearer {token}"})
            assert 400 <= response.status_code < 500 and response.status_code != 401, (path, response.text)


def test_a_replayed_token_is_refused_on_every_route(production):
    for template, (method, path, _) in SAMPLES.items():
        token = register_secret(client_token(good(template)))
        first = production.request(method, path, json=_body(template, "https://ehr.example.org/fhir"),
                                   headers={"Authorization": f"Bearer {token}"})
        assert first.status_code != 401, f"the valid token was refused on {path}: {first.text[:200]}"
        again = production.request(method, path, json=_body(template, "https://ehr.example.org/fhir"),
                                   headers={"Authorization": f"Bearer {token}"})
        assert_bare_401(again, f"replay on {path}")


def test_a_token_for_one_route_does_not_open_another(production):
    token = client_token(good("/api/v1/benchmarks"))
    response = production.get(SAMPLES["/api/v1/audit"][1], headers={"Authorization": f"Bearer {token}"})
    assert_bare_401(response, "a benchmarks token on the audit route")


def test_refusals_are_audited_as_unauthenticated(production):
    marker = "adv-audit-" + uuid.uuid4().hex[:12]
    assert_bare_401(production.get("/api/v1/benchmarks", headers={"X-Request-ID": marker}), "no token")
    path = "/api/v1/audit"
    token = client_token(claims_for(ISS, PUBLIC + path))
    events = production.get(path, params={"limit": 1000}, headers={"Authorization": f"Bearer {token}"}).json()["events"]
    mine = [e for e in events if e["request_id"] == marker]
    assert len(mine) == 1 and mine[0]["outcome"] == 401 and mine[0]["actor"] == "unauthenticated", mine


def test_the_401_is_documented_for_every_protected_route(production):
    from tests.adversarial.contract import assert_documented

    for template, (method, path, _) in SAMPLES.items():
        response = production.request(method, path, json=_body(template, "https://ehr.example.org/fhir"))
        assert response.status_code == 401
        assert_documented(response, method, template)
