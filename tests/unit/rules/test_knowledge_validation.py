"""Clinical knowledge is checked when it is built: an unknown name, a wrong type or an impossible value
stops start-up with a message naming the file and the key (shipped documents and site overrides alike)."""

from __future__ import annotations

import copy

import pytest

from rules.criteria import ClinicalCriteria, FreshnessWindows
from rules.knowledge import Knowledge, KnowledgeError, OverridesError
from tests.unit.rules.factories import load_data

SITE = "site.yaml"


def site(knowledge: Knowledge, overrides: dict) -> Knowledge:
    return Knowledge(knowledge.value_sets, knowledge.thresholds, overrides, overrides_source=SITE)


def thresholds_override(group: str, **values: object) -> dict:
    return {"thresholds": {group: values}}


def test_the_shipped_knowledge_is_complete_and_typed(knowledge):
    assert isinstance(knowledge.criteria, ClinicalCriteria)
    assert isinstance(knowledge.criteria.freshness, FreshnessWindows)
    assert knowledge.criteria.freshness.lab_max_age_days == knowledge.thresholds["freshness"]["lab_max_age_days"]
    assert knowledge.criteria.child_pugh.citation == knowledge.citation("child_pugh")
    assert knowledge.criteria.bclc.imaging_max_age_days == knowledge.criteria.freshness.imaging_max_age_days


# -- day windows: 0 is the same day, below 0 is impossible --------------------------------------------------


@pytest.mark.parametrize("days", [0, 1, 30])
def test_a_day_window_of_zero_or_more_is_accepted(knowledge, days):
    assert site(knowledge, thresholds_override("freshness", lab_max_age_days=days)).criteria.freshness.lab_max_age_days == days


@pytest.mark.parametrize("days", [-1, -30])
def test_a_negative_day_window_stops_start_up_naming_the_override_file_and_key(knowledge, days):
    with pytest.raises(OverridesError, match=rf"^site\.yaml: thresholds\.freshness\.lab_max_age_days must be at least 0, not {days}$"):
        site(knowledge, thresholds_override("freshness", lab_max_age_days=days))


def test_a_negative_day_window_in_the_shipped_file_names_that_file(knowledge):
    broken = copy.deepcopy(knowledge.thresholds)
    broken["tace_resistance"]["progression_window_days"] = -1
    with pytest.raises(KnowledgeError, match=r"^thresholds\.json: tace_resistance\.progression_window_days must be at least 0") as caught:
        Knowledge(knowledge.value_sets, broken)
    assert not isinstance(caught.value, OverridesError)


def test_a_response_criterion_out_of_range_names_response_criteria_json(knowledge):
    broken = copy.deepcopy(knowledge.thresholds)
    broken["mrecist"]["targets_max_total"] = 0
    with pytest.raises(KnowledgeError, match=r"^response_criteria\.json: mrecist\.targets_max_total must be at least 1, not 0$"):
        Knowledge(knowledge.value_sets, broken)


# -- unknown names -------------------------------------------------------------------------------------------


def test_an_unknown_key_in_an_override_stops_start_up(knowledge):
    with pytest.raises(OverridesError, match=r"^site\.yaml: thresholds\.freshness\.lab_max_age_dayz is not a known name"):
        site(knowledge, thresholds_override("freshness", lab_max_age_dayz=20))


def test_an_unknown_group_in_an_override_stops_start_up(knowledge):
    with pytest.raises(OverridesError, match=r"^site\.yaml: thresholds\.freshnes is not a known group"):
        site(knowledge, thresholds_override("freshnes", lab_max_age_days=20))


def test_an_unknown_key_in_a_nested_response_criterion_stops_start_up(knowledge):
    overrides = {"thresholds": {"mrecist": {"non_target_progression": {"min_ratio": 2}}}}
    with pytest.raises(OverridesError, match=r"thresholds\.mrecist\.non_target_progression\.min_ratio is not a known name"):
        site(knowledge, overrides)


def test_an_unknown_key_in_a_site_code_stops_start_up(knowledge):
    overrides = {"value_sets": {"concepts": {"hcc": {"codes": [{"system": "urn:x", "code": "H", "specifc": True}]}}}}
    with pytest.raises(OverridesError, match=r"^site\.yaml: value_sets\.concepts\.hcc\.codes\[0\]\.specifc is not a known name"):
        site(knowledge, overrides)


def test_a_site_concept_needs_its_resource(knowledge):
    overrides = {"value_sets": {"concepts": {"portal_vein_branch_thrombus": {"codes": [{"system": "urn:x", "code": "B"}]}}}}
    with pytest.raises(OverridesError, match=r"value_sets\.concepts\.portal_vein_branch_thrombus\.resource is missing"):
        site(knowledge, overrides)
    overrides["value_sets"]["concepts"]["portal_vein_branch_thrombus"]["resource"] = "Condition"
    assert site(knowledge, overrides).lookup("urn:x", "B").concept == "portal_vein_branch_thrombus"


# -- wrong types ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "name", "value", "problem"),
    [
        ("freshness", "lab_max_age_days", 30.5, "must be a whole number, not 30.5"),
        ("freshness", "lab_max_age_days", True, "must be a whole number, not True"),
        ("tace_candidacy", "child_pugh_class_excluded", "D", "must be one of A, B, C, not 'D'"),
        ("tace_candidacy", "portal_vein_branch_only_concepts", "branch", "must be a list, not 'branch'"),
        ("recommendation", "context", 3, "must be text, not 3"),
    ],
)
def test_a_wrong_type_stops_start_up(knowledge, group, name, value, problem):
    with pytest.raises(OverridesError, match=rf"^site\.yaml: thresholds\.{group}\.{name} {problem}"):
        site(knowledge, thresholds_override(group, **{name: value}))


def test_a_non_boolean_switch_stops_start_up(knowledge):
    overrides = {"thresholds": {"mrecist": {"non_target_progression": {"enabled": "yes"}}}}
    with pytest.raises(OverridesError, match=r"non_target_progression\.enabled must be true or false, not 'yes'"):
        site(knowledge, overrides)


# -- impossible values at their boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize(("fraction", "ok"), [(-0.01, False), (0, True), (1, True), (1.01, False)])
def test_a_fraction_lies_between_0_and_1(knowledge, fraction, ok):
    overrides = thresholds_override("jsh_2014", insufficient_viable_fraction_above=fraction)
    if ok:
        assert site(knowledge, overrides).criteria.jsh_2014.insufficient_viable_fraction_above == fraction
    else:
        with pytest.raises(OverridesError, match=r"thresholds\.jsh_2014\.insufficient_viable_fraction_above must be"):
            site(knowledge, overrides)


@pytest.mark.parametrize(("ecog", "ok"), [(0, True), (5, True), (6, False), (-1, False)])
def test_an_ecog_cut_off_is_a_grade_from_0_to_5(knowledge, ecog, ok):
    overrides = thresholds_override("recommendation", continue_tace_max_ecog=ecog)
    if ok:
        assert site(knowledge, overrides).criteria.recommendation.continue_tace_max_ecog == ecog
    else:
        with pytest.raises(OverridesError, match=r"thresholds\.recommendation\.continue_tace_max_ecog must be"):
            site(knowledge, overrides)


@pytest.mark.parametrize(("score", "ok"), [(6, False), (7, True)])
def test_class_b_ends_above_class_a(knowledge, score, ok):
    overrides = thresholds_override("child_pugh", class_a_max_score=6, class_b_max_score=score)
    if ok:
        assert site(knowledge, overrides).criteria.child_pugh.class_b_max_score == score
    else:
        with pytest.raises(OverridesError, match=r"thresholds\.child_pugh\.class_b_max_score must be above class_a_max_score \(6\)"):
            site(knowledge, overrides)


@pytest.mark.parametrize(("below", "ok"), [(74, True), (75, False)])
def test_platelet_grades_fall_from_grade_1_to_grade_4(knowledge, below, ok):
    overrides = thresholds_override("ctcae", platelets_grade_3_below=below)  # grade 2 is below 75
    if ok:
        assert site(knowledge, overrides).criteria.ctcae.platelets_grade_3_below == below
    else:
        with pytest.raises(OverridesError, match=r"thresholds\.ctcae\.platelets_grade_3_below must be below platelets_grade_2_below \(75\)"):
            site(knowledge, overrides)


def test_dose_level_names_match_the_levels(knowledge):
    with pytest.raises(OverridesError, match=r"thresholds\.sorafenib_dose\.level_names must name each of the 3"):
        site(knowledge, thresholds_override("sorafenib_dose", level_names=["one", "two"]))


def test_a_karnofsky_band_for_an_unknown_ecog_grade_stops_start_up(knowledge):
    overrides = thresholds_override("performance_status", karnofsky_range_by_ecog={"6": {"min": 0, "max": 0}})
    with pytest.raises(OverridesError, match=r"karnofsky_range_by_ecog\.6 must name an ECOG grade from 0 to 5"):
        site(knowledge, overrides)


def test_a_unit_conversion_must_be_positive(knowledge):
    overrides = {"value_sets": {"concepts": {"bilirubin": {"units": {"umol/L": {"divide_by": 0}}}}}}
    with pytest.raises(OverridesError, match=r"value_sets\.concepts\.bilirubin\.units\.umol/L\.divide_by must be above 0"):
        site(knowledge, overrides)


# -- partial documents ------------------------------------------------------------------------------------------


def test_a_partial_document_is_checked_and_its_typed_criteria_name_what_is_missing():
    partial = Knowledge(load_data("value_sets.json"), load_data("thresholds.json"))
    with pytest.raises(KnowledgeError, match="lack the groups mrecist, bclc_2010, bclc_2022, performance_status"):
        partial.criteria  # noqa: B018
    with pytest.raises(KnowledgeError, match="lack the groups"):
        Knowledge(load_data("value_sets.json"), load_data("thresholds.json"), require_complete=True)


# -- value sets, typed ----------------------------------------------------------------------------------------


def test_each_concept_is_a_typed_value_set_matching_its_document(knowledge):
    for name, spec in knowledge.value_sets["concepts"].items():
        typed = knowledge.value_set(name)
        assert (typed.name, typed.resource, typed.unit) == (name, spec["resource"], spec.get("unit"))
        assert typed.codes == knowledge.codes_of(name)
    inr = knowledge.value_set("inr")
    assert inr.unitless and inr.units["{INR}"] == (1.0, None)
    assert knowledge.value_set("bilirubin").units["umol/L"] == (None, 17.1)
    assert knowledge.value_set("ecog").range == (0, 5)
    assert knowledge.value_set("blood_pressure").components["systolic"].code == "8480-6"


def test_a_site_code_joins_the_typed_value_set(knowledge):
    overrides = {"value_sets": {"concepts": {"hcc": {"codes": [{"system": "urn:x", "code": "H"}]}}}}
    assert ("urn:x", "H") in {(c.system, c.code) for c in site(knowledge, overrides).value_set("hcc").codes}


def test_an_unknown_concept_is_named(knowledge):
    with pytest.raises(KnowledgeError, match="unknown concept 'hccc'"):
        knowledge.value_set("hccc")
