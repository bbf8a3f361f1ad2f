"""Client authentication end to end through HTTP, on a tiny app with one protected CDS Hooks route.

The ``aud`` a route expects is HCC_PUBLIC_BASE_URL + the route's path filled with its path
parameters: never derived from the Host header or the query string. Every refusal is the same
bare 401.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from service.auth import (
    CdsClientAuth,
    CdsClientDep,
    ClientIdentity,
    InMemoryJtiStore,
    JwksCache,
    JwtVerifier,
    TrustedClientKeys,
    parse_trusted_clients,
)
from tests.unit.service.test_jwt_auth import (
    ISS_EC,
    ISS_RSA,
    ISS_TENANT,
    JWKS_URL,
    FakeFetcher,
    hand_made_token,
    keys,
    make_token,
    public_jwk,
    public_pem,
    trusted_clients_document,
)

PUBLIC_BASE = "https://cds.example.org"
SERVICE = "hcc-tace-resistance"
ENDPOINT = f"{PUBLIC_BASE}/cds-services/{SERVICE}"
HOOK_BODY = {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": {}}
UNAUTHORIZED = {"detail": "Unauthorized"}


def now_claims(**overrides) -> dict:
    """Valid claims for the real clock (the app verifies against the current time)."""
    import uuid

    now = datetime.now(UTC)
    base = {
        "iss": ISS_EC,
        "sub": "ehr-client-1",
        "aud": ENDPOINT,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def build_app(auth: CdsClientAuth | None) -> FastAPI:
    app = FastAPI()
    if auth is not None:
        app.state.hcc = SimpleNamespace(client_auth=auth)  # stands in for AppState.client_auth

    @app.post("/cds-services/{service_id}")
    async def call_service(service_id: str, body: dict, client: CdsClientDep) -> dict:
        return {
            "service": service_id,
            "iss": client.iss,
            "sub": client.sub,
            "tenant": client.tenant,
            "jti": client.jti,
            "anonymous": client.is_anonymous,
        }

    @app.get("/healthz")
    async def healthz() -> dict:  # unprotected
        return {"status": "ok"}

    api = APIRouter(prefix="/api")

    @api.get("/patients/{patient_id}/assessment")
    async def assessment(patient_id: str, client: CdsClientDep) -> dict:
        return {"patient": patient_id, "iss": client.iss}

    app.include_router(api)
    return app


@pytest.fixture()
def fetcher() -> FakeFetcher:
    return FakeFetcher({JWKS_URL: {"keys": [public_jwk(keys().ec384, "ec-1")]}})


@pytest.fixture()
def auth(fetcher) -> CdsClientAuth:
    verifier = JwtVerifier(
        parse_trusted_clients(trusted_clients_document()),
        TrustedClientKeys(JwksCache(fetcher)),
        InMemoryJtiStore(),
    )
    return CdsClientAuth(verifier, PUBLIC_BASE + "/")


@pytest.fixture()
def client(auth) -> TestClient:
    with TestClient(build_app(auth)) as test_client:
        yield test_client


def call(client: TestClient, token: str | None, path: str = f"/cds-services/{SERVICE}", **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    headers.update(kwargs.pop("headers", {}))
    return client.post(path, json=kwargs.pop("json", HOOK_BODY), headers=headers, **kwargs)


def assert_bare_401(response) -> None:
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["www-authenticate"] == "Bearer"


def test_valid_token_is_accepted_and_the_route_gets_the_identity(client):
    payload = now_claims(tenant="hospital-x")
    response = call(client, make_token(payload=payload))
    assert response.status_code == 200
    assert response.json() == {
        "service": SERVICE,
        "iss": ISS_EC,
        "sub": "ehr-client-1",
        "tenant": "hospital-x",
        "jti": payload["jti"],
        "anonymous": False,
    }


def test_valid_rs384_token_is_accepted(client):
    token = make_token(keys().rsa, alg="RS384", kid="rsa-1", payload=now_claims(iss=ISS_RSA))
    assert call(client, token).status_code == 200


def test_no_or_malformed_authorization_is_a_bare_401(client):
    assert_bare_401(call(client, None))
    token = make_token(payload=now_claims())
    for header in (f"Basic {token}", "Bearer", "Bearer ", f"Bearer {token} extra", token):
        assert_bare_401(client.post(f"/cds-services/{SERVICE}", json=HOOK_BODY, headers={"Authorization": header}))


def test_lowercase_bearer_scheme_is_accepted(client):
    response = client.post(
        f"/cds-services/{SERVICE}",
        json=HOOK_BODY,
        headers={"Authorization": f"bearer {make_token(payload=now_claims())}"},
    )
    assert response.status_code == 200


def test_aud_is_public_base_url_plus_the_called_path(client):
    # a token for another service does not open this one
    other = make_token(payload=now_claims(aud=f"{PUBLIC_BASE}/cds-services/other"))
    assert_bare_401(call(client, other))
    assert call(client, other, path="/cds-services/other").status_code == 200
    # the query string is not part of aud
    assert call(client, make_token(payload=now_claims()), params={"x": "1"}).status_code == 200


def test_aud_is_never_taken_from_the_host_header(client):
    # TestClient's default Host is "testserver"
    assert_bare_401(call(client, make_token(payload=now_claims(aud=f"http://testserver/cds-services/{SERVICE}"))))
    spoofed = make_token(payload=now_claims(aud=f"https://attacker.example/cds-services/{SERVICE}"))
    assert_bare_401(call(client, spoofed, headers={"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"}))
    # a valid token still works whatever Host says
    valid = make_token(payload=now_claims())
    assert call(client, valid, headers={"Host": "attacker.example"}).status_code == 200


def test_aud_of_a_prefixed_route_with_path_parameters(client):
    aud = f"{PUBLIC_BASE}/api/patients/p-1/assessment"
    response = client.get(
        "/api/patients/p-1/assessment", headers={"Authorization": f"Bearer {make_token(payload=now_claims(aud=aud))}"}
    )
    assert response.status_code == 200 and response.json() == {"patient": "p-1", "iss": ISS_EC}
    wrong = make_token(payload=now_claims(aud=f"{PUBLIC_BASE}/api/patients/p-2/assessment"))
    assert_bare_401(client.get("/api/patients/p-1/assessment", headers={"Authorization": f"Bearer {wrong}"}))


def test_every_refusal_is_the_same_bare_401(client):
    now = int(datetime.now(UTC).timestamp())
    hs256 = hand_made_token(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
        now_claims(iss=ISS_RSA),
        lambda signing_input: hmac.new(public_pem(keys().rsa), signing_input, "sha256").digest(),
    )
    refused = {
        "expired": make_token(payload=now_claims(iat=now - 600, exp=now - 120)),
        "future iat": make_token(payload=now_claims(iat=now + 300, exp=now + 600)),
        "lifetime": make_token(payload=now_claims(iat=now, exp=now + 7200)),
        "unknown iss": make_token(payload=now_claims(iss="https://unknown.example.org")),
        "disallowed jku": make_token(payload=now_claims(), jku="https://attacker.example/jwks.json"),
        "unknown kid": make_token(keys().ec384_rotated, kid="rotated", payload=now_claims()),
        "no jti": make_token(payload=now_claims(jti=None)),
        "no kid": make_token(kid=None, payload=now_claims()),
        "no typ": make_token(typ=None, payload=now_claims()),
        "alg none": hand_made_token({"alg": "none", "typ": "JWT", "kid": "ec-1"}, now_claims(), lambda _: b""),
        "HS256 with the public key": hs256,
        "another key": make_token(keys().attacker, payload=now_claims()),
        "tenant": make_token(payload=now_claims(iss=ISS_TENANT, tenant="other")),
        "garbage": "not-a-jwt",
    }
    for reason, token in refused.items():
        response = call(client, token)
        assert response.status_code == 401, reason
        assert response.content == b'{"detail":"Unauthorized"}', reason
        assert response.headers["www-authenticate"] == "Bearer", reason


def test_replayed_token_is_refused(client):
    token = make_token(payload=now_claims())
    assert call(client, token).status_code == 200
    assert_bare_401(call(client, token))


def test_unauthenticated_request_with_an_invalid_body_is_still_401(client):
    response = client.post(f"/cds-services/{SERVICE}", json=["not", "an", "object"])
    assert_bare_401(response)


def test_refusals_are_logged_with_category_and_ids_never_the_token(client, caplog):
    payload = now_claims(aud="https://elsewhere.example/x")
    token = make_token(payload=payload)
    with caplog.at_level(logging.INFO, logger="hcc_cds.auth"):
        assert_bare_401(call(client, token))
    records = [r for r in caplog.records if r.name == "hcc_cds.auth"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    message = records[0].getMessage()
    assert "audience" in message and ISS_EC in message and "ec-1" in message and payload["jti"] in message
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text


def test_unprotected_routes_need_no_token(client):
    assert client.get("/healthz").status_code == 200


def test_demo_mode_lets_anyone_in_as_anonymous():
    with TestClient(build_app(CdsClientAuth.disabled())) as demo:
        response = call(demo, None)
    assert response.status_code == 200
    assert response.json()["anonymous"] is True and response.json()["iss"] is None
    assert ClientIdentity(iss=None).is_anonymous


def test_an_app_without_client_auth_fails_closed():
    with TestClient(build_app(None), raise_server_exceptions=False) as unwired:
        response = call(unwired, make_token(payload=now_claims()))
    assert response.status_code == 500
