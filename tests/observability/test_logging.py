"""Request ids (echoed, generated, replaced) and JSON log lines: parseable, with the request id, no secrets."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from starlette.requests import Request

from service.observability.context import annotate_request, current_request_id, is_sane_token
from service.observability.logging import configure_logging, json_handler, redact
from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view
from tests.api.test_hooks import demo_record

PATIENT = "demo-eligible"
# a syntactically real JWT (header {"alg":"RS256","typ":"JWT"}); never to appear in a log line
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJodHRwczovL2Voci5leGFtcGxlIiwic3ViIjoiY2xpbmljaWFuIn0."
    "c2lnbmF0dXJlLW5vdC1yZWFsLWJ1dC1zaGFwZWQtbGlrZS1vbmU"
)
OPAQUE = "s3cr3t-0paque-t0ken-9f8e7d6c5b4a"


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except ValueError:
        return False


# --- request ids ---------------------------------------------------------------------------------


def test_a_sane_request_id_is_echoed(client):
    r = client.get("/healthz", headers={"X-Request-ID": "edge-7f3a.42_B~x"})
    assert r.headers["x-request-id"] == "edge-7f3a.42_B~x"


def test_a_missing_request_id_is_generated(client):
    first, second = client.get("/healthz").headers["x-request-id"], client.get("/healthz").headers["x-request-id"]
    assert is_uuid4(first) and is_uuid4(second) and first != second


@pytest.mark.parametrize(
    "insane",
    [
        "x" * 129,  # too long
        "has space",
        "semi;colon",
        'quote"d',
        "",
        JWT,  # a token must not become a log field
    ],
)
def test_an_insane_request_id_is_replaced(client, insane):
    r = client.get("/healthz", headers={"X-Request-ID": insane})
    assert r.headers["x-request-id"] != insane and is_uuid4(r.headers["x-request-id"])


def test_non_ascii_request_id_is_replaced(client):
    r = client.get("/healthz", headers=[("X-Request-ID", "caf\xe9".encode("latin-1"))])
    assert is_uuid4(r.headers["x-request-id"])


def test_the_longest_sane_request_id_is_kept(client):
    assert client.get("/healthz", headers={"X-Request-ID": "a" * 128}).headers["x-request-id"] == "a" * 128


def test_error_responses_carry_the_request_id_too(client):
    r = client.post(f"/cds-services/{SERVICE_ID}", content=b"{not json", headers={"X-Request-ID": "req-422"})
    assert r.status_code == 422 and r.headers["x-request-id"] == "req-422"
    assert client.get("/nowhere", headers={"X-Request-ID": "req-404"}).headers["x-request-id"] == "req-404"


def test_the_app_sees_the_request_id_in_force(app, client):
    """Handlers and inner middleware (the audit trail) read the id the response carries, never an insane one."""
    seen = {}

    @app.get("/_test/request-id")
    async def probe(request: Request):
        seen["contextvar"] = current_request_id()
        seen["header"] = request.headers.get("x-request-id")
        return {}

    r = client.get("/_test/request-id", headers={"X-Request-ID": "bad id"})
    assert seen["contextvar"] == seen["header"] == r.headers["x-request-id"] != "bad id"
    client.get("/_test/request-id")
    assert seen["contextvar"] == seen["header"] and is_uuid4(seen["header"])


@pytest.mark.parametrize(
    ("value", "sane"),
    [("3f2c", True), ("a" * 128, True), ("a" * 129, False), ("", False), (None, False), ("a b", False), (JWT, False)],
)
def test_is_sane_token(value, sane):
    assert is_sane_token(value) is sane


# --- JSON lines ----------------------------------------------------------------------------------


def test_every_line_is_json_with_request_id_and_the_route_template(client, json_logs):
    client.get(f"/api/v1/patients/{PATIENT}/assessment?as_of=2024-05-01", headers={"X-Request-ID": "req-1"})
    lines = json_logs.lines()  # raises if any line is not JSON
    access = json_logs.access()
    assert len(access) == 1
    line = access[0]
    assert {"time", "level", "logger", "message", "request_id"} <= set(line)
    assert line["request_id"] == "req-1" and line["method"] == "GET" and line["status"] == 200
    assert line["route"] == "/api/v1/patients/{patient_id}/assessment"
    assert isinstance(line["duration_ms"], float) and line["time"].endswith("Z")
    assert all(entry["request_id"] == "req-1" for entry in lines if entry["logger"].startswith("hcc_cds"))
    assert PATIENT not in json_logs.text and "as_of" not in json_logs.text and "2024-05-01" not in json_logs.text


def test_a_hook_line_has_service_id_and_hook_instance_and_no_token_or_patient(client, json_logs, settings):
    patient, resources = demo_record(PATIENT, settings.today())
    # a token for a FHIR server that is never reached (everything is prefetched)
    body = patient_view(PATIENT, prefetch=full_prefetch(resources, patient), fhir_server="http://127.0.0.1:9/fhir", token=JWT)
    r = client.post(
        f"/cds-services/{SERVICE_ID}",
        json=body,
        headers={"Authorization": f"Bearer {OPAQUE}", "X-Request-ID": "req-hook"},
    )
    assert r.status_code == 200, r.text
    annotate_request(hook_instance="outside-any-request")  # a no-op outside a request
    (line,) = json_logs.access()
    assert line["route"] == "/cds-services/{service_id}" and line["service_id"] == SERVICE_ID
    assert line["request_id"] == "req-hook" and line["status"] == 200
    # noted by the hook route for its audit record, or annotated (service.observability.annotate_request)
    assert line.get("hook_instance") == body["hookInstance"]
    text = json_logs.text
    assert JWT not in text and JWT.split(".")[1] not in text and OPAQUE not in text and PATIENT not in text


def test_annotate_request_adds_the_hook_instance_to_every_line_of_the_request(app, client, json_logs):
    @app.post("/_test/hook")
    async def hook():
        annotate_request(hook_instance="0f8fad5b-d9cb-469f-a165-70867728950e")
        annotate_request(hook_instance="not sane")  # ignored: the first value stays
        logging.getLogger("hcc_cds.test").info("inside the hook")
        return {}

    client.post("/_test/hook")
    inside = next(line for line in json_logs.lines() if line["message"] == "inside the hook")
    (access,) = [line for line in json_logs.access() if line["route"] == "/_test/hook"]
    assert inside["hook_instance"] == access["hook_instance"] == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert inside["request_id"] == access["request_id"]


def test_probes_are_logged_at_debug_only(client, json_logs):
    json_logs.handler.setLevel(logging.INFO)
    client.get("/healthz")
    client.get("/readyz")
    client.get("/metrics")
    assert json_logs.access() == []


def test_uvicorn_access_log_and_data_carrying_library_lines_are_off(json_logs):
    assert logging.getLogger("uvicorn.access").disabled
    for name in ("httpx", "httpcore", "aiosqlite", "sqlalchemy.engine"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    assert logging.getLogger("uvicorn.error").propagate


def test_configure_logging_is_idempotent_and_keeps_other_handlers(restore_logging):
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    plain = logging.StreamHandler(io.StringIO())  # what logging.basicConfig installs
    root.addHandler(plain)
    first = configure_logging("WARNING", stream=io.StringIO())
    second = configure_logging("INFO", stream=io.StringIO())
    assert second in root.handlers and first not in root.handlers and plain not in root.handlers
    assert foreign in root.handlers and root.level == logging.INFO


# --- redaction -----------------------------------------------------------------------------------


def test_a_planted_token_is_redacted_from_messages_and_tracebacks():
    stream = io.StringIO()
    logger = logging.getLogger("hcc_cds.test.redaction")
    logger.propagate = False
    handler = json_handler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.info("calling the FHIR server with Authorization: Bearer %s", OPAQUE)
        logger.warning("client assertion %s refused", JWT)
        logger.info("access_token=%s&patient=x", OPAQUE)
        logger.info('token json {"access_token": "%s"}', OPAQUE)
        logger.info("database postgresql://hcc:%s@db:5432/hcc unreachable", OPAQUE)
        try:
            raise ValueError(f"bad token {JWT}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 6
    assert OPAQUE not in text and JWT not in text and JWT.split(".")[1] not in text
    assert lines[0]["message"] == "calling the FHIR server with Authorization: Bearer [redacted]"
    assert lines[1]["message"] == "client assertion [redacted] refused"
    assert lines[4]["message"] == "database postgresql://hcc:[redacted]@db:5432/hcc unreachable"
    assert lines[5]["exc_type"] == "ValueError" and "[redacted]" in lines[5]["exc"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer abc.def-ghi", "Bearer [redacted]"),
        ("authorization: bearer abc==", "authorization: bearer [redacted]"),
        ("Basic dXNlcjpwYXNz", "Basic [redacted]"),
        ("password=hunter2 next", "password=[redacted] next"),
        ("client_secret: 'xyz'", "client_secret: '[redacted]'"),
        ("https://user:pw@host/x", "https://user:[redacted]@host/x"),
        ("nothing secret here: Patient/123", "nothing secret here: Patient/123"),
        ("GET /api/v1/patients/{patient_id}/assessment 200", "GET /api/v1/patients/{patient_id}/assessment 200"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected
