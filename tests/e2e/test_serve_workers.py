"""``hcc-cds serve --workers 2``: uvicorn's workers each build the app from the environment; the parent
only checks the configuration and never builds the app itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from service.observability.server import reuse_port_socket
from tests.api.hook_requests import SERVICE_ID
from tests.e2e.test_readme_demo import sample_request
from tests.integration.fhir_server import free_port
from tests.served import served_hcc_cds

# the app built in a process (models, value sets, demo data, benchmark tables) takes ~110 MiB resident;
# a parent that only checked the settings and runs uvicorn's supervisor stays well under this
PARENT_WITHOUT_APP_MIB = 90


def _bare_env(**values: str) -> dict[str, str]:
    """Only PATH (and PYTHONPATH, which says which tree's code runs) besides ``values``."""
    return {"PATH": "/usr/bin:/bin", **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}, **values}


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_two_workers_serve_hooks_and_the_parent_does_not_build_the_app(tmp_path):
    with served_hcc_cds(
        {"HCC_DATABASE_URL": f"sqlite:///{tmp_path / 'workers.sqlite3'}"}, args=("--workers", "2")
    ) as app:
        command = sample_request().replace("127.0.0.1:8080", f"127.0.0.1:{app.port}")
        with httpx.Client(base_url=app.base_url, timeout=30) as client:
            assert client.get("/healthz").json()["mode"] == "demo"
            for _ in range(6):  # several calls, on new connections: whichever worker takes them answers
                out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True)
                cards = httpx.Response(200, content=out.stdout.encode()).json()["cards"]
                assert len(cards) == 1 and "consider sorafenib" in cards[0]["summary"]
            assert SERVICE_ID in client.get("/cds-services").text
        workers = _children(app.process.pid)
        parent_mib = _rss_mib(app.process.pid)
    assert app.output.count("Application startup complete") == 2, app.output[-2000:]
    assert app.output.count("DEMO MODE") == 2, "each worker logs the demo warning from its own app"
    assert len(workers) >= 2
    assert parent_mib < PARENT_WITHOUT_APP_MIB, f"the parent holds {parent_mib:.0f} MiB: it built the app"


def test_a_bad_configuration_fails_in_the_parent_before_any_worker_starts():
    exe = Path(sys.executable).with_name("hcc-cds")
    env = _bare_env(HCC_MODE="production")
    result = subprocess.run(
        [str(exe), "serve", "--workers", "2", "--port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "HCC_MODE=production cannot start" in result.stderr and "HCC_TRUSTED_CLIENTS is not set" in result.stderr
    assert "Application startup complete" not in result.stderr + result.stdout


def test_an_unreadable_clinical_overrides_file_fails_in_the_parent_with_workers(tmp_path):
    exe = Path(sys.executable).with_name("hcc-cds")
    env = _bare_env(HCC_CLINICAL_OVERRIDES=str(tmp_path / "missing.yaml"))
    result = subprocess.run(
        [str(exe), "serve", "--workers", "2", "--port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and "HCC_CLINICAL_OVERRIDES: cannot read" in result.stderr


def _sockets_on(pid: int, port: int, status: str) -> int:
    return sum(
        1 for c in psutil.Process(pid).net_connections(kind="tcp") if c.laddr.port == port and c.status == status
    )


def _listening(parent: int, port: int, want: int) -> dict[int, int]:
    """Listening sockets on ``port`` per process (the parent and its workers), once ``want`` workers listen."""
    deadline = time.monotonic() + 30
    while True:
        by_pid = {pid: _sockets_on(pid, port, psutil.CONN_LISTEN) for pid in [parent, *_children(parent)]}
        if sum(n > 0 for pid, n in by_pid.items() if pid != parent) >= want or time.monotonic() > deadline:
            return by_pid
        time.sleep(0.2)


def test_each_worker_listens_on_its_own_socket_and_a_burst_of_connections_reaches_both(tmp_path):
    """uvicorn's shared socket let the first worker awake accept a whole burst of keep-alive connections
    (the other idle for the connections' life); each worker's own SO_REUSEPORT socket lets the kernel spread
    them. 16 connections all on one worker by chance: 2 in 65 536."""
    with served_hcc_cds({"HCC_DATABASE_URL": f"sqlite:///{tmp_path / 'w.sqlite3'}"}, args=("--workers", "2")) as app:
        parent = app.process.pid
        listening = _listening(parent, app.port, want=2)
        burst = [socket.create_connection(("127.0.0.1", app.port)) for _ in range(16)]
        try:
            for conn in burst:  # every connection answered, then held open (keep-alive)
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            for conn in burst:
                assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            held = {pid: _sockets_on(pid, app.port, psutil.CONN_ESTABLISHED) for pid in _children(parent)}
        finally:
            for conn in burst:
                conn.close()
    assert listening[parent] == 0, "the parent never listens"
    assert [n for n in listening.values() if n] == [1, 1], listening  # two workers, one socket each
    serving = [n for pid, n in held.items() if listening[pid]]
    assert sum(serving) == 16 and len(serving) == 2 and all(serving), held


@pytest.mark.parametrize("holder", ["another program", "another hcc-cds"])
def test_a_port_already_in_use_fails_in_the_parent_before_any_worker_starts(holder, tmp_path):
    port = free_port()
    if holder == "another program":
        held = socket.socket()
        held.bind(("127.0.0.1", port))
    else:  # an instance already serving there with SO_REUSEPORT: a second one must not share its connections
        held = reuse_port_socket("127.0.0.1", port)
    held.listen()
    with held:
        exe = Path(sys.executable).with_name("hcc-cds")
        result = subprocess.run(
            [str(exe), "serve", "--workers", "2", "--port", str(port)], capture_output=True, text=True, timeout=30,
            env={**os.environ, "HCC_DATABASE_URL": f"sqlite:///{tmp_path / 'w.sqlite3'}"},
        )  # fmt: skip
    assert result.returncode == 3, result.stderr[-2000:]
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Started server process" not in result.stderr + result.stdout
