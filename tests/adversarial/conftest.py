"""The adversarial suite's plumbing: the log capture and its end-of-session scan, markers, shared servers.

Log scan
    While an adversarial test runs, every record of the ``hcc_cds`` loggers (at DEBUG and up) and of
    ``uvicorn.error`` is kept, rendered as the operator would read it (message, exception text).
    At the end of the session the scanner of ``tools/log_scan.py`` (demo and cohort patients' names,
    birth dates, MRNs and ids; every secret a test registered with :func:`register_secret`; anything
    shaped like a JWT or a bearer token) reads them. It must first find a canary it plants itself
    (a broken scanner must not pass); then any finding fails the session, with the lines printed.
    Set ``HCC_ADVERSARIAL_LOG=path`` to keep the captured lines in a file for ``tools/log_scan.py``.

Markers
    Every test here is marked ``adversarial`` (``pytest -m adversarial`` runs the suite alone).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import pytest

from service.demo import as_transaction, demo_bundles
from service.settings import Settings
from tests.integration.fhir_server import FhirServer, start_fhir_server

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from log_scan import Finding, Scanner, phi_scanner  # noqa: E402

HERE = Path(__file__).resolve().parent
CAPTURED_LOGGERS = ("hcc_cds", "uvicorn.error")
FHIR_TOKEN = "adv-fhir-token-" + uuid.uuid4().hex  # the bearer token the session's FHIR server accepts

# -- log capture ------------------------------------------------------------------------------------------


class LogCapture(logging.Handler):
    """Keeps (test id, rendered record) for every record logged while an adversarial test runs."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[tuple[str, str]] = []
        self.current: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.current is None:
            return
        try:
            text = f"{record.levelname} {record.name} {record.getMessage()}"
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is still scanned
            text = f"{record.levelname} {record.name} {record.msg!r} {record.args!r}"
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.lines.append((self.current, text))


CAPTURE = LogCapture()
def _load_days() -> list[date]:
    from tests.adversarial.clinical_data import AS_OF  # the day the fuzzed records are dated from

    return [Settings().today(), AS_OF]


SCANNER: Scanner = phi_scanner(_load_days())
_previous_levels: dict[str, int] = {}


def register_secret(secret: str) -> str:
    """A secret (token, password) that must never appear in the logs; returns it."""
    SCANNER.add_secret(secret)
    return secret


def register_patient(patient: dict, days: tuple[date, ...] = ()) -> dict:
    """A synthetic patient a test made up: their name, birth date, MRN and id must never be logged."""
    SCANNER.add_patient(patient, days)
    return patient


register_secret(FHIR_TOKEN)


def _is_adversarial(item: pytest.Item) -> bool:
    return HERE in Path(str(item.fspath)).resolve().parents


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "adversarial: the adversarial suite (tests/adversarial)")
    for name in CAPTURED_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(CAPTURE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_adversarial(item):
            item.add_marker(pytest.mark.adversarial)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _is_adversarial(item):
        CAPTURE.current = item.nodeid
        for name in CAPTURED_LOGGERS:
            logger = logging.getLogger(name)
            _previous_levels.setdefault(name, logger.level)
            logger.setLevel(logging.DEBUG)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    if _is_adversarial(item):
        CAPTURE.current = None
        for name, level in _previous_levels.items():
            logging.getLogger(name).setLevel(level)
        _previous_levels.clear()


def scan_captured(lines: list[tuple[str, str]], scanner: Scanner) -> list[tuple[str, Finding]]:
    return [(test, finding) for test, text in lines for finding in scanner.scan(text)]


def _canary_is_caught(scanner: Scanner) -> bool:
    """The scanner must find a token, a name, a birth date and an MRN planted on purpose."""
    canary = "canary-" + uuid.uuid4().hex
    scanner.add_secret(canary)
    planted = [
        f"INFO hcc_cds.canary FHIR token {canary}",
        "INFO hcc_cds.canary Authorization: Bearer abcdefghijklmnop123",
        "INFO hcc_cds.canary patient Eligible Demo",
        "INFO hcc_cds.canary born 1960-03-14",
        "INFO hcc_cds.canary MRN DEMO-INELIGIBLE",
    ]
    return all(scanner.scan(line) for line in planted)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not CAPTURE.lines and not any(_is_adversarial(i) for i in getattr(session, "items", [])):
        return
    keep = os.environ.get("HCC_ADVERSARIAL_LOG")
    if keep:
        Path(keep).write_text("".join(f"[{test}] {text}\n" for test, text in CAPTURE.lines), encoding="utf-8")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not _canary_is_caught(SCANNER):
        if reporter:
            reporter.write_line("adversarial log scan: the scanner missed the planted canary; the scan is broken", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    from tests.adversarial.known_defects import KNOWN_LOG_LEAKS

    known_patterns = [re.compile(pattern) for pattern in KNOWN_LOG_LEAKS]
    all_findings = scan_captured(CAPTURE.lines, SCANNER)
    known = [(t, f) for t, f in all_findings if any(p.search(f.line) for p in known_patterns)]
    findings = [(t, f) for t, f in all_findings if (t, f) not in known]
    if reporter:
        reporter.write_line(
            f"adversarial log scan: {len(CAPTURE.lines)} log records scanned, {len(findings)} finding(s)"
            + (f", {len(known)} more of known defects (known_defects.KNOWN_LOG_LEAKS)" if known else ""),
            red=bool(findings),
        )
        for test, finding in findings[:50]:
            reporter.write_line(f"  [{test}] {finding}", red=True)
    if findings:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- shared servers and apps --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sekmet(tmp_path_factory) -> Iterator[FhirServer]:
    """The real FHIR test server on 127.0.0.1, requiring FHIR_TOKEN, loaded with the demo patients for today."""
    server = start_fhir_server(tmp_path_factory.mktemp("adv-fhir"), bearer_tokens=[FHIR_TOKEN])
    server.load(as_transaction(demo_bundles(Settings().today())), token=FHIR_TOKEN)
    yield server
    server.stop()


def demo_settings(**overrides) -> Settings:
    """Demo-mode settings that ignore the environment's HCC_* FHIR and auth variables."""
    values = {
        "mode": "demo",
        "fhir_base_url": None,
        "fhir_token": None,
        "fhir_allowlist": "",
        "trusted_clients": None,
        "clinical_overrides": None,
        "cors_origins": "",
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class NetworkGuard:
    """Every request the app's HTTP client makes; any to a host off the loopback interface is stopped."""

    requests: list[httpx.Request] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)
        host = request.url.host
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.refused.append(str(request.url.copy_with(query=None)))
            raise httpx.ConnectError(f"adversarial network guard: {host} is not on the loopback interface")


def guard_network(app) -> NetworkGuard:
    guard = NetworkGuard()
    app.state.hcc.fhir.client.event_hooks["request"].append(guard)
    return guard
