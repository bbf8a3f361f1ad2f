"""FHIR access against the real FHIR test server: paging, prefetch merging, lesions of another patient, bad data.

Each test loads its own patients under unique ids, so the session's server can be shared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from service.api import assessments as assessments_api
from service.cds.services import patient_record_templates
from service.demo import DEMO_PATIENT_IDS
from service.fhir.client import HttpFhirSource
from service.main import create_app
from service.settings import Settings
from tests import fhir_factories as f
from tests.api.hook_requests import SERVICE_ID, comparable_cards, full_prefetch, patient_view
from tests.api.test_hooks import demo_record
from tests.integration.fhir_server import load_resources, search_bundle

LAB_CODES = [
    ("1975-2", "mg/dL", 1.1),
    ("1751-7", "g/dL", 3.8),
    ("6301-6", "{INR}", 1.1),
    ("777-3", "10*3/uL", 150),
    ("2160-0", "mg/dL", 0.9),
]
PREFETCH_TYPES = {
    "conditions": "Condition",
    "procedures": "Procedure",
    "observations": "Observation",
    "medicationRequests": "MedicationRequest",
    "medicationStatements": "MedicationStatement",
    "bodyStructures": "BodyStructure",
    "allergies": "AllergyIntolerance",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


without_uuid = comparable_cards


def cards_of(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return without_uuid(response.json()["cards"])


def count_requests(app) -> list[httpx.Request]:
    """Every request the app's shared HTTP client sends from now on (an event hook on it)."""
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    app.state.hcc.fhir.client.event_hooks["request"].append(record)
    return seen


def with_page_size(templates: dict[str, str], size: int) -> dict[str, str]:
    """A test-only override: every search template asks for ``size`` resources a page."""
    return {k: (t + f"&_count={size}" if "?" in t else t) for k, t in templates.items()}


# -- a patient whose Observations span many pages -------------------------------------------------------


@pytest.fixture(scope="module")
def paging_patient(fhir_server):
    """25 Observations (5 of them preliminary, reported in data_issues) plus an HCC diagnosis and a TACE."""
    pid = unique("paging")
    today = Settings().today()
    resources = [
        f.patient(pid),
        f.condition("109841003", (today - timedelta(days=400)).isoformat(), pid=pid, rid=f"{pid}-hcc"),
        f.procedure(
            "441525007", {"performedDateTime": (today - timedelta(days=300)).isoformat()}, pid=pid, rid=f"{pid}-tace"
        ),
    ]
    for i in range(25):
        code, unit, value = LAB_CODES[i % len(LAB_CODES)]
        day = (today - timedelta(days=2 + i)).isoformat()
        status = "preliminary" if i % 5 == 4 else "final"
        resources.append(f.lab(code, value, unit, day, pid=pid, rid=f"{pid}-obs-{i:02d}", status=status))
    load_resources(fhir_server, resources)
    return pid, resources


def test_a_search_spanning_pages_returns_every_observation(fhir_server, paging_patient):
    pid, _ = paging_patient

    async def search():
        sent: list[httpx.Request] = []

        async def record(request):
            sent.append(request)

        async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
            source = HttpFhirSource(client, fhir_server.base_url, page_size=2)
            return await source.search("Observation", [("patient", pid)]), sent

    result, sent = asyncio.run(search())
    assert sorted(r["id"] for r in result.resources) == [f"{pid}-obs-{i:02d}" for i in range(25)]
    assert len(sent) == 13 and all(r.url.host == "127.0.0.1" for r in sent)
    assert not result.unfiltered


def test_rest_over_many_pages_equals_the_same_record_posted_as_a_bundle(
    monkeypatch, settings, fhir_server, paging_patient
):
    pid, resources = paging_patient
    monkeypatch.setattr(
        assessments_api, "patient_record_templates", lambda k: with_page_size(patient_record_templates(k), 2)
    )
    monkeypatch.setenv("HCC_FHIR_BASE_URL", fhir_server.base_url)
    with TestClient(create_app(Settings())) as remote:
        sent = count_requests(remote.app)
        via_server = remote.get(f"/api/v1/patients/{pid}/assessment")
        posted = remote.post("/api/v1/assessments", json=f.bundle(*resources))
    assert via_server.status_code == 200 and posted.status_code == 200, via_server.text
    assert sum(1 for r in sent if r.url.path.endswith("/Observation")) == 13
    assert sorted(i["resource"] for i in via_server.json()["data_issues"]) == [
        f"Observation/{pid}-obs-{i:02d}" for i in (4, 9, 14, 19, 24)
    ]
    assert _sorted_issues(via_server.json()) == _sorted_issues(posted.json())


def _sorted_issues(assessment: dict) -> dict:
    return {**assessment, "data_issues": sorted(assessment["data_issues"], key=lambda i: (i["resource"], i["problem"]))}


def test_a_hook_without_prefetch_pages_through_the_server(client, fhir_server, paging_patient):
    pid, resources = paging_patient
    service = client.app.state.hcc.services[SERVICE_ID]
    client.app.state.hcc.services[SERVICE_ID] = dataclasses.replace(
        service, prefetch=with_page_size(service.prefetch, 2)
    )
    sent = count_requests(client.app)
    fetched = client.post(
        f"/cds-services/{SERVICE_ID}", json=patient_view(pid, fhir_server=fhir_server.base_url, token="t")
    )
    patient = resources[0]
    prefetched = client.post(
        f"/cds-services/{SERVICE_ID}", json=patient_view(pid, prefetch=full_prefetch(resources[1:], patient))
    )
    assert cards_of(fetched) == cards_of(prefetched) and cards_of(fetched)
    assert sum(1 for r in sent if r.url.path.endswith("/Observation")) == 13


# -- the same assessment from full, partial, paginated and no prefetch ---------------------------------


def resource_type(request: httpx.Request) -> str:
    return request.url.path.rsplit("/fhir/", 1)[1].split("/")[0]


def partial_prefetch(resources: list[dict], patient: dict) -> dict:
    """Some keys missing (to fetch), keys the patient has no data for ``null``, the rest given."""
    prefetch = full_prefetch(resources, patient)
    present = {r["resourceType"] for r in resources}
    for key, rtype in PREFETCH_TYPES.items():
        if rtype not in present:
            prefetch[key] = None
    del prefetch["observations"], prefetch["conditions"]
    return prefetch


@pytest.mark.parametrize("pid", DEMO_PATIENT_IDS)
def test_full_partial_paginated_and_no_prefetch_give_the_same_cards(client, settings, fhir_server, pid):
    patient, resources = demo_record(pid, settings.today())
    first_page = search_bundle(fhir_server, f"Observation?patient={pid}&_count=3")
    assert any(link["relation"] == "next" for link in first_page["link"]), "the prefetch must be paginated"
    paginated = {**full_prefetch(resources, patient), "observations": first_page}
    server = fhir_server.base_url
    calls = {
        "full": patient_view(pid, prefetch=full_prefetch(resources, patient)),
        "partial": patient_view(pid, prefetch=partial_prefetch(resources, patient), fhir_server=server, token="t"),
        "paginated": patient_view(pid, prefetch=paginated, fhir_server=server, token="t"),
        "none": patient_view(pid, fhir_server=server, token="t"),
    }
    sent = count_requests(client.app)
    cards, requests = {}, {}
    for name, body in calls.items():
        sent.clear()
        cards[name] = cards_of(client.post(f"/cds-services/{SERVICE_ID}", json=body))
        requests[name] = list(sent)
    assert cards["full"], "each demo patient gets a card"
    assert requests["full"] == []
    assert sorted(resource_type(r) for r in requests["partial"]) == ["Condition", "Observation"]
    assert {resource_type(r) for r in requests["paginated"]} == {"Observation"}
    assert all(int(r.url.params["_offset"]) >= 3 for r in requests["paginated"]), "only the rest is fetched"
    for name in ("partial", "paginated", "none"):
        assert cards[name] == cards["full"], name


def test_a_paginated_prefetch_without_fhir_server_is_412(client, fhir_server):
    patient, resources = demo_record("demo-eligible", Settings().today())
    prefetch = {
        **full_prefetch(resources, patient),
        "observations": search_bundle(fhir_server, "Observation?patient=demo-eligible&_count=3"),
    }
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible", prefetch=prefetch))
    assert r.status_code == 412 and "first page of observations" in r.json()["detail"]


def test_an_unknown_patient_on_a_hook_is_404_with_an_operation_outcome(client, fhir_server):
    r = client.post(
        f"/cds-services/{SERVICE_ID}", json=patient_view(unique("nobody"), fhir_server=fhir_server.base_url)
    )
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"


# -- lesions ---------------------------------------------------------------------------------------


def lesion(rid: str, pid: str) -> dict:
    return {
        "resourceType": "BodyStructure",
        "id": rid,
        "location": {
            "coding": [{"system": "http://snomed.info/sct", "code": "10200004", "display": "Liver structure"}]
        },
        "patient": {"reference": f"Patient/{pid}"},
    }


def tumour_size(rid: str, pid: str, lesion_id: str, day: str, mm: float) -> dict:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "21889-1"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "focus": [{"reference": f"BodyStructure/{lesion_id}"}],
        "effectiveDateTime": day,
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "33728-7"}]},
                "valueQuantity": {"value": mm, "unit": "mm", "system": "http://unitsofmeasure.org", "code": "mm"},
            }
        ],
    }


@pytest.fixture(scope="module")
def focus_patients(fhir_server):
    """Patient A has one lesion of their own and a TumorSize whose focus names patient B's lesion."""
    a, b = unique("focus-a"), unique("focus-b")
    day = (Settings().today() - timedelta(days=10)).isoformat()
    resources = [
        f.patient(a),
        f.patient(b),
        f.condition("109841003", "2025-01-01", pid=a, rid=f"{a}-hcc"),
        lesion(f"{a}-lesion", a),
        lesion(f"{b}-lesion", b),
        tumour_size(f"{a}-size-own", a, f"{a}-lesion", day, 30),
        tumour_size(f"{a}-size-foreign", a, f"{b}-lesion", day, 20),
    ]
    load_resources(fhir_server, resources)
    return a, b


def test_the_test_server_ignores_patient_on_body_structure_and_says_so(fhir_server, focus_patients):
    a, _ = focus_patients
    bundle = search_bundle(fhir_server, f"BodyStructure?patient={a}")
    outcomes = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "OperationOutcome"]
    assert outcomes and outcomes[0]["issue"][0]["code"] == "not-supported"
    assert len([e for e in bundle["entry"] if e["resource"]["resourceType"] == "BodyStructure"]) > 1


def test_a_focus_on_another_patients_lesion_is_excluded_and_reported(
    monkeypatch, settings, fhir_server, focus_patients
):
    a, b = focus_patients
    monkeypatch.setenv("HCC_FHIR_BASE_URL", fhir_server.base_url)
    with TestClient(create_app(Settings())) as remote:
        assessment = remote.get(f"/api/v1/patients/{a}/assessment").json()
    issues = {(i["resource"], i["problem"]) for i in assessment["data_issues"]}
    assert (f"BodyStructure/{b}-lesion", "belongs to another patient; excluded") in issues
    assert not any(resource == f"BodyStructure/{a}-lesion" for resource, _ in issues)
    assert not any(b in resource for resource, _ in issues if resource.startswith("Observation/"))


def card_page(client: TestClient, card: dict) -> str:
    """The text of the assessment page the card links to (where the data not used is listed)."""
    url = next(link["url"] for link in card["links"] if "/assessments/" in link["url"])
    page = client.get("/assessments/" + url.rsplit("/assessments/", 1)[1])
    assert page.status_code == 200
    return page.text


def test_a_hook_for_the_patient_with_the_foreign_lesion_answers_no_card(client, fhir_server, focus_patients):
    """Patient A has no TACE: not-applicable, so no card (PRODUCT.md Outputs); the excluded lesion is
    reported in the assessment (previous test) and, for a patient with a card, on the card's page
    (test_a_broken_resource_in_prefetch_is_skipped_and_listed)."""
    a, _ = focus_patients
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view(a, fhir_server=fhir_server.base_url))
    assert r.status_code == 200 and r.json() == {"cards": []}


# -- a resource that fails validation --------------------------------------------------------------


def test_a_broken_resource_in_prefetch_is_skipped_and_listed(client, settings):
    patient, resources = demo_record("demo-eligible", settings.today())
    broken = {
        **f.lab("1975-2", 1.0, "mg/dL", settings.today().isoformat(), pid="demo-eligible", rid="broken-1"),
        "status": {"not": "a code"},
    }
    clean = cards_of(
        client.post(
            f"/cds-services/{SERVICE_ID}",
            json=patient_view("demo-eligible", prefetch=full_prefetch(resources, patient)),
        )
    )
    r = client.post(
        f"/cds-services/{SERVICE_ID}",
        json=patient_view("demo-eligible", prefetch=full_prefetch([*resources, broken], patient)),
    )
    (card,) = r.json()["cards"]
    assert "Observation/broken-1" not in card["detail"]
    assert "Observation/broken-1: fails FHIR R4 validation" in card_page(client, card)
    assert card["summary"] == clean[0]["summary"]
