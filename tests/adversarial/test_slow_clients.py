"""Slow and oversized requests before authentication: the server's own limits, on a real socket.

Issue 18 item 7: with no header or body read timeout and no header size limit, a body dribbled one
byte every 5 s stayed open for minutes, 1 100 connections with unfinished headers made ``/healthz``
fail for 45 s, and eight 64 MB headers pushed the process to 731 MB. The app runs here under uvicorn
with the options ``hcc-cds serve`` uses (``service.observability.http_limits.server_options``), with
short timeouts so that the tests stay quick; everything is on 127.0.0.1 and small.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from service.main import create_app
from tests.adversarial.conftest import demo_settings
from tests.adversarial.servers import app_in_thread

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
HOOK = "/cds-services/hcc-tace-resistance"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from service.observability import http_limits

    class QuickDeadline(http_limits.HeaderDeadlineH11Protocol):
        header_timeout = HEADER_TIMEOUT

    settings = demo_settings(body_timeout_seconds=BODY_TIMEOUT, max_header_bytes=32_768, max_connections=100,
                             database_url=f"sqlite:///{tmp_path_factory.mktemp('slow') / 'db.sqlite3'}")
    options = {**http_limits.server_options(settings), "http": QuickDeadline}
    with app_in_thread(create_app(settings), **options) as base_url:
        yield base_url


def _connect(base_url: str) -> socket.socket:
    parts = urlsplit(base_url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or ``limit`` seconds pass)."""
    started = time.monotonic()
    data = b""
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - started


def test_a_connection_that_never_finishes_its_headers_is_closed(server):
    sock = _connect(server)
    try:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(12):  # a header byte every 0.25 s: 3 s of dribbling, far past the deadline
            try:
                sock.sendall(b"X")
            except OSError:
                break
            time.sleep(0.25)
        data, _ = _read_until_closed(sock, 5)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert elapsed < HEADER_TIMEOUT + 4.5


def test_a_connection_that_sends_nothing_is_closed(server):
    sock = _connect(server)
    try:
        data, elapsed = _read_until_closed(sock, HEADER_TIMEOUT + 5)
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 408") and elapsed < HEADER_TIMEOUT + 2, (data[:100], elapsed)


def test_many_idle_connections_are_dropped_and_healthz_answers(server):
    socks = [_connect(server) for _ in range(60)]
    try:
        time.sleep(HEADER_TIMEOUT + 1)
        assert httpx.get(f"{server}/healthz", timeout=5).status_code == 200
        closed = 0
        for sock in socks:
            data, _ = _read_until_closed(sock, 0.5)
            closed += data.startswith(b"HTTP/1.1 408")
        assert closed == len(socks)
    finally:
        for sock in socks:
            sock.close()


def test_an_oversized_header_is_refused_before_it_is_buffered(server):
    sock = _connect(server)
    sent = 0
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        chunk = b"a" * 65536
        try:
            for _ in range(64):  # up to 4 MiB; the server must give up after ~32 KiB
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        data, _ = _read_until_closed(sock, 5)
    finally:
        sock.close()
    assert not data.startswith(b"HTTP/1.1 200"), "a 4 MiB header was accepted"
    assert data == b"" or data.startswith(b"HTTP/1.1 400") or data.startswith(b"HTTP/1.1 431"), data[:200]


def test_a_dribbled_body_gets_408_and_the_connection_is_closed(server):
    sock = _connect(server)
    try:
        started = time.monotonic()
        sock.sendall(f"POST {HOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: 1000\r\n\r\n{".encode())
        for _ in range(12):  # a byte every 0.25 s
            try:
                sock.sendall(b" ")
            except OSError:
                break
            time.sleep(0.25)
        data, _ = _read_until_closed(sock, 5)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert elapsed < BODY_TIMEOUT + 4.5


def test_serve_runs_uvicorn_with_these_limits(monkeypatch):
    """``hcc-cds serve`` (and so the container image) runs uvicorn with these options, not its defaults."""
    from service import cli
    from service.observability import server as served

    seen: dict = {}
    monkeypatch.setattr(served, "run", lambda app, **options: seen.update(options) or 0)
    monkeypatch.setenv("HCC_MODE", "demo")
    monkeypatch.setenv("HCC_MAX_HEADER_BYTES", "40000")
    monkeypatch.setenv("HCC_MAX_CONNECTIONS", "321")
    assert cli.main(["serve", "--port", "0"]) == 0
    assert seen["http"] == "service.observability.http_limits:HeaderDeadlineH11Protocol"
    assert seen["h11_max_incomplete_event_size"] == 40000 and seen["limit_concurrency"] == 321
    assert seen["timeout_keep_alive"] == 5


def test_the_hundredth_request_of_a_keep_alive_connection_is_answered_with_connection_close(server):
    """So that connections placed on one worker by the kernel's hash are drawn again (http_limits' doc)."""
    from service.observability.http_limits import REQUESTS_PER_CONNECTION

    sock = _connect(server)
    try:
        heads = []
        for _ in range(REQUESTS_PER_CONNECTION):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, f"closed after {len(heads)} responses"
                data += chunk
            heads.append(data.split(b"\r\n\r\n")[0].lower())
        rest, _ = _read_until_closed(sock, 5)
    finally:
        sock.close()
    assert all(h.startswith(b"http/1.1 200") for h in heads)
    assert not any(b"connection: close" in h for h in heads[:-1])
    assert b"connection: close" in heads[-1] and rest == b"", "the last response says close, then the server closes"
