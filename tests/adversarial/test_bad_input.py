"""Bad clinical data and malformed requests through the whole REST and hook paths (the ASGI app in-process).

``POST /api/v1/assessments`` and the hook (with prefetch) get corrupted records, broken Bundle
structures and JSON edge cases (NaN, Infinity, duplicate keys, deep nesting, a BOM): the answer is a
200 assessment in which no rejected resource is evidence and no unusable one makes a finding ``met``,
or a 4xx with a message; never a 5xx.
"""

from __future__ import annotations

import json
import math
import os
import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.main import create_app
from tests.adversarial.clinical_data import AS_OF, findings, record, rejected_refs, unusable_refs
from tests.adversarial.conftest import demo_settings, register_patient
from tests.adversarial.contract import known_answer_problems
from tests.adversarial.test_mapping_fuzz import BAD_VALUES, corrupted_record
from tests.api.hook_requests import full_prefetch, patient_view

EXAMPLES = int(os.environ.get("HCC_ADVERSARIAL_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))
ASSESS = "/api/v1/assessments"
HOOK = "/cds-services/hcc-tace-resistance"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(demo_settings()), raise_server_exceptions=False) as test_client:
        yield test_client


def bundle_of(patient: dict, resources: list) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in [patient, *resources]]}


def check_answer(response, method: str, template: str) -> dict | None:
    """A 200 that passes the evidence rules, or a 4xx with a message; never a 5xx. Returns the 200 body."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    problems = known_answer_problems(response, method, template)
    assert not problems, problems
    if response.status_code != 200:
        assert response.status_code in (400, 404, 412, 413, 422), response.status_code
        error = response.json()
        message = error.get("detail") or (error.get("issue") or [{}])[0].get("diagnostics")
        assert message, response.text
        return None
    body = response.json()
    if "cards" in body:
        return body
    assert_evidence_rules(body)
    return body


def assert_evidence_rules(body: dict) -> None:
    """No rejected resource is evidence, no unusable one makes a finding met. A Patient that failed validation
    is still the patient (kept as its id alone): it may be named, but nothing it said may make a finding met."""
    rejected, unusable = rejected_refs(body), unusable_refs(body)
    patient = f"Patient/{body['patient_id']}"
    for where, status, evidence in findings(body):
        cited = rejected.intersection(evidence) - {patient}
        assert not cited, f"{where} cites rejected {cited}"
        if status == "met":
            bad = (unusable | rejected).intersection(evidence)
            assert not bad, f"{where} is met on rejected or unusable {bad}"


@st.composite
def broken_bundle(draw):
    """A record corrupted inside its resources and/or in the Bundle's own structure."""
    patient, resources, _ = draw(corrupted_record())
    bundle = bundle_of(patient, resources)
    entries = bundle["entry"]
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(entries) - 1))
        how = draw(st.sampled_from(["entry", "resource", "resourceType", "id", "subject", "second-patient", "drop-patient"]))
        value = draw(BAD_VALUES)
        if how == "entry":
            entries[i] = value
        elif how == "resource" and isinstance(entries[i], dict):
            entries[i]["resource"] = value
        elif isinstance(entries[i], dict) and isinstance(entries[i].get("resource"), dict):
            resource = entries[i]["resource"]
            if how == "resourceType":
                resource["resourceType"] = value
            elif how == "id":
                resource["id"] = value
            elif how == "subject":
                resource["subject"] = {"reference": value} if draw(st.booleans()) else value
            elif how == "second-patient":
                entries.append({"resource": {**patient, "id": draw(st.sampled_from(["other", patient["id"]]))}})
            elif how == "drop-patient":
                bundle["entry"] = [e for e in entries if not (isinstance(e, dict) and e.get("resource") is patient)]
                entries = bundle["entry"]
                if not entries:
                    break
    return bundle


@FUZZ
@given(broken_bundle())
def test_a_broken_bundle_is_assessed_or_refused_never_a_5xx(client, bundle):
    response = client.post(ASSESS, params={"as_of": AS_OF.isoformat()}, json=bundle)
    check_answer(response, "POST", "/api/v1/assessments")


@FUZZ
@given(corrupted_record())
def test_corrupted_prefetch_is_assessed_or_refused_never_a_5xx(client, data):
    patient, resources, _ = data
    body = patient_view(patient["id"], prefetch=full_prefetch(resources, patient))
    check_answer(client.post(HOOK, json=body), "POST", "/cds-services/{service_id}")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "p1", '
                     '"birthDate": NaN}}]}', id="NaN"),
        pytest.param('{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}, '
                     '{"resource": {"resourceType": "Observation", "id": "o1", "status": "final", "subject": '
                     '{"reference": "Patient/p1"}, "code": {"coding": [{"system": "http://loinc.org", "code": "1975-2"}]}, '
                     '"effectiveDateTime": "2026-05-01", "valueQuantity": {"value": Infinity, "unit": "mg/dL", '
                     '"code": "mg/dL", "system": "http://unitsofmeasure.org"}}}]}', id="Infinity-bilirubin"),
        pytest.param('{"resourceType": "Bundle", "resourceType": "Patient", "entry": []}', id="duplicate-keys"),
        pytest.param('\ufeff{"resourceType": "Bundle", "entry": []}', id="byte-order-mark"),
        pytest.param('{"resourceType": "Bundle", "entry": ' + "[" * 50_000 + "]" * 50_000 + "}", id="nested-50000"),
        pytest.param('{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]', id="truncated"),
        pytest.param("", id="empty"),
        pytest.param("null", id="null"),
        pytest.param('"Bundle"', id="a-string"),
        pytest.param('{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "p1", '
                     '"name": [{"text": "\\ud800"}]}}]}', id="lone-surrogate"),
    ],
)
def test_json_edge_cases_are_refused_or_assessed_never_a_5xx(client, raw):
    response = client.post(ASSESS, content=raw.encode("utf-8", "surrogatepass"), headers={"content-type": "application/json"})
    body = check_answer(response, "POST", "/api/v1/assessments")
    if body is not None:
        json.dumps(body, allow_nan=False)


def test_a_non_finite_value_never_reaches_the_assessment(client):
    raw = ('{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}, '
           '{"resource": {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": '
           '"Patient/p1"}, "code": {"coding": [{"system": "http://loinc.org", "code": "1975-2"}]}, "effectiveDateTime": '
           '"2026-05-01", "valueQuantity": {"value": NaN, "unit": "mg/dL", "code": "mg/dL", "system": '
           '"http://unitsofmeasure.org"}}}]}')
    response = client.post(ASSESS, params={"as_of": "2026-05-10"}, content=raw, headers={"content-type": "application/json"})
    body = check_answer(response, "POST", "/api/v1/assessments")
    assert body is not None
    assert any(i["resource"] == "Observation/o1" for i in body["data_issues"])
    assert not re.search(r"\bNaN\b|Infinity", response.text)


def test_ten_thousand_observations_through_the_rest_api():
    """Within the default body limit (8 MiB, chosen to admit a 10 000-Observation record): a 200 in bounded time.
    With a limit below the body: 413."""
    patient, resources = record("demo-eligible")
    bulk = [
        {"resourceType": "Observation", "id": f"bulk-{n}", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]},  # ALT: read, not a decision input
         "subject": {"reference": "Patient/demo-eligible"}, "effectiveDateTime": "2025-01-01",
         "valueQuantity": {"value": n % 90, "unit": "U/L", "code": "U/L", "system": "http://unitsofmeasure.org"}}
        for n in range(10_000)
    ]
    body = json.dumps(bundle_of(patient, resources + bulk)).encode()
    with TestClient(create_app(demo_settings(max_body_bytes=len(body) - 1)), raise_server_exceptions=False) as small:
        assert small.post(ASSESS, content=body, headers={"content-type": "application/json"}).status_code == 413
    import time

    with TestClient(create_app(demo_settings()), raise_server_exceptions=False) as big:
        started = time.monotonic()
        response = big.post(ASSESS, params={"as_of": AS_OF.isoformat()}, content=body,
                            headers={"content-type": "application/json"})
        elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text[:300]
    assert elapsed < 30, f"{elapsed:.1f} s for 10 000 Observations"
    check_answer(response, "POST", "/api/v1/assessments")


def test_duplicate_patients_and_resources_of_other_patients(client):
    patient, resources = record("demo-eligible")
    twice = bundle_of(patient, [*resources, dict(patient)])
    assert client.post(ASSESS, json=twice).status_code == 422
    other, other_resources = record("demo-ineligible")
    mixed = bundle_of(patient, resources + other_resources[:10])
    body = check_answer(client.post(ASSESS, params={"as_of": AS_OF.isoformat()}, json=mixed), "POST", "/api/v1/assessments")
    excluded = {r for r in rejected_refs(body)}
    assert {f"{r['resourceType']}/{r['id']}" for r in other_resources[:10]} <= excluded


@pytest.mark.parametrize("as_of", ["0001-01-01", "0001-01-31", "9999-12-31", "1970-01-01"])
def test_an_as_of_at_the_ends_of_the_calendar_is_answered_not_a_crash(client, as_of):
    """Found by this suite: rules' windows (as_of - 30 days...) overflowed the calendar (a 500)."""
    response = client.get("/api/v1/patients/demo-eligible/assessment", params={"as_of": as_of})
    check_answer(response, "GET", "/api/v1/patients/{patient_id}/assessment")


@pytest.mark.parametrize("as_of", ["0", "86400", "1699920000"])
def test_an_as_of_that_is_not_a_calendar_date_is_refused(client, as_of):
    response = client.get("/api/v1/patients/demo-eligible/assessment", params={"as_of": as_of})
    assert response.status_code == 422, f"as_of={as_of} was read as {response.json().get('as_of')}"


def test_a_made_up_patients_identity_is_never_logged(client):
    """A synthetic patient with a distinctive name, birth date and MRN: the session's log scan looks for them."""
    patient = register_patient({
        "resourceType": "Patient", "id": "adv-zebulon-7731", "birthDate": "1931-07-17", "gender": "male",
        "name": [{"family": "Quixotepanza", "given": ["Zebulon"]}],
        "identifier": [{"system": "urn:adv:mrn", "value": "ADV-MRN-55321"}],
    })
    _, resources = record("demo-eligible")
    for r in resources:
        if isinstance(r.get("subject"), dict):
            r["subject"] = {"reference": "Patient/adv-zebulon-7731"}
    resources[0]["status"] = "not-a-status"  # one resource failing validation: its problem is reported
    body = check_answer(client.post(ASSESS, json=bundle_of(patient, resources)), "POST", "/api/v1/assessments")
    assert body is not None and math.isfinite(len(body["data_issues"]))
    hook = patient_view("adv-zebulon-7731", prefetch=full_prefetch(resources, patient))
    check_answer(client.post(HOOK, json=hook), "POST", "/cds-services/{service_id}")
    check_answer(client.get("/api/v1/patients/adv-zebulon-7731/assessment"), "GET", "/api/v1/patients/{patient_id}/assessment")
