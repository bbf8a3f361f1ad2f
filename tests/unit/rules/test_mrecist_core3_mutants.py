"""mRECIST after clinical core III at its edges (written against mutmut's surviving mutants, issue 17).

The site-configurable non-target rule (its limits: a ratio of at least 1, an increase of at least 0 mm;
``enabled`` a boolean) takes effect; a thrombus or metastasis recorded after the latest sized imaging is PD
under its own kind, in order of onset; the timeline's output shape; the timeline helper honours the sessions.
"""

from __future__ import annotations

import copy
from datetime import date

import pytest

from rules.knowledge import KnowledgeError
from rules.mrecist import MrecistCriteria, evaluate_mrecist, mrecist_timeline
from service.render.clinical_json import baseline_json, timepoint_json
from tests.unit.rules.factories import condition, lesion
from tests.unit.rules.test_mrecist_core3 import AS_OF, BASE, CRITERIA, F1, F2, START, evaluate, scans


def with_non_target_rule(**changes):
    document = copy.deepcopy(CRITERIA)
    document["mrecist"]["non_target_progression"].update(changes)
    return document


# -- the non-target rule as a site configures it -------------------------------------------------------------


def test_the_loosest_allowed_non_target_rule_is_accepted_and_applied():
    # ratio 1 and 0 mm: any growth of a non-target is unequivocal progression
    loose = with_non_target_rule(min_ratio_to_smallest=1, min_increase_mm=0)
    crit = MrecistCriteria.from_dict(loose)
    assert (crit.non_target_progression_min_ratio, crit.non_target_progression_min_increase_mm) == (1, 0)
    result = evaluate({BASE: {"a": 40, "b": 30, "c": 20}, F1: {"a": 40, "b": 30, "c": 21}}, criteria=loose)
    assert result.category == "PD"
    assert result.current.progression == ("non_target_progression",)
    # the shipped rule: 20 -> 21 mm is only a possible progression to confirm
    assert evaluate({BASE: {"a": 40, "b": 30, "c": 20}, F1: {"a": 40, "b": 30, "c": 21}}).category == "SD"


def test_a_site_can_switch_the_non_target_rule_off():
    off = with_non_target_rule(enabled=False)
    result = evaluate({BASE: {"a": 40, "b": 30, "c": 20}, F1: {"a": 40, "b": 30, "c": 70}}, criteria=off)
    assert result.category == "SD"
    assert any("possible progression to confirm" in r for r in result.reasons)


@pytest.mark.parametrize(
    "changes",
    [{"min_ratio_to_smallest": 0.9}, {"min_increase_mm": -1}, {"min_ratio_to_smallest": 0.9, "min_increase_mm": -1}],
)
def test_a_non_target_rule_below_its_limits_is_refused(changes):
    with pytest.raises(KnowledgeError, match="min_ratio_to_smallest >= 1 and min_increase_mm >= 0"):
        MrecistCriteria.from_dict(with_non_target_rule(**changes))


def test_a_non_boolean_enabled_is_refused():
    with pytest.raises(KnowledgeError, match="non_target_progression.enabled must be true or false"):
        MrecistCriteria.from_dict(with_non_target_rule(enabled="yes"))


# -- a thrombus or metastasis after the latest sized imaging ---------------------------------------------------


def test_a_metastasis_after_the_latest_imaging_is_new_extrahepatic_spread():
    met = condition("extrahepatic_metastasis", onset=date(2026, 10, 15), ref="Condition/met")
    result = evaluate({BASE: {"a": 40}, F1: {"a": 38}}, conditions=[met])
    assert result.category == "PD"
    assert result.current.progression == ("new_extrahepatic_spread",)
    assert result.current.reasons == (
        "Extrahepatic metastasis Condition/met with onset 2026-10-15, after the latest sized imaging and after "
        "baseline 2026-05-02: new extrahepatic spread (PD from that date).",
    )


def test_several_late_conditions_are_listed_in_order_of_onset_and_pd_dates_from_the_latest():
    met = condition("extrahepatic_metastasis", onset=date(2026, 10, 1), ref="Condition/z-met")
    pvtt = condition("portal_vein_tumour_thrombus", onset=date(2026, 11, 2), ref="Condition/a-pvtt")
    result = evaluate({BASE: {"a": 40}, F1: {"a": 38}}, conditions=[pvtt, met])
    late = result.timeline[-1]
    assert late.date == date(2026, 11, 2)
    assert late.progression == ("new_extrahepatic_spread", "new_vascular_invasion")
    assert [r.split(" with onset ")[0] for r in late.reasons] == [
        "Extrahepatic metastasis Condition/z-met", "Portal-vein tumour thrombus Condition/a-pvtt"]
    assert late.evidence == ("Condition/z-met", "Condition/a-pvtt")


def test_a_late_condition_timepoint_serialises_without_measurements():
    pvtt = condition("portal_vein_tumour_thrombus", onset=date(2026, 10, 15), ref="Condition/pvtt")
    late = evaluate({BASE: {"a": 40}, F1: {"a": 38}}, conditions=[pvtt]).timeline[-1]
    assert late.imaging is False
    assert timepoint_json(late) == {
        "date": "2026-10-15", "sum_mm": None, "category": "PD", "target_response": None, "non_target_response": None,
        "nadir": None, "change_from_baseline_pct": None, "change_from_nadir_pct": None, "targets_missing": [],
        "new_lesions": [], "new_lesions_below_threshold": [], "progression": ["new_vascular_invasion"],
        "reasons": list(late.reasons), "evidence": ["Condition/pvtt"],
    }


# -- output shape and the timeline helper ----------------------------------------------------------------------


def test_a_timepoint_and_the_baseline_serialise_every_field():
    result = evaluate({BASE: {"a": 40, "b": 30, "c": 5}, F1: {"a": 20, "c": 4, "x": 6}})
    assert baseline_json(result.baseline)["non_targets"] == ["BodyStructure/c"]
    point = timepoint_json(result.timeline[0])
    assert {k: point[k] for k in point if k not in ("reasons", "evidence")} == {
        "date": "2026-07-01", "sum_mm": 20, "category": "NE", "target_response": "NE",
        "non_target_response": "non-CR/non-PD", "nadir": {"date": "2026-05-02", "sum_mm": 70},
        "change_from_baseline_pct": -50.0, "change_from_nadir_pct": -71.4, "targets_missing": ["BodyStructure/b"],
        "new_lesions": [], "new_lesions_below_threshold": ["BodyStructure/x"], "progression": [],
    }
    assert point["reasons"] == list(result.timeline[0].reasons)
    assert point["evidence"] == list(result.timeline[0].evidence)


def test_the_timeline_helper_judges_new_lesions_since_each_session():
    # x first seen after the first session and unchanged after the second: with the sessions it is tracked
    table = {BASE: {"a": 40}, F1: {"a": 40, "x": 12}, F2: {"a": 40, "x": 12}}
    sessions = (START, date(2026, 8, 1))
    timeline = mrecist_timeline(scans(table), treatment_start=START, as_of=AS_OF, criteria=CRITERIA,
                                new_since_sessions=sessions)
    assert [t.category for t in timeline] == ["PD", "SD"]
    assert [t.category for t in mrecist_timeline(scans(table), treatment_start=START, as_of=AS_OF,
                                                 criteria=CRITERIA)] == ["PD", "PD"]


def test_imaging_on_the_day_of_a_session_is_before_it():
    # the second session on the day of the F1 imaging: x, first seen on F1, is new then (since the baseline, the
    # imaging before the first session) and tracked afterwards (seen on the imaging of the second session's day)
    table = {BASE: {"a": 40}, F1: {"a": 40, "x": 12}, F2: {"a": 40, "x": 12}}
    result = evaluate(table, sessions=(START, F1))
    assert [t.category for t in result.timeline] == ["PD", "SD"]
    assert result.timeline[0].new_lesions == ("BodyStructure/x",)
    assert result.timeline[1].new_lesions == ()


def test_every_non_target_is_checked_for_growth_whatever_comes_before_it():
    # a0 was seen only before the baseline, b2 is unchanged: neither stops the check of c (20 -> 70 mm)
    table = {date(2026, 4, 1): {"a0": 15}, BASE: {"a": 40, "b": 30, "b2": 15, "c": 20},
             F1: {"a": 40, "b": 30, "b2": 15, "c": 70}}
    result = evaluate(table)
    assert result.category == "PD"
    assert result.current.progression == ("non_target_progression",)
    assert any(r.startswith("Non-target lesion BodyStructure/c viable 70 mm on 2026-07-01, up from its smallest 20 mm")
               for r in result.reasons), result.reasons


def test_a_lesion_tracked_since_a_session_does_not_hide_a_newer_one():
    # x first seen on F1 (before the second session): tracked at F2; y first seen on F2 is new since F1
    table = {BASE: {"a": 40}, F1: {"a": 40, "x": 12}, F2: {"a": 40, "x": 12, "y": 12}}
    result = evaluate(table, sessions=(START, date(2026, 8, 1)))
    assert result.category == "PD"
    assert result.current.new_lesions == ("BodyStructure/y",)
    assert (
        "New lesion BodyStructure/y first seen 2026-09-29 (new since the imaging of 2026-07-01, before the latest "
        "session), viable 12 mm (>= 10 mm): PD."
    ) in result.reasons


@pytest.mark.parametrize(("mm", "category"), [(0, "SD"), (0.5, "PD"), (1, "PD")])
def test_with_any_viable_size_counting_a_new_extrahepatic_lesion_needs_viable_tumour(mm, category):
    document = copy.deepcopy(CRITERIA)
    document["mrecist"]["new_extrahepatic_lesion_min_viable_diameter_mm"] = 0
    lesions = scans({BASE: {"a": 40}, F1: {"a": 40}}) + [lesion("m", F1, mm, organ="lung")]
    result = evaluate_mrecist(lesions, treatment_start=START, as_of=AS_OF, criteria=document)
    assert result.category == category
    assert ("new_extrahepatic_spread" in result.current.progression) is (category == "PD")
