"""Every recommendation code end to end through POST /api/v1/assessments, from FHIR Bundles."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from service.demo import demo_bundles
from tests import fhir_factories as f

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def eligible_resources(today: date) -> list[dict]:
    bundle = next(b for b in demo_bundles(today) if b["id"] == "demo-eligible-bundle")
    return [e["resource"] for e in bundle["entry"]]


def ago(today: date, n: int) -> str:
    return (today - timedelta(days=n)).isoformat()


def when(resource: dict) -> date | None:
    value = resource.get("effectiveDateTime") or resource.get("performedDateTime")
    return date.fromisoformat(value[:10]) if value else None


def is_size(r: dict) -> bool:
    return r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "21889-1"


def is_code(r: dict, code: str) -> bool:
    return r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == code


def not_resistant(today: date) -> list[dict]:
    """Two sessions (-400, -300) with stable disease 60 days after the second: TACE resistance not met.

    The -240 scan is repeated at -20 (unchanged): candidacy needs imaging at most 90 days old.
    """
    cutoff = today - timedelta(days=235)
    keep = []
    for r in eligible_resources(today):
        if r["resourceType"] == "Procedure" and when(r) > today - timedelta(days=250):
            continue
        if is_size(r) and when(r) > cutoff:
            continue
        keep.append(r)
    fresh = [{**r, "id": f"{r['id']}-repeat", "effectiveDateTime": ago(today, 20)}
             for r in keep if is_size(r) and when(r) == today - timedelta(days=240)]
    return keep + fresh


def sorafenib(today: date, start_days_ago: int) -> dict:
    return {
        "resourceType": "MedicationRequest", "id": "sora-1", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RX, "code": "597747", "display": "sorafenib 200 MG Oral Tablet"}]},
        "subject": {"reference": "Patient/demo-eligible"}, "authoredOn": ago(today, start_days_ago),
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": 400, "unit": "mg", "system": f.UCUM, "code": "mg"}}]}],
    }


def replace_lab(resources: list[dict], code: str, value: float, unit: str, today: date) -> list[dict]:
    kept = [r for r in resources if not (is_code(r, code) and when(r) > today - timedelta(days=30))]
    return kept + [f.lab(code, value, unit, ago(today, 2), pid="demo-eligible", rid=f"new-{code}")]


def scenario(name: str, today: date) -> list[dict]:
    base = eligible_resources(today)
    if name == "sorafenib-plus-tace":
        return base
    if name == "sorafenib-alone":
        refused = f.procedure("441525007", {"performedDateTime": ago(today, 20)}, status="not-done", pid="demo-eligible", rid="tace-refused")
        refused["statusReason"] = {"text": "patient refused TACE"}
        return base + [refused]
    if name == "outside-study-criteria":
        kps = next(r for r in base if is_code(r, "89243-0"))
        return [r for r in base if r is not kps] + [{**kps, "valueInteger": 70}]
    if name == "insufficient-data":
        return [r for r in base if not (is_code(r, "89243-0") or is_code(r, "89247-1"))]
    if name == "continue-tace":
        return not_resistant(today)
    if name == "refer-mdt":
        return replace_lab(not_resistant(today), "1975-2", 3.5, "mg/dL", today)
    if name == "on-sorafenib":
        return base + [sorafenib(today, 100)]
    if name == "not-applicable:deceased":
        return [{**r, "deceasedDateTime": ago(today, 3)} if r["resourceType"] == "Patient" else r for r in base]
    if name == "not-applicable:no-hcc":
        return [r for r in base if not (r["resourceType"] == "Condition" and r["code"]["coding"][0]["code"] == "109841003")]
    if name == "not-applicable:no-tace":
        return [r for r in base if r["resourceType"] != "Procedure"]
    raise KeyError(name)


@pytest.mark.parametrize(
    "name",
    [
        "sorafenib-plus-tace", "sorafenib-alone", "outside-study-criteria", "insufficient-data", "continue-tace",
        "refer-mdt", "on-sorafenib", "not-applicable:deceased", "not-applicable:no-hcc", "not-applicable:no-tace",
    ],
)
def test_each_recommendation_code_is_reachable_with_reasons_and_context(client, settings, name):
    today = settings.today()
    body = client.post(f"/api/v1/assessments?as_of={today.isoformat()}", json=f.bundle(*scenario(name, today))).json()
    rec = body["recommendation"]
    assert rec["code"] == name.split(":")[0], rec
    assert rec["reasons"] and rec["summary"]
    assert rec["context"].startswith("Based on a 2008–2015 retrospective cohort (n=34).")


def test_refer_mdt_says_tace_is_contraindicated(client, settings):
    today = settings.today()
    body = client.post("/api/v1/assessments", json=f.bundle(*scenario("refer-mdt", today))).json()
    assert any("bilirubin 3.5 mg/dL > 3" in r for r in body["recommendation"]["reasons"])


def test_sorafenib_alone_names_the_refusal(client, settings):
    body = client.post("/api/v1/assessments", json=f.bundle(*scenario("sorafenib-alone", settings.today()))).json()
    assert body["tace_candidacy"]["status"] == "not-met"
    assert any("patient refused TACE" in r for r in body["tace_candidacy"]["reasons"])


def test_on_sorafenib_measures_the_response_from_the_sorafenib_start(client, settings):
    today = settings.today()
    body = client.post("/api/v1/assessments", json=f.bundle(*scenario("on-sorafenib", today))).json()
    assert body["sorafenib"]["start"] == ago(today, 100) and body["sorafenib"]["current"] is True
    assert body["mrecist"]["treatment"].startswith("Response to sorafenib")
    # sessions after the sorafenib start do not count: the two sessions before it still made it resistant
    assert body["tace_resistance"]["status"] == "met"


def test_sorafenib_hypersensitivity_makes_a_critical_card_and_study_criteria_never_do(client, settings):
    from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view

    today = settings.today()
    resources = eligible_resources(today)
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    others = [r for r in resources if r is not patient]
    allergy = {
        "resourceType": "AllergyIntolerance", "id": "allergy-sora",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
        "code": {"coding": [{"system": RX, "code": "495881", "display": "sorafenib"}]},
        "patient": {"reference": "Patient/demo-eligible"},
    }
    cards = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible", prefetch=full_prefetch(others + [allergy], patient))).json()["cards"]
    assert [c["indicator"] for c in cards] == ["critical", "critical"]
    plain = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible", prefetch=full_prefetch(others, patient))).json()["cards"]
    assert all(c["indicator"] != "critical" for c in plain)


def test_a_death_recorded_after_the_assessment_date_does_not_make_it_not_applicable(client, settings):
    today = settings.today()
    resources = scenario("not-applicable:deceased", today)  # died 3 days ago
    before = (today - timedelta(days=5)).isoformat()
    earlier = client.post(f"/api/v1/assessments?as_of={before}", json=f.bundle(*resources)).json()
    assert earlier["recommendation"]["code"] == "sorafenib-plus-tace"
    now = client.post(f"/api/v1/assessments?as_of={today.isoformat()}", json=f.bundle(*resources)).json()
    assert now["recommendation"]["code"] == "not-applicable"
