"""The SMART EHR launch, with ``httpx.MockTransport`` playing the EHR's authorization server (a real RSA
key signs the id_token; its JWKS is served): the authorize redirect (PKCE S256, aud, launch, state, nonce),
the callback (session, cookie, 303), and every refusal (state unknown or replayed, the EHR declining, no
patient, a bad id_token, iss outside the allowlist) as a page without a session or a cookie. No response,
header or log line carries the access token."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from service.api.smart_launch import set_session_cookie, smart_page_headers
from service.main import create_app
from service.settings import Settings
from service.smart.session import COOKIE_NAME, SmartSessionDep

ROOT = "http://127.0.0.1:19399"
EHR = f"{ROOT}/v/r4/fhir"
PUBLIC = "http://testserver"
CLIENT_ID = "hcc-cds"
TOKEN = "eyJ.ACCESS-TOKEN." + "q" * 40
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
GRANTED = ("launch openid fhirUser patient/*.read patient/Observation.write patient/BodyStructure.write "
           "patient/Condition.write patient/Procedure.write patient/Provenance.write")
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks() -> dict:
    jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
    return {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}


@dataclass
class FakeEhr:
    """The EHR's SMART configuration, JWKS and token endpoint. ``token_overrides``/``claims_overrides``
    change the next token response; ``pending`` maps an issued code to the PKCE challenge and nonce."""

    config: dict = field(default_factory=lambda: {
        "issuer": EHR,
        "jwks_uri": f"{ROOT}/keys",
        "authorization_endpoint": f"{EHR}/auth/authorize",
        "token_endpoint": f"{EHR}/auth/token",
        "code_challenge_methods_supported": ["S256"],
        "capabilities": ["launch-ehr", "client-public", "permission-v1"],
    })
    token_overrides: dict = field(default_factory=dict)
    claims_overrides: dict = field(default_factory=dict)
    signing_key: Any = KEY
    token_status: int = 200
    pending: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)

    def authorize(self, location: str, code: str = "the-code") -> dict[str, str]:
        """What the authorization server does with the browser: remember the challenge, answer a code."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        self.pending[code] = (query["code_challenge"], query["nonce"])
        return {"code": code, "state": query["state"]}

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url)
        if url == f"{EHR}/.well-known/smart-configuration":
            return httpx.Response(200, json=self.config)
        if url == f"{ROOT}/keys":
            return httpx.Response(200, json=jwks())
        if url == f"{EHR}/auth/token" and request.method == "POST":
            return self._token(request)
        return httpx.Response(404)

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        challenge, nonce = self.pending.get(form.get("code"), (None, None))
        verifier = form.get("code_verifier", "")
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if (challenge is None or computed != challenge or form.get("client_id") != CLIENT_ID
                or form.get("grant_type") != "authorization_code" or form.get("redirect_uri") != f"{PUBLIC}/smart/callback"
                or "authorization" in request.headers):
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "bad code or verifier"})
        if self.token_status != 200:
            return httpx.Response(self.token_status, text="gateway says no")
        claims = {"fhirUser": "Practitioner/example", "aud": CLIENT_ID, "iss": EHR, "sub": "u1", "nonce": nonce,
                  "exp": int(time.time()) + 300, **self.claims_overrides}
        id_token = jwt.encode({k: v for k, v in claims.items() if v is not None}, self.signing_key, algorithm="RS256",
                              headers={"kid": "k1"})
        body = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600, "scope": GRANTED, "id_token": id_token, "patient": "demo-missing-data",
                "need_patient_banner": True, **self.token_overrides}
        return httpx.Response(200, json={k: v for k, v in body.items() if v is not None},
                              headers={"Cache-Control": "no-store"})


def smart_settings(**overrides) -> Settings:
    values: dict[str, Any] = dict(mode="demo", fhir_base_url=None, fhir_allowlist="", trusted_clients=None,
                                  clinical_overrides=None, cors_origins="", smart_client_id=CLIENT_ID,
                                  public_base_url=PUBLIC)
    values.update(overrides)
    return Settings(**values)


SESSION_VIEW = "/smart/app/{window}/test-session"  # audited as the app's pages are (smart-view)
SOME_WINDOW = "/smart/app/no-such-window"


def build(settings: Settings, ehr: FakeEhr):
    app = create_app(settings)

    @app.get(SESSION_VIEW)  # what the session dependency gives the app's pages (under the cookie's window path)
    async def app_page(session: SmartSessionDep) -> dict:
        return {"patient": session.patient_id, "fhir_user": session.fhir_user, "scope": session.scope,
                "hint": session.assessment_hint, "can_write": session.can_write, "iss": session.iss,
                "token_ok": session.access_token.get_secret_value() == TOKEN}

    return app


@pytest.fixture()
def ehr() -> FakeEhr:
    return FakeEhr()


@pytest.fixture()
def seen() -> list[httpx.Response]:
    return []


def _open(app, ehr: FakeEhr, seen: list):
    client = TestClient(app, base_url=PUBLIC, follow_redirects=False)
    def keep(response: httpx.Response) -> None:
        response.read()
        seen.append(response)

    client.event_hooks["response"].append(keep)
    client.__enter__()
    app.state.hcc.fhir.client = httpx.AsyncClient(transport=httpx.MockTransport(ehr.handler))
    return client


@pytest.fixture()
def client(ehr, seen):
    app = build(smart_settings(), ehr)
    test_client = _open(app, ehr, seen)
    yield test_client
    test_client.__exit__(None, None, None)


def session_view(client) -> str:
    """The test route under the window the callback opened (the path of its session cookie)."""
    paths = [c.path for c in client.cookies.jar if c.name == COOKIE_NAME]
    assert len(paths) == 1, paths
    return f"{paths[0]}/test-session"


def launch(client, **params) -> httpx.Response:
    return client.get("/smart/launch", params={"iss": EHR, "launch": "WzAsImRlbW8iXQ", **params})


def launch_and_authorize(client, ehr: FakeEhr, **params) -> dict[str, str]:
    started = launch(client, **params)
    assert started.status_code == 302, started.text
    return ehr.authorize(started.headers["location"])


def assert_no_session(response: httpx.Response) -> None:
    cookies = response.headers.get_list("set-cookie")
    assert not [c for c in cookies if c.startswith(f"{COOKIE_NAME}=")]  # no session
    assert all(c.startswith("hcc_smart_launch=;") or 'hcc_smart_launch="";' in c for c in cookies)  # only its binding, deleted
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'self'" in response.headers["content-security-policy"]


def test_launch_redirects_to_authorize_with_pkce_s256(client, ehr):
    started = launch(client, assessment="hint-from-url")
    assert started.status_code == 302
    location = urlsplit(started.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{EHR}/auth/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{PUBLIC}/smart/callback"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["aud"] == EHR and query["launch"] == "WzAsImRlbW8iXQ"
    assert len(query["state"]) >= 40 and len(query["nonce"]) >= 40 and query["state"] != query["nonce"]
    scopes = query["scope"].split()
    assert {"launch", "openid", "fhirUser", "patient/Patient.read", "patient/Observation.write",
            "patient/Provenance.write"} <= set(scopes)
    assert "code_verifier" not in started.headers["location"] and started.headers["cache-control"] == "no-store"
    assert [str(r.url) for r in ehr.requests] == [f"{EHR}/.well-known/smart-configuration"]


def test_callback_stores_the_session_and_sets_the_cookie(client, ehr, seen, caplog):
    caplog.set_level(logging.DEBUG)
    ehr.token_overrides["appContext"] = json.dumps({"assessment": "hint-from-app-context"})
    answer = client.get("/smart/callback", params=launch_and_authorize(client, ehr, assessment="hint-from-url"))
    assert answer.status_code == 303 and answer.headers["location"].startswith("/smart/app/")
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=") and "HttpOnly" in cookie and f"Path={answer.headers['location']};" in cookie
    assert "SameSite=lax" in cookie and "Secure" not in cookie  # http: the test stack
    shown = client.get(session_view(client))
    assert shown.status_code == 200
    assert shown.json() == {
        "patient": "demo-missing-data", "fhir_user": "Practitioner/example", "iss": EHR, "token_ok": True,
        "scope": GRANTED, "hint": "hint-from-app-context", "can_write": True,
    }
    events = client.portal.call(lambda: client.app.state.hcc.db.audit.list_events(newest_first=True, limit=20))
    smart = [e for e in events if e.kind.startswith("smart-")]
    callback = next(e for e in smart if e.route == "/smart/callback")
    assert (callback.actor, callback.issuer, callback.patient_ref, callback.outcome) == (
        "Practitioner/example", EHR, "Patient/demo-missing-data", 303)
    assert any(e.route == "/smart/launch" and e.kind == "smart-launch" and e.issuer == EHR for e in smart)
    view = next(e for e in smart if e.route == SESSION_VIEW)
    assert (view.kind, view.actor, view.issuer, view.patient_ref) == (
        "smart-view", "Practitioner/example", EHR, "Patient/demo-missing-data")
    # the token never leaves the server: no body, header or URL the browser saw, no log line
    for response in seen:
        assert TOKEN not in response.text and TOKEN not in str(response.headers) and TOKEN not in str(response.url)
        assert "demo-missing-data" not in response.headers.get("location", "")
    assert TOKEN not in caplog.text and "the-code" not in caplog.text
    assert all(TOKEN not in str(e) for e in events)


def test_url_hint_when_no_app_context(client, ehr):
    answer = client.get("/smart/callback", params=launch_and_authorize(client, ehr, assessment="hint-from-url"))
    assert answer.status_code == 303
    assert client.get(session_view(client)).json()["hint"] == "hint-from-url"


def test_state_is_single_use_and_must_be_known(client, ehr):
    params = launch_and_authorize(client, ehr)
    assert client.get("/smart/callback", params=params).status_code == 303
    client.cookies.clear()
    replay = client.get("/smart/callback", params=params)
    assert replay.status_code == 400 and "already used" in replay.text
    assert_no_session(replay)
    for bad in ({"code": "the-code", "state": "forged-state"}, {"code": "the-code"}, {},
                {"code": "the-code", "state": "s" * 10_000}):
        refused = client.get("/smart/callback", params=bad)
        assert refused.status_code == 400
        assert_no_session(refused)
    assert client.get(SOME_WINDOW).status_code == 401


def test_the_ehr_declining_is_a_clear_page(client, ehr):
    params = launch_and_authorize(client, ehr)
    declined = client.get("/smart/callback", params={
        "error": "invalid_scope", "error_description": "<script>alert(1)</script> scope not allowed",
        "state": params["state"]})
    assert declined.status_code == 403
    assert "The EHR did not authorise the app" in declined.text and "invalid_scope" in declined.text
    assert "<script>alert(1)" not in declined.text and "&lt;script&gt;" in declined.text
    assert_no_session(declined)
    later = client.get("/smart/callback", params=params)  # the launch was used up by the error
    assert later.status_code == 400
    assert not any(r.url.path.endswith("/auth/token") for r in ehr.requests)


def test_a_callback_from_another_browser_is_refused(client, ehr):
    """Login CSRF: an attacker starts a launch, stops at the callback URL and has a victim open it; the victim's
    browser lacks the launch's binding cookie, so no session is made (the victim would sign the attacker's work)."""
    params = launch_and_authorize(client, ehr)
    started_cookie = client.cookies.get("hcc_smart_launch")
    assert started_cookie
    client.cookies.delete("hcc_smart_launch")
    refused = client.get("/smart/callback", params=params)
    assert refused.status_code == 400 and "started elsewhere" in refused.text
    assert_no_session(refused)
    assert not any(r.url.path.endswith("/auth/token") for r in ehr.requests)  # the code is never exchanged


def test_an_error_without_a_launch_shows_no_text_of_the_caller(client):
    page = client.get("/smart/callback", params={"error": "access_denied",
                                                 "error_description": "Call the helpdesk on +1 555 0100"})
    assert page.status_code == 403 and "helpdesk" not in page.text and "access_denied" in page.text


@pytest.mark.parametrize(
    "overrides, status, words",
    [
        ({"patient": None}, 403, "names no patient"),
        ({"patient": "../Patient/x"}, 403, "names no patient"),
        ({"access_token": None}, 403, "no access token"),
        ({"token_type": "mac"}, 403, "not a bearer token"),
        ({"id_token": "not.a.jwt"}, 403, "could not be verified"),
    ],
)
def test_unusable_token_response_is_refused(client, ehr, overrides, status, words):
    ehr.token_overrides.update(overrides)
    refused = client.get("/smart/callback", params=launch_and_authorize(client, ehr))
    assert refused.status_code == status and words in refused.text
    assert_no_session(refused)
    assert client.get(SOME_WINDOW).status_code == 401


@pytest.mark.parametrize(
    "claims, key",
    [
        ({"nonce": "another-nonce"}, KEY),
        ({"nonce": None}, KEY),
        ({"aud": "another-client"}, KEY),
        ({"iss": "http://127.0.0.1:19399/v/r4/other"}, KEY),
        ({"exp": int(time.time()) - 3600}, KEY),
        ({}, OTHER_KEY),
    ],
)
def test_bad_id_token_is_refused(client, ehr, claims, key):
    ehr.claims_overrides.update(claims)
    ehr.signing_key = key
    refused = client.get("/smart/callback", params=launch_and_authorize(client, ehr))
    assert refused.status_code == 403 and "identity token could not be verified" in refused.text
    assert_no_session(refused)


def test_granted_scope_without_writes_is_read_only(client, ehr):
    ehr.token_overrides["scope"] = "launch openid fhirUser patient/*.read"
    assert client.get("/smart/callback", params=launch_and_authorize(client, ehr)).status_code == 303
    shown = client.get(session_view(client)).json()
    assert shown["fhir_user"] == "Practitioner/example" and shown["can_write"] is False


def test_no_jwks_uri_means_an_unknown_user_and_no_writes(client, ehr):
    del ehr.config["jwks_uri"]
    assert client.get("/smart/callback", params=launch_and_authorize(client, ehr)).status_code == 303
    shown = client.get(session_view(client)).json()
    assert shown["fhir_user"] is None and shown["can_write"] is False and shown["patient"] == "demo-missing-data"


@pytest.mark.parametrize("status, page_status", [(400, 403), (500, 502), (503, 502)])
def test_token_endpoint_failures(client, ehr, status, page_status):
    params = launch_and_authorize(client, ehr)
    if status == 400:
        ehr.pending.clear()  # the code is unknown to the EHR: invalid_grant
    else:
        ehr.token_status = status
    refused = client.get("/smart/callback", params=params)
    assert refused.status_code == page_status
    assert_no_session(refused)


def test_iss_outside_the_allowlist_makes_no_request(client, ehr):
    for iss in ("https://evil.example.com/fhir", "http://10.0.0.1/fhir", "http://127.0.0.1@evil.com/fhir"):
        refused = launch(client, iss=iss)
        assert refused.status_code == 403 and "does not accept" in refused.text
        assert_no_session(refused)
    assert ehr.requests == []
    for params in ({"iss": EHR}, {"iss": EHR, "launch": "x" * 8001}, {"iss": EHR + "/" + "a" * 1000, "launch": "x"}):
        refused = client.get("/smart/launch", params=params)
        assert refused.status_code == 400 and ehr.requests == []
        assert_no_session(refused)


def test_configuration_without_s256_is_refused(client, ehr):
    ehr.config["code_challenge_methods_supported"] = ["plain"]
    refused = launch(client)
    assert refused.status_code == 502 and "S256" in refused.text


def test_no_session_is_a_401_page(client):
    ended = client.get(SOME_WINDOW)
    assert ended.status_code == 401 and "open it again from the patient" in ended.text
    client.cookies.set(COOKIE_NAME, "made-up", domain="testserver", path=SOME_WINDOW)
    assert client.get(SOME_WINDOW).status_code == 401


def test_not_configured_is_a_404_page(ehr, seen):
    app = build(smart_settings(smart_client_id=None), ehr)
    client = _open(app, ehr, seen)
    try:
        for path in ("/smart/launch", "/smart/callback", SOME_WINDOW):
            answer = client.get(path, params={"iss": EHR, "launch": "x"})
            assert answer.status_code == 404 and "not configured" in answer.text
        assert ehr.requests == []
    finally:
        client.__exit__(None, None, None)


def test_https_cookie_is_cross_site_and_partitioned():
    from fastapi.responses import Response

    response = Response()
    set_session_cookie(response, smart_settings(public_base_url="https://cds.example.org"), "v", 60, "/smart/app/w1")
    cookie = response.headers["set-cookie"]
    assert "SameSite=none" in cookie and "Secure" in cookie and "Partitioned" in cookie and "HttpOnly" in cookie
    assert "Path=/smart/app/w1" in cookie
    headers = smart_page_headers(smart_settings(smart_frame_ancestors="https://ehr.example.org"))
    assert headers["Content-Security-Policy"].endswith("frame-ancestors https://ehr.example.org; form-action 'self'")
    assert headers["Cache-Control"] == "no-store"
