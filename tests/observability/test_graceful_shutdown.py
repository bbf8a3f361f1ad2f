"""SIGTERM while a hook call is in flight: ``hcc-cds serve`` finishes it (200), then exits 0.

The real service in its own process, in demo mode. The hook names as its ``fhirServer`` a slow FHIR
server this test runs on the loopback (allowed in demo mode), which answers each request after
``DELAY`` seconds, so the call is still being served when the signal arrives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from service.cli import build_parser
from tests.api.hook_requests import SERVICE_ID, patient_view
from tests.integration.fhir_server import free_port
from tests.observability.fhir_stub import SlowFhirServer

DELAY = 1.5
PATIENT = SlowFhirServer.PATIENT


def cli_drains_and_exits_zero() -> bool:
    """Whether ``hcc-cds serve`` has the graceful-shutdown option (service/cli.py wired to service.observability.server)."""
    return "--timeout-graceful-shutdown" in build_parser()._subparsers._group_actions[0].choices["serve"].format_help()


def start_service(port: int, *extra: str) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("hcc-cds")
    env = {**os.environ, "HCC_MODE": "demo", "HCC_LOG_LEVEL": "INFO"}
    for name in ("HCC_FHIR_ALLOWLIST", "HCC_FHIR_BASE_URL", "HCC_TRUSTED_CLIENTS", "HCC_WORKERS"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("hcc-cds serve exited at start: " + proc.stdout.read().decode()[-3000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("hcc-cds serve did not become healthy: " + proc.communicate()[0].decode()[-3000:])


def call_in_background(url: str, body: dict, timeout: float) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def call() -> None:
        started = time.monotonic()
        try:
            result["response"] = httpx.post(url, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            result["error"] = exc
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, result


def test_sigterm_lets_the_in_flight_hook_call_finish_then_exits_0():
    port = free_port()
    with SlowFhirServer(DELAY) as fhir:
        proc = start_service(port)
        try:
            url = f"http://127.0.0.1:{port}/cds-services/{SERVICE_ID}"
            thread, result = call_in_background(url, patient_view(PATIENT, fhir_server=fhir.base_url), timeout=60)
            assert fhir.first_request.wait(20), "the service never called the FHIR server"
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            time.sleep(0.5)  # the call is still waiting on the slow FHIR server...
            assert thread.is_alive(), "the hook call should still be in flight"
            with pytest.raises(httpx.TransportError):  # ...but no new connection is accepted
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)

            thread.join(60)
            returncode = proc.wait(30)
            output = proc.stdout.read().decode()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "error" not in result, f"the in-flight call failed: {result.get('error')!r}\n{output[-3000:]}"
    response = result["response"]
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}  # the slow patient has no HCC
    assert time.monotonic() - signalled >= DELAY - 0.5  # it did wait for the FHIR answers
    if returncode != 0 and not cli_drains_and_exits_zero():
        pytest.xfail(f"hcc-cds serve exited {returncode}: service/cli.py does not use service.observability.server yet")
    assert returncode == 0, output[-3000:]
    # the JSON access line of the drained call: route template, never the patient id
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (access,) = [line for line in lines if line["logger"] == "hcc_cds.access" and line.get("service_id") == SERVICE_ID]
    assert access["status"] == 200 and access["route"] == "/cds-services/{service_id}"
    assert PATIENT not in output


@pytest.mark.skipif(not cli_drains_and_exits_zero(), reason="service/cli.py has no --timeout-graceful-shutdown yet")
def test_a_call_longer_than_the_graceful_timeout_is_cut_and_the_process_still_exits():
    port = free_port()
    with SlowFhirServer(4.0) as fhir:
        proc = start_service(port, "--timeout-graceful-shutdown", "1")
        try:
            url = f"http://127.0.0.1:{port}/cds-services/{SERVICE_ID}"
            thread, _ = call_in_background(url, patient_view(PATIENT, fhir_server=fhir.base_url), timeout=60)
            assert fhir.first_request.wait(20)
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            returncode = proc.wait(30)
            waited = time.monotonic() - signalled
            thread.join(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert returncode == 0
    assert waited < 3.5, f"the shutdown took {waited:.1f} s despite a 1 s graceful timeout"
