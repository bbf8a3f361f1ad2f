"""``daily_dose_mg``: mg a day from one FHIR Dosage, with tablet and capsule counts read through the strength the
medication's code names (issue 19: the CDS Hooks sandbox writes ``{value: 1, code: "{pill}"}``)."""

from __future__ import annotations

import pytest

from service.mapping import daily_dose_mg

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module")
def tablet(knowledge):
    entry = knowledge.lookup(RXNORM, "597747")  # sorafenib 200 MG Oral Tablet
    assert entry is not None and entry.mg_per_unit == 200
    return entry


@pytest.fixture(scope="module")
def ingredient(knowledge):
    entry = knowledge.lookup(RXNORM, "495881")  # sorafenib: no strength
    assert entry is not None and entry.mg_per_unit is None
    return entry


def dosage(value=1, code="{pill}", *, frequency=2, period=1, period_unit="d", unit=None, system=UCUM):
    quantity = {"value": value, "system": system, "code": code}
    if code is None:
        del quantity["code"]
    if unit is not None:
        quantity["unit"] = unit
    repeat = {"frequency": frequency, "period": period, "periodUnit": period_unit}
    return {"timing": {"repeat": {k: v for k, v in repeat.items() if v is not None}}, "doseAndRate": [{"doseQuantity": quantity}]}


def sandbox_dosage(number: int, frequency: str) -> dict:
    """Exactly what the CDS Hooks sandbox's Rx View writes (R4)."""
    freq = {"daily": 1, "bid": 2, "tid": 3, "qid": 4}[frequency]
    return {"timing": {"repeat": {"frequency": freq, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": number, "system": UCUM, "code": "{pill}"}}]}


@pytest.mark.parametrize("code", ["{pill}", "{pills}", "{tbl}", "{tablet}", "{tablets}", "{tab}", "{tabs}",
                                  "{capsule}", "{capsules}", "{cap}", "{caps}", "{Tablet}", "{PILL}", "{ tab }"])
def test_tablet_and_capsule_annotations_are_counts_of_the_codes_strength(tablet, code):
    assert daily_dose_mg(dosage(2, code, frequency=2), tablet) == 800


def test_the_sandbox_order_two_tablets_twice_daily_is_800_mg(tablet):
    assert daily_dose_mg(sandbox_dosage(2, "bid"), tablet) == 800
    assert daily_dose_mg(sandbox_dosage(1, "daily"), tablet) == 200
    assert daily_dose_mg(sandbox_dosage(1, "qid"), tablet) == 800


@pytest.mark.parametrize("unit", ["tablet", "tablets", "Tablet", "capsule", "pill"])
def test_the_same_words_as_plain_unit_text_are_read(tablet, unit):
    assert daily_dose_mg(dosage(1, None, unit=unit, frequency=1), tablet) == 200


def test_mg_is_read_as_mg_whatever_the_code(tablet, ingredient):
    assert daily_dose_mg(dosage(400, "mg"), tablet) == 800
    assert daily_dose_mg(dosage(400, "mg"), ingredient) == 800


def test_a_count_of_a_product_whose_code_names_no_strength_is_not_read(ingredient):
    assert daily_dose_mg(dosage(2, "{pill}"), ingredient) is None
    assert daily_dose_mg(dosage(2, "tablet"), ingredient) is None


@pytest.mark.parametrize("code", ["{}", "{puff}", "{drop}", "1", "{pill", "pill}", "{{pill}}", "{pill}s", "mL",
                                  "MG", "g", "ug", "{tablet}{tablet}", "", None])
def test_other_units_are_not_read(tablet, code):
    assert daily_dose_mg(dosage(1, code), tablet) is None


@pytest.mark.parametrize("value", [0, -1, -0.5, float("nan"), float("inf"), 10**400, True, "1", None])
def test_a_dose_that_is_not_a_positive_number_is_not_read(tablet, value):
    assert daily_dose_mg(dosage(value), tablet) is None


def test_fractions_of_a_tablet_and_the_period_are_honoured(tablet):
    assert daily_dose_mg(dosage(0.5, "{tbl}", frequency=1), tablet) == 100
    assert daily_dose_mg(dosage(1, "{tbl}", frequency=1, period=2), tablet) == 100  # every other day
    assert daily_dose_mg(dosage(1, "{tbl}", frequency=1, period=12, period_unit="h"), tablet) == 400
    assert daily_dose_mg(dosage(1, "{tbl}", frequency=7, period=1, period_unit="wk"), tablet) == 200


def test_missing_frequency_and_period_mean_once_a_day(tablet):
    assert daily_dose_mg(dosage(1, "{pill}", frequency=None, period=None, period_unit=None), tablet) == 200


@pytest.mark.parametrize(("frequency", "period", "period_unit"), [
    (0, 1, "d"), (-1, 1, "d"), (2, 0, "d"), (2, -1, "d"), (True, 1, "d"), ("2", 1, "d"), (2, 10**400, "d"),
    (2, 1, "mo"), (2, 1, "a"), (2, 1, None),
])
def test_a_timing_that_cannot_be_read_is_not_guessed(tablet, frequency, period, period_unit):
    d = dosage(1, "{pill}", frequency=frequency, period=period, period_unit=period_unit)
    if period_unit is None:
        d["timing"]["repeat"]["periodUnit"] = None
    assert daily_dose_mg(d, tablet) is None


@pytest.mark.parametrize("shape", [
    {}, {"doseAndRate": []}, {"doseAndRate": "x"}, {"doseAndRate": [None]}, {"doseAndRate": [{"doseQuantity": "1"}]},
    {"doseAndRate": [{"doseQuantity": {"value": 1, "code": 7}}]},
    {"doseAndRate": [{"doseQuantity": {"value": 1, "code": "{pill}"}}], "timing": {"repeat": "daily"}},
    {"doseAndRate": [{"doseQuantity": {"value": 1, "code": "{pill}"}}], "timing": "daily"},
])
def test_malformed_dosages_are_not_read_and_never_raise(tablet, shape):
    assert daily_dose_mg(shape, tablet) is None
