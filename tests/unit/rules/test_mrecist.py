"""mRECIST (Lencioni & Llovet 2010) as PRODUCT.md fixes it: baseline, targets, nadir, order of evaluation."""

from __future__ import annotations

from datetime import date

import pytest

from rules.mrecist import (
    MrecistCriteria,
    RecordedProgression,
    baseline_date,
    evaluate_mrecist,
    mrecist_for_snapshot,
    mrecist_timeline,
    overall_response,
    select_targets,
)
from service.render.clinical_json import mrecist_json
from tests.unit.rules.factories import condition, lesion, make_snapshot, response_criteria

CRITERIA = response_criteria()
START = date(2026, 5, 5)  # sorafenib start
BASE = date(2026, 5, 2)
F1 = date(2026, 7, 1)
F2 = date(2026, 9, 29)
F3 = date(2026, 11, 20)
AS_OF = date(2026, 12, 1)


def scans(table: dict[date, dict[str, float]], organs: dict[str, str | None] | None = None):
    """Lesion measurements from ``{date: {lesion name: viable mm}}``; organ "liver" unless given."""
    organs = organs or {}
    return [
        lesion(name, when, size, organ=organs.get(name, "liver"))
        for when, sizes in table.items()
        for name, size in sizes.items()
    ]


def evaluate(table, *, organs=None, conditions=(), progression=(), start=START, as_of=AS_OF):
    return evaluate_mrecist(
        scans(table, organs),
        treatment_start=start,
        as_of=as_of,
        criteria=CRITERIA,
        conditions=conditions,
        non_target_progression=progression,
    )


# -- the schema's example ---------------------------------------------------------


def test_the_schema_example_is_pd_against_the_nadir_with_its_numbers():
    result = evaluate({BASE: {"lesion-a": 40, "lesion-b": 25}, F1: {"lesion-a": 28, "lesion-b": 17},
                       F2: {"lesion-a": 44, "lesion-b": 26}}, as_of=F2)
    data = mrecist_json(result)
    assert data["category"] == "PD"
    assert data["baseline"]["date"] == "2026-05-02"
    assert data["baseline"]["sum_mm"] == 65
    assert data["baseline"]["targets"] == [
        {"lesion": "BodyStructure/lesion-a", "diameter_mm": 40, "organ": "liver"},
        {"lesion": "BodyStructure/lesion-b", "diameter_mm": 25, "organ": "liver"},
    ]
    assert data["nadir"] == {"date": "2026-07-01", "sum_mm": 45}
    assert data["current"] == {"date": "2026-09-29", "sum_mm": 70}
    assert (data["change_from_baseline_pct"], data["change_from_nadir_pct"]) == (7.7, 55.6)
    assert data["new_lesions"] == []
    assert "Sum of viable diameters 70 mm is 55.6% above the nadir of 45 mm (2026-07-01) (PD at >=20%)." in data["reasons"]
    assert data["citation"].startswith("mRECIST: Lencioni R, Llovet JM, Semin Liver Dis 2010;30:52-60")
    assert [(t["date"], t["sum_mm"], t["category"]) for t in data["timeline"]] == [
        ("2026-07-01", 45, "PR"),
        ("2026-09-29", 70, "PD"),
    ]
    assert "Observation/size-lesion-a-20260929" in data["evidence"]
    assert "Observation/size-lesion-a-20260701" in data["evidence"]  # the nadir's measurements


def test_pd_is_measured_against_the_nadir_even_while_the_sum_is_still_below_baseline():
    result = evaluate({BASE: {"a": 60, "b": 40}, F1: {"a": 30, "b": 20}, F2: {"a": 36, "b": 24}})
    assert result.category == "PD"
    assert result.current.change_from_baseline_pct == -40.0
    assert result.current.change_from_nadir_pct == 20.0
    assert (result.nadir.date, result.nadir.sum_mm) == (F1, 50)


# -- boundaries (exact arithmetic) ------------------------------------------------


@pytest.mark.parametrize(
    ("a_at_f2", "expected", "pct_from_nadir"),
    [
        (33, "PD", 20.0),  # 48 / 40: exactly +20%
        (32.9, "SD", 19.8),
        (32.99, "SD", 20.0),  # +19.975%: shown as 20.0 once rounded, yet below +20% exactly
        (40, "PD", 37.5),
    ],
)
def test_exactly_20_percent_above_the_nadir_is_pd_and_just_below_is_not(a_at_f2, expected, pct_from_nadir):
    result = evaluate({BASE: {"a": 30, "b": 20}, F1: {"a": 25, "b": 15}, F2: {"a": a_at_f2, "b": 15}})
    assert result.category == expected
    assert result.current.change_from_nadir_pct == pct_from_nadir


@pytest.mark.parametrize(
    ("a_at_f1", "expected", "pct_from_baseline"),
    [
        (42, "PR", -30.0),  # 70 / 100: exactly -30%
        (42.1, "SD", -29.9),
        (42.01, "SD", -30.0),  # -29.99%: shown as -30.0 once rounded, yet not -30% exactly
        (41.9, "PR", -30.1),
    ],
)
def test_exactly_30_percent_below_baseline_is_pr_and_just_above_is_sd(a_at_f1, expected, pct_from_baseline):
    result = evaluate({BASE: {"a": 60, "b": 40}, F1: {"a": a_at_f1, "b": 28}})
    assert result.category == expected
    assert result.current.change_from_baseline_pct == pct_from_baseline


# -- complete response ---------------------------------------------------------------


def test_cr_when_every_target_is_0_mm_and_there_is_no_new_lesion():
    result = evaluate({BASE: {"a": 40, "b": 25}, F1: {"a": 0, "b": 0}})
    assert result.category == "CR"
    assert result.current.sum_mm == 0
    assert result.current.change_from_baseline_pct == -100.0


def test_not_cr_while_one_target_keeps_viable_tumour():
    result = evaluate({BASE: {"a": 40, "b": 25}, F1: {"a": 0, "b": 3}})
    assert result.category == "PR"


def test_a_new_viable_lesion_below_10_mm_rules_out_cr_without_making_it_pd():
    result = evaluate({BASE: {"a": 40, "b": 25}, F1: {"a": 0, "b": 0, "new": 6}})
    assert result.category == "PR"
    assert result.current.target_response == "CR"
    assert result.current.new_lesions == ()
    assert result.current.new_lesions_below_threshold == ("BodyStructure/new",)
    assert any("equivocal, not PD; it rules out CR" in r for r in result.reasons)


def test_viable_non_target_tumour_turns_target_cr_into_pr_by_the_overall_table():
    result = evaluate({BASE: {"a": 40, "b": 25, "small": 8}, F1: {"a": 0, "b": 0, "small": 5}})
    assert result.current.target_response == "CR"
    assert result.current.non_target_response == "non-CR/non-PD"
    assert result.category == "PR"


def test_a_portal_vein_thrombus_present_at_baseline_and_still_present_rules_out_cr():
    pvtt = condition("portal_vein_tumour_thrombus", onset=date(2026, 4, 1))
    result = evaluate({BASE: {"a": 40}, F1: {"a": 0}}, conditions=[pvtt])
    assert result.category == "PR"
    assert pvtt.ref in result.evidence


def test_a_non_target_lesion_gone_too_gives_cr():
    result = evaluate({BASE: {"a": 40, "small": 8}, F1: {"a": 0, "small": 0}})
    assert (result.current.non_target_response, result.category) == ("CR", "CR")


def test_reappearing_viable_tumour_after_a_nadir_of_0_is_pd():
    result = evaluate({BASE: {"a": 40}, F1: {"a": 0}, F2: {"a": 4}})
    assert [t.category for t in result.timeline] == ["CR", "PD"]
    assert result.current.change_from_nadir_pct is None
    assert any("viable tumour reappeared" in r for r in result.reasons)


# -- new lesions, invasion, spread ----------------------------------------------------


@pytest.mark.parametrize(("new_mm", "expected"), [(9, "SD"), (9.9, "SD"), (10, "PD"), (25, "PD")])
def test_a_new_liver_lesion_is_pd_from_10_mm(new_mm, expected):
    result = evaluate({BASE: {"a": 40, "b": 25}, F1: {"a": 38, "b": 25, "new": new_mm}})
    assert result.category == expected
    assert mrecist_json(result)["new_lesions"] == (["BodyStructure/new"] if expected == "PD" else [])


def test_a_new_lesion_that_grows_to_10_mm_later_becomes_pd_then():
    result = evaluate({BASE: {"a": 40}, F1: {"a": 40, "new": 6}, F2: {"a": 40, "new": 12}})
    assert [t.category for t in result.timeline] == ["SD", "PD"]


def test_a_new_lesion_outside_the_liver_is_new_extrahepatic_spread():
    result = evaluate({BASE: {"a": 40}, F1: {"a": 30, "lung": 10}}, organs={"lung": "lung"})
    assert result.category == "PD"
    assert "new_extrahepatic_spread" in result.current.progression
    assert result.current.new_lesions == ("BodyStructure/lung",)


def test_a_lesion_known_before_baseline_is_not_new():
    result = evaluate({date(2026, 2, 1): {"old": 15}, BASE: {"a": 40}, F1: {"a": 40, "old": 15}})
    assert result.category == "SD"
    assert result.current.non_target_response == "non-CR/non-PD"


def test_new_vascular_invasion_after_baseline_is_pd():
    pvtt = condition("portal_vein_tumour_thrombus", onset=date(2026, 6, 1))
    result = evaluate({BASE: {"a": 40}, F1: {"a": 20}}, conditions=[pvtt])
    assert result.category == "PD"
    assert result.current.progression == ("new_vascular_invasion",)
    assert pvtt.ref in result.evidence
    assert any("new vascular invasion (PD)" in r for r in result.reasons)


@pytest.mark.parametrize(
    ("onset", "is_new"),
    [(date(2026, 5, 2), False), (date(2026, 5, 3), True), (None, False), (date(2026, 7, 2), False)],
)
def test_vascular_invasion_is_new_only_with_onset_after_baseline_and_by_the_evaluated_date(onset, is_new):
    pvtt = condition("portal_vein_tumour_thrombus", onset=onset)
    result = evaluate({BASE: {"a": 40}, F1: {"a": 40}}, conditions=[pvtt])
    # at the follow-up imaging (an onset after it makes a later PD of its own: see test_mrecist_core3)
    assert (result.timeline[0].category == "PD") is is_new


def test_an_undated_thrombus_is_explained_as_taken_to_predate_baseline():
    result = evaluate({BASE: {"a": 40}, F1: {"a": 40}}, conditions=[condition("portal_vein_tumour_thrombus")])
    assert any("has no onset date: taken as present before baseline" in r for r in result.reasons)


def test_a_refuted_thrombus_does_not_count():
    pvtt = condition("portal_vein_tumour_thrombus", onset=date(2026, 6, 1), verification_status="refuted")
    assert evaluate({BASE: {"a": 40}, F1: {"a": 40}}, conditions=[pvtt]).category == "SD"


def test_new_extrahepatic_metastasis_after_baseline_is_pd():
    metastasis = condition("extrahepatic_metastasis", onset=date(2026, 6, 15))
    result = evaluate({BASE: {"a": 40}, F1: {"a": 20}}, conditions=[metastasis])
    assert result.category == "PD"
    assert "new_extrahepatic_spread" in result.current.progression


def test_recorded_non_target_progression_counts_below_the_size_rule():
    table = {BASE: {"a": 40, "nt": 9}, F1: {"a": 40, "nt": 13}}
    assert evaluate(table).category == "SD"  # 13 < 1.5 x 9: not unequivocal by size
    recorded = RecordedProgression(when=F1, ref="DiagnosticReport/ct-20260701")
    result = evaluate(table, progression=[recorded])
    assert result.category == "PD"
    assert result.current.non_target_response == "PD"
    assert "DiagnosticReport/ct-20260701" in result.evidence


# -- missing targets ------------------------------------------------------------------

LUNG_C = {"c": "lung"}  # a third target needs another organ (2 per organ)


def test_a_target_missing_at_follow_up_with_the_others_20_percent_above_the_full_nadir_is_pd():
    result = evaluate({BASE: {"a": 40, "b": 30, "c": 20}, F1: {"a": 72, "b": 36}}, organs=LUNG_C)
    assert result.category == "PD"
    assert result.current.targets_missing == ("BodyStructure/c",)
    assert (result.nadir.date, result.nadir.sum_mm) == (BASE, 90)  # nadir of the full sum
    assert result.current.change_from_nadir_pct == 20.0


def test_a_target_missing_at_follow_up_without_such_growth_is_ne():
    result = evaluate({BASE: {"a": 40, "b": 30, "c": 20}, F1: {"a": 42, "b": 30}}, organs=LUNG_C)
    assert result.category == "NE"
    assert any("not evaluable (NE)" in r for r in result.reasons)


def test_the_full_nadir_skips_dates_on_which_a_target_was_missing():
    table = {BASE: {"a": 40, "b": 30, "c": 20}, F1: {"a": 10, "c": 20}, F2: {"a": 30, "b": 20},
             F3: {"a": 80, "b": 28}}
    timeline = evaluate(table, organs=LUNG_C).timeline
    assert [t.category for t in timeline] == ["NE", "NE", "PD"]
    # F3 compares a+b = 108 with the nadir of the full sum: the baseline's 90 (F1 and F2 were not full)
    assert (timeline[-1].nadir.date, timeline[-1].nadir.sum_mm) == (BASE, 90)


def test_every_target_missing_is_ne():
    result = evaluate({BASE: {"a": 40}, F1: {"other": 0}})
    assert result.category == "NE"


# -- null categories ----------------------------------------------------------------------


def test_no_follow_up_imaging_gives_a_null_category():
    result = evaluate({BASE: {"a": 40}})
    assert result.category is None
    assert mrecist_json(result)["current"] is None and result.timeline == ()
    assert result.baseline.date == BASE
    assert any("No follow-up imaging after baseline 2026-05-02" in r for r in result.reasons)


def test_no_imaging_on_or_before_the_start_gives_no_baseline():
    result = evaluate({F1: {"a": 40}, F2: {"a": 50}})
    assert (result.category, result.baseline) == (None, None)
    assert result.reasons[0].startswith("No baseline: no tumour imaging on or before the treatment start 2026-05-05")


def test_imaging_after_the_assessment_date_is_ignored():
    result = evaluate({BASE: {"a": 40}, F1: {"a": 40}, F2: {"a": 80}}, as_of=date(2026, 9, 28))
    assert (result.category, result.current.date) == ("SD", F1)


def test_no_measurable_target_at_baseline_gives_a_null_category_unless_a_new_lesion_is_pd():
    result = evaluate({BASE: {"a": 9, "b": 5}, F1: {"a": 9, "b": 5}})
    assert result.category is None
    assert any("no measurable target lesion (>= 10 mm viable)" in r for r in result.reasons)
    result = evaluate({BASE: {"a": 9}, F1: {"a": 9, "new": 15}})
    assert result.category == "PD"


# -- baseline and targets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("imaging_dates", "expected_baseline"),
    [
        ((date(2026, 3, 1), date(2026, 5, 5), F1), date(2026, 5, 5)),  # on the start day
        ((date(2026, 3, 1), date(2026, 5, 1), F1), date(2026, 5, 1)),  # the latest before
        ((date(2026, 3, 1), date(2026, 5, 6), F1), date(2026, 3, 1)),  # the day after the start is follow-up
    ],
)
def test_baseline_is_the_latest_imaging_on_or_before_the_sorafenib_start(imaging_dates, expected_baseline):
    table = {d: {"a": 40} for d in imaging_dates}
    assert baseline_date(scans(table), START) == expected_baseline
    result = evaluate(table)
    assert result.baseline.date == expected_baseline
    assert result.timeline[0].date > START


def test_of_seven_liver_lesions_the_two_largest_are_targets_ties_broken_by_identifier():
    sizes = {"g": 9, "f": 10, "d": 20, "a": 30, "e": 40, "c": 50, "b": 50}
    targets = select_targets(scans({BASE: sizes}), CRITERIA)
    assert [t.lesion for t in targets] == ["BodyStructure/b", "BodyStructure/c"]


def test_targets_are_at_most_2_per_organ_and_5_in_total_largest_first():
    sizes = {"l1": 50, "l2": 50, "l3": 40, "p1": 45, "p2": 35, "p3": 30, "u1": 60, "u2": 12, "bone": 11}
    organs = {"p1": "lung", "p2": "lung", "p3": "lung", "u1": None, "u2": None, "bone": "bone"}
    targets = select_targets(scans({BASE: sizes}, organs), MrecistCriteria.from_dict(CRITERIA))
    assert [t.lesion.split("/")[1] for t in targets] == ["u1", "l1", "l2", "p1", "p2"]


def test_a_lesion_below_10_mm_at_baseline_is_not_a_target():
    result = evaluate({BASE: {"a": 40, "small": 9.9}, F1: {"a": 40, "small": 9.9}})
    assert [t.lesion for t in result.baseline.targets] == ["BodyStructure/a"]
    assert result.baseline.non_targets == ("BodyStructure/small",)


def test_two_measurements_of_one_lesion_on_one_date_use_the_larger_and_say_so():
    lesions = scans({BASE: {"a": 40}, F1: {"a": 30}}) + [lesion("a", F1, 35, ref="Observation/size-a-dup")]
    result = evaluate_mrecist(lesions, treatment_start=START, as_of=AS_OF, criteria=CRITERIA)
    assert result.current.sum_mm == 35
    assert any("has 2 measurements on 2026-07-01; the largest (35 mm" in r for r in result.reasons)


def test_an_unusable_diameter_is_left_out_with_a_reason():
    lesions = scans({BASE: {"a": 40}, F1: {"a": 40}}) + [lesion("a", F2, float("nan"), ref="Observation/bad")]
    result = evaluate_mrecist(lesions, treatment_start=START, as_of=AS_OF, criteria=CRITERIA)
    assert result.current.date == F1
    assert any("Observation/bad" in r for r in result.reasons)


# -- timeline, snapshot entry, overall table -------------------------------------------------


def test_the_timeline_gives_each_follow_up_with_its_own_nadir():
    timeline = mrecist_timeline(
        scans({BASE: {"a": 50}, F1: {"a": 30}, F2: {"a": 25}, F3: {"a": 31}}),
        treatment_start=START, as_of=AS_OF, criteria=CRITERIA,
    )
    assert [(t.date, t.category, t.nadir.date, t.nadir.sum_mm) for t in timeline] == [
        (F1, "PR", BASE, 50),
        (F2, "PR", F1, 30),
        (F3, "PD", F2, 25),
    ]


def test_a_tace_series_is_evaluated_from_the_first_tace():
    first_tace = date(2026, 2, 1)
    snapshot = make_snapshot(lesions=scans({date(2026, 1, 20): {"a": 40}, date(2026, 3, 20): {"a": 30},
                                            date(2026, 6, 1): {"a": 37}}))
    result = mrecist_for_snapshot(snapshot, treatment_start=first_tace, as_of=date(2026, 6, 30), criteria=CRITERIA)
    assert result.baseline.date == date(2026, 1, 20)
    assert result.category == "PD"
    assert result.first_progression().date == date(2026, 6, 1)


@pytest.mark.parametrize(
    ("target", "non_target", "new_lesion", "overall"),
    [
        ("CR", "CR", False, "CR"),
        ("CR", None, False, "CR"),
        ("CR", "non-CR/non-PD", False, "PR"),
        ("CR", "NE", False, "PR"),
        ("PR", "non-CR/non-PD", False, "PR"),
        ("PR", "CR", False, "PR"),
        ("SD", "non-CR/non-PD", False, "SD"),
        ("PD", "CR", False, "PD"),
        ("CR", "PD", False, "PD"),
        ("CR", "CR", True, "PD"),
        ("NE", "CR", False, "NE"),
        ("NE", None, True, "PD"),
        (None, "non-CR/non-PD", False, None),
        (None, "PD", False, "PD"),
    ],
)
def test_the_overall_response_follows_the_dossiers_table(target, non_target, new_lesion, overall):
    assert overall_response(target, non_target, new_lesion) == overall


def test_every_result_carries_reasons_evidence_and_the_citation():
    result = evaluate({BASE: {"a": 40}, F1: {"a": 30}})
    data = mrecist_json(result)
    assert data["reasons"] and data["evidence"]
    assert data["citation"].startswith("mRECIST: Lencioni R, Llovet JM, Semin Liver Dis 2010;30:52-60")
    assert set(data) >= {
        "category", "baseline", "nadir", "current", "change_from_baseline_pct", "change_from_nadir_pct",
        "new_lesions", "reasons", "evidence", "timeline", "citation",
    }
