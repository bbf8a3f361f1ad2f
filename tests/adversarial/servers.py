"""Servers the adversarial tests run on 127.0.0.1: the app in a thread (uvicorn), and small helpers.

Everything here listens on the loopback interface only and stops when its context exits.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from tests.integration.fhir_server import free_port

START_TIMEOUT_SECONDS = 30


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the thread must not take the test process's signals
        pass


@contextmanager
def app_in_thread(app, *, port: int | None = None, **options) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a background thread; yield its base URL.

    ``options``: more uvicorn settings (e.g. ``service.observability.http_limits.server_options``).

    Unlike a subprocess, the app's log records stay in this process, where the adversarial log
    capture (tests/adversarial/conftest.py) scans them.
    """
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, log_level="warning", access_log=False, lifespan="on",
        **options,
    )
    server = _ThreadServer(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True, name=f"app-{port}")
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start in its thread")
        time.sleep(0.02)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class ServedProcess:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def served_process(env: dict[str, str], log_path: Path, *, port: int | None = None) -> Iterator[ServedProcess]:
    """``hcc-cds serve`` as its own process on 127.0.0.1, its output written to ``log_path``.

    Unlike tests/served.py (which pipes the output and reads it only at the end), the output goes to
    a file: a server that logs more than a pipe holds (64 KiB: a few hundred JSON access-log lines)
    would otherwise block on its next log line under load.
    """
    port = port or free_port()
    exe = Path(sys.executable).with_name("hcc-cds")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(port)], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    served = ServedProcess(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        if not wait_until(lambda: proc.poll() is not None or healthy(served.base_url), START_TIMEOUT_SECONDS):
            raise RuntimeError("hcc-cds serve did not become healthy: " + served.output[-2000:])
        if proc.poll() is not None:
            raise RuntimeError("hcc-cds serve exited: " + served.output[-2000:])
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
