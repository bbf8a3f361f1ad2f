"""SMART Backend Services auth (service.screening.backend_auth) against a scripted token endpoint."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from service.screening.backend_auth import BackendAuthError, SmartBackendAuth, backend_auth_from_settings
from service.settings import Settings

BASE = "https://fhir.example.org/r4"
TOKEN_URL = "https://auth.example.org/token"


def pem(key) -> SecretStr:
    return SecretStr(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    )


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP384R1())


class TokenServer:
    """smart-configuration, a token endpoint and a FHIR resource that accepts only current tokens."""

    def __init__(self, *, refuse_tokens: int = 0, config_at_root_only: bool = False, token_error: dict | None = None):
        self.assertions: list[str] = []
        self.forms: list[dict] = []
        self.issued: list[str] = []
        self.refuse_tokens = refuse_tokens  # how many issued tokens the FHIR server calls expired on first use
        self.config_at_root_only = config_at_root_only
        self.token_error = token_error
        self.seen_auth: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url.endswith("/.well-known/smart-configuration"):
            if self.config_at_root_only and url.startswith(BASE):
                return httpx.Response(404)
            return httpx.Response(200, json={"token_endpoint": TOKEN_URL})
        if url == TOKEN_URL:
            form = dict(urllib.parse.parse_qsl(request.content.decode()))
            self.forms.append(form)
            self.assertions.append(form["client_assertion"])
            if self.token_error:
                return httpx.Response(401, json=self.token_error)
            token = f"tok-{len(self.issued) + 1}-secretvalue"
            self.issued.append(token)
            return httpx.Response(200, json={"access_token": token, "token_type": "bearer", "expires_in": 300})
        self.seen_auth.append(request.headers.get("Authorization"))
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.issued:
            return httpx.Response(401 if request.url.host == "fhir.example.org" else 200)
        if self.issued.index(token) < self.refuse_tokens:
            return httpx.Response(
                401, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "expired"}]}
            )
        return httpx.Response(200, json={"resourceType": "Patient"})


def client_for(server: TokenServer) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(server))


def test_assertion_claims_and_header(rsa_key):
    server = TokenServer()
    auth = SmartBackendAuth(BASE, "hcc-screen", pem(rsa_key), key_id="k1", scope="system/*.rs")
    with client_for(server) as client:
        assert client.get(f"{BASE}/Patient/1", auth=auth).status_code == 200
    form = server.forms[0]
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["scope"] == "system/*.rs"
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header["alg"] == "RS384" and header["kid"] == "k1"
    claims = jwt.decode(form["client_assertion"], rsa_key.public_key(), algorithms=["RS384"], audience=TOKEN_URL)
    assert claims["iss"] == claims["sub"] == "hcc-screen"
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert len(claims["jti"]) >= 16


def test_es384_and_a_fresh_jti_each_time(ec_key):
    auth = SmartBackendAuth(BASE, "c", pem(ec_key), alg="ES384")
    first, second = auth.assertion(TOKEN_URL), auth.assertion(TOKEN_URL)
    assert jwt.get_unverified_header(first)["alg"] == "ES384" and "kid" not in jwt.get_unverified_header(first)
    a = jwt.decode(first, ec_key.public_key(), algorithms=["ES384"], audience=TOKEN_URL)
    b = jwt.decode(second, ec_key.public_key(), algorithms=["ES384"], audience=TOKEN_URL)
    assert a["jti"] != b["jti"]


def test_key_of_the_wrong_kind_is_refused_at_construction(rsa_key, ec_key):
    with pytest.raises(BackendAuthError, match="not an EC P-384 key"):
        SmartBackendAuth(BASE, "c", pem(rsa_key), alg="ES384")
    with pytest.raises(BackendAuthError, match="not an RSA key"):
        SmartBackendAuth(BASE, "c", pem(ec_key), alg="RS384")
    with pytest.raises(BackendAuthError, match="not an unencrypted PEM"):
        SmartBackendAuth(BASE, "c", SecretStr("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"))


def test_discovery_falls_back_to_the_server_root(rsa_key):
    server = TokenServer(config_at_root_only=True)
    with client_for(server) as client:
        assert client.get(f"{BASE}/Patient/1", auth=SmartBackendAuth(BASE, "c", pem(rsa_key))).status_code == 200
    assert len(server.issued) == 1


def test_token_is_cached_then_renewed_before_it_expires(rsa_key):
    now = [1_000_000.0]
    server = TokenServer()
    auth = SmartBackendAuth(BASE, "c", pem(rsa_key), clock=lambda: now[0])
    with client_for(server) as client:
        client.get(f"{BASE}/a", auth=auth)
        client.get(f"{BASE}/b", auth=auth)
        assert len(server.issued) == 1
        now[0] += 300 - 29  # expires_in 300: renewed 30 s before (a tenth of its life)
        client.get(f"{BASE}/c", auth=auth)
    assert len(server.issued) == 2 and server.seen_auth[-1] == f"Bearer {server.issued[1]}"


def test_a_401_fetches_one_new_token_and_repeats_the_request(rsa_key):
    server = TokenServer(refuse_tokens=1)
    auth = SmartBackendAuth(BASE, "c", pem(rsa_key))
    with client_for(server) as client:
        assert client.get(f"{BASE}/Patient/1", auth=auth).status_code == 200
    assert len(server.issued) == 2 and auth.tokens_fetched == 2


def test_only_one_refresh_per_request(rsa_key):
    server = TokenServer(refuse_tokens=99)
    with client_for(server) as client:
        assert client.get(f"{BASE}/Patient/1", auth=SmartBackendAuth(BASE, "c", pem(rsa_key))).status_code == 401
    assert len(server.issued) == 2


def test_no_token_to_another_origin(rsa_key):
    server = TokenServer()
    auth = SmartBackendAuth(BASE, "c", pem(rsa_key))
    with client_for(server) as client:
        client.get("https://bucket.example.net/file.ndjson", auth=auth)
        client.get("http://fhir.example.org/r4/Patient", auth=auth)  # same host, other scheme
    assert server.seen_auth == [None, None] and not server.issued


def test_token_endpoint_refusal_names_endpoint_and_reason_not_the_assertion(rsa_key):
    server = TokenServer(token_error={"error": "invalid_client", "error_description": "jti has already been used"})
    with client_for(server) as client, pytest.raises(BackendAuthError) as caught:
        client.get(f"{BASE}/Patient/1", auth=SmartBackendAuth(BASE, "c", pem(rsa_key)))
    message = str(caught.value)
    assert TOKEN_URL in message and "invalid_client" in message and "jti has already been used" in message
    assert server.assertions[0] not in message and "eyJ" not in message


def test_no_key_assertion_or_token_in_logs(rsa_key, caplog):
    key = pem(rsa_key)
    server = TokenServer(refuse_tokens=1)
    caplog.set_level(logging.DEBUG)
    auth = SmartBackendAuth(BASE, "c", key)
    with client_for(server) as client:
        client.get(f"{BASE}/Patient/1", auth=auth)
    logging.getLogger("test").info("auth is %r", auth)
    secrets = [*server.issued, *server.assertions, key.get_secret_value().splitlines()[1]]
    assert caplog.records and server.issued
    for record in caplog.records:
        assert not any(s in record.getMessage() for s in secrets)


def test_from_settings(tmp_path, ec_key):
    assert backend_auth_from_settings(Settings(), BASE) is None
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem(ec_key).get_secret_value())
    settings = Settings(bulk_client_id="hcc", bulk_private_key_file=key_file, bulk_alg="ES384", bulk_key_id="k")
    auth = backend_auth_from_settings(settings, BASE)
    assert auth is not None and (auth.client_id, auth.alg, auth.key_id, auth.scope) == ("hcc", "ES384", "k", "system/*.read")
    with pytest.raises(BackendAuthError, match="cannot be read"):
        backend_auth_from_settings(Settings(bulk_client_id="hcc", bulk_private_key_file=tmp_path / "none.pem"), BASE)


def test_a_download_through_the_auth_is_streamed_not_read_whole(rsa_key):
    server = TokenServer()
    produced = []

    async def body():
        for i in range(50):
            produced.append(i)
            yield b'{"resourceType":"Patient"}\n' * 100

    def handler(request: httpx.Request) -> httpx.Response:
        answer = server(request)
        if request.url.path.endswith("Patient.ndjson") and answer.status_code == 200:
            return httpx.Response(200, content=body())
        return answer

    async def main():
        auth = SmartBackendAuth(BASE, "c", pem(rsa_key))
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            async with client.stream("GET", f"{BASE}/Patient.ndjson", auth=auth) as response:
                async for _chunk in response.aiter_raw():
                    return len(produced)

    assert asyncio.run(main()) < 50 and server.issued
