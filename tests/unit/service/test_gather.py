"""gather_patient_record: prefetch merging, paginated prefetch, concurrency, deadline, other patients, lesions."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from service.cds.services import patient_record_templates
from service.fhir.client import HttpFhirSource
from service.fhir.errors import (
    FhirAuthError,
    FhirNotFoundError,
    FhirResponseError,
    FhirUnavailableError,
)
from service.fhir.memory import InMemoryFhirSource
from service.fhir.source import SearchResult
from service.gather import (
    PatientMismatchError,
    PrefetchMissingError,
    focus_ids,
    gather_patient_record,
    render_template,
    restrict_to_patient,
)
from tests import fhir_factories as f

BASE = "https://ehr.org/fhir"
PID = "p1"
SEARCH_KEYS = ("conditions", "procedures", "observations", "medicationRequests", "medicationStatements", "allergies")


@pytest.fixture(scope="module")
def templates(knowledge):
    return patient_record_templates(knowledge)


def body_structure(rid: str, pid: str = PID) -> dict:
    return {
        "resourceType": "BodyStructure",
        "id": rid,
        "location": {"coding": [{"system": "http://snomed.info/sct", "code": "10200004"}]},
        "patient": {"reference": f"Patient/{pid}"},
    }


def tumour_size(rid: str, lesion: str, pid: str = PID) -> dict:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "21889-1"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "focus": [{"reference": f"BodyStructure/{lesion}"}],
        "effectiveDateTime": "2026-01-01",
    }


def record_of(pid: str = PID) -> list[dict]:
    """A small record: Patient, HCC, TACE, bilirubin, a lesion; and another patient's things."""
    return [
        f.patient(pid),
        f.condition("109841003", "2025-01-01", pid=pid, rid=f"{pid}-hcc"),
        f.procedure("441525007", {"performedDateTime": "2025-02-01"}, pid=pid, rid=f"{pid}-tace"),
        f.lab("1975-2", 1.0, "mg/dL", "2026-01-01", pid=pid, rid=f"{pid}-bili"),
        tumour_size(f"{pid}-size", f"{pid}-lesion", pid),
        body_structure(f"{pid}-lesion", pid),
    ]


def ids(record) -> list[str]:
    return sorted(f"{r['resourceType']}/{r['id']}" for r in record.resources)


def issues(record) -> dict[str, str]:
    return {i.resource: i.problem for i in record.issues}


def searchset(*resources: dict, next_url: str | None = None) -> dict:
    bundle = f.searchset(*resources)
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def full_prefetch(resources: list[dict]) -> dict:
    by_type: dict[str, list[dict]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    keys = {
        "conditions": "Condition",
        "procedures": "Procedure",
        "observations": "Observation",
        "medicationRequests": "MedicationRequest",
        "medicationStatements": "MedicationStatement",
        "bodyStructures": "BodyStructure",
        "allergies": "AllergyIntolerance",
    }
    prefetch: dict = {"patient": by_type["Patient"][0]}
    prefetch |= {key: searchset(*by_type.get(rtype, [])) for key, rtype in keys.items()}
    return prefetch


class SpySource(InMemoryFhirSource):
    """An in-memory source that records every call."""

    def __init__(self, resources=()):
        super().__init__(resources)
        self.calls: list[tuple] = []

    async def read(self, resource_type, resource_id):
        self.calls.append(("read", resource_type, resource_id))
        return await super().read(resource_type, resource_id)

    async def search(self, resource_type, params):
        self.calls.append(("search", resource_type, tuple(params)))
        return await super().search(resource_type, params)


class FakeServer:
    """A MockTransport handler answering FHIR reads and searches from memory, with paging and a delay.

    It counts requests in flight, to prove that searches overlap.
    """

    def __init__(self, resources, *, page_size: int = 1000, delay: float = 0.0, ignore=(), fail=None):
        self.memory = InMemoryFhirSource(resources)
        self.page_size = page_size
        self.delay = delay
        self.ignore = set(ignore)  # (type, parameter) the server ignores and says so
        self.fail = fail or {}  # resource type -> httpx.Response to answer instead
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            return await self.answer(request)
        finally:
            self.in_flight -= 1

    async def answer(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.removeprefix("/fhir/").split("/")
        if parts[0] in self.fail:
            return self.fail[parts[0]]
        if len(parts) == 2:
            try:
                return httpx.Response(200, json=await self.memory.read(parts[0], parts[1]))
            except FhirNotFoundError:
                return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": []})
        return httpx.Response(200, json=await self.search_page(parts[0], request.url))

    async def search_page(self, rtype: str, url: httpx.URL) -> dict:
        params = [(k, v) for k, v in url.params.multi_items() if k not in ("_count", "_offset")]
        ignored = [(k, v) for k, v in params if (rtype, k) in self.ignore]
        applied = [p for p in params if p not in ignored]
        result = await self.memory.search(rtype, applied)
        offset = int(url.params.get("_offset", "0"))
        page = result.resources[offset : offset + self.page_size]
        entries = [{"resource": r, "search": {"mode": "match"}} for r in page]
        for name, _ in ignored:
            issue = {
                "severity": "warning",
                "code": "not-supported",
                "diagnostics": f"Unknown search parameter '{name}'; parameter ignored",
            }
            entries.append(
                {"resource": {"resourceType": "OperationOutcome", "issue": [issue]}, "search": {"mode": "outcome"}}
            )
        bundle: dict = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        if offset + self.page_size < len(result.resources):
            nxt = url.copy_remove_param("_offset").copy_add_param("_offset", str(offset + self.page_size))
            bundle["link"] = [{"relation": "next", "url": str(nxt)}]
        return bundle

    def searched_types(self) -> list[str]:
        return sorted(r.url.path.rsplit("/", 1)[-1] for r in self.requests if r.url.path.count("/") == 2)


def gather(templates, *, prefetch=None, source=None, deadline=5.0, pid=PID):
    return asyncio.run(gather_patient_record(pid, templates, prefetch, source, deadline_seconds=deadline))


def gather_over_http(templates, server, *, prefetch=None, deadline=5.0, pid=PID, base=BASE, **source_kwargs):
    """gather through an HttpFhirSource whose transport is ``server`` (a MockTransport handler)."""

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as client:
            source = HttpFhirSource(client, base, token="tok", **source_kwargs)
            return await gather_patient_record(pid, templates, prefetch, source, deadline_seconds=deadline)

    return asyncio.run(main())


# -- prefetch merging ------------------------------------------------------------------------------


def test_a_full_prefetch_needs_no_source(templates):
    record = gather(templates, prefetch=full_prefetch(record_of()))
    assert record.patient["id"] == PID and record.fetched_keys == [] and record.issues == []
    assert ids(record) == sorted(f"{r['resourceType']}/{r['id']}" for r in record_of()[1:])


def test_only_missing_keys_are_fetched_and_null_means_no_data(templates):
    prefetch = full_prefetch(record_of())
    del prefetch["conditions"]
    prefetch["procedures"] = None  # the client has no procedures: nothing fetched, none used
    source = SpySource(record_of())
    record = gather(templates, prefetch=prefetch, source=source)
    assert record.fetched_keys == ["conditions"]
    assert [c[1] for c in source.calls] == ["Condition"]
    assert "Condition/p1-hcc" in ids(record) and "Procedure/p1-tace" not in ids(record)


def test_an_operation_outcome_or_a_non_resource_in_prefetch_is_fetched(templates):
    prefetch = full_prefetch(record_of())
    prefetch["conditions"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    prefetch["procedures"] = ["not", "a", "resource"]
    source = SpySource(record_of())
    record = gather(templates, prefetch=prefetch, source=source)
    assert record.fetched_keys == ["conditions", "procedures"]
    assert {"Condition/p1-hcc", "Procedure/p1-tace"} <= set(ids(record))


def test_without_a_source_the_missing_keys_are_named(templates):
    prefetch = full_prefetch(record_of())
    del prefetch["observations"], prefetch["allergies"]
    with pytest.raises(PrefetchMissingError, match="prefetch is missing allergies, observations"):
        gather(templates, prefetch=prefetch)


def test_no_prefetch_fetches_everything_and_lesions_through_focus(templates):
    source = SpySource(record_of() + record_of("p2"))
    record = gather(templates, source=source)
    assert ids(record) == sorted(f"{r['resourceType']}/{r['id']}" for r in record_of()[1:])
    assert record.issues == []
    assert ("search", "BodyStructure", (("_id", "p1-lesion"),)) in source.calls
    assert not any(c[1] == "BodyStructure" and ("patient", PID) in c[2] for c in source.calls)


def test_a_null_patient_is_no_data_to_assess(templates):
    prefetch = full_prefetch(record_of())
    prefetch["patient"] = None
    with pytest.raises(PrefetchMissingError, match="no Patient"):
        gather(templates, prefetch=prefetch, source=SpySource(record_of()))


def test_a_prefetched_patient_of_another_id_is_refused_before_any_fetch(templates):
    prefetch = full_prefetch(record_of("p2"))
    del prefetch["observations"]
    source = SpySource(record_of())
    with pytest.raises(PatientMismatchError, match="not the context's Patient/p1"):
        gather(templates, prefetch=prefetch, source=source)
    assert source.calls == []


def test_a_patient_id_that_is_not_a_fhir_id_is_refused(templates):
    with pytest.raises(PatientMismatchError, match="not a valid FHIR id"):
        gather(templates, source=SpySource(), pid="p1&_include=*")


def test_another_patients_resources_in_prefetch_are_excluded_and_reported(templates):
    prefetch = full_prefetch(record_of())
    prefetch["observations"]["entry"].append(
        {"resource": f.lab("1975-2", 9.0, "mg/dL", "2026-01-02", pid="p2", rid="alien")}
    )
    prefetch["conditions"]["entry"].append({"resource": {"resourceType": "Condition", "id": "orphan"}})
    record = gather(templates, prefetch=prefetch)
    assert "Observation/alien" not in ids(record) and "Condition/orphan" not in ids(record)
    assert issues(record) == {
        "Observation/alien": "belongs to another patient; excluded",
        "Condition/orphan": "names no patient; excluded",
    }


def test_a_prefetched_bundle_whose_server_ignored_the_patient_filter_is_refiltered(templates):
    prefetch = full_prefetch(record_of())
    alien = f.lab("1975-2", 9.0, "mg/dL", "2026-01-02", pid="p2", rid="alien")
    prefetch["observations"]["entry"] += [
        {"resource": alien, "search": {"mode": "match"}},
        {
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "warning", "code": "not-supported", "diagnostics": "patient ignored"}],
            },
            "search": {"mode": "outcome"},
        },
    ]
    record = gather(templates, prefetch=prefetch)
    assert "Observation/alien" not in ids(record)
    assert (
        list(issues(record)) == ["search:observations"]
        and "re-filtered by patient" in issues(record)["search:observations"]
    )


# -- paginated prefetch ----------------------------------------------------------------------------


def paged_prefetch(next_url: str) -> dict:
    prefetch = full_prefetch(record_of())
    first = [e["resource"] for e in prefetch["observations"]["entry"]]
    prefetch["observations"] = searchset(*first, next_url=next_url)
    return prefetch


def test_a_paginated_prefetch_without_a_source_is_412_not_a_partial_assessment(templates):
    with pytest.raises(PrefetchMissingError, match="only the first page of observations"):
        gather(templates, prefetch=paged_prefetch(f"{BASE}/Observation?page=2"))


def test_a_paginated_prefetch_is_continued_from_its_next_link_on_the_source(templates):
    later = f.lab("1751-7", 3.9, "g/dL", "2026-01-03", rid="p1-albumin")

    def server(request):
        assert request.url.params["page"] == "2", "only the rest is fetched, not the first page again"
        return httpx.Response(200, json=searchset(later))

    record = gather_over_http(templates, server, prefetch=paged_prefetch(f"{BASE}/Observation?page=2"))
    assert {"Observation/p1-bili", "Observation/p1-albumin"} <= set(ids(record))
    assert record.fetched_keys == ["observations"]


def test_a_paginated_prefetch_whose_next_link_is_elsewhere_is_fetched_again_whole(templates):
    server = FakeServer(record_of() + [f.lab("1751-7", 3.9, "g/dL", "2026-01-03", rid="p1-albumin")])
    record = gather_over_http(templates, server, prefetch=paged_prefetch("https://evil.com/fhir/Observation?page=2"))
    assert {r.url.host for r in server.requests} == {"ehr.org"}
    assert server.searched_types() == ["Observation"]
    assert {"Observation/p1-bili", "Observation/p1-albumin"} <= set(ids(record))
    assert sorted(ids(record)).count("Observation/p1-bili") == 1


def test_a_paginated_prefetch_with_the_in_memory_source_is_fetched_again(templates):
    source = SpySource(record_of())
    record = gather(templates, prefetch=paged_prefetch(f"{BASE}/Observation?page=2"), source=source)
    assert [c[1] for c in source.calls] == ["Observation"]
    assert "Observation/p1-bili" in ids(record)


# -- fetching through HTTP -------------------------------------------------------------------------


def test_the_searches_of_one_patient_run_concurrently(templates):
    server = FakeServer(record_of(), delay=0.05)
    gather_over_http(templates, server)
    first_wave = 1 + len(SEARCH_KEYS)  # the Patient read and every search; then the lesions
    assert server.max_in_flight == first_wave
    assert len(server.requests) == first_wave + 1


class SlowConditions(FakeServer):
    """The Condition search takes long; the log says when each request began and ended."""

    def __init__(self, resources):
        super().__init__(resources)
        self.log: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        rtype = request.url.path.removeprefix("/fhir/").split("/")[0]
        self.log.append(f"start {rtype}")
        await asyncio.sleep(0.3 if rtype == "Condition" else 0.0)
        answer = await self.answer(request)
        self.log.append(f"end {rtype}")
        return answer


def test_the_lesions_are_searched_once_the_observations_are_in_not_after_every_search(templates):
    server = SlowConditions(record_of())
    record = gather_over_http(templates, server)
    assert server.log.index("start BodyStructure") < server.log.index("end Condition")
    assert f"BodyStructure/{PID}-lesion" in ids(record)


def test_every_page_of_a_multi_page_search_is_used(templates):
    labs = [f.lab("1975-2", 1.0, "mg/dL", f"2025-12-{d:02d}", rid=f"bili-{d}") for d in range(1, 26)]
    server = FakeServer(record_of() + labs, page_size=2)
    record = gather_over_http(templates, server, page_size=None)
    assert sum(1 for i in ids(record) if i.startswith("Observation/bili-")) == 25
    assert sum(1 for r in server.requests if r.url.path.endswith("/Observation")) == 14  # 27 Observations, 2 a page


def test_another_patients_observation_in_a_searchset_is_excluded_and_reported(templates):
    alien = f.lab("1975-2", 9.0, "mg/dL", "2026-01-02", pid="p2", rid="alien")

    class LeakyServer(FakeServer):
        async def search_page(self, rtype, url):
            bundle = await super().search_page(rtype, url)
            if rtype == "Observation":
                bundle["entry"].append({"resource": alien, "search": {"mode": "match"}})
            return bundle

    record = gather_over_http(templates, LeakyServer(record_of()))
    assert "Observation/alien" not in ids(record)
    assert issues(record) == {"Observation/alien": "belongs to another patient; excluded"}


def test_a_search_whose_patient_filter_was_ignored_is_refiltered_and_reported_once(templates):
    server = FakeServer(record_of() + record_of("p2") + record_of("p3"), ignore={("Condition", "patient")})
    record = gather_over_http(templates, server)
    assert [i for i in ids(record) if i.startswith("Condition/")] == ["Condition/p1-hcc"]
    assert list(issues(record)) == ["search:conditions"]
    assert "Unknown search parameter 'patient'" in issues(record)["search:conditions"]


def test_an_ignored_code_filter_only_widens_the_search(templates):
    other_lab = f.lab("718-7", 13.0, "g/dL", "2026-01-01", rid="p1-hb")
    server = FakeServer(record_of() + [other_lab], ignore={("Observation", "code")})
    record = gather_over_http(templates, server)
    assert {"Observation/p1-bili", "Observation/p1-hb"} <= set(ids(record))  # the mapping ignores 718-7


def test_a_lesion_of_another_patient_named_by_focus_is_excluded_and_reported(templates):
    resources = record_of() + [tumour_size("p1-size-2", "p2-lesion"), body_structure("p2-lesion", "p2")]
    record = gather_over_http(templates, FakeServer(resources))
    assert "BodyStructure/p2-lesion" not in ids(record) and "BodyStructure/p1-lesion" in ids(record)
    assert issues(record) == {"BodyStructure/p2-lesion": "belongs to another patient; excluded"}


def test_when_the_server_ignores_id_each_lesion_is_read_and_a_missing_one_skipped(templates):
    resources = record_of() + [tumour_size("p1-size-2", "gone")]
    server = FakeServer(resources + record_of("p2"), ignore={("BodyStructure", "_id")})
    record = gather_over_http(templates, server)
    lesions = [i for i in ids(record) if i.startswith("BodyStructure/")]
    assert lesions == ["BodyStructure/p1-lesion"]
    reads = sorted(r.url.path for r in server.requests if r.url.path.startswith("/fhir/BodyStructure/"))
    assert reads == ["/fhir/BodyStructure/gone", "/fhir/BodyStructure/p1-lesion"]


def test_lesions_are_resolved_from_prefetched_observations_too(templates):
    prefetch = full_prefetch(record_of())
    del prefetch["bodyStructures"]
    server = FakeServer(record_of())
    record = gather_over_http(templates, server, prefetch=prefetch)
    assert "BodyStructure/p1-lesion" in ids(record)
    assert server.searched_types() == ["BodyStructure"]


def test_an_unknown_patient_is_not_found_even_while_searches_succeed(templates):
    with pytest.raises(FhirNotFoundError):
        gather_over_http(templates, FakeServer(record_of()), pid="nobody")


def test_auth_failure_wins_over_other_failures(templates):
    server = FakeServer(
        record_of(),
        fail={"Condition": httpx.Response(503), "Procedure": httpx.Response(401), "Observation": httpx.Response(500)},
    )
    with pytest.raises(FhirAuthError):
        gather_over_http(templates, server, sleep=_no_sleep)


async def _no_sleep(seconds: float) -> None:
    return None


def test_one_failing_search_fails_the_whole_gathering(templates):
    server = FakeServer(
        record_of(),
        fail={
            "MedicationStatement": httpx.Response(
                400,
                json={
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "error",
                            "code": "not-supported",
                            "diagnostics": "MedicationStatement not supported",
                        }
                    ],
                },
            )
        },
    )
    with pytest.raises(FhirResponseError, match="MedicationStatement not supported"):
        gather_over_http(templates, server)


def test_the_overall_deadline_bounds_a_slow_server(templates):
    server = FakeServer(record_of(), delay=10)
    started = time.monotonic()
    with pytest.raises(FhirUnavailableError, match="within 0.2 s"):
        gather_over_http(templates, server, deadline=0.2)
    assert time.monotonic() - started < 2


def test_retries_stop_at_the_overall_deadline(templates):
    server = FakeServer(record_of(), fail={"Condition": httpx.Response(503, headers={"Retry-After": "1"})})
    started = time.monotonic()
    with pytest.raises(FhirUnavailableError, match="within 0.3 s"):
        gather_over_http(templates, server, deadline=0.3)
    assert time.monotonic() - started < 2


# -- helpers ---------------------------------------------------------------------------------------


def test_templates_render_the_patient_id_url_encoded():
    assert (
        render_template("Observation?patient={{context.patientId}}", {"patientId": "a&b=c"})
        == "Observation?patient=a%26b%3Dc"
    )
    assert render_template("Patient/{{context.patientId}}", {"patientId": "p-1.2"}) == "Patient/p-1.2"


def test_focus_ids_take_relative_body_structure_references_with_valid_ids_only():
    observations = [
        tumour_size("a", "les-1"),
        tumour_size("b", "les-1"),
        {
            "focus": [
                {"reference": "BodyStructure/../Patient/x"},
                {"reference": "https://evil.com/BodyStructure/x"},
                {"reference": "Condition/c1"},
                {"display": "no reference"},
                "junk",
            ]
        },
    ]
    assert focus_ids(observations) == ["les-1"]


def test_restrict_to_patient_reads_absolute_and_versioned_references():
    resources = [
        f.lab("1975-2", 1, "mg/dL", "2026-01-01", rid="rel"),
        {
            **f.lab("1975-2", 1, "mg/dL", "2026-01-01", rid="abs"),
            "subject": {"reference": "https://ehr.org/fhir/Patient/p1"},
        },
        {**f.lab("1975-2", 1, "mg/dL", "2026-01-01", rid="ver"), "subject": {"reference": "Patient/p1/_history/3"}},
        {**f.lab("1975-2", 1, "mg/dL", "2026-01-01", rid="pre"), "subject": {"reference": "Patient/p10"}},
        f.patient("p2"),
        f.patient("p1"),
    ]
    kept, reported = restrict_to_patient(resources, "p1")
    assert [r["id"] for r in kept] == ["rel", "abs", "ver", "p1"]
    assert [(i.resource, i.problem) for i in reported] == [
        ("Observation/pre", "belongs to another patient; excluded"),
        ("Patient/p2", "belongs to another patient; excluded"),
    ]


def test_search_result_add_accumulates_pages():
    from service.fhir.source import SearchPage

    result = SearchResult()
    result.add(SearchPage(resources=[{"id": "a"}], outcomes=["x"]))
    result.add(SearchPage(resources=[{"id": "b"}], unfiltered=True))
    assert result.resources == [{"id": "a"}, {"id": "b"}] and result.outcomes == ["x"] and result.unfiltered
