"""The SMART configuration (iss allowlist before any request, S256 and both endpoints required, JSON only,
cached) and what a granted scope allows."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from service.settings import Settings
from service.smart.discovery import SmartDiscovery, SmartDiscoveryError, SmartIssNotAllowedError
from service.smart.launch import SCOPES, SCOPES_V2, app_context_assessment, normalise_fhir_user
from service.smart.session import SmartSession, scope_grants

pytestmark = pytest.mark.anyio
EHR = "https://ehr.example.org/fhir"
CONFIG = {
    "issuer": EHR,
    "jwks_uri": "https://ehr.example.org/keys",
    "authorization_endpoint": "https://ehr.example.org/auth/authorize",
    "token_endpoint": "https://ehr.example.org/auth/token",
    "code_challenge_methods_supported": ["S256"],
    "capabilities": ["launch-ehr", "client-public"],
}


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


def _client(answer) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


def _production(**overrides) -> Settings:
    return Settings(mode="production", fhir_allowlist=EHR, **overrides)


async def test_configuration_read_and_cached():
    client, seen = _client(lambda r: httpx.Response(200, json=CONFIG))
    discovery = SmartDiscovery()
    config = await discovery.configuration(client, EHR + "/", _production())
    assert str(seen[0].url) == EHR + "/.well-known/smart-configuration"
    assert (config.iss, config.issuer, config.token_endpoint) == (EHR, EHR, CONFIG["token_endpoint"])
    assert config.jwks_uri == CONFIG["jwks_uri"] and "launch-ehr" in config.capabilities
    await discovery.configuration(client, EHR, _production())
    assert len(seen) == 1  # cached


@pytest.mark.parametrize(
    "iss",
    [
        "https://evil.example.com/fhir",
        "https://ehr.example.org.evil.com/fhir",
        "https://ehr.example.org@evil.com/fhir",
        "https://ehr.example.org/fhirx",
        "http://127.0.0.1:8080/fhir",  # loopback: demo mode only
        "javascript:alert(1)",
        "",
    ],
)
async def test_iss_outside_the_allowlist_is_refused_before_any_request(iss):
    client, seen = _client(lambda r: httpx.Response(200, json=CONFIG))
    with pytest.raises(SmartIssNotAllowedError):
        await SmartDiscovery().configuration(client, iss, _production())
    assert seen == []


async def test_own_allowlist_and_demo_loopback():
    client, _ = _client(lambda r: httpx.Response(200, json={**CONFIG, "authorization_endpoint": "http://127.0.0.1:9/a",
                                                            "token_endpoint": "http://127.0.0.1:9/t"}))
    other = "https://other.example.org/r4"
    own = _production(smart_iss_allowlist=other)
    with pytest.raises(SmartIssNotAllowedError):  # the SMART list replaces the FHIR list
        await SmartDiscovery().configuration(client, EHR, own)
    demo = Settings(mode="demo")
    config = await SmartDiscovery().configuration(client, "http://127.0.0.1:19300/v/r4/fhir", demo)
    assert config.token_endpoint == "http://127.0.0.1:9/t"


@pytest.mark.parametrize(
    "answer, message",
    [
        (lambda r: httpx.Response(200, json={**CONFIG, "code_challenge_methods_supported": ["plain"]}), "S256"),
        (lambda r: httpx.Response(200, json={k: v for k, v in CONFIG.items() if k != "code_challenge_methods_supported"}),
         "S256"),
        (lambda r: httpx.Response(200, json={k: v for k, v in CONFIG.items() if k != "token_endpoint"}), "token_endpoint"),
        (lambda r: httpx.Response(200, json={**CONFIG, "authorization_endpoint": 7}), "authorization_endpoint"),
        (lambda r: httpx.Response(200, json={**CONFIG, "token_endpoint": "http://evil.example.com/t"}), "https"),
        (lambda r: httpx.Response(200, text="<html>sign in</html>"), "not JSON"),
        (lambda r: httpx.Response(200, json=["a"]), "not a JSON object"),
        (lambda r: httpx.Response(404, text="no"), "HTTP 404"),
    ],
)
async def test_unusable_configuration_is_refused(answer, message):
    client, _ = _client(answer)
    with pytest.raises(SmartDiscoveryError) as refused:
        await SmartDiscovery().configuration(client, EHR, _production())
    assert message in str(refused.value)


async def test_unreachable_configuration_is_refused():
    def down(request):
        raise httpx.ConnectError("refused", request=request)

    client, _ = _client(down)
    with pytest.raises(SmartDiscoveryError, match="ConnectError"):
        await SmartDiscovery().configuration(client, EHR, _production())


def _session(scope: str, fhir_user: str | None = "Practitioner/example") -> SmartSession:
    return SmartSession(key="k", iss=EHR, patient_id="p", fhir_user=fhir_user, scope=scope,
                        access_token=SecretStr("t"), expires_at=datetime.now(UTC), assessment_hint=None, csrf_token="c")


def test_can_write_needs_every_capture_scope_and_a_user():
    assert _session(SCOPES).can_write
    assert not _session(SCOPES, fhir_user=None).can_write
    assert not _session(SCOPES.replace("patient/Provenance.write", "")).can_write
    assert not _session(SCOPES, fhir_user="Patient/p1").can_write  # a portal launch reads only
    assert not _session(SCOPES, fhir_user="RelatedPerson/r1").can_write
    assert _session(SCOPES, fhir_user="https://ehr.example.org/fhir/PractitionerRole/pr1").can_write
    assert _session(SCOPES_V2).can_write  # the v2 scopes asked of a permission-v2 server: create, and update Procedure
    assert not _session(SCOPES_V2.replace("patient/Procedure.u", "patient/Procedure.rs")).can_write
    assert "d" not in "".join(s.rsplit(".", 1)[1] for s in SCOPES_V2.split() if "/" in s)  # never delete
    assert not _session("launch openid fhirUser patient/*.read").can_write
    assert _session("launch patient/*.write").can_write
    assert _session("launch patient/*.*").can_write
    v2 = "patient/Observation.cs patient/BodyStructure.c patient/Condition.crs patient/Procedure.rus patient/Provenance.c"
    assert _session(v2).can_write
    assert not _session(v2.replace("Procedure.rus", "Procedure.rs")).can_write
    assert not _session(v2.replace("Observation.cs", "Observation.cs?category=imaging")).can_write
    assert not _session("user/Observation.writex patient/Observation.read").can_write
    assert scope_grants("patient/Observation.read", "Observation", "r")
    assert not scope_grants("patient/Observation.read", "Observation", "c")


def test_app_context_and_fhir_user():
    assert app_context_assessment('{"assessment": "abc"}') == "abc"
    assert app_context_assessment({"assessment": "abc"}) == "abc"
    assert app_context_assessment("not json") is None and app_context_assessment(None) is None
    assert app_context_assessment('{"assessment": 5}') is None
    assert normalise_fhir_user("Practitioner/example", EHR) == "Practitioner/example"
    assert normalise_fhir_user(f"{EHR}/Practitioner/x1", EHR) == "Practitioner/x1"
    assert normalise_fhir_user("https://idp.example.org/fhir/Practitioner/x1", EHR) == "https://idp.example.org/fhir/Practitioner/x1"
    assert normalise_fhir_user("Practitioner/a b", EHR) is None and normalise_fhir_user(7, EHR) is None
