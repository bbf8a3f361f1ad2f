"""The log scanner (tools/log_scan.py) and what it must catch; the known leaks, reproduced.

The session-wide scan itself runs at the end of the session (tests/adversarial/conftest.py); these
tests prove the scanner finds what it must (a planted token first) and ignores what it must not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import httpx
import pytest
from log_scan import demo_patients, phi_scanner  # tools/ is on sys.path (conftest.py)

from tests.adversarial.conftest import CAPTURE, ROOT, SCANNER, register_secret, scan_captured


def test_a_planted_token_in_the_captured_logs_is_caught():
    """Plant a token through the real logging path: the capture keeps it and the scan finds it."""
    secret = register_secret("planted-" + "k" * 24)
    first = len(CAPTURE.lines)
    logging.getLogger("hcc_cds.adversarial.canary").warning("sent Authorization with %s", secret)
    planted = CAPTURE.lines[first:]
    try:
        assert planted, "the capture did not keep an hcc_cds record"
        findings = scan_captured(planted, SCANNER)
        assert [f.kind for _, f in findings] == ["token"]
    finally:
        del CAPTURE.lines[first:]  # the canary must not fail the session's scan


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("GET with eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl", "token"),
        ("Authorization: Bearer abcdefgh12345678", "token"),
        ('{"access_token": "abcdefgh12345678"}', "token"),
        ("patient Eligible Demo opened", "name"),
        ("patient Demo, Ineligible opened", "name"),
        ("born 1955-07-02", "birth-date"),
        ("mrn DEMO-MISSING-DATA", "identifier"),
        ("GET /api/v1/patients/cohort-07/assessment", "identifier"),
    ],
)
def test_the_scanner_finds_each_kind(line, kind):
    assert [f.kind for f in phi_scanner().scan(line)] == [kind]


@pytest.mark.parametrize(
    "line",
    [
        "GET /api/v1/patients/{patient_id}/assessment 200",
        "CDS client refused: audience (iss='https://ehr.example.org' kid='ec-1' jti='5f1c' path='/cds-services')",
        "Authorization: Bearer [redacted]",
        "cohort-010 is not cohort-01's neighbour",  # whole words only: only the second counts
        "DEMO MODE: embedded synthetic patients",
    ],
)
def test_the_scanner_ignores_templates_redactions_and_parts_of_words(line):
    findings = phi_scanner().scan(line)
    assert [f.term for f in findings] in ([], ["cohort-01"])


def test_every_demo_and_cohort_patient_is_in_the_list():
    scanner = phi_scanner()
    patients = demo_patients()
    assert len(patients) == 3 + 34
    for patient in patients:
        assert patient["id"] in scanner.identifiers
        assert any(i["value"] in scanner.identifiers for i in patient["identifier"])
        name = patient["name"][0]
        assert f"{' '.join(name['given'])} {name['family']}" in scanner.names
    # relative birth dates are resolved for the days the data may have been loaded on
    assert any(d.startswith(("19", "20")) for d in scanner.birth_dates) and len(scanner.birth_dates) >= 37


def test_the_command_scans_a_log_file_and_fails_on_a_finding(tmp_path):
    clean, dirty = tmp_path / "clean.log", tmp_path / "dirty.log"
    clean.write_text("INFO hcc_cds.access GET /api/v1/patients/{patient_id}/assessment 200\n")
    dirty.write_text(clean.read_text() + "INFO hcc_cds.fhir FHIR GET /fhir/Patient/demo-eligible answered 503\n")
    tool = [sys.executable, str(ROOT / "tools" / "log_scan.py")]
    assert subprocess.run([*tool, str(clean)], capture_output=True).returncode == 0
    result = subprocess.run([*tool, str(dirty), "--day", date.today().isoformat()], capture_output=True, text=True)
    assert result.returncode == 1 and "demo-eligible" in result.stdout


# -- the known leak, reproduced ---------------------------------------------------------------------------


class _Unavailable(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_retried_patient_read_logs_no_patient_id():
    from service.fhir.client import HttpFhirSource

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    Thread(target=server.serve_forever, daemon=True).start()
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep(level=logging.DEBUG)
    logger = logging.getLogger("hcc_cds.fhir")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)

    async def read() -> None:
        async with httpx.AsyncClient() as client:
            source = HttpFhirSource(client, f"http://127.0.0.1:{server.server_port}/fhir", sleep=lambda s: asyncio.sleep(0))
            with pytest.raises(Exception):  # noqa: B017 - FhirUnavailableError after the retries
                await source.read("Patient", "demo-eligible")

    try:
        asyncio.run(read())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        server.shutdown()
        server.server_close()
    assert records, "the retry was not logged at all"
    assert not phi_scanner().scan_lines(records), json.dumps(records)
