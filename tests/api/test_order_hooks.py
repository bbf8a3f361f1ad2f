"""order-select / order-sign: sorafenib and TACE orders, realistic payloads and the spec's examples."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests import fhir_factories as f
from tests.api.hook_requests import full_prefetch
from tests.api.test_hooks import demo_record
from tests.api.test_recommendations import RX, ago

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "cds-hooks-spec-examples"


def sorafenib_order(pid: str, mg_per_dose: float, per_day: int = 2, rid: str = "draft-sora") -> dict:
    return {
        "resourceType": "MedicationRequest", "id": rid, "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RX, "code": "597747", "display": "sorafenib 200 MG Oral Tablet"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "dosageInstruction": [{"timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": mg_per_dose, "unit": "mg", "system": f.UCUM, "code": "mg"}}]}],
    }


def tace_order(pid: str) -> dict:
    return {"resourceType": "ServiceRequest", "id": "draft-tace", "status": "draft", "intent": "order",
            "code": {"coding": [{"system": f.SCT, "code": "441525007", "display": "Chemoembolisation"}]},
            "subject": {"reference": f"Patient/{pid}"}}


def order_call(client, hook: str, pid: str, orders: list[dict], resources: list[dict], patient: dict, **context):
    body = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": pid,
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": o} for o in orders]},
                    **context},
        "prefetch": full_prefetch(resources, patient),
    }
    if hook == "order-select" and "selections" not in context:
        body["context"]["selections"] = [f"{o['resourceType']}/{o['id']}" for o in orders]
    return client.post(f"/cds-services/hcc-{hook}", json=body)


def cards_by_topic(response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    return {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}


@pytest.fixture()
def eligible(settings):
    return demo_record("demo-eligible", settings.today())


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_discovery_lists_both_order_hooks(client, hook):
    services = {s["id"]: s for s in client.get("/cds-services").json()["services"]}
    assert services[f"hcc-{hook}"]["hook"] == hook


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_full_dose_sorafenib_for_an_eligible_patient_only_asks_for_the_missing_cbc(client, eligible, hook):
    patient, resources = eligible
    cards = cards_by_topic(order_call(client, hook, "demo-eligible", [sorafenib_order("demo-eligible", 400)], resources, patient))
    assert set(cards) == {"baseline-labs"}
    card = cards["baseline-labs"]
    assert card["selectionBehavior"] == "any"
    actions = card["suggestions"][0]["actions"]
    assert [a["resource"]["code"]["coding"][0]["code"] for a in actions] == ["58410-2"]
    assert all(a["type"] == "create" and a["resource"]["resourceType"] == "ServiceRequest" for a in actions)


def test_a_reduced_start_without_reason_suggests_400_mg_twice_daily_not_recommended(client, eligible):
    patient, resources = eligible
    cards = cards_by_topic(order_call(client, "order-sign", "demo-eligible", [sorafenib_order("demo-eligible", 200)], resources, patient))
    card = cards["dose-below-start"]
    assert card["indicator"] == "warning"  # an order problem
    suggestion = card["suggestions"][0]
    assert suggestion["isRecommended"] is False
    update = suggestion["actions"][0]
    assert update["type"] == "update" and update["resource"]["id"] == "draft-sora"
    assert update["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 400


def with_lab(resources, code, value, unit, today):
    return resources + [f.lab(code, value, unit, ago(today, 1), pid="demo-eligible", rid=f"extra-{code}")]


def test_child_pugh_b_suppresses_the_dose_suggestion(client, eligible, settings):
    patient, resources = eligible
    today = settings.today()
    resources = with_lab(with_lab(resources, "1975-2", 2.5, "mg/dL", today), "1751-7", 3.0, "g/dL", today)
    cards = cards_by_topic(order_call(client, "order-sign", "demo-eligible", [sorafenib_order("demo-eligible", 200)], resources, patient))
    assert "dose-below-start" not in cards


def test_a_grade_2_adverse_event_suppresses_the_dose_suggestion(client, eligible, settings):
    patient, resources = eligible
    ae = {"resourceType": "Observation", "id": "ae-1", "status": "final",
          "code": {"coding": [{"system": f.SCT, "code": "62315008", "display": "Diarrhea"}]},
          "subject": {"reference": "Patient/demo-eligible"}, "effectiveDateTime": ago(settings.today(), 3), "valueInteger": 2}
    cards = cards_by_topic(order_call(client, "order-sign", "demo-eligible", [sorafenib_order("demo-eligible", 200)], resources + [ae], patient))
    assert "dose-below-start" not in cards


def test_a_prior_reduction_suppresses_the_dose_suggestion(client, eligible, settings):
    from tests.api.test_recommendations import sorafenib

    patient, resources = eligible
    earlier = sorafenib(settings.today(), 60)
    earlier["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 1  # 400 mg once daily
    cards = cards_by_topic(order_call(client, "order-sign", "demo-eligible", [sorafenib_order("demo-eligible", 200)], resources + [earlier], patient))
    assert "dose-below-start" not in cards


def test_above_800_mg_per_day_is_a_warning(client, eligible):
    patient, resources = eligible
    cards = cards_by_topic(order_call(client, "order-sign", "demo-eligible", [sorafenib_order("demo-eligible", 600)], resources, patient))
    assert cards["dose-above-label"]["indicator"] == "warning"


def test_outside_the_study_criteria_is_a_warning_with_override_reasons_never_critical(client, settings):
    patient, resources = demo_record("demo-ineligible", settings.today())
    cards = cards_by_topic(order_call(client, "order-select", "demo-ineligible", [sorafenib_order("demo-ineligible", 400)], resources, patient))
    card = cards["outside-study-criteria"]
    assert card["indicator"] == "warning" and card["overrideReasons"]
    assert all(r["display"] for r in card["overrideReasons"])
    # the failing criteria in clinical words, never the internal criterion ids
    assert "Bilirubin 3" in card["detail"] and "Child-Pugh C" in card["detail"]
    assert "bilirubin_above_3" not in card["detail"] and "child\\_pugh" not in card["detail"]
    assert all(c["indicator"] != "critical" for c in cards.values())


def test_sorafenib_hypersensitivity_is_critical(client, eligible):
    patient, resources = eligible
    allergy = {"resourceType": "AllergyIntolerance", "id": "al", "code": {"coding": [{"system": RX, "code": "495881"}]},
               "patient": {"reference": "Patient/demo-eligible"}}
    cards = cards_by_topic(order_call(client, "order-sign", "demo-eligible", [sorafenib_order("demo-eligible", 400)], resources + [allergy], patient))
    assert cards["sorafenib-hypersensitivity"]["indicator"] == "critical"


def test_tace_for_a_resistant_eligible_patient_suggests_adding_sorafenib_with_the_biloma_warning(client, eligible):
    patient, resources = eligible
    cards = cards_by_topic(order_call(client, "order-select", "demo-eligible", [tace_order("demo-eligible")], resources, patient))
    card = cards["tace-resistant-combination"]
    assert "Biloma" in card["detail"] and card["indicator"] == "warning"


def test_tace_for_a_resistant_patient_outside_criteria_says_why_sorafenib_is_not_suggested(client, settings):
    patient, resources = demo_record("demo-ineligible", settings.today())
    cards = cards_by_topic(order_call(client, "order-sign", "demo-ineligible", [tace_order("demo-ineligible")], resources, patient))
    card = cards["tace-resistant-no-sorafenib"]
    assert "outside the study's criteria" in card["summary"] and "Child-Pugh C" in card["detail"]
    assert "outside-study-criteria" not in card["summary"] + card["detail"]


def test_tace_for_a_patient_who_is_not_resistant_gives_no_card(client, settings):
    from tests.api.test_recommendations import not_resistant

    today = settings.today()
    resources = not_resistant(today)
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    others = [r for r in resources if r is not patient]
    response = order_call(client, "order-sign", "demo-eligible", [tace_order("demo-eligible")], others, patient)
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_no_hcc_diagnosis_gives_no_cards(client, eligible):
    patient, resources = eligible
    resources = [r for r in resources if r["resourceType"] != "Condition"]
    response = order_call(client, "order-sign", "demo-eligible", [sorafenib_order("demo-eligible", 200)], resources, patient)
    assert response.json() == {"cards": []}


def test_order_select_reviews_only_the_selected_orders(client, eligible):
    patient, resources = eligible
    response = order_call(client, "order-select", "demo-eligible", [sorafenib_order("demo-eligible", 200)], resources, patient,
                          selections=["ServiceRequest/other"])
    assert response.json() == {"cards": []}


@pytest.mark.parametrize(
    ("hook", "context_change", "message"),
    [
        ("order-select", {"selections": None}, "selections is required"),
        ("order-sign", {"draftOrders": None}, "draftOrders is required"),
        ("order-sign", {"draftOrders": {"resourceType": "Patient"}}, "must be a FHIR Bundle"),
        ("order-sign", {"draftOrders": {"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}}, "has no resource"),
    ],
)
def test_bad_order_contexts_are_422(client, eligible, hook, context_change, message):
    patient, resources = eligible
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/x", "patientId": "demo-eligible", "selections": ["MedicationRequest/draft-sora"],
                        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": sorafenib_order("demo-eligible", 400)}]}},
            "prefetch": full_prefetch(resources, patient)}
    for key, value in context_change.items():
        if value is None:
            del body["context"][key]
        else:
            body["context"][key] = value
    response = client.post(f"/cds-services/hcc-{hook}", json=body)
    assert response.status_code == 422 and message in response.json()["detail"]


@pytest.mark.parametrize(
    ("hook", "example"),
    [
        ("order-select", "cds-hooks-order-select-00-other.json"),
        ("order-select", "cds-hooks-order-select-01-other.json"),
        ("order-sign", "cds-hooks-order-sign-00-other.json"),
        ("order-sign", "cds-hooks-order-sign-01-other.json"),
    ],
)
def test_the_spec_order_examples_are_accepted(client, hook, example):
    context = json.loads((EXAMPLES / example).read_text())["context"]
    patient = {"resourceType": "Patient", "id": context["patientId"], "gender": "male", "birthDate": "1960-01-01"}
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": full_prefetch([], patient)}
    response = client.post(f"/cds-services/hcc-{hook}", json=body)
    assert response.status_code == 200 and response.json() == {"cards": []}  # no sorafenib or TACE ordered
