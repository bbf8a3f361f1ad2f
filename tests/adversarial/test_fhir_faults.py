"""FHIR faults through the real FHIR test server and a fault-injecting proxy in front of it (127.0.0.1 only).

Both surfaces read the same record through the proxy: the hook (``fhirServer`` = the proxy, with
the server's bearer token in ``fhirAuthorization``) and the REST API (``HCC_FHIR_BASE_URL`` = the
proxy, ``HCC_FHIR_TOKEN``). Every fault must give the answer PRODUCT.md names:

=====================================  =========  =======
FHIR server                            hook       REST
=====================================  =========  =======
down, reset, too slow, 5xx, 429        503        502
unusable answer (truncated or non-     502        502
FHIR JSON, HTML, paging loop, next
link elsewhere, redirect, another
Patient)
refuses the token (401/403)            412        502
unknown patient (404)                  404 (OO)   404 (OO)
=====================================  =========  =======

never a 500, always a message; and where the answer is a 200 it is the same assessment as read
directly from the server (another patient's injected resources only add ``data_issues``).
Nothing is ever sent to a host a redirect or a foreign ``next`` link names.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.adversarial.clinical_data import record
from tests.adversarial.conftest import FHIR_TOKEN, demo_settings, guard_network
from tests.adversarial.contract import assert_documented, known_answer_problems
from tests.adversarial.fault_proxy import FaultProxy, Listener
from tests.api.hook_requests import SERVICE_ID, comparable_cards, patient_view

PATIENT = "demo-eligible"
HOOK = f"/cds-services/{SERVICE_ID}"
REST = f"/api/v1/patients/{PATIENT}/assessment"
TIMEOUT = 1.0  # HCC_FHIR_TIMEOUT_SECONDS for these apps
DEADLINE = 4.0  # HCC_FHIR_DEADLINE_SECONDS


@pytest.fixture(scope="module")
def proxy(sekmet):
    with FaultProxy(sekmet.base_url) as running:
        yield running


@pytest.fixture(scope="module")
def elsewhere():
    """Where a redirect or a foreign next link points: must never be called."""
    with Listener() as listener:
        yield listener


@pytest.fixture(scope="module")
def hook_app():
    app = create_app(demo_settings(fhir_timeout_seconds=TIMEOUT, fhir_deadline_seconds=DEADLINE))
    with TestClient(app) as client:
        guard = guard_network(app)
        yield client
        assert not guard.refused


@pytest.fixture(scope="module")
def rest_app(proxy):
    settings = demo_settings(
        fhir_base_url=proxy.base_url, fhir_token=FHIR_TOKEN, fhir_timeout_seconds=TIMEOUT, fhir_deadline_seconds=DEADLINE
    )
    app = create_app(settings)
    with TestClient(app) as client:
        guard = guard_network(app)
        yield client
        assert not guard.refused


def cards_without_data_issues(cards: list[dict]) -> list[dict]:
    """Cards as compared across sources: without per-call fields, and without the "Data not used" section
    (the cards' rendering of data_issues)."""
    out = []
    for card in comparable_cards(cards):
        detail = card.get("detail")
        if isinstance(detail, str) and "**Data not used**" in detail:
            head, _, tail = detail.partition("**Data not used**")
            rest = tail.split("\n\n", 1)
            card = {**card, "detail": head + (rest[1] if len(rest) > 1 else "")}
        out.append(card)
    return out


def call_hook(client: TestClient, fhir_server: str, patient_id: str = PATIENT, token: str = FHIR_TOKEN):
    response = client.post(HOOK, json=patient_view(patient_id, fhir_server=fhir_server, token=token))
    _assert_answer(response, "POST", "/cds-services/{service_id}")
    return response


def call_rest(client: TestClient, patient_id: str = PATIENT):
    response = client.get(f"/api/v1/patients/{patient_id}/assessment")
    _assert_answer(response, "GET", "/api/v1/patients/{patient_id}/assessment")
    return response


def _assert_answer(response, method: str, template: str) -> None:
    assert response.status_code != 500, response.text
    if response.status_code != 200:
        body = response.json()
        message = body.get("detail") or (body.get("issue") or [{}])[0].get("diagnostics")
        assert isinstance(message, str) and message, f"an error without a message: {body}"
    problems = known_answer_problems(response, method, template)
    assert not problems, problems


@pytest.fixture(scope="module")
def direct(hook_app, sekmet, proxy):
    """The answers read straight from the server (no proxy), and through the proxy with no fault."""
    hook = call_hook(hook_app, sekmet.base_url)
    assert hook.status_code == 200, hook.text
    assert hook.json()["cards"], "the patient must have cards for the comparison to mean something"
    return {"cards": comparable_cards(hook.json()["cards"]), "raw_cards": hook.json()["cards"]}


@pytest.fixture()
def rest_direct(rest_app, proxy):
    proxy.set("pass")
    response = call_rest(rest_app)
    assert response.status_code == 200, response.text
    return response.json()


def test_through_the_proxy_without_a_fault_the_answers_are_the_same(hook_app, rest_app, proxy, direct, sekmet):
    proxy.set("pass")
    hook = call_hook(hook_app, proxy.base_url)
    assert hook.status_code == 200
    assert comparable_cards(hook.json()["cards"]) == direct["cards"]
    rest = call_rest(rest_app)
    assert rest.status_code == 200
    assert rest.json()["recommendation"]["code"] == "sorafenib-plus-tace"
    assert any("authorization" in r.headers for r in proxy.requests), "the token was not forwarded"


UNAVAILABLE = [
    pytest.param({"kind": "delay", "seconds": TIMEOUT + 0.5}, id="slower-than-the-timeout"),
    pytest.param({"kind": "reset"}, id="connection-reset"),
    pytest.param({"kind": "status", "status": 500, "body": "boom"}, id="500"),
    pytest.param({"kind": "status", "status": 503, "body": ""}, id="503"),
    pytest.param({"kind": "status", "status": 504, "body": ""}, id="504"),
    pytest.param({"kind": "status", "status": 429, "headers": {"Retry-After": "120"}}, id="429-retry-after-too-long"),
    pytest.param({"kind": "cut"}, id="connection-lost-mid-body"),
    pytest.param({"kind": "drip", "seconds": 0.15}, id="body-dripping-slower-than-the-timeout"),
    pytest.param({"kind": "status", "status": 500, "only": "Observation"}, id="500-on-one-search-only"),
    pytest.param({"kind": "delay", "seconds": TIMEOUT + 0.5, "only": "Procedure"}, id="one-search-too-slow"),
]


@pytest.mark.parametrize("fault", UNAVAILABLE)
def test_a_server_down_or_too_slow_is_503_for_hooks_and_502_for_rest(hook_app, rest_app, proxy, fault):
    proxy.set(**fault)
    assert call_hook(hook_app, proxy.base_url).status_code == 503
    proxy.set(**fault)
    assert call_rest(rest_app).status_code == 502


def _html_login_page() -> str:
    return "<html><body><form action='/login'>Session expired</form></body></html>"


UNUSABLE = [
    pytest.param({"kind": "truncate"}, id="truncated-json"),
    pytest.param({"kind": "body", "body": _html_login_page(), "content_type": "text/html"}, id="html-login-page"),
    pytest.param({"kind": "body", "body": '{"hello": "world"}'}, id="json-that-is-not-fhir"),
    pytest.param({"kind": "body", "body": "[1, 2, 3]"}, id="a-json-array"),
    pytest.param(
        {"kind": "body", "body": '{"resourceType": "Bundle", "entry": ' + "[" * 100_000 + "]" * 100_000 + "}"},
        id="json-nested-100000-deep",
    ),
    pytest.param(
        {"kind": "body", "body": '{"resourceType": "OperationOutcome", "issue": [{"severity": "error", '
         '"code": "exception", "diagnostics": "database on fire"}]}', "only": "Observation"},
        id="operation-outcome-instead-of-a-bundle",
    ),
    pytest.param({"kind": "loop_next", "only": "Observation"}, id="next-link-loop"),
]


@pytest.mark.parametrize("fault", UNUSABLE)
def test_an_unusable_answer_is_502_on_both_surfaces(hook_app, rest_app, proxy, fault):
    proxy.set(**fault)
    assert call_hook(hook_app, proxy.base_url).status_code == 502
    proxy.set(**fault)
    assert call_rest(rest_app).status_code == 502


@pytest.mark.parametrize("how", ["redirect", "next_to"])
def test_a_redirect_or_a_foreign_next_link_is_502_and_nothing_is_sent_there(hook_app, rest_app, proxy, elsewhere, how):
    target = f"{elsewhere.origin}/fhir/Observation?patient={PATIENT}&page=2"
    for surface in ("hook", "rest"):
        proxy.set(how, location=target, only="Observation")
        response = call_hook(hook_app, proxy.base_url) if surface == "hook" else call_rest(rest_app)
        assert response.status_code == 502, response.text
    assert elsewhere.requests == [], "a request (with the token) went where the FHIR server pointed"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_412_for_hooks_and_502_for_rest(hook_app, rest_app, proxy, status):
    proxy.set("status", status=status, body="")
    assert call_hook(hook_app, proxy.base_url).status_code == 412
    proxy.set("status", status=status, body="")
    assert call_rest(rest_app).status_code == 502


def test_the_real_server_refusing_a_wrong_token_is_412_for_hooks(hook_app, sekmet):
    response = call_hook(hook_app, sekmet.base_url, token="not-the-token-" + "x" * 20)
    assert response.status_code == 412
    assert "not-the-token" not in response.text


def test_an_unknown_patient_is_404_with_an_operation_outcome(hook_app, rest_app, proxy):
    proxy.set("pass")
    for response in (call_hook(hook_app, proxy.base_url, patient_id="no-such-patient"), call_rest(rest_app, "no-such-patient")):
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"


def test_another_patients_record_for_the_patient_read_is_502(hook_app, rest_app, proxy):
    other, _ = record("demo-ineligible")
    proxy.set("inject", patient=other)
    assert call_hook(hook_app, proxy.base_url).status_code == 502
    proxy.set("inject", patient=other)
    assert call_rest(rest_app).status_code == 502


def test_another_patients_resources_in_a_search_are_excluded_and_reported(hook_app, rest_app, proxy, direct, rest_direct):
    _, others = record("demo-ineligible")
    foreign = [r for r in others if r["resourceType"] == "Observation"][:5]
    unnamed = {**foreign[0], "id": "no-subject-1"}
    unnamed.pop("subject")
    injected = foreign + [unnamed]
    proxy.set("inject", resources=injected, only="Observation")
    hook = call_hook(hook_app, proxy.base_url)
    assert hook.status_code == 200
    assert cards_without_data_issues(hook.json()["cards"]) == cards_without_data_issues(direct["raw_cards"])
    # the card stays short (no data-issue list); the data not used is reported on the card's page
    card = hook.json()["cards"][0]
    assert "belongs to another patient" not in card["detail"]
    page = next(link["url"] for link in card["links"] if "/assessments/" in link["url"])
    assert "belongs to another patient" in hook_app.get("/assessments/" + page.rsplit("/assessments/", 1)[1]).text
    proxy.set("inject", resources=injected, only="Observation")
    rest = call_rest(rest_app)
    assert rest.status_code == 200
    assessment = rest.json()
    reported = {i["resource"] for i in assessment["data_issues"]}
    assert {f"Observation/{r['id']}" for r in injected} <= reported
    assert {k: v for k, v in assessment.items() if k != "data_issues"} == {
        k: v for k, v in rest_direct.items() if k != "data_issues"
    }


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/octet-stream"])
def test_fhir_json_under_another_content_type_gives_the_same_answer(hook_app, rest_app, proxy, direct, rest_direct, content_type):
    proxy.set("content_type", content_type=content_type)
    hook = call_hook(hook_app, proxy.base_url)
    assert hook.status_code == 200 and comparable_cards(hook.json()["cards"]) == direct["cards"]
    proxy.set("content_type", content_type=content_type)
    rest = call_rest(rest_app)
    assert rest.status_code == 200 and rest.json() == rest_direct


@pytest.mark.parametrize("status", [503, 429])
def test_a_brief_outage_is_retried_and_the_answer_is_the_same(hook_app, rest_app, proxy, direct, rest_direct, status):
    proxy.set("flaky", count=1, status=status, headers={"Retry-After": "0"})
    hook = call_hook(hook_app, proxy.base_url)
    assert hook.status_code == 200 and comparable_cards(hook.json()["cards"]) == direct["cards"]
    proxy.set("flaky", count=1, status=status, headers={"Retry-After": "0"})
    rest = call_rest(rest_app)
    assert rest.status_code == 200 and rest.json() == rest_direct


def test_many_answers_each_within_the_timeout_but_beyond_the_deadline_are_503(hook_app, rest_app, proxy):
    """Each answer comes within the timeout, but the retries they ask for add up past HCC_FHIR_DEADLINE_SECONDS:
    the call ends at the deadline (0.9 s + 1.9 s + 0.9 s + 1.9 s + 0.9 s would be 6.5 s)."""
    import time

    for call, status in ((lambda: call_hook(hook_app, proxy.base_url), 503), (lambda: call_rest(rest_app), 502)):
        proxy.set("flaky", count=1000, status=503, seconds=TIMEOUT * 0.9, headers={"Retry-After": "1.9"})
        started = time.monotonic()
        assert call().status_code == status
        assert time.monotonic() - started < DEADLINE + 1.0, "the call outlived its deadline"


def test_every_fault_answer_above_is_documented_in_openapi(hook_app, rest_app, proxy):
    """One fault of each family, checked against openapi.yaml in full (status, content type, body)."""
    cases = [({"kind": "reset"}, 503, 502), ({"kind": "truncate"}, 502, 502), ({"kind": "status", "status": 401}, 412, 502)]
    for fault, hook_status, rest_status in cases:
        proxy.set(**fault)
        hook = hook_app.post(HOOK, json=patient_view(PATIENT, fhir_server=proxy.base_url, token=FHIR_TOKEN))
        assert hook.status_code == hook_status
        assert_documented(hook, "POST", "/cds-services/{service_id}")
        proxy.set(**fault)
        rest = rest_app.get(REST)
        assert rest.status_code == rest_status
        assert_documented(rest, "GET", "/api/v1/patients/{patient_id}/assessment")
