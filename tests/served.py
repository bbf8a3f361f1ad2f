"""``hcc-cds serve`` as its own process, for tests that need a real server (README, browser)."""

from __future__ import annotations

import os
import subprocess
import sys
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
def served_hcc_cds(env: dict[str, str] | None = None, *, port: int | None = None) -> Iterator[ServedApp]:
    """Start the installed ``hcc-cds serve`` on 127.0.0.1, wait for /healthz, stop it afterwards."""
    port = port or free_port()
    exe = Path(sys.executable).with_name("hcc-cds")
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
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
                raise RuntimeError("hcc-cds serve did not become healthy: " + proc.stdout.read().decode()[-2000:])
            time.sleep(0.2)
        yield app
    finally:
        proc.terminate()
        try:
            app.output = proc.communicate(timeout=10)[0].decode()
        except subprocess.TimeoutExpired:
            proc.kill()
            app.output = proc.communicate()[0].decode()
