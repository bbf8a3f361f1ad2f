"""A sorafenib order as the CDS Hooks sandbox writes it (``{value: N, code: "{pill}"}``) is read through the
tablet strength its code names; an order whose dose cannot be read still says so (issue 19)."""

from __future__ import annotations

import pytest

from tests.api.test_order_hooks import cards_by_topic, eligible, order_call, sorafenib_order  # noqa: F401

UCUM = "http://unitsofmeasure.org"


def pill_order(tablets: int, per_day: int, code: str = "597747", display: str = "sorafenib 200 MG Oral Tablet") -> dict:
    order = sorafenib_order("demo-eligible", 0, per_day=per_day, rid="request-123")
    order["medicationCodeableConcept"] = {"text": display, "coding": [
        {"display": display, "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}]}
    order["dosageInstruction"][0]["doseAndRate"] = [{"doseQuantity": {"value": tablets, "system": UCUM, "code": "{pill}"}}]
    return order


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_two_pills_twice_daily_of_the_200_mg_tablet_is_read_as_the_full_dose(client, eligible, hook):  # noqa: F811
    patient, resources = eligible
    by_pill = cards_by_topic(order_call(client, hook, "demo-eligible", [pill_order(2, 2)], resources, patient))
    by_mg = cards_by_topic(order_call(client, hook, "demo-eligible", [sorafenib_order("demo-eligible", 400)], resources, patient))
    assert "dose-unreadable" not in by_pill
    assert set(by_pill) == set(by_mg)


def test_one_pill_twice_daily_is_read_as_a_reduced_start(client, eligible):  # noqa: F811
    patient, resources = eligible
    by_pill = cards_by_topic(order_call(client, "order-sign", "demo-eligible", [pill_order(1, 2)], resources, patient))
    by_mg = cards_by_topic(order_call(client, "order-sign", "demo-eligible", [sorafenib_order("demo-eligible", 200)], resources, patient))
    assert "dose-unreadable" not in by_pill and set(by_pill) == set(by_mg)


def test_pills_of_a_code_that_names_no_strength_are_said_plainly_to_be_unreadable(client, eligible):  # noqa: F811
    patient, resources = eligible
    cards = cards_by_topic(order_call(client, "order-sign", "demo-eligible", [pill_order(2, 2, "495881", "sorafenib")],
                                      resources, patient))
    assert "could not be read" in cards["dose-unreadable"]["summary"] + cards["dose-unreadable"].get("detail", "")
