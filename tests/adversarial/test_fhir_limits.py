"""Limits per FHIR origin and per assessment, and what a red team broke with bursts, slow or huge answers,
wrong JSON types and next links outside the FHIR base path (issue 18, items 1, 3, 5, 6, 10).

Every app here talks to the real FHIR test server, directly or through the fault proxy, on 127.0.0.1.

- A burst of timeouts must leave the shared HTTP pool usable: once the server is back, calls answer 200
  (no connection left "connecting" forever), and ``/readyz`` reports a stuck pool when there is one.
- One slow FHIR server must not starve calls to another: each origin has its own cap, below the pool's.
- Well-formed JSON of the wrong type is a 4xx for what the caller sent, a 502 for what the FHIR server
  sent, a data issue for a resource malformed in a field the mapping reads; never a 500.
- Answers bigger than an assessment may hold are refused, naming the setting, within the deadline,
  while ``/healthz`` stays responsive.
- A ``next`` link is followed only within the hook's ``fhirServer`` base path.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpcore
import httpx
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.adversarial.conftest import FHIR_TOKEN, demo_settings, guard_network
from tests.adversarial.fault_proxy import FaultProxy
from tests.adversarial.servers import app_in_thread, served_process
from tests.api.hook_requests import SERVICE_ID, patient_view

PATIENT = "demo-eligible"
HOOK = f"/cds-services/{SERVICE_ID}"


@pytest.fixture(scope="module")
def proxy(sekmet):
    with FaultProxy(sekmet.base_url) as running:
        yield running


def _no_500(response: httpx.Response) -> None:
    assert response.status_code < 500 or response.status_code in (502, 503), response.text
    if response.status_code != 200:
        assert response.json().get("detail"), response.text


async def _hooks(base_url: str, fhir_server: str, count: int, timeout: float = 60.0) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits, trust_env=False) as client:
        return await asyncio.gather(
            *(client.post(HOOK, json=patient_view(PATIENT, fhir_server=fhir_server, token=FHIR_TOKEN)) for _ in range(count))
        )


def _hook(base_url: str, fhir_server: str) -> httpx.Response:
    body = patient_view(PATIENT, fhir_server=fhir_server, token=FHIR_TOKEN)
    return httpx.post(base_url + HOOK, json=body, timeout=60, trust_env=False)


# -- item 1: a burst of timeouts ---------------------------------------------------------------------------------


@contextmanager
def never_accepting() -> Iterator[str]:
    """A FHIR base URL on 127.0.0.1 whose port listens but never accepts: every connection hangs "connecting"."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)
        yield f"http://127.0.0.1:{hole.getsockname()[1]}/fhir"


def test_a_burst_of_fhir_timeouts_leaves_the_pool_usable_once_the_server_is_back(proxy):
    """60 concurrent hooks to a FHIR server that never accepts a connection (the default 5 s timeout, 10 s
    deadline): each is a 503, and afterwards a call to a FHIR server that answers is a 200 at once. Before
    the fix, requests cancelled from outside left ~100 connections "connecting" in httpcore's pool for ever:
    every later call was a 503 while /readyz said ready."""
    app = create_app(demo_settings(fhir_timeout_seconds=5.0, fhir_deadline_seconds=10.0))
    with app_in_thread(app) as base, never_accepting() as hole:
        proxy.set("pass")
        answers = asyncio.run(_hooks(base, hole, 60))
        for answer in answers:
            _no_500(answer)
        assert {a.status_code for a in answers} == {503}
        started = time.monotonic()
        after = _hook(base, proxy.base_url)
        assert after.status_code == 200, f"a FHIR server that answers gets {after.text}"
        assert time.monotonic() - started < 5
        ready = httpx.get(base + "/readyz", timeout=10, trust_env=False)
        assert ready.status_code == 200 and ready.json()["checks"]["fhir_pool"] == "ok", ready.text


def test_readyz_reports_a_stuck_fhir_connection_pool(sekmet):
    """A connection left "connecting" with no request (what cancelling a queued httpx request from outside
    leaves behind in httpcore 1.0) makes /readyz 503 naming ``fhir_pool``."""
    app = create_app(demo_settings())
    with TestClient(app) as client:
        assert client.get("/readyz").json()["checks"]["fhir_pool"] == "ok"
        http = app.state.hcc.fhir.client

        async def leak() -> None:
            pool = http._transport._pool
            connection = pool.create_connection(httpcore.URL(sekmet.base_url).origin)
            pool._connections.append(connection)

        client.portal.call(leak)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["fhir_pool"] == "failed"


# -- item 6: one slow server, one healthy ------------------------------------------------------------------------


def test_a_slow_fhir_server_does_not_starve_calls_to_a_healthy_one(proxy, sekmet):
    app = create_app(demo_settings(fhir_timeout_seconds=3.0, fhir_deadline_seconds=5.0))
    with app_in_thread(app) as base:
        proxy.set("delay", seconds=30)
        slow: list[httpx.Response] = []
        burst = threading.Thread(target=lambda: slow.extend(asyncio.run(_hooks(base, proxy.base_url, 40))))
        burst.start()
        time.sleep(1.0)  # the slow calls hold their connections
        healthy = [_hook(base, sekmet.base_url) for _ in range(3)]
        burst.join(60)
        proxy.set("pass")
        for answer in healthy:
            assert answer.status_code == 200, f"a call to a healthy FHIR server was starved: {answer.text}"
        for answer in slow:
            _no_500(answer)
            assert answer.status_code == 503
        busy = [a for a in slow if "Retry-After" in a.headers]
        for answer in busy:
            assert "too many" in answer.json()["detail"], answer.text


# -- item 10: next links outside the base path -------------------------------------------------------------------


def test_a_next_link_outside_the_fhir_base_path_is_never_followed(proxy):
    app = create_app(demo_settings(fhir_timeout_seconds=2.0, fhir_deadline_seconds=4.0))
    with TestClient(app) as client:
        guard = guard_network(app)
        proxy.set("next_to", location=f"{proxy.origin}/admin-internal/Observation?page=2", only="Observation")
        answer = client.post(HOOK, json=patient_view(PATIENT, fhir_server=proxy.base_url, token=FHIR_TOKEN))
        assert answer.status_code == 502, answer.text
        assert not [r for r in proxy.requests if r.target.startswith("/admin-internal")]
        assert not guard.refused


def test_a_prefetch_next_link_outside_the_fhir_base_path_is_never_followed(proxy):
    app = create_app(demo_settings(fhir_timeout_seconds=2.0, fhir_deadline_seconds=4.0))
    with TestClient(app) as client:
        proxy.set("pass")
        page = {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": f"{proxy.origin}/admin-internal/Observation?page=2"}],
            "entry": [],
        }
        body = patient_view(PATIENT, fhir_server=proxy.base_url, token=FHIR_TOKEN, prefetch={"observations": page})
        answer = client.post(HOOK, json=body)
        assert answer.status_code == 200, answer.text
        assert not [r for r in proxy.requests if r.target.startswith("/admin-internal")]
        assert any(r.target.startswith("/fhir/Observation") for r in proxy.requests), "the search is fetched again"


# -- item 3: JSON of the wrong type ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hook_client():
    app = create_app(demo_settings(fhir_timeout_seconds=2.0, fhir_deadline_seconds=4.0))
    with TestClient(app) as client:
        yield client


WRONG_PREFETCH = {
    "entry-5": {"resourceType": "Bundle", "type": "searchset", "entry": 5},
    "link-7": {"resourceType": "Bundle", "type": "searchset", "link": 7, "entry": []},
    "nested-outcome-issue-5": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "OperationOutcome", "issue": 5}}]},
}


@pytest.mark.parametrize("case", sorted(WRONG_PREFETCH))
def test_a_prefetch_bundle_of_the_wrong_shape_is_400(hook_client, proxy, case):
    proxy.set("pass")
    body = patient_view(PATIENT, fhir_server=proxy.base_url, token=FHIR_TOKEN, prefetch={"observations": WRONG_PREFETCH[case]})
    answer = hook_client.post(HOOK, json=body)
    assert answer.status_code == 400, answer.text
    _no_500(answer)


WRONG_ANSWERS = {
    "entry-5": {"resourceType": "Bundle", "type": "searchset", "entry": 5},
    "link-7": {"resourceType": "Bundle", "type": "searchset", "link": 7},
    "outcome-issue-5": {"resourceType": "OperationOutcome", "issue": 5},
    "nested-outcome-issue-5": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "OperationOutcome", "issue": 5}}]},
}


@pytest.mark.parametrize("case", sorted(WRONG_ANSWERS))
def test_a_fhir_answer_of_the_wrong_shape_is_502(hook_client, proxy, case):
    proxy.set("body", body=json.dumps(WRONG_ANSWERS[case]), only="/fhir/Condition")
    answer = hook_client.post(HOOK, json=patient_view(PATIENT, fhir_server=proxy.base_url, token=FHIR_TOKEN))
    assert answer.status_code == 502, answer.text
    _no_500(answer)


def test_a_fhir_error_answer_with_an_outcome_of_the_wrong_shape_is_502(hook_client, proxy):
    proxy.set("status", status=400, body=json.dumps({"resourceType": "OperationOutcome", "issue": 5}), only="/fhir/Condition")
    answer = hook_client.post(HOOK, json=patient_view(PATIENT, fhir_server=proxy.base_url, token=FHIR_TOKEN))
    assert answer.status_code == 502, answer.text


def test_an_observation_with_focus_5_is_skipped_and_reported(hook_client, proxy):
    bad = {
        "resourceType": "Observation", "id": "focus-five", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "21889-1"}]},
        "subject": {"reference": f"Patient/{PATIENT}"}, "effectiveDateTime": "2020-01-01", "focus": 5,
    }
    proxy.set("inject", resources=[bad], only="/fhir/Observation")
    answer = hook_client.post(HOOK, json=patient_view(PATIENT, fhir_server=proxy.base_url, token=FHIR_TOKEN))
    assert answer.status_code == 200, answer.text
    # the card stays short: the data not used is listed on the card's assessment page
    card = answer.json()["cards"][0]
    page = next(link["url"] for link in card["links"] if "/assessments/" in link["url"])
    shown = hook_client.get("/assessments/" + page.rsplit("/assessments/", 1)[1])
    assert shown.status_code == 200 and "focus-five" in shown.text, "the malformed Observation is not reported"


def _sorafenib_order(**dosage_changes) -> dict:
    dosage = {"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
              "doseAndRate": [{"doseQuantity": {"value": 400, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]}
    order = {
        "resourceType": "MedicationRequest", "id": "draft-sora", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "597747"}]},
        "subject": {"reference": f"Patient/{PATIENT}"}, "dosageInstruction": [dosage],
    }
    for path, value in dosage_changes.items():
        where = {"coding": order["medicationCodeableConcept"], "dosageInstruction": order, "doseAndRate": dosage,
                 "repeat": dosage["timing"], "frequency": dosage["timing"]["repeat"]}[path]
        where[path] = value
    return order


DRAFT_CHANGES = {
    "coding-5": {"coding": 5},
    "dosageInstruction-5": {"dosageInstruction": 5},
    "doseAndRate-5": {"doseAndRate": 5},
    "timing-repeat-5": {"repeat": 5},
    "frequency-10**400": {"frequency": 10**400},
}


@pytest.mark.parametrize("case", sorted(DRAFT_CHANGES))
def test_draft_orders_of_the_wrong_type_are_never_a_500(hook_client, sekmet, case):
    body = patient_view(PATIENT, fhir_server=sekmet.base_url, token=FHIR_TOKEN)
    body["hook"] = "order-sign"
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                      "entry": [{"resource": _sorafenib_order(**DRAFT_CHANGES[case])}]}
    answer = hook_client.post("/cds-services/hcc-order-sign", content=json.dumps(body), headers={"Content-Type": "application/json"})
    if case.startswith("frequency"):
        assert answer.status_code in (200, 422), answer.text
    else:
        assert answer.status_code == 422, answer.text
    _no_500(answer)


# -- item 5: large answers ---------------------------------------------------------------------------------------


def _observations(count: int) -> bytes:
    entries = [
        {
            "resource": {
                "resourceType": "Observation", "id": f"bulk-{n}", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "1975-2"}]},
                "subject": {"reference": f"Patient/{PATIENT}"}, "effectiveDateTime": "2019-01-01",
                "valueQuantity": {"value": 1.2, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
                "note": [{"text": "x" * 140}],
            },
            "search": {"mode": "match"},
        }
        for n in range(count)
    ]
    return json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries}).encode()


@pytest.mark.parametrize("setting", ["fhir_max_bytes", "fhir_max_resources"])
def test_answers_beyond_an_assessments_limits_are_502_naming_the_limit(proxy, setting):
    limit = {"fhir_max_bytes": 200_000, "fhir_max_resources": 500}[setting]
    app = create_app(demo_settings(fhir_timeout_seconds=2.0, fhir_deadline_seconds=4.0, **{setting: limit}))
    with TestClient(app) as client:
        proxy.set("body", body=_observations(1000), only="/fhir/Observation")
        answer = client.post(HOOK, json=patient_view(PATIENT, fhir_server=proxy.base_url, token=FHIR_TOKEN))
        assert answer.status_code == 502, answer.text
        assert "HCC_" + setting.upper() in answer.json()["detail"]


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _hook_while_polling_healthz(base_url: str, fhir_url: str) -> tuple[httpx.Response, float, list[float]]:
    """The hook's answer and its duration, and every /healthz latency seen (polled every 50 ms) meanwhile."""
    latencies: list[float] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=base_url, timeout=30, trust_env=False) as client:
            while not done.is_set():
                started = time.monotonic()
                client.get("/healthz")
                latencies.append(time.monotonic() - started)
                time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    started = time.monotonic()
    try:
        answer = _hook(base_url, fhir_url)
    finally:
        elapsed = time.monotonic() - started
        done.set()
        poller.join(30)
    return answer, elapsed, latencies


def test_sixty_thousand_observations_are_refused_within_the_deadline_and_healthz_stays_responsive(proxy, tmp_path):
    """31 MB of Observations in one answer (under the 32 MiB a single answer may hold): refused (502, naming the limit) within the deadline, while
    /healthz answers promptly throughout (the service runs as its own process: nothing of the test's own
    work shares its interpreter)."""
    proxy.set("body", body=_observations(60_000), only="/fhir/Observation")
    env = {"HCC_MODE": "demo", "HCC_FHIR_TIMEOUT_SECONDS": "5", "HCC_FHIR_DEADLINE_SECONDS": "10",
           "HCC_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "HCC_LOG_LEVEL": "WARNING"}
    with served_process(env, tmp_path / "serve.log") as served:
        answer, elapsed, latencies = _hook_while_polling_healthz(served.base_url, proxy.base_url)
        peak_mib = _peak_rss_mib(served.process.pid)
        proxy.set("pass")
        print(f"60 000 Observations: answered in {elapsed:.2f} s, /healthz at most {max(latencies):.3f} s, "
              f"peak RSS {peak_mib:.0f} MiB")
        assert answer.status_code == 502, answer.text
        assert "HCC_FHIR_MAX_BYTES" in answer.json()["detail"]
        assert peak_mib < 250, f"the worker peaked at {peak_mib:.0f} MiB (the k8s example allows 512 Mi)"
        assert elapsed < 10, f"answered after {elapsed:.1f} s"
        assert max(latencies) < 1.0, f"/healthz took up to {max(latencies):.2f} s"


def test_a_large_record_within_the_limits_is_answered_within_the_deadline_and_healthz_stays_responsive(proxy, tmp_path):
    """8 000 Observations (4 MB: within HCC_FHIR_MAX_BYTES and HCC_FHIR_MAX_RESOURCES) with a 2 s deadline:
    decoded and mapped in a worker thread, so /healthz answers promptly throughout; and the call answers
    within the deadline (and the 2 s the assessment may take beyond it): the assessment, or a 502 naming the
    deadline when mapping takes longer (it did before the fix: mapping ran on the event loop, unbounded)."""
    proxy.set("body", body=_observations(8_000), only="/fhir/Observation")
    env = {"HCC_MODE": "demo", "HCC_FHIR_TIMEOUT_SECONDS": "2", "HCC_FHIR_DEADLINE_SECONDS": "2",
           "HCC_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "HCC_LOG_LEVEL": "WARNING"}
    with served_process(env, tmp_path / "serve.log") as served:
        answer, elapsed, latencies = _hook_while_polling_healthz(served.base_url, proxy.base_url)
        proxy.set("pass")
        print(f"8 000 Observations: {answer.status_code} in {elapsed:.2f} s, /healthz at most {max(latencies):.3f} s")
        assert answer.status_code in (200, 502), answer.text
        if answer.status_code == 502:
            assert "HCC_FHIR_DEADLINE_SECONDS" in answer.json()["detail"]
        assert elapsed < 2 + 2 + 1.5, f"answered after {elapsed:.1f} s"
        assert max(latencies) < 1.0, f"/healthz took up to {max(latencies):.2f} s"
