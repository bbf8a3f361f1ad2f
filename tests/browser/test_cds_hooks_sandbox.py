"""The reference CDS Hooks client (the CDS Hooks sandbox, built, offline) calling hcc-cds in Debian's chromium.

Marker ``sandbox`` (part of ``make test``). It serves ``tests/vendor/cds-hooks-sandbox/build`` (a copy of ``shared/vendor``; that one is the fallback) beside the
repository on 127.0.0.1, starts hcc-cds as its own process, drives chromium with Playwright
(``executable_path``: never Playwright's own browser download) and checks what a clinician sees: patient-view
cards of the demo patients, Rx View / Rx Sign cards for a sorafenib order without page errors, feedback and a
dismissal stored, the card link opening the assessment page; and in production mode over TLS, the sandbox's
own ES384 JWT accepted. Screenshots of each step go to ``test-artifacts/sandbox/`` (gitignored).

Skipped, with the reason, only without the sandbox build or (outside CI) without chromium or Playwright.
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.api.hook_requests import SERVICE_ID, patient_view
from tests.integration.fhir_server import free_port
from tests.served import served_hcc_cds, stop_process

REPO = Path(__file__).resolve().parents[2]
# a copy ships with the tests (tests/vendor/cds-hooks-sandbox: Apache-2.0, its README names the commit it was
# built from), so a clean clone runs this tier; the workspace's shared/vendor copy is the fallback
SANDBOX = next(
    (p for p in (REPO / "tests" / "vendor" / "cds-hooks-sandbox" / "build",
                 REPO.parent / "shared" / "vendor" / "cds-hooks-sandbox" / "build") if p.is_dir()),
    REPO / "tests" / "vendor" / "cds-hooks-sandbox" / "build",
)
ARTIFACTS = REPO / "test-artifacts" / "sandbox"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI") == "true"
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
TEST_HOST = "hcc-cds.test"
DEMO_PATIENTS = ("demo-eligible", "demo-ineligible", "demo-missing-data")
SORAFENIB_TABLET = "sorafenib 200 MG Oral Tablet"
CARD = '[class*="card-list__decision-card"]'
TIMEOUT_MS = 20_000

try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not SANDBOX.is_dir(), reason=f"the CDS Hooks sandbox build is not beside the repository ({SANDBOX})"),
    pytest.mark.skipif(CHROMIUM is None and not IN_CI, reason="chromium not installed (apt-get install chromium)"),
    pytest.mark.skipif(sync_playwright is None and not IN_CI, reason="playwright not installed (pip install -e '.[dev]')"),
]


# --- servers ------------------------------------------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def sandbox_origin() -> Iterator[str]:
    """The sandbox's static build on 127.0.0.1 (``styles.css`` is missing from the build: a harmless 404)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SANDBOX)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def demo(sandbox_origin, tmp_path_factory) -> Iterator[str]:
    """hcc-cds in demo mode, its own database, CORS for the sandbox's origin."""
    port = free_port()
    env = {
        "HCC_CORS_ORIGINS": sandbox_origin,
        "HCC_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "HCC_DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('sandbox-demo') / 'hcc.sqlite3'}",
    }
    with served_hcc_cds(env, port=port) as app:
        yield app.base_url


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM and sync_playwright, "CI installs chromium (.ci/run) and playwright (the dev extra)"
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                # the sandbox also tries its public default services and FHIR server: only 127.0.0.1 resolves,
                # and the test host name of the TLS server maps there
                f"--host-resolver-rules=MAP {TEST_HOST} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ],
        )
        yield b
        b.close()


class Session:
    """One fresh browser context (empty localStorage) on the sandbox, collecting page errors."""

    def __init__(self, browser, name: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, ignore_https_errors=True)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.console: list[str] = []  # e.g. "Unable to prefetch data using POST for .../_search"
        self.page.on("console", lambda m: self.console.append(m.text))
        self.name = name
        self.shots: list[Path] = []

    def open(self, origin: str, fhir: str, patient: str, discovery: str) -> None:
        url = (f"{origin}/?fhirServiceUrl={quote(fhir, safe='')}&patientId={quote(patient, safe='')}"
               f"&serviceDiscoveryURL={quote(discovery, safe='')}")
        self.page.goto(url)
        self.page.get_by_text(patient).first.wait_for()

    def shot(self, step: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{len(self.shots) + 1:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def cards(self, source: str = "hcc-cds"):
        return self.page.locator(CARD).filter(has_text=source)

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def session(browser, request) -> Iterator[Session]:
    s = Session(browser, request.node.name.replace("[", "-").replace("]", "").replace("/", "_").replace(" ", "-"))
    yield s
    s.close()


def expected_summaries(base: str, patient: str) -> list[str]:
    body = patient_view(patient, fhir_server=f"{base}/demo-fhir")
    r = httpx.post(f"{base}/cds-services/{SERVICE_ID}", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return [c["summary"] for c in r.json()["cards"]]


def order_medication(s: Session, tab: str, *, tablets: int, frequency: str) -> None:
    """In Rx View / Rx Sign: sorafenib 200 mg tablets, N a dose, ``frequency`` (daily, bid, tid, qid)."""
    s.page.get_by_role("button", name=tab, exact=True).click()
    s.page.locator("input[name=medication-input]").fill("sorafenib")
    s.page.get_by_text(SORAFENIB_TABLET, exact=True).first.click()
    s.page.locator("#dosage-amount").fill(str(tablets))
    s.page.locator("[aria-haspopup=listbox]").first.click()  # the frequency (Rx Sign adds a supply duration after it)
    s.page.locator(f'[role=option][data-value="{frequency}"]').click()
    if tab == "Rx Sign":  # order-sign fires when the order is signed
        s.page.get_by_role("button", name="Sign Order").click()


def wait_for_cards(s: Session, minimum: int = 1):
    cards = s.cards()
    cards.nth(minimum - 1).wait_for()
    time.sleep(0.5)  # a second answer (the order re-sent after the dose changed) replaces the first
    return cards


# --- demo mode ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("patient", DEMO_PATIENTS)
def test_patient_view_cards_render_for_each_demo_patient(session, sandbox_origin, demo, patient):
    summaries = expected_summaries(demo, patient)
    assert summaries, f"hcc-cds gives {patient} no card"
    session.open(sandbox_origin, f"{demo}/demo-fhir", patient, f"{demo}/cds-services")
    cards = wait_for_cards(session)
    for summary in summaries:
        cards.filter(has_text=summary).first.wait_for()
    assert cards.count() == len(summaries)
    session.shot("patient-view")
    assert session.errors == []
    # the sandbox prefetched by POST [type]/_search from the demo FHIR endpoint, without falling back to GET
    assert not [m for m in session.console if "Unable to prefetch" in m], session.console


def _not_applicable_patient(base: str) -> str | None:
    ids = [e["resource"]["id"] for e in httpx.get(f"{base}/demo-fhir/Patient", timeout=30).json()["entry"]]
    for pid in ids:
        r = httpx.get(f"{base}/api/v1/patients/{pid}/assessment", timeout=30)
        if r.status_code == 200 and r.json()["recommendation"]["code"] == "not-applicable":
            return pid
    return None


def test_no_card_for_a_patient_the_service_does_not_apply_to(session, sandbox_origin, demo):
    # none of the three named demo patients is not-applicable: the first such patient of the embedded data
    pid = _not_applicable_patient(demo)
    if pid is None:
        pytest.skip("no embedded demo or cohort patient is not-applicable: nothing to check")
    assert expected_summaries(demo, pid) == [], f"{pid}: not-applicable, yet the service answers cards"
    session.open(sandbox_origin, f"{demo}/demo-fhir", pid, f"{demo}/cds-services")
    session.page.get_by_text("No recommendations to display").wait_for()
    assert session.cards().count() == 0
    session.shot("no-card")
    assert session.errors == []


@pytest.mark.parametrize("tab", ["Rx View", "Rx Sign"])
def test_order_hooks_render_cards_for_a_sorafenib_order_without_page_errors(session, sandbox_origin, demo, tab):
    session.open(sandbox_origin, f"{demo}/demo-fhir", "demo-eligible", f"{demo}/cds-services")
    order_medication(session, tab, tablets=1, frequency="daily")  # 200 mg/day: read from {pill} x 200 mg
    cards = wait_for_cards(session)
    cards.filter(has_text="200 mg/day").first.wait_for()
    session.shot(f"{tab.lower().replace(' ', '-')}-200mg")
    order_medication(session, tab, tablets=2, frequency="bid")  # 800 mg/day: the study's full dose
    session.page.locator(CARD).filter(has_text="200 mg/day").first.wait_for(state="detached")
    cards = wait_for_cards(session)
    texts = cards.all_inner_texts()
    assert texts and not any("could not be read" in t for t in texts), texts
    session.shot(f"{tab.lower().replace(' ', '-')}-800mg")
    assert session.errors == []


def test_a_suggestion_and_a_dismissal_reach_the_feedback_api(session, sandbox_origin, demo):
    def rates() -> dict[str | None, dict]:
        r = httpx.get(f"{demo}/api/v1/feedback", params={"service_id": "hcc-order-select"}, timeout=30)
        assert r.status_code == 200, r.text
        return {t["topic_code"]: t for t in r.json()["topics"]}

    before = rates()
    session.open(sandbox_origin, f"{demo}/demo-fhir", "demo-eligible", f"{demo}/cds-services")
    order_medication(session, "Rx View", tablets=1, frequency="daily")
    cards = wait_for_cards(session, minimum=2)
    reduced = cards.filter(has_text="200 mg/day").first
    suggestion = reduced.get_by_role("button").filter(has_text="400 mg twice daily").first
    session.shot("before-feedback")
    suggestion.click()
    other = session.cards().filter(has_not_text="200 mg/day").first
    other.get_by_role("button", name="Dismiss").click()
    menu_item = session.page.locator('[role=menuitem]').first
    if menu_item.is_visible():  # a card with override reasons asks for one
        menu_item.click()
    session.shot("after-feedback")

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = rates()
        accepted = sum(t["accepted"] for t in after.values()) - sum(t["accepted"] for t in before.values())
        overridden = sum(t["overridden"] for t in after.values()) - sum(t["overridden"] for t in before.values())
        if accepted >= 1 and overridden >= 1:
            break
        time.sleep(0.3)
    assert (accepted, overridden) >= (1, 1), after
    assert session.errors == []


def test_the_card_link_opens_the_assessment_page(session, sandbox_origin, demo):
    session.open(sandbox_origin, f"{demo}/demo-fhir", "demo-eligible", f"{demo}/cds-services")
    card = wait_for_cards(session).first
    link = card.get_by_role("button").filter(has_text="Full assessment").first
    with session.context.expect_page() as opened:
        link.click()
    page = opened.value
    page.wait_for_load_state()
    assert page.url.startswith(f"{demo}/assessments/"), page.url
    page.get_by_text("What decided it").first.wait_for()  # the page opens on its decision
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{session.name}-assessment-page.png"), full_page=True)
    assert session.errors == []


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".swagger-ui .info .title"), ("/redoc", "redoc h1")])
def test_the_api_docs_render_with_every_other_host_unreachable(session, demo, path, rendered):
    """Swagger UI and ReDoc load from the app itself: chromium resolves no host but 127.0.0.1."""
    elsewhere: list[str] = []

    def record(route):
        if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            return route.continue_()
        elsewhere.append(route.request.url)
        return route.abort()

    session.page.route("**/*", record)
    session.page.goto(f"{demo}{path}")
    session.page.locator(rendered).filter(has_text="hcc-cds").first.wait_for()
    session.shot(path.strip("/"))
    assert elsewhere == [] and session.errors == []


# --- production mode over TLS: the sandbox's own JWT ------------------------------------------------------------------


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the test host name (and 127.0.0.1), made with ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TEST_HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TEST_HOST),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@contextmanager
def _served_over_tls(env: dict[str, str], port: int, cert: Path, key: Path) -> Iterator[str]:
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "service.main:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError("hcc-cds over TLS did not start: " + log.read().decode(errors="replace")[-2000:])
            time.sleep(0.2)
        yield f"https://{TEST_HOST}:{port}"
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture(scope="module")
def production(sandbox_origin, demo, tmp_path_factory) -> Iterator[str]:
    """hcc-cds in production mode over TLS at https://hcc-cds.test:PORT, trusting the sandbox by its pinned key."""
    folder = tmp_path_factory.mktemp("sandbox-production")
    cert, key = _certificate(folder)
    jwks = json.loads((SANDBOX / ".well-known" / "jwks.json").read_text())
    clients = folder / "trusted_clients.json"
    # no inline jwks and an unreachable jku: only the key pinned for the jku (jku_keys) can verify its tokens
    clients.write_text(json.dumps([{"iss": SANDBOX_ISS, "name": "CDS Hooks sandbox (test)",
                                    "jku": [SANDBOX_JKU], "jku_keys": {SANDBOX_JKU: jwks}}]))
    port = free_port()
    env = {
        "HCC_MODE": "production",
        "HCC_PUBLIC_BASE_URL": f"https://{TEST_HOST}:{port}",
        "HCC_TRUSTED_CLIENTS": str(clients),
        "HCC_FHIR_ALLOWLIST": f"{demo}/demo-fhir",  # the FHIR server the sandbox names (the demo process)
        "HCC_CORS_ORIGINS": sandbox_origin,
        "HCC_DATABASE_URL": f"sqlite:///{folder / 'hcc.sqlite3'}",
    }
    with _served_over_tls(env, port, cert, key) as base:
        yield base


def test_production_accepts_the_sandboxs_own_jwt_over_tls(session, sandbox_origin, demo, production):
    # without a token the production service answers nothing
    assert httpx.get(f"{production.replace(TEST_HOST, '127.0.0.1')}/cds-services", verify=False).status_code == 401
    summaries = expected_summaries(demo, "demo-eligible")
    session.open(sandbox_origin, f"{demo}/demo-fhir", "demo-eligible", f"{production}/cds-services")
    cards = wait_for_cards(session)
    cards.filter(has_text=summaries[0]).first.wait_for()
    session.shot("production-patient-view")
    order_medication(session, "Rx Sign", tablets=2, frequency="bid")
    cards = wait_for_cards(session)
    assert not any("could not be read" in t for t in cards.all_inner_texts())
    session.shot("production-rx-sign")
    assert session.errors == []
