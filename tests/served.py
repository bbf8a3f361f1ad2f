"""``hcc-cds serve`` as its own process, for tests that need a real server (README, browser)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.integration.fhir_server import free_port

START_TIMEOUT_SECONDS = 30


@dataclass
class ServedApp:
    base_url: str
    port: int
    process: subprocess.Popen
    output: str = ""  # what the server printed, filled when it has stopped


@contextmanager
def served_hcc_cds(
    env: dict[str, str] | None = None, *, port: int | None = None, args: tuple[str, ...] = ()
) -> Iterator[ServedApp]:
    """Start the installed ``hcc-cds serve`` (plus ``args``) on 127.0.0.1, wait for /healthz, stop it afterwards."""
    port = port or free_port()
    exe = Path(sys.executable).with_name("hcc-cds")
    # the server's output goes to a file: a pipe nobody reads fills up and blocks the server
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port), *args],
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    app = ServedApp(f"http://127.0.0.1:{port}", port, proc)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    try:
        while True:
            try:
                if httpx.get(f"{app.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("hcc-cds serve did not become healthy: " + _read(log)[-2000:])
            time.sleep(0.2)
        yield app
    finally:
        stop_process(proc)
        app.output = _read(log)
        log.close()


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a served process; kill it when it has not ended within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _read(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")
