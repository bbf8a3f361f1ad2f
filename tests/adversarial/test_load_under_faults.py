"""Bounded load while the FHIR server is stopped and restarted, against ``hcc-cds serve`` as a process
(its output to a file: see tests/adversarial/servers.py served_process).

8 concurrent clients send 200 requests (hooks reading the real FHIR server, REST assessments from
it, and CDS Hooks feedback) to the served app on 127.0.0.1. After 50 answers the FHIR server is
stopped; after 110 it is started again on the same port (the service is not restarted). Then:

- every request was answered: 200, or for FHIR-backed calls while the server was down the clear
  503 (hook) / 502 (REST); never a 500, never a hang;
- every 200 is the right answer: the same cards / assessment as before the outage;
- the service recovered by itself: every call started after the FHIR server was back is a 200;
- nothing was lost: the feedback summary counts every feedback item posted and every card issued,
  and the audit trail holds exactly one event per request, with the status the client got;
- the service's own output holds no token and no patient identity (the session's scanner).
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from unittest import mock

import httpx
import pytest

import tests.integration.fhir_server as fhir_server_module
from service.demo import as_transaction, demo_bundles
from service.settings import Settings
from tests.adversarial.conftest import FHIR_TOKEN, SCANNER
from tests.adversarial.known_defects import KNOWN_LOG_LEAKS
from tests.adversarial.servers import served_process
from tests.api.hook_requests import SERVICE_ID, comparable_cards, patient_view
from tests.integration.fhir_server import FhirServer, free_port, start_fhir_server

CLIENTS = 8
REQUESTS = 200
STOP_AFTER = 50
RESTART_AFTER = 110
PATIENTS = ("demo-eligible", "demo-ineligible", "demo-missing-data")
KINDS = ("hook", "hook", "rest", "feedback")  # the mix, in turn
ALLOWED = {"hook": {200, 503}, "rest": {200, 502}, "feedback": {200}}
REQUEST_TIMEOUT = 30.0


@dataclass
class Outcome:
    n: int
    kind: str
    patient: str
    request_id: str
    started: float
    status: int | None = None
    body: dict | None = None
    error: str | None = None


@dataclass
class Run:
    base_url: str
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    card_uuids: list[str] = field(default_factory=list)
    feedback_posted: int = 0


def start_on(port: int, workdir) -> FhirServer:
    with mock.patch.object(fhir_server_module, "free_port", return_value=port):
        return start_fhir_server(workdir, bearer_tokens=[FHIR_TOKEN])


def one_request(run: Run, client: httpx.Client, n: int, fhir_base: str) -> Outcome:
    kind = KINDS[n % len(KINDS)]
    patient = PATIENTS[n % len(PATIENTS)]
    outcome = Outcome(n, kind, patient, f"load-{n}-{uuid.uuid4().hex[:8]}", time.monotonic())
    headers = {"X-Request-ID": outcome.request_id}
    try:
        if kind == "hook":
            body = patient_view(patient, fhir_server=fhir_base, token=FHIR_TOKEN)
            response = client.post(f"/cds-services/{SERVICE_ID}", json=body, headers=headers)
        elif kind == "rest":
            response = client.get(f"/api/v1/patients/{patient}/assessment", headers=headers)
        else:
            with run.lock:  # a card not yet given feedback (the summary counts each card once per outcome)
                card = run.card_uuids.pop() if run.card_uuids else str(uuid.uuid4())
            item = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00+00:00",
                    "overrideReason": {"userComment": f"load {n}"}}
            response = client.post(f"/cds-services/{SERVICE_ID}/feedback", json={"feedback": [item]}, headers=headers)
        outcome.status = response.status_code
        outcome.body = response.json()
        if kind == "hook" and response.status_code == 200:
            with run.lock:
                run.card_uuids.extend(c["uuid"] for c in outcome.body["cards"])
        if kind == "feedback" and response.status_code == 200:
            with run.lock:
                run.feedback_posted += outcome.body["stored"]
    except (httpx.HTTPError, ValueError) as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    with run.lock:
        run.outcomes.append(outcome)
        run.done += 1
    return outcome


@pytest.fixture(scope="module")
def fhir_port():
    return free_port()


def test_load_while_the_fhir_server_stops_and_restarts(tmp_path, fhir_port, monkeypatch):
    fhir_dir = tmp_path / "fhir"
    server = start_on(fhir_port, fhir_dir)
    server.load(as_transaction(demo_bundles(Settings().today())), token=FHIR_TOKEN)
    env = {
        "HCC_DATABASE_URL": f"sqlite:///{tmp_path / 'load.sqlite3'}",
        "HCC_FHIR_BASE_URL": server.base_url,
        "HCC_FHIR_TOKEN": FHIR_TOKEN,
        "HCC_FHIR_TIMEOUT_SECONDS": "1",
        "HCC_FHIR_DEADLINE_SECONDS": "3",
        "HCC_LOG_LEVEL": "INFO",
        "HCC_MODE": "demo",
        "HCC_WORKERS": "1",
    }
    for name in ("HCC_FHIR_ALLOWLIST", "HCC_TRUSTED_CLIENTS", "HCC_CLINICAL_OVERRIDES", "HCC_CORS_ORIGINS",
                 "HCC_MAX_BODY_BYTES", "HCC_PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)  # the served process inherits the environment
    try:
        with served_process(env, tmp_path / "served.log") as served:
            pid = served.process.pid
            run = Run(served.base_url)
            with httpx.Client(base_url=served.base_url, timeout=REQUEST_TIMEOUT) as client:
                baseline = _baseline(client, server.base_url)
                counter = itertools.count()
                down, up = threading.Event(), threading.Event()

                def worker() -> None:
                    # requests from STOP_AFTER on wait until the server is stopped, from RESTART_AFTER on until it is
                    # back: the three phases overlap only by what is in flight when the server stops
                    while (n := next(counter)) < REQUESTS:
                        if n >= STOP_AFTER:
                            down.wait(120)
                        if n >= RESTART_AFTER:
                            up.wait(120)
                        one_request(run, client, n, server_url)

                server_url = server.base_url
                with ThreadPoolExecutor(CLIENTS) as pool:
                    futures = [pool.submit(worker) for _ in range(CLIENTS)]
                    _wait_for(lambda: run.done >= STOP_AFTER - CLIENTS, 120)  # stop with requests in flight
                    server.stop()
                    down.set()
                    _wait_for(lambda: run.done >= RESTART_AFTER, 120)
                    server = start_on(fhir_port, fhir_dir)  # returns once the server answers /metadata
                    up.set()
                    for future in futures:
                        future.result(timeout=300)
                summary = client.get("/api/v1/feedback").json()
                audit = client.get("/api/v1/audit", params={"limit": 1000}).json()["events"]
                alive = client.get("/healthz").status_code == 200
            assert served.process.pid == pid and served.process.poll() is None and alive, "the service restarted"
    finally:
        server.stop()

    outcomes = sorted(run.outcomes, key=lambda o: o.n)
    assert len(outcomes) == REQUESTS
    # every request answered, with an allowed status
    unanswered = [o for o in outcomes if o.error or o.status is None]
    assert not unanswered, unanswered[:3]
    wrong = [(o.n, o.kind, o.status, o.body) for o in outcomes if o.status not in ALLOWED[o.kind]]
    assert not wrong, wrong[:3]
    # the outage was seen, and the service recovered by itself
    during = [o for o in outcomes if STOP_AFTER <= o.n < RESTART_AFTER and o.kind != "feedback"]
    assert during and all(o.status in (502, 503) for o in during), "requests during the outage were not refused"
    after = [o for o in outcomes if o.n >= RESTART_AFTER]
    assert len(after) == REQUESTS - RESTART_AFTER
    assert all(o.status == 200 for o in after), [(o.n, o.kind, o.status) for o in after if o.status != 200][:5]
    # every 200 is the right answer
    for o in outcomes:
        if o.status == 200 and o.kind == "hook":
            assert comparable_cards(o.body["cards"]) == baseline[("hook", o.patient)], f"request {o.n}"
        elif o.status == 200 and o.kind == "rest":
            assert o.body == baseline[("rest", o.patient)], f"request {o.n}"
    # nothing lost: feedback, cards issued, audit events
    posted = sum(1 for o in outcomes if o.kind == "feedback" and o.status == 200)
    topics = summary["topics"]
    assert sum(t["accepted"] + t["overridden"] for t in topics) == posted + baseline["feedback"] == run.feedback_posted + baseline["feedback"]
    issued = sum(len(o.body["cards"]) for o in outcomes if o.kind == "hook" and o.status == 200)
    assert sum(t["issued"] for t in topics) == issued + baseline["cards"]
    database = sqlite3.connect(tmp_path / "load.sqlite3")
    try:
        rows = {table: database.execute(f"select count(*) from {table}").fetchone()[0]
                for table in ("feedback", "cards_issued", "audit_events", "stored_assessments")}
    finally:
        database.close()
    assert rows["feedback"] == posted + baseline["feedback"], rows
    assert rows["cards_issued"] == issued + baseline["cards"], rows
    by_request = {}
    for event in audit:
        by_request.setdefault(event["request_id"], []).append(event)
    for o in outcomes:
        events = by_request.get(o.request_id, [])
        assert len(events) == 1, f"request {o.n} ({o.kind}) has {len(events)} audit events"
        assert events[0]["outcome"] == o.status, f"request {o.n}: audited {events[0]['outcome']}, answered {o.status}"
    # the service's own output: no token, no patient identity
    known = [re.compile(p) for p in KNOWN_LOG_LEAKS]
    findings = [f for f in SCANNER.scan(served.output) if not any(p.search(f.line) for p in known)]
    assert not findings, "\n".join(str(f) for f in findings[:10])


def _baseline(client: httpx.Client, fhir_base: str) -> dict:
    """The answers before any fault; what every later 200 must equal. Counts what it writes itself."""
    baseline: dict = {"feedback": 0, "cards": 0}
    for patient in PATIENTS:
        hook = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view(patient, fhir_server=fhir_base, token=FHIR_TOKEN))
        assert hook.status_code == 200, hook.text
        baseline[("hook", patient)] = comparable_cards(hook.json()["cards"])
        baseline["cards"] += len(hook.json()["cards"])
        rest = client.get(f"/api/v1/patients/{patient}/assessment")
        assert rest.status_code == 200, rest.text
        baseline[("rest", patient)] = rest.json()
    return baseline


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the load did not progress")
        time.sleep(0.02)

