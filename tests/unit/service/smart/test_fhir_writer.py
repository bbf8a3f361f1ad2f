"""service.smart.fhir_writer against httpx.MockTransport: each answer a FHIR server can give to a transaction."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

from service.smart.fhir_writer import WriteRefused, WriteResult, write_transaction

BASE = "https://ehr.example/fhir"
TOKEN = "user-token-abc"
BUNDLE = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "Procedure/p", "resource": {"resourceType": "Procedure", "id": "p"},
         "request": {"method": "PUT", "url": "Procedure/p", "ifMatch": 'W/"1"'}},
    ],
}
LOCATIONS = ["Observation/o1/_history/1", "Procedure/p/_history/2"]


def _response_bundle(locations=LOCATIONS, kind="transaction-response") -> dict:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"response": {"status": "201 Created", "location": loc}} for loc in locations]}


def _outcome(text: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "conflict", "diagnostics": text}]}


def send(handler, bundle=BUNDLE, token=TOKEN, timeout=2.0):
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
            return await write_transaction(client, BASE, token, bundle, timeout=timeout)

    try:
        return asyncio.run(main()), seen
    except WriteRefused as exc:
        return exc, seen


def test_a_transaction_response_gives_every_location_and_the_request_is_the_transaction():
    result, seen = send(lambda r: httpx.Response(200, json=_response_bundle()))
    assert result == WriteResult(tuple(LOCATIONS))
    (request,) = seen
    assert request.method == "POST" and str(request.url) == BASE
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == BUNDLE


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (401, "expired", "session has expired"),
        (403, "forbidden", "refused the write"),
        (409, "conflict", "changed since the form was shown"),
        (412, "conflict", "changed since the form was shown"),
        (400, "invalid", "rejected the record"),
        (422, "invalid", "rejected the record"),
        (404, "invalid", "rejected the record"),
        (500, "unavailable", "failed (500)"),
        (503, "unavailable", "failed (503)"),
        (302, "invalid", "redirect"),
    ],
)
def test_each_refusal_has_its_kind_and_says_nothing_was_written(status, kind, words):
    error, _ = send(lambda r: httpx.Response(status, json=_outcome(f"Version conflict {status}"),
                                             headers={"Location": "https://elsewhere.example/"}))
    assert isinstance(error, WriteRefused)
    assert (error.kind, error.status, error.written) == (kind, status, ())
    assert words in error.message and "Nothing was written." in error.message


@pytest.mark.parametrize("status", [403, 412, 422])
def test_the_outcome_s_diagnostics_are_quoted_and_the_token_redacted(status):
    error, _ = send(lambda r: httpx.Response(status, json=_outcome(f"Entry 1: If-Match W/\"1\" but current is 2; {TOKEN}")))
    assert 'If-Match W/"1" but current is 2' in error.message
    assert TOKEN not in error.message and "[redacted]" in error.message


def test_a_connection_refused_is_unavailable_and_nothing_written():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    error, _ = send(refuse)
    assert (error.kind, error.status) == ("unavailable", None)
    assert "Nothing was written." in error.message


def test_a_timeout_mid_exchange_says_it_is_not_known_whether_anything_was_written():
    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    error, _ = send(slow, timeout=1.5)
    assert error.kind == "unknown" and "within 1.5 s" in error.message
    assert "not known" in error.message and "Nothing was written" not in error.message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_response_bundle(kind="batch-response"), "with a batch-response, not a transaction-response"),
        (_outcome("all fine"), "with a OperationOutcome, not a transaction-response"),
        (_response_bundle(LOCATIONS[:1]), "has 1 entries and 1 locations for the 2 sent"),
    ],
)
def test_a_200_that_is_not_a_full_transaction_response_is_invalid_and_exact(body, words):
    error, _ = send(lambda r: httpx.Response(200, json=body))
    assert error.kind == "unknown" and words in error.message and "not known" in error.message


def test_absolute_locations_under_the_base_are_made_relative():
    absolute = [f"{BASE}/{LOCATIONS[0]}", "https://other.example/fhir/Procedure/p/_history/2"]
    result, _ = send(lambda r: httpx.Response(200, json=_response_bundle(absolute)))
    assert result.written == (LOCATIONS[0], absolute[1])


def test_a_short_response_names_what_it_did_write():
    error, _ = send(lambda r: httpx.Response(200, json=_response_bundle(LOCATIONS[:1])))
    assert error.written == (LOCATIONS[0],)


def test_a_200_without_json_is_invalid():
    error, _ = send(lambda r: httpx.Response(200, content=b"<html>ok</html>"))
    assert error.kind == "unknown" and "not JSON" in error.message


def test_no_token_is_refused_before_any_request():
    error, seen = send(lambda r: httpx.Response(200, json=_response_bundle()), token="bad token with spaces")
    assert error.kind == "expired" and seen == []


def test_the_token_is_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    send(lambda r: httpx.Response(412, json=_outcome(TOKEN)))
    send(lambda r: httpx.Response(200, json=_response_bundle()))
    assert caplog.records and all(TOKEN not in record.getMessage() for record in caplog.records)
