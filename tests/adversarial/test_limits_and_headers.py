"""Oversized bodies (413), header injection (CRLF in X-Request-ID and elsewhere), Host and Origin spoofing.

Body limits are tested on the app served by uvicorn (the real ASGI path: a declared Content-Length
and a chunked body with none); header injection both through the ASGI app directly (where a CR LF
can reach the application) and over a raw socket (what a real client can send).
"""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.adversarial.conftest import CAPTURE, demo_settings
from tests.adversarial.servers import app_in_thread
from tests.api.hook_requests import SERVICE_ID, patient_view

LIMIT = 4096
POST_ROUTES = ["/cds-services/hcc-tace-resistance", "/cds-services/hcc-tace-resistance/feedback", "/api/v1/assessments"]


@pytest.fixture(scope="module")
def small_limit():
    app = create_app(demo_settings(max_body_bytes=LIMIT))
    with app_in_thread(app) as base_url:
        yield base_url


def _padding(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    head, tail = b'{"resourceType": "Bundle", "pad": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_declared_body_over_the_limit_is_413_before_it_is_read(small_limit, path):
    response = httpx.post(small_limit + path, content=_padding(LIMIT + 1), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "HCC_MAX_BODY_BYTES" in response.json()["detail"]


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_chunked_body_over_the_limit_is_413(small_limit, path):
    def chunks():
        for _ in range(LIMIT // 512 + 2):
            yield b" " * 512  # JSON whitespace, never a complete document: only the size matters

    response = httpx.post(small_limit + path, content=chunks(), headers={"content-type": "application/json"})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_body_at_the_limit_is_read(small_limit, path):
    response = httpx.post(small_limit + path, content=_padding(LIMIT), headers={"content-type": "application/json"})
    assert response.status_code not in (413, 500), response.text


def test_a_lying_content_length_is_refused_not_a_crash(small_limit):
    """Declares less than it sends: the server must not read past the declared length into the next request."""
    port = int(small_limit.rsplit(":", 1)[1])
    body = _padding(LIMIT * 4)
    raw = (
        b"POST /api/v1/assessments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10\r\nConnection: close\r\n\r\n"
    ) + body
    answer = _raw(port, raw)
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]


def test_the_default_limit_admits_a_ten_thousand_observation_record_and_not_one_byte_more():
    """The default HCC_MAX_BODY_BYTES (8 MiB) is chosen from record sizes: a patient-view call whose prefetch holds
    10 000 Observations built like the demo endpoint's (6.2 MB) is assessed, padded to exactly the limit; one byte
    more is 413."""
    from bench.record_sizes import body_with_observations
    from service.settings import DEFAULT_MAX_BODY_BYTES, Settings

    assert Settings.model_fields["max_body_bytes"].default == DEFAULT_MAX_BODY_BYTES == 8 * 1024 * 1024
    body = body_with_observations(10_000)
    assert 6_000_000 < len(body) < DEFAULT_MAX_BODY_BYTES
    at_limit = body + b" " * (DEFAULT_MAX_BODY_BYTES - len(body))  # whitespace after the JSON value is still JSON
    headers = {"content-type": "application/json"}
    with TestClient(create_app(demo_settings())) as client:
        over = client.post(f"/cds-services/{SERVICE_ID}", content=at_limit + b" ", headers=headers)
        assert over.status_code == 413 and "HCC_MAX_BODY_BYTES" in over.json()["detail"]
        response = client.post(f"/cds-services/{SERVICE_ID}", content=at_limit, headers=headers)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["cards"], "the demo-eligible patient gets its card"


def test_the_413_is_documented(small_limit):
    from tests.adversarial.contract import assert_documented

    for path, template in zip(POST_ROUTES, ["/cds-services/{service_id}", "/cds-services/{service_id}/feedback",
                                            "/api/v1/assessments"]):
        response = httpx.post(small_limit + path, content=_padding(LIMIT + 1), headers={"content-type": "application/json"})
        assert_documented(response, "POST", template)


# -- header injection ----------------------------------------------------------------------------------------

INJECTED = [
    b"abc\r\nSet-Cookie: session=forged",
    b"abc\nX-Forged: 1",
    b"abc\rX-Forged: 1",
    b"abc\r\n\r\n<html>forged</html>",
    b"abc\x00def",
    b"abc\tdef",
    b"\xff\xfe\xfd",
    b"x" * 5000,
    b"eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2ln",  # a JWT must not be echoed or logged
]


@pytest.mark.parametrize("value", INJECTED, ids=lambda v: repr(v[:24]))
def test_an_injected_request_id_is_replaced_never_echoed_or_logged(value):
    app = create_app(demo_settings())
    marker = b"FORGED-" + uuid.uuid4().hex.encode()
    with TestClient(app) as client:
        first = len(CAPTURE.lines)
        response = client.get("/api/v1/benchmarks", headers=[(b"x-request-id", value + marker)])
        logged = [text for _, text in CAPTURE.lines[first:]]
    echoed = response.headers.get("x-request-id", "")
    assert response.status_code == 200
    assert "\r" not in echoed and "\n" not in echoed and marker.decode() not in echoed
    assert "set-cookie" not in response.headers and "x-forged" not in response.headers
    assert not any(marker.decode() in line for line in logged), "the injected value reached the logs"


def test_a_sane_request_id_is_kept_and_matches_the_audit_record():
    app = create_app(demo_settings())
    rid = "adv-" + uuid.uuid4().hex
    with TestClient(app) as client:
        assert client.get("/api/v1/benchmarks", headers={"X-Request-ID": rid}).headers["x-request-id"] == rid
        events = client.get("/api/v1/audit", params={"limit": 1000}).json()["events"]
    assert [e["request_id"] for e in events].count(rid) == 1


@pytest.mark.parametrize("header", ["X-Request-ID", "User-Agent", "Referer", "X-Forwarded-For", "Cookie"])
def test_injection_over_a_raw_socket_never_splits_the_response(header):
    """What a real client can send: CR LF ends its header, so the rest arrives as a header line of its own;
    nothing of it may come back as a response header."""
    app = create_app(demo_settings())
    with app_in_thread(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        raw = (
            f"GET /api/v1/benchmarks HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}: a\r\n"
            f"Set-Cookie: forged=1\r\nX-Forged: 1\r\n{header}: b%0d%0aX-Forged2:%201\r\nConnection: close\r\n\r\n"
        ).encode()
        answer = _raw(port, raw)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200"), head[:200]
    assert b"set-cookie" not in head and b"x-forged" not in head


def test_obs_fold_and_bare_cr_headers_are_refused_by_the_server(small_limit):
    port = int(small_limit.rsplit(":", 1)[1])
    for raw in (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\r\n folded: evil\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\rX-Forged: 1\r\nConnection: close\r\n\r\n",
    ):
        answer = _raw(port, raw)
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert b"x-forged" not in head and b"folded" not in head
        assert head.startswith(b"http/1.1 400") or head.startswith(b"http/1.1 200"), head[:100]


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


# -- Host and Origin spoofing ----------------------------------------------------------------------------------


def test_card_links_use_the_public_base_url_never_the_host_header():
    app = create_app(demo_settings(public_base_url="https://cds.example.org"))
    with app_in_thread(app) as base_url:
        response = httpx.post(
            f"{base_url}/cds-services/{SERVICE_ID}",
            json=patient_view("demo-eligible", fhir_server=f"{base_url}/demo-fhir"),
            headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    links = [link["url"] for card in response.json()["cards"] for link in card.get("links", [])]
    assert links and all(url.startswith("https://cds.example.org/") for url in links), links
    assert "evil.example" not in response.text


def test_cors_answers_only_the_configured_origin():
    app = create_app(demo_settings(cors_origins="https://ehr.example.org"))
    with TestClient(app) as client:
        evil = client.options("/api/v1/benchmarks", headers={"Origin": "https://evil.example",
                                                              "Access-Control-Request-Method": "GET"})
        good = client.options("/api/v1/benchmarks", headers={"Origin": "https://ehr.example.org",
                                                              "Access-Control-Request-Method": "GET"})
        simple = client.get("/api/v1/benchmarks", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers
    assert "access-control-allow-origin" not in simple.headers
    assert good.headers.get("access-control-allow-origin") == "https://ehr.example.org"
    assert good.headers.get("access-control-allow-credentials") != "true"
