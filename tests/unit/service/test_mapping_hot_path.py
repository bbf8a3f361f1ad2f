"""The mapping's hot path: what is checked, what may be skipped, and strict mode's outcomes kept by content.

Every resource the mapping uses is checked, first time or not: by default in the elements it reads (the
typed decoder, ``service.fhir.decode``), in strict mode whole with fhir.resources R4B (outcomes kept by
content). A resource it would ignore anyway (a well-formed code outside the value sets, a lesion no
TumorSize follows) may be skipped; anything it cannot read for sure is checked. Both modes are tested.
"""

from __future__ import annotations

import copy
import math
from datetime import date

import pytest

from service import mapping
from service.cohort.load import cohort_bundles
from service.mapping import ValidationCache, map_to_snapshot, validation_problem
from tests import fhir_factories as f
from tests.integration.test_fhir_access import lesion, tumour_size

DAY = "2026-11-20"


def _counting(monkeypatch, name: str) -> list[str]:
    checked: list[str] = []
    real = getattr(mapping, name)

    def count(resource, *verdicts):  # decode_problem may be handed the twin's verdict (service.fhir.decode.twins_accept)
        checked.append(f"{resource['resourceType']}/{resource.get('id')}")
        return real(resource, *verdicts)

    monkeypatch.setattr(mapping, name, count)
    return checked


@pytest.fixture()
def counted(monkeypatch):
    """Every fhir.resources validation the mapping runs in strict mode, by reference."""
    mapping.VALIDATION_CACHE.clear()
    yield _counting(monkeypatch, "_validate")
    mapping.VALIDATION_CACHE.clear()


@pytest.fixture(params=[False, True], ids=["read-elements", "strict"])
def checks(request, monkeypatch):
    """(strict, every check the mapping runs by reference) in each mode: the decoder's, or fhir.resources'."""
    strict = request.param
    mapping.VALIDATION_CACHE.clear()
    yield strict, _counting(monkeypatch, "_validate" if strict else "decode_problem")
    mapping.VALIDATION_CACHE.clear()


def issues_of(snapshot) -> dict[str, str]:
    return {i.resource: i.problem for i in snapshot.data_issues}


def broken_bilirubin(rid: str = "bad-bili") -> dict:
    return {**f.lab("1975-2", 1.0, "mg/dL", DAY, rid=rid), "status": {"not": "a code"}}


def test_a_used_resource_is_checked_every_time_its_content_is_new(knowledge, checks):
    strict, counted = checks
    good = f.lab("1975-2", 1.0, "mg/dL", DAY, rid="bili")
    map_to_snapshot(f.patient(), [good], knowledge, strict=strict)
    changed = {**good, "valueQuantity": {**good["valueQuantity"], "value": 1.1}}
    s = map_to_snapshot(f.patient(), [changed], knowledge, strict=strict)
    assert counted.count("Observation/bili") == 2
    assert s.series("bilirubin")[0].value == 1.1


def test_an_invalid_used_resource_is_reported_whether_or_not_its_outcome_was_kept(knowledge, checks):
    strict, counted = checks
    for _ in range(2):
        s = map_to_snapshot(f.patient(), [broken_bilirubin()], knowledge, strict=strict)
        assert issues_of(s)["Observation/bad-bili"] == "fails FHIR R4 validation at status: Input should be a valid string"
        assert not s.series("bilirubin")
    # strict: the second time, the same content's outcome; the decoder costs what a cache look-up would
    assert counted.count("Observation/bad-bili") == (1 if strict else 2)


def test_strict_mode_validates_the_same_content_once(knowledge, counted):
    resources = [f.lab("1975-2", 1.0, "mg/dL", DAY, rid="b1"), f.lab("1751-7", 30, "g/L", DAY, rid="a1")]
    first = map_to_snapshot(f.patient(), resources, knowledge, strict=True)
    again = map_to_snapshot(f.patient(), copy.deepcopy(resources), knowledge, strict=True)
    assert first == again
    assert sorted(counted) == ["Observation/a1", "Observation/b1", "Patient/p1"]


def test_both_modes_give_the_same_snapshot_of_valid_resources(knowledge):
    for bundle in cohort_bundles(date(2026, 11, 28))[:5]:
        resources = [e["resource"] for e in bundle["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        others = [r for r in resources if r is not patient]
        assert map_to_snapshot(patient, others, knowledge) == map_to_snapshot(patient, others, knowledge, strict=True)


def test_a_well_formed_code_outside_the_value_sets_is_not_checked_and_changes_nothing(knowledge, checks):
    strict, counted = checks
    unknown = {**f.lab("8867-4", 72, "/min", DAY, rid="heart-rate"), "status": {"not": "a code"}}  # invalid too
    with_it = map_to_snapshot(
        f.patient(), [f.lab("1975-2", 1.0, "mg/dL", DAY, rid="b"), unknown], knowledge, strict=strict
    )
    without = map_to_snapshot(f.patient(), [f.lab("1975-2", 1.0, "mg/dL", DAY, rid="b")], knowledge, strict=strict)
    assert "Observation/heart-rate" not in counted
    assert with_it == without


@pytest.mark.parametrize(
    "code",
    [
        {"coding": {"system": "http://loinc.org", "code": "1975-2"}},  # coding is not a list
        {"coding": [{"system": "http://loinc.org", "code": 1975}]},  # a code that is not a string
        {"coding": ["http://loinc.org|1975-2"]},
        "1975-2",
    ],
)
def test_a_code_that_cannot_be_read_for_sure_is_checked_and_reported(knowledge, checks, code):
    strict, counted = checks
    odd = {**f.lab("1975-2", 1.0, "mg/dL", DAY, rid="odd"), "code": code}
    s = map_to_snapshot(f.patient(), [odd], knowledge, strict=strict)
    assert "Observation/odd" in counted
    assert "fails FHIR R4 validation" in issues_of(s)["Observation/odd"]


def test_other_resource_types_are_selected_by_their_codes(knowledge, checks):
    strict, counted = checks
    hcc = f.condition("109841003", "2024-01-01", rid="hcc")
    flu = f.condition("6142004", "2024-01-01", rid="flu")
    tace = f.procedure("441525007", {"performedDateTime": "2024-02-01"}, rid="tace")
    appendix = f.procedure("80146002", {"performedDateTime": "2010-02-01"}, rid="appendix")
    sorafenib = {
        "resourceType": "MedicationRequest", "id": "sora", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "495881"}]},
        "subject": {"reference": "Patient/p1"}, "authoredOn": "2024-03-01",
    }  # fmt: skip
    aspirin = {**sorafenib, "id": "aspirin", "medicationCodeableConcept": {"coding": [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1191"}]}}  # fmt: skip
    unresolved = {**sorafenib, "id": "by-reference", "medicationReference": {"reference": "Medication/x"}}
    del unresolved["medicationCodeableConcept"]
    s = map_to_snapshot(f.patient(), [hcc, flu, tace, appendix, sorafenib, aspirin, unresolved], knowledge, strict=strict)
    assert {"Condition/hcc", "Procedure/tace", "MedicationRequest/sora", "MedicationRequest/by-reference"} <= set(counted)
    assert not {"Condition/flu", "Procedure/appendix", "MedicationRequest/aspirin"} & set(counted)
    assert "medicationReference is not resolved" in issues_of(s)["MedicationRequest/by-reference"]


def test_a_lesion_is_checked_when_a_tumour_size_follows_it(knowledge, checks):
    strict, counted = checks
    followed = lesion("liver-1", "p1")
    broken = {**lesion("liver-2", "p1"), "location": "liver"}  # invalid
    unfollowed = {**lesion("elsewhere", "p1"), "location": "liver"}  # invalid, but no TumorSize names it
    sizes = [tumour_size("ts-1", "p1", "liver-1", DAY, 30), tumour_size("ts-2", "p1", "liver-2", DAY, 20)]
    s = map_to_snapshot(f.patient(), [followed, broken, unfollowed, *sizes], knowledge, strict=strict)
    assert {"BodyStructure/liver-1", "BodyStructure/liver-2"} <= set(counted)
    assert "BodyStructure/elsewhere" not in counted
    issues = issues_of(s)
    assert "fails FHIR R4 validation" in issues["BodyStructure/liver-2"]
    assert "BodyStructure/elsewhere" not in issues
    organs = {m.lesion: m.organ for m in s.lesions}
    assert organs["BodyStructure/liver-1"] == "liver" and organs["BodyStructure/liver-2"] is None


def test_every_cohort_resource_validates_the_same_through_the_cache(knowledge):
    resources = [e["resource"] for b in cohort_bundles(date(2026, 11, 28))[:3] for e in b["entry"]]
    before = copy.deepcopy(resources)
    cache = ValidationCache()
    strict = [validation_problem(r, None, strict=True) for r in resources]
    assert [validation_problem(r, cache, strict=True) for r in resources] == strict
    assert [validation_problem(r, cache, strict=True) for r in resources] == strict
    assert cache.hits == len(resources)
    # validation leaves the resource as it was: what the mapping reads is the same, validated or known
    assert resources == before


def test_the_cache_key_tells_nan_and_infinity_from_null():
    keys = {
        ValidationCache.key({"resourceType": "Observation", "value": value})
        for value in (None, math.nan, math.inf, -math.inf, "null")
    }
    assert len(keys) == 5 and None not in keys


def test_content_orjson_cannot_write_is_still_keyed_or_validated_uncached():
    huge = {"resourceType": "Observation", "id": "x", "valueInteger": 2**70}
    assert ValidationCache.key(huge) is not None
    assert ValidationCache.key(huge) != ValidationCache.key({**huge, "valueInteger": 2**70 + 1})
    assert validation_problem(huge, ValidationCache(), strict=True) == validation_problem(huge, None, strict=True)


def test_the_cache_is_bounded_least_recently_used_first_out():
    cache = ValidationCache(max_entries=2)
    a, b, c = (ValidationCache.key({"resourceType": "Patient", "id": i}) for i in "abc")
    cache.put(a, None)
    cache.put(b, "bad")
    assert cache.get(a) == (True, None)  # a is now the most recent
    cache.put(c, None)
    assert len(cache) == 2
    assert cache.get(b) == (False, None)
    assert cache.get(a) == (True, None) and cache.get(c) == (True, None)


def test_eviction_keeps_the_bound_and_least_recently_used_order_against_a_model():
    """Random gets and puts (hits, misses, re-puts of known keys) against a list kept in LRU order by hand:
    after every step the cache holds exactly the model's keys, in the model's order, never more than the bound."""
    import random

    bound = 7
    cache = ValidationCache(max_entries=bound)
    model: list[bytes] = []  # least recently used first
    outcomes: dict[bytes, str | None] = {}
    rng = random.Random(20)
    keys = [ValidationCache.key({"resourceType": "Observation", "id": f"o{i}"}) for i in range(20)]
    for step in range(2_000):
        key = rng.choice(keys)
        if rng.random() < 0.5:
            known, outcome = cache.get(key)
            assert known == (key in model), step
            if known:
                assert outcome == outcomes[key]
                model.remove(key)
                model.append(key)
        else:
            outcome = None if rng.random() < 0.5 else f"bad {step}"
            cache.put(key, outcome)
            outcomes[key] = outcome
            if key in model:
                model.remove(key)
            model.append(key)
            del model[:-bound]
        assert cache.keys() == model, step
        assert len(cache) <= bound


def test_a_full_cache_evicts_one_entry_a_put_oldest_first():
    cache = ValidationCache(max_entries=1_000)
    keys = [ValidationCache.key({"resourceType": "Patient", "id": str(i)}) for i in range(5_000)]
    for n, key in enumerate(keys):
        cache.put(key, None)
        assert len(cache) == min(n + 1, 1_000)
    assert cache.keys() == keys[-1_000:]
    assert cache.get(keys[3_999]) == (False, None) and cache.get(keys[4_000]) == (True, None)
    assert cache.keys()[-1] == keys[4_000]
