"""The SMART test stack itself, driven with httpx only (no browser, no hcc-cds): an EHR launch as the app will do it.

Marker ``smart`` (part of ``make test``; ``make test-smart`` alone). It proves what the browser tests build on: the
launch the fixture encodes is accepted (authorize answers with a code, no screens), the token carries the launched
patient and an id_token naming the practitioner, FHIR reads go through the launcher to sekmet, simulated denials
come back to the redirect URI, launcher B's tokens expire, and the ``transaction`` fault refuses a write without
anything reaching sekmet.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from tests.fhir_factories import patient
from tests.integration.fault_proxy import FaultProxy
from tests.integration.fhir_server import transaction_of
from tests.smart.conftest import SmartStack
from tests.smart.launcher import decode_launch, encode_launch, launch_url

pytestmark = pytest.mark.smart

APP_LAUNCH = "http://127.0.0.1:9/smart/launch"  # never called: the test plays the app
REDIRECT_URI = "http://127.0.0.1:9/smart/callback"
CLIENT_ID = "hcc-cds"
SCOPE = "launch openid fhirUser patient/*.read"
PID = "smart-smoke"
OTHER_PID = "smart-smoke-unwritten"

try:
    from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - Authlib is a dependency from issue 23 on
    def create_s256_code_challenge(code_verifier: str) -> str:
        digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@pytest.fixture(scope="module")
def stack(smart_stack: SmartStack) -> SmartStack:
    smart_stack.load(transaction_of([patient(PID)]))
    return smart_stack


def opened(url: str) -> tuple[str, str]:
    """(iss, launch) from the URL the EHR opens, as the app reads them."""
    query = parse_qs(urlsplit(url).query)
    return query["iss"][0], query["launch"][0]


def authorize(client: httpx.Client, url: str, *, state: str = "the-state") -> tuple[httpx.Response, str, str]:
    """Discovery + the authorize request the app sends; (the launcher's answer, iss, code_verifier)."""
    iss, launch = opened(url)
    config = client.get(f"{iss}/.well-known/smart-configuration").raise_for_status().json()
    assert "S256" in config["code_challenge_methods_supported"]
    verifier = secrets.token_urlsafe(48)
    answer = client.get(config["authorization_endpoint"], params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "launch": launch,
        "scope": SCOPE, "state": state, "aud": iss, "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    })
    return answer, iss, verifier


def redirected(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(f"{REDIRECT_URI}?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def tokens(client: httpx.Client, url: str) -> tuple[dict, str]:
    """The whole code flow: (the token response, iss)."""
    answer, iss, verifier = authorize(client, url)
    code = redirected(answer)["code"]
    config = client.get(f"{iss}/.well-known/smart-configuration").json()
    token = client.post(config["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
        "client_id": CLIENT_ID,
    })
    assert token.status_code == 200, token.text
    return token.json(), iss


def test_launch_options_are_the_codec_array():
    launch = encode_launch(patient="demo-missing-data", auth_error="auth_invalid_scope")
    assert decode_launch(launch) == [0, "demo-missing-data", "example", "NONE", 1, 1, 0, "", "", "", "",
                                     "auth_invalid_scope", "", "", 0, 2, ""]
    assert "=" not in launch and "+" not in launch and "/" not in launch  # base64url without padding
    deep = launch_url("https://app.test/smart/launch?assessment=a1", "http://127.0.0.1:1", patient="p")
    iss, launch = opened(deep)
    assert parse_qs(urlsplit(deep).query)["assessment"] == ["a1"] and iss == "http://127.0.0.1:1/v/r4/fhir"


def test_ehr_launch_gives_patient_practitioner_and_fhir_access(stack: SmartStack):
    with httpx.Client(timeout=30) as client:
        answer, _, _ = authorize(client, stack.launch_url(APP_LAUNCH, patient=PID), state="s-1")
        assert redirected(answer)["state"] == "s-1"
        token, iss = tokens(client, stack.launch_url(APP_LAUNCH, patient=PID))
        assert token["patient"] == PID and token["token_type"] == "Bearer" and token["scope"] == SCOPE
        config = client.get(f"{iss}/.well-known/smart-configuration").json()
        # the launcher's id_token header has no kid, and its JWKS holds one key
        assert "kid" not in jwt.get_unverified_header(token["id_token"])
        (signing_key,) = jwt.PyJWKClient(config["jwks_uri"]).get_signing_keys()
        claims = jwt.decode(token["id_token"], signing_key.key, algorithms=["RS256"], audience=CLIENT_ID, issuer=iss)
        assert claims["fhirUser"] == "Practitioner/example"
        read = client.get(f"{iss}/Patient/{PID}", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert read.status_code == 200 and read.json()["id"] == PID
        bad = client.get(f"{iss}/Patient/{PID}", headers={"Authorization": "Bearer not-a-launcher-token"})
        assert bad.status_code == 401


def test_simulated_denial_redirects_with_the_error(stack: SmartStack):
    with httpx.Client(timeout=30) as client:
        answer, _, _ = authorize(client, stack.launch_url(APP_LAUNCH, patient=PID, auth_error="auth_invalid_scope"))
    query = redirected(answer)
    assert query["error"] == "invalid_scope" and query["state"] == "the-state" and "code" not in query


def test_per_launch_upstream_bypasses_the_process_upstream(stack: SmartStack, smart_proxy: FaultProxy):
    url = stack.launch_url(APP_LAUNCH, patient=PID, fhir_server=stack.sekmet.direct_url)
    assert "/v/r4/sim/" in opened(url)[0]
    with httpx.Client(timeout=30) as client:
        token, iss = tokens(client, url)
        read = client.get(f"{iss}/Patient/{PID}", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert read.status_code == 200 and read.json()["id"] == PID
    assert smart_proxy.log == []  # straight to sekmet, not through the process's FHIR_SERVER_R4 (the proxy)


def test_short_lived_token_is_refused_once_expired(stack: SmartStack):
    with httpx.Client(timeout=30) as client:
        token, iss = tokens(client, stack.launch_url(APP_LAUNCH, patient=PID, short=True))
        assert token["expires_in"] <= 3
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert client.get(f"{iss}/Patient/{PID}", headers=headers).status_code == 200
        time.sleep(4)
        expired = client.get(f"{iss}/Patient/{PID}", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.text


@pytest.mark.parametrize("status", ["403", "422"])
def test_transaction_fault_refuses_the_write_and_forwards_nothing(
    stack: SmartStack, smart_proxy: FaultProxy, status: str,
):
    other = f"{OTHER_PID}-{status}"
    write = transaction_of([patient(other)])
    smart_proxy.faults["transaction"] = [status]
    with httpx.Client(timeout=30) as client:
        token, iss = tokens(client, stack.launch_url(APP_LAUNCH, patient=PID))
        headers = {"Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/fhir+json"}
        refused = client.post(iss, json=write, headers=headers)
        assert refused.status_code == int(status)
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert "Injected fault" in refused.json()["issue"][0]["diagnostics"]
        assert [entry[2] for entry in smart_proxy.requests("POST", "/fhir")] == [int(status)]
        assert client.get(f"{stack.sekmet.direct_url}/Patient/{other}").status_code == 404
        # the fault is used up: the same write now reaches sekmet (so the refusal was the fault's doing)
        accepted = client.post(iss, json=write, headers=headers)
        assert accepted.status_code == 200, accepted.text
        assert client.get(f"{stack.sekmet.direct_url}/Patient/{other}").status_code == 200
