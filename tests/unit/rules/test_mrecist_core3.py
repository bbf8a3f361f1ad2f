"""mRECIST defects found by the clinical safety review (issue: clinical core III).

Each test failed on the code before the fix: non-target growth was never progression, a target
missing at follow-up was compared with the nadir of the measured subset, an extrahepatic new lesion
of any size was PD, and a thrombus recorded after the last sized imaging was ignored.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fractions import Fraction

import pytest

from rules.mrecist import MrecistCriteria, evaluate_mrecist
from tests.unit.rules.factories import condition, lesion, response_criteria

CRITERIA = response_criteria()
START = date(2026, 5, 5)
BASE = date(2026, 5, 2)
F1 = date(2026, 7, 1)
F2 = date(2026, 9, 29)
AS_OF = date(2026, 12, 1)
LUNG_C = {"c": "lung"}


def scans(table, organs=None):
    organs = organs or {}
    return [lesion(n, d, s, organ=organs.get(n, "liver")) for d, sizes in table.items() for n, s in sizes.items()]


def evaluate(table, *, organs=None, conditions=(), as_of=AS_OF, criteria=CRITERIA, sessions=()):
    return evaluate_mrecist(
        scans(table, organs), treatment_start=START, as_of=as_of, criteria=criteria,
        conditions=conditions, new_since_sessions=sessions,
    )


# -- unequivocal non-target progression (PRODUCT.md's operational rule) ---------------------------


def test_a_third_liver_lesion_growing_from_20_to_70_mm_is_pd_by_non_target_progression():
    # a, b are the two liver targets; c (20 mm) is a non-target beyond the per-organ limit
    result = evaluate({BASE: {"a": 40, "b": 30, "c": 20}, F1: {"a": 40, "b": 30, "c": 70}})
    assert result.category == "PD"
    assert result.current.non_target_response == "PD"
    assert "non_target_progression" in result.current.progression
    assert any("BodyStructure/c" in r and "20" in r and "70" in r for r in result.reasons), result.reasons


def test_a_lesion_not_viable_at_baseline_regrowing_to_30_mm_is_pd():
    result = evaluate({BASE: {"a": 40, "n": 0}, F1: {"a": 40, "n": 30}})
    assert result.category == "PD"
    assert "non_target_progression" in result.current.progression


@pytest.mark.parametrize(
    ("smallest", "now", "category"),
    [
        (20, 30, "PD"),  # exactly 1.5x and exactly +10 mm
        (20, 29.9, "SD"),  # 1.495x: short of 1.5x (and +9.9 mm)
        (22, 32, "SD"),  # +10 mm but 1.45x
        (8, 12, "SD"),  # 1.5x but only +4 mm
        (0, 10, "PD"),  # regrowth to 10 mm after 0
        (0, 9.9, "SD"),  # regrowth below 10 mm: possible progression only
    ],
)
def test_non_target_progression_needs_both_1_5_times_and_10_mm_or_regrowth_to_10_mm(smallest, now, category):
    result = evaluate({BASE: {"a": 40, "b": 30, "n": smallest}, F1: {"a": 40, "b": 30, "n": now}})
    assert result.category == category, result.reasons


def test_the_smallest_size_since_baseline_is_the_reference_not_the_baseline_size():
    # 30 at baseline, shrinks to 12, grows to 22: 22 >= 1.5 x 12 and +10 mm
    result = evaluate({BASE: {"a": 40, "b": 30, "n": 30}, F1: {"a": 40, "b": 30, "n": 12},
                       F2: {"a": 40, "b": 30, "n": 22}})
    assert result.category == "PD"
    assert result.timeline[0].category == "SD"


def test_a_smaller_non_target_rise_is_reported_to_confirm_and_does_not_change_the_category():
    result = evaluate({BASE: {"a": 40, "b": 30, "n": 20}, F1: {"a": 40, "b": 30, "n": 26}})
    assert result.category == "SD"
    assert any("possible progression" in r and "confirm" in r for r in result.reasons), result.reasons


def test_every_non_target_lesions_sizes_are_in_the_reasons():
    result = evaluate({BASE: {"a": 40, "b": 30, "n": 20, "m": 5}, F1: {"a": 40, "b": 30, "n": 18, "m": 4}})
    text = " ".join(result.reasons)
    assert "BodyStructure/n" in text and "BodyStructure/m" in text
    assert "20" in text and "18" in text


def test_the_non_target_rule_can_be_switched_off():
    crit = replace(MrecistCriteria.from_dict(CRITERIA), non_target_progression_enabled=False)
    result = evaluate({BASE: {"a": 40, "b": 30, "c": 20}, F1: {"a": 40, "b": 30, "c": 70}}, criteria=crit)
    assert result.category == "SD"


def test_the_non_target_thresholds_are_configurable():
    crit = replace(MrecistCriteria.from_dict(CRITERIA), non_target_progression_min_ratio=Fraction(2),
                   non_target_progression_min_increase_mm=Fraction(5))
    assert evaluate({BASE: {"a": 40, "n": 10}, F1: {"a": 40, "n": 19}}, criteria=crit).category == "SD"
    assert evaluate({BASE: {"a": 40, "n": 10}, F1: {"a": 40, "n": 20}}, criteria=crit).category == "PD"


# -- a target not measured: the nadir of the full sum ------------------------------------------------


def test_a_missing_target_compares_the_measured_sum_with_the_nadir_of_the_full_sum():
    # full sum at baseline 90; a + b measured 84: not >= 20% above 90 -> NE (the subset's nadir 70 would say PD)
    result = evaluate({BASE: {"a": 40, "b": 30, "c": 20}, F1: {"a": 48, "b": 36}}, organs=LUNG_C)
    assert result.category == "NE"
    assert result.nadir.sum_mm == 90


@pytest.mark.parametrize(("a", "category"), [(78, "PD"), (77.9, "NE")])
def test_a_missing_target_is_pd_only_when_the_measured_sum_is_already_20_percent_above_the_full_nadir(a, category):
    # full nadir 90 (baseline); 1.2 x 90 = 108 = a + 30
    result = evaluate({BASE: {"a": 40, "b": 30, "c": 20}, F1: {"a": a, "b": 30}}, organs=LUNG_C)
    assert result.category == category, result.reasons


# -- new lesions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "category"), [(10, "PD"), (9.9, "SD")])
def test_a_new_lesion_outside_the_liver_counts_from_10_mm_like_any_other(size, category):
    result = evaluate({BASE: {"a": 40}, F1: {"a": 40, "lung": size}}, organs={"lung": "lung"})
    assert result.category == category
    if category == "SD":
        assert result.current.new_lesions_below_threshold == ("BodyStructure/lung",)


def test_an_equivocal_new_lesion_rules_out_cr():
    result = evaluate({BASE: {"a": 40}, F1: {"a": 0, "x": 6}})
    assert result.category == "PR"


def test_a_new_lesion_of_unknown_organ_of_10_mm_is_pd_but_not_extrahepatic_spread():
    result = evaluate({BASE: {"a": 40}, F1: {"a": 40, "x": 12}}, organs={"x": None})
    assert result.category == "PD"
    assert "new_extrahepatic_spread" not in result.current.progression


# -- judged on what is new since the imaging before each session -----------------------------------


def test_with_sessions_a_lesion_seen_before_the_latest_session_is_tracked_not_new():
    t2 = date(2026, 7, 10)
    table = {BASE: {"a": 40}, F1: {"a": 30, "x": 12}, F2: {"a": 30, "x": 12}}
    # without sessions (a sorafenib response): the lesion stays new, PD at F2 as well
    assert evaluate(table).timeline[-1].category == "PD"
    # a TACE series: after the session of t2 the lesion seen at F1 (before t2) is tracked, not new
    result = evaluate(table, sessions=(START, t2))
    assert [t.category for t in result.timeline] == ["PD", "SD"]
    assert result.timeline[-1].new_lesions == ()


def test_a_tracked_lesion_that_grows_unequivocally_is_still_progression():
    t2 = date(2026, 7, 10)
    table = {BASE: {"a": 40}, F1: {"a": 30, "x": 12}, F2: {"a": 30, "x": 30}}
    result = evaluate(table, sessions=(START, t2))
    assert result.timeline[-1].category == "PD"
    assert "non_target_progression" in result.timeline[-1].progression


# -- a thrombus or metastasis after the last sized imaging ------------------------------------------


def test_a_thrombus_recorded_after_the_last_sized_imaging_makes_the_response_pd_from_its_onset():
    pvtt = condition("portal_vein_tumour_thrombus", onset=date(2026, 8, 15))
    result = evaluate({BASE: {"a": 40}, F1: {"a": 40}}, conditions=[pvtt])
    assert result.category == "PD"
    assert result.current.date == date(2026, 8, 15)
    assert "new_vascular_invasion" in result.current.progression
    assert [t.category for t in result.timeline] == ["SD", "PD"]


def test_a_thrombus_after_baseline_without_any_follow_up_imaging_is_pd():
    pvtt = condition("portal_vein_tumour_thrombus", onset=date(2026, 8, 15))
    result = evaluate({BASE: {"a": 40}}, conditions=[pvtt])
    assert result.category == "PD"


def test_a_thrombus_after_the_assessment_date_is_not_counted():
    pvtt = condition("portal_vein_tumour_thrombus", onset=date(2026, 12, 2))
    assert evaluate({BASE: {"a": 40}, F1: {"a": 40}}, conditions=[pvtt]).category == "SD"


def test_a_condition_dated_only_by_recorded_date_after_baseline_is_not_dated_as_new():
    pvtt = replace(condition("portal_vein_tumour_thrombus"), recorded=date(2026, 8, 15))
    result = evaluate({BASE: {"a": 40}, F1: {"a": 40}}, conditions=[pvtt])
    assert result.category == "SD"
    assert any("recordedDate" in r or "no onset" in r for r in result.reasons), result.reasons
