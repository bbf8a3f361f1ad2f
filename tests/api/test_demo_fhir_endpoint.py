"""The demo FHIR endpoint answers FHIR clients as a FHIR server does (issue 19): a CapabilityStatement at
``metadata`` and ``POST [type]/_search`` with a form-encoded body (what the CDS Hooks sandbox sends)."""

from __future__ import annotations

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

SORAFENIB_TABLET = "http://www.nlm.nih.gov/research/umls/rxnorm|597747"


def test_metadata_is_a_valid_r4_capability_statement_naming_every_type_and_search_parameter(client):
    r = client.get("/demo-fhir/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    statement = CapabilityStatement.model_validate(body)  # R4B's model: required fields, codes, cardinalities
    assert statement.fhirVersion == "4.0.1" and statement.kind == "instance"
    rest = body["rest"][0]
    assert rest["mode"] == "server"
    by_type = {res["type"]: res for res in rest["resource"]}
    assert {"Patient", "Observation", "Condition", "Procedure", "MedicationRequest"} <= set(by_type)
    for resource_type, res in by_type.items():
        assert {i["code"] for i in res["interaction"]} == {"read", "search-type"}
        names = {p["name"] for p in res["searchParam"]}
        assert names == ({"_id"} if resource_type == "Patient" else {"_id", "patient", "subject", "code"})
    # every parameter the statement names is one the endpoint really filters by (no "ignored" outcome)
    for name, value in [("patient", "demo-eligible"), ("subject", "Patient/demo-eligible"), ("code", "x|y"), ("_id", "z")]:
        bundle = client.get("/demo-fhir/Observation", params={name: value}).json()
        assert not [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]


def test_post_search_with_a_form_body_answers_what_get_answers(client):
    params = {"patient": "demo-eligible", "code": SORAFENIB_TABLET}
    by_get = client.get("/demo-fhir/MedicationRequest", params=params).json()
    by_post = client.post("/demo-fhir/MedicationRequest/_search", data=params)
    assert by_post.status_code == 200 and by_post.headers["content-type"].startswith("application/fhir+json")
    assert by_post.json() == by_get
    assert by_get["type"] == "searchset" and by_get["total"] >= 0
    everything = client.post("/demo-fhir/Observation/_search", data={"patient": "demo-eligible"}).json()
    assert everything["total"] > 0
    assert all(e["resource"]["subject"]["reference"] == "Patient/demo-eligible" for e in everything["entry"])


def test_post_search_merges_query_and_body_parameters_and_accepts_an_empty_body(client):
    merged = client.post("/demo-fhir/Patient/_search?_id=demo-eligible", data={"_count": "10"}).json()
    assert [e["resource"]["id"] for e in merged["entry"]] == ["demo-eligible"]
    empty = client.post("/demo-fhir/Patient/_search", headers={"content-type": "application/x-www-form-urlencoded"})
    assert empty.status_code == 200 and empty.json()["total"] >= 3


def test_post_search_reports_an_unknown_parameter_as_a_server_does(client):
    bundle = client.post("/demo-fhir/Observation/_search", data={"patient": "demo-eligible", "date": "ge2020"}).json()
    outcomes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcomes and "date" in outcomes[0]["issue"][0]["diagnostics"]


def test_post_search_with_a_body_that_is_not_a_form_is_a_clear_4xx(client):
    r = client.post("/demo-fhir/Observation/_search", json={"patient": "demo-eligible"})
    assert r.status_code == 415 and r.json()["resourceType"] == "OperationOutcome"
    r = client.post("/demo-fhir/Observation/_search", content=b"\xff\xfe=1",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = client.post("/demo-fhir/Observation/_search", content="&".join(f"p{i}=1" for i in range(500)),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400


def test_the_demo_fhir_reads_still_work(client):
    assert client.get("/demo-fhir/Patient/demo-eligible").json()["id"] == "demo-eligible"
    assert client.get("/demo-fhir/Patient/nobody").status_code == 404
