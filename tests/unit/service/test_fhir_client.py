"""HttpFhirSource over httpx.MockTransport: paging, retries, timeouts, redirects, bad answers, token safety."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import httpx
import pytest

from service.fhir import client as client_module
from service.fhir.client import HttpFhirSource, parse_retry_after, retry_delay
from service.fhir.errors import (
    FhirAuthError,
    FhirError,
    FhirNotFoundError,
    FhirResponseError,
    FhirUnavailableError,
)

BASE = "https://ehr.org/fhir"
TOKEN = "s3cret-T0KEN.value"
PATIENT = {"resourceType": "Patient", "id": "p1"}


def fhir(body: object, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"Content-Type": "application/fhir+json", **headers})


def obs(rid: str, pid: str = "p1") -> dict:
    return {"resourceType": "Observation", "id": rid, "status": "final", "subject": {"reference": f"Patient/{pid}"}}


def searchset(*resources: dict, next_url: str | None = None, outcome: dict | None = None) -> dict:
    entries = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    if outcome:
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle: dict = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    if next_url:
        bundle["link"] = [{"relation": "self", "url": "x"}, {"relation": "next", "url": next_url}]
    return bundle


def outcome(diagnostics: str, code: str = "processing", severity: str = "error") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


class Recorder:
    """Wraps a handler: keeps every request; the source's sleeps are recorded, not slept."""

    def __init__(self, handler):
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.delays: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.handler(request)
        return await answer if asyncio.iscoroutine(answer) else answer

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)

    @property
    def hosts(self) -> set[str]:
        return {r.url.host for r in self.requests}


def run(handler, use, *, token: str | None = TOKEN, **source_kwargs):
    """Run ``use(source)`` with an HttpFhirSource over a MockTransport of ``handler``; return (result, recorder)."""
    recorder = handler if isinstance(handler, Recorder) else Recorder(handler)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
            source = HttpFhirSource(client, BASE, token=token, sleep=recorder.sleep, **source_kwargs)
            return await use(source)

    return asyncio.run(main()), recorder


def failure(handler, use, **source_kwargs) -> tuple[FhirError, Recorder]:
    recorder = Recorder(handler)
    with pytest.raises(FhirError) as caught:
        run(recorder, use, **source_kwargs)
    return caught.value, recorder


def read_patient(source):
    return source.read("Patient", "p1")


def search_observations(source):
    return source.search(
        "Observation", [("patient", "p1"), ("code", "http://loinc.org|1975-2,http://loinc.org|1751-7")]
    )


def assert_token_absent(error: BaseException) -> None:
    """Neither the error nor anything it chains to mentions the token."""
    seen: BaseException | None = error
    while seen is not None:
        assert TOKEN not in str(seen) and TOKEN not in repr(seen)
        seen = seen.__cause__ or seen.__context__


# -- reads -------------------------------------------------------------------------------------------


def test_a_read_sends_the_bearer_token_and_asks_for_fhir_json():
    patient, recorder = run(lambda r: fhir(PATIENT), read_patient)
    assert patient == PATIENT
    (request,) = recorder.requests
    assert str(request.url) == f"{BASE}/Patient/p1"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/fhir+json"


def test_without_a_token_no_authorization_header_is_sent():
    _, recorder = run(lambda r: fhir(PATIENT), read_patient, token=None)
    assert "Authorization" not in recorder.requests[0].headers


@pytest.mark.parametrize("status", [404, 410])
def test_a_read_of_a_missing_resource_is_not_found(status):
    error, _ = failure(lambda r: fhir(outcome("Patient/p1 not found", "not-found"), status), read_patient)
    assert isinstance(error, FhirNotFoundError)


def test_a_read_answered_with_another_resource_type_is_unusable():
    error, _ = failure(lambda r: fhir({"resourceType": "Observation", "id": "p1"}), read_patient)
    assert isinstance(error, FhirResponseError) and "returned a Observation" in str(error)


def test_a_read_answered_with_another_id_is_unusable():
    error, _ = failure(lambda r: fhir({"resourceType": "Patient", "id": "p2"}), read_patient)
    assert isinstance(error, FhirResponseError) and "Patient/p2" in str(error)


@pytest.mark.parametrize("bad_id", ["..", ".", "a/b", "p1?_format=xml", "p1#x", "", "x" * 65])
def test_an_id_that_is_not_a_fhir_id_is_never_requested(bad_id):
    error, recorder = failure(lambda r: fhir(PATIENT), lambda s: s.read("Patient", bad_id))
    assert isinstance(error, FhirNotFoundError) and recorder.requests == []


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_auth_errors_without_the_token(status):
    error, recorder = failure(lambda r: fhir(outcome(f"token {TOKEN} rejected", "login"), status), read_patient)
    assert isinstance(error, FhirAuthError) and str(status) in str(error)
    assert len(recorder.requests) == 1, "an auth failure is not retried"
    assert_token_absent(error)


@pytest.mark.parametrize("token", ["has space", "line\nbreak", "tab\t", "é-accent", "crlf\r\nX-Evil: 1"])
def test_a_token_that_cannot_be_a_header_is_refused_before_any_request(token):
    recorder = Recorder(lambda r: fhir(PATIENT))
    with pytest.raises(FhirAuthError) as caught:
        run(recorder, read_patient, token=token)
    assert token not in str(caught.value) and recorder.requests == []


def test_the_source_repr_does_not_show_the_token():
    text, _ = run(lambda r: fhir(PATIENT), lambda s: asyncio.sleep(0, repr(s)))
    assert TOKEN not in text and BASE in text


# -- answers that cannot be used -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(200, content=b'{"resourceType": "Patient", "id": "p1"'), "not JSON"),
        (httpx.Response(200, content=b"<html>login</html>"), "not JSON"),
        (httpx.Response(200, content=b""), "not JSON"),
        (httpx.Response(200, json=[PATIENT]), "not a FHIR resource"),
        (httpx.Response(200, json={"id": "p1"}), "not a FHIR resource"),
        (httpx.Response(400, json=outcome("bad request")), "rejected the request (400): bad request"),
        (httpx.Response(204), "not JSON"),
    ],
)
def test_unusable_answers_are_response_errors(response, message):
    error, _ = failure(lambda r: response, read_patient)
    assert isinstance(error, FhirResponseError) and message in str(error)


def test_a_body_larger_than_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(client_module, "MAX_RESPONSE_BYTES", 100)
    error, _ = failure(lambda r: fhir({**PATIENT, "text": {"div": "x" * 500}}), read_patient)
    assert isinstance(error, FhirResponseError) and "more than 100 bytes" in str(error)


def test_a_redirect_to_another_host_is_not_followed_and_the_token_goes_nowhere():
    def handler(request):
        if request.url.host == "evil.com":
            return fhir(PATIENT)
        return httpx.Response(302, headers={"Location": "https://evil.com/fhir/Patient/p1"})

    error, recorder = failure(handler, read_patient)
    assert isinstance(error, FhirResponseError) and "redirect" in str(error)
    assert recorder.hosts == {"ehr.org"}


def test_a_redirect_to_the_same_host_is_not_followed_either():
    error, recorder = failure(lambda r: httpx.Response(301, headers={"Location": f"{BASE}/Patient/p2"}), read_patient)
    assert isinstance(error, FhirResponseError) and len(recorder.requests) == 1


# -- retries -------------------------------------------------------------------------------------


def answers(*responses: httpx.Response):
    """A handler giving ``responses`` in turn (the last one again when they run out)."""
    queue = list(responses)
    return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]


def test_503_with_retry_after_is_retried_after_that_delay_then_succeeds():
    handler = answers(fhir(outcome("busy"), 503, **{"Retry-After": "1"}), fhir(PATIENT))
    patient, recorder = run(handler, read_patient)
    assert patient == PATIENT and len(recorder.requests) == 2 and recorder.delays == [1.0]


def test_429_502_504_without_retry_after_back_off_exponentially():
    handler = answers(fhir({}, 429), fhir({}, 502), fhir(PATIENT))
    patient, recorder = run(handler, read_patient)
    assert patient == PATIENT and recorder.delays == [0.2, 0.4]


def test_retries_are_bounded_then_the_server_is_unavailable():
    error, recorder = failure(lambda r: fhir(outcome("down"), 503, **{"Retry-After": "0"}), read_patient)
    assert isinstance(error, FhirUnavailableError) and "503" in str(error)
    assert len(recorder.requests) == 1 + client_module.MAX_RETRIES


def test_500_is_not_retried():
    error, recorder = failure(lambda r: fhir(outcome("boom"), 500), read_patient)
    assert isinstance(error, FhirUnavailableError) and "500" in str(error)
    assert len(recorder.requests) == 1 and recorder.delays == []


def test_a_retry_after_longer_than_this_call_may_wait_is_not_waited_for():
    error, recorder = failure(lambda r: fhir({}, 429, **{"Retry-After": "120"}), read_patient)
    assert isinstance(error, FhirUnavailableError) and len(recorder.requests) == 1 and recorder.delays == []


def test_retry_after_as_seconds_or_http_date():
    now = datetime(2015, 10, 21, 7, 27, 58, tzinfo=UTC)
    assert parse_retry_after("2", now=now) == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None
    assert retry_delay(503, "1.5", 0) == 1.5
    assert retry_delay(503, None, client_module.MAX_RETRIES) is None
    assert retry_delay(500, "1", 0) is None


# -- transport failures and time limits ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("exception", "message"),
    [
        (httpx.ConnectError("refused"), "unreachable"),
        (httpx.ReadTimeout("slow"), "timed out"),
        (httpx.ConnectTimeout("slow"), "timed out"),
        (httpx.RemoteProtocolError("peer closed connection"), "unreachable"),
    ],
)
def test_transport_failures_are_unavailable(exception, message):
    def handler(request):
        raise exception

    error, _ = failure(handler, read_patient)
    assert isinstance(error, FhirUnavailableError) and message in str(error)


def test_a_server_slower_than_the_per_request_timeout_is_unavailable():
    async def handler(request):
        await asyncio.sleep(5)
        return fhir(PATIENT)

    error, _ = failure(handler, read_patient, timeout_seconds=0.05)
    assert isinstance(error, FhirUnavailableError) and "within 0.05 s" in str(error)


# -- searches and paging ---------------------------------------------------------------------------


def paged_server(pages: int, per_page: int = 2):
    """A server whose Observation search has ``pages`` pages, linked by absolute next links."""

    def handler(request):
        page = int(request.url.params.get("page", "1"))
        resources = [obs(f"o{page}-{i}") for i in range(per_page)]
        nxt = f"{BASE}/Observation?patient=p1&page={page + 1}" if page < pages else None
        return fhir(searchset(*resources, next_url=nxt))

    return handler


def test_a_search_follows_every_next_page_and_asks_for_a_page_size():
    result, recorder = run(paged_server(3), search_observations)
    assert [r["id"] for r in result.resources] == ["o1-0", "o1-1", "o2-0", "o2-1", "o3-0", "o3-1"]
    first = recorder.requests[0].url
    assert first.path == "/fhir/Observation"
    assert first.params.get_list("code") == ["http://loinc.org|1975-2,http://loinc.org|1751-7"]
    assert first.params["patient"] == "p1" and first.params["_count"] == "100"
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in recorder.requests)


def test_a_query_that_names_its_own_count_keeps_it():
    _, recorder = run(paged_server(1), lambda s: s.search("Observation", [("patient", "p1"), ("_count", "2")]))
    assert recorder.requests[0].url.params.get_list("_count") == ["2"]


def test_a_relative_next_link_is_resolved_on_the_base_url():
    def handler(request):
        if "page" in request.url.params:
            return fhir(searchset(obs("o2")))
        return fhir(searchset(obs("o1"), next_url="Observation?patient=p1&page=2"))

    result, recorder = run(handler, search_observations)
    assert [r["id"] for r in result.resources] == ["o1", "o2"]
    assert str(recorder.requests[1].url) == f"{BASE}/Observation?patient=p1&page=2"


def test_a_next_link_that_loops_back_is_refused():
    def handler(request):
        page = request.url.params.get("page", "1")
        return fhir(searchset(obs(f"o{page}"), next_url=f"{BASE}/Observation?page={'2' if page == '1' else '1'}"))

    error, recorder = failure(handler, search_observations)
    assert isinstance(error, FhirResponseError) and "loop" in str(error)
    assert len(recorder.requests) == 3


def test_a_next_link_to_itself_is_a_loop():
    def handler(request):
        return fhir(searchset(obs("o1"), next_url=f"{BASE}/Observation?page=1"))

    error, recorder = failure(handler, search_observations)
    assert isinstance(error, FhirResponseError) and "loop" in str(error) and len(recorder.requests) == 2


def test_an_endless_search_stops_at_the_page_cap(monkeypatch):
    monkeypatch.setattr(client_module, "MAX_PAGES", 5)
    error, recorder = failure(paged_server(10_000), search_observations)
    assert isinstance(error, FhirResponseError) and "more than 5 pages" in str(error)
    assert len(recorder.requests) == 5


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.com/fhir/Observation?page=2",
        "https://ehr.org:8443/fhir/Observation?page=2",
        "http://ehr.org/fhir/Observation?page=2",
        "https://ehr.org.evil.com/fhir/Observation?page=2",
        "https://ehr.org@evil.com/fhir/Observation?page=2",
        "//evil.com/fhir/Observation?page=2",
        "javascript:alert(1)",
    ],
)
def test_a_next_link_off_the_base_origin_is_not_followed_and_gets_no_token(next_url):
    def handler(request):
        return fhir(searchset(obs("o1"), next_url=next_url))

    error, recorder = failure(handler, search_observations)
    assert isinstance(error, FhirResponseError) and "next link" in str(error)
    assert recorder.hosts == {"ehr.org"} and len(recorder.requests) == 1


def test_a_next_link_on_the_same_origin_but_outside_the_base_path_is_not_followed():
    """The token goes only below the base URL: /paging on the same origin is not the FHIR endpoint."""
    seen = []

    def handler(request):
        seen.append(request.url.path)
        if request.url.path == "/paging":
            return fhir(searchset(obs("o2")))
        return fhir(searchset(obs("o1"), next_url="https://ehr.org/paging?cursor=abc"))

    error, _ = failure(handler, search_observations)
    assert isinstance(error, FhirResponseError) and "outside its base URL's path" in str(error)
    assert "/paging" not in seen


def test_a_next_link_below_the_base_path_is_followed():
    def handler(request):
        if request.url.path == "/fhir/paging":
            return fhir(searchset(obs("o2")))
        return fhir(searchset(obs("o1"), next_url="https://ehr.org/fhir/paging?cursor=abc"))

    result, _ = run(handler, search_observations)
    assert [r["id"] for r in result.resources] == ["o1", "o2"]


def test_an_operation_outcome_instead_of_a_page_is_unusable_and_names_its_diagnostics():
    error, _ = failure(lambda r: fhir(outcome(f"search failed for {TOKEN}")), search_observations)
    assert isinstance(error, FhirResponseError) and "search failed for [redacted]" in str(error)
    assert_token_absent(error)


def test_a_resource_that_is_not_a_bundle_is_unusable():
    error, _ = failure(lambda r: fhir(PATIENT), search_observations)
    assert isinstance(error, FhirResponseError) and "not a Bundle" in str(error)


def test_a_search_the_server_does_not_serve_is_not_an_unknown_patient():
    error, _ = failure(lambda r: fhir(outcome("Unknown resource type"), 404), search_observations)
    assert isinstance(error, FhirResponseError) and not isinstance(error, FhirNotFoundError)


def test_a_search_the_server_rejects_names_the_reason():
    error, _ = failure(
        lambda r: fhir(outcome("Unknown search parameter 'code'", "not-supported"), 400), search_observations
    )
    assert isinstance(error, FhirResponseError) and "Unknown search parameter 'code'" in str(error)


def test_an_outcome_entry_saying_a_parameter_was_ignored_marks_the_result_unfiltered():
    ignored = outcome(
        "Unknown search parameter 'patient' for BodyStructure; parameter ignored", "not-supported", "warning"
    )
    result, _ = run(lambda r: fhir(searchset(obs("o1"), obs("o2", "p2"), outcome=ignored)), search_observations)
    assert result.unfiltered and [r["id"] for r in result.resources] == ["o1", "o2"]
    assert result.outcomes == ["Unknown search parameter 'patient' for BodyStructure; parameter ignored"]


def test_an_informational_outcome_does_not_mark_the_result_unfiltered():
    info = outcome("search took 12 ms", "informational", "information")
    result, _ = run(lambda r: fhir(searchset(obs("o1"), outcome=info)), search_observations)
    assert not result.unfiltered and result.outcomes == ["search took 12 ms"]


def test_included_resources_are_kept_and_outcome_entries_are_not_resources():
    bundle = searchset(obs("o1"))
    bundle["entry"].append({"resource": {"resourceType": "BodyStructure", "id": "b1"}, "search": {"mode": "include"}})
    bundle["entry"].append({"fullUrl": "no-resource"})
    result, _ = run(lambda r: fhir(bundle), search_observations)
    assert [r["id"] for r in result.resources] == ["o1", "b1"]


def test_outcomes_quoting_the_token_are_redacted():
    said = outcome(f"ignored param for token {TOKEN}", "not-supported", "warning")
    result, _ = run(lambda r: fhir(searchset(outcome=said)), search_observations)
    assert result.outcomes == ["ignored param for token [redacted]"]


# -- following a prefetched page's next link ---------------------------------------------------------


def test_can_follow_accepts_the_base_origin_only():
    def checks(source):
        return asyncio.sleep(
            0,
            [
                source.can_follow(f"{BASE}/Observation?page=2"),
                source.can_follow("Observation?page=2"),
                source.can_follow("https://evil.com/fhir/Observation?page=2"),
                source.can_follow("http://ehr.org/fhir/Observation?page=2"),
                source.can_follow("https://ehr.org/fhir/Observation?page=2#frag"),
            ],
        )

    verdicts, _ = run(lambda r: fhir(PATIENT), checks)
    assert verdicts == [True, True, False, False, False]


def test_follow_fetches_every_page_from_a_next_link():
    result, recorder = run(paged_server(3), lambda s: s.follow(f"{BASE}/Observation?patient=p1&page=2"))
    assert [r["id"] for r in result.resources] == ["o2-0", "o2-1", "o3-0", "o3-1"]
    assert recorder.requests[0].url.params["page"] == "2"


def test_follow_refuses_another_origin_without_a_request():
    error, recorder = failure(paged_server(3), lambda s: s.follow("https://evil.com/fhir/Observation?page=2"))
    assert isinstance(error, FhirResponseError) and recorder.requests == []


# -- the token never leaks -------------------------------------------------------------------------


def _raise(exception):
    def handler(request):
        raise exception

    return handler


@pytest.mark.parametrize(
    "handler",
    [
        lambda r: fhir(outcome(TOKEN), 401),
        lambda r: fhir(outcome(TOKEN), 400),
        lambda r: fhir(outcome(TOKEN), 503),
        lambda r: httpx.Response(302, headers={"Location": f"https://evil.com/?t={TOKEN}"}),
        lambda r: httpx.Response(200, content=TOKEN.encode()),
        lambda r: fhir(searchset(obs("o1"), next_url=f"https://evil.com/?t={TOKEN}")),
        lambda r: fhir(outcome(f"echo {TOKEN}")),
        _raise(httpx.ReadTimeout("slow")),
    ],
)
def test_no_error_message_or_log_line_carries_the_token(handler, caplog):
    caplog.set_level(logging.DEBUG)
    error, _ = failure(handler, search_observations)
    assert_token_absent(error)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.PoolTimeout("pool full"), "timeout"),
        (httpx.ConnectError("refused"), "unreachable"),
        (httpx.RemoteProtocolError("reset"), "unreachable"),
        (httpx.DecodingError("gzip"), "bad_response"),
    ],
)
def test_each_transport_error_is_classified_once_where_it_is_translated(error, outcome):
    observed: list[str] = []

    def handler(request):
        raise error

    failure(handler, read_patient, observe=lambda label, seconds: observed.append(label))
    assert observed == [outcome]


def test_an_answer_is_observed_with_the_outcome_of_its_status():
    observed: list[str] = []
    failure(
        lambda request: httpx.Response(404, json=outcome("gone")),
        read_patient,
        observe=lambda label, seconds: observed.append(label),
    )
    assert observed == ["not_found"]
