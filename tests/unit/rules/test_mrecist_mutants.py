"""mRECIST boundaries and explanations not pinned elsewhere (written against mutmut's surviving mutants).

Strict inequalities that keep 0 mm from counting as viable tumour, the dates that
make a condition or a recorded progression new, the nadir of 0 mm, and the
sentence that explains each category. A few cut-offs that cannot matter with the
shipped numbers (``response_criteria.json``) are checked with changed criteria, as
a site override could change them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from fractions import Fraction

import pytest

from rules.knowledge import KnowledgeError
from rules.mrecist import (
    MrecistCriteria,
    RecordedProgression,
    baseline_date,
    evaluate_mrecist,
    mrecist_for_snapshot,
    mrecist_timeline,
    select_targets,
)
from service.render.clinical_json import mrecist_json
from tests.unit.rules.factories import condition, lesion, make_snapshot, response_criteria

CRITERIA = MrecistCriteria.from_dict(response_criteria())
START = date(2026, 5, 5)
BASE = date(2026, 5, 2)
F1 = date(2026, 7, 1)
F2 = date(2026, 9, 29)
AS_OF = date(2026, 12, 1)
BASELINE_REASON = "Baseline: imaging of 2026-05-02 (latest on or before the treatment start 2026-05-05); "


def scans(table, organs=None):
    organs = organs or {}
    return [lesion(n, d, mm, organ=organs.get(n, "liver")) for d, sizes in table.items() for n, mm in sizes.items()]


def evaluate(table, *, organs=None, conditions=(), progression=(), start=START, as_of=AS_OF, criteria=CRITERIA):
    return evaluate_mrecist(scans(table, organs), treatment_start=start, as_of=as_of, criteria=criteria,
                            conditions=conditions, non_target_progression=progression)


def bs(name: str) -> str:
    return f"BodyStructure/{name}"


# -- 0 mm is not viable tumour; any viable size is --------------------------------------------------


@pytest.mark.parametrize(("mm", "category"), [(0, "CR"), (0.5, "PR"), (9.9, "PR"), (10, "PD"), (12, "PD")])
def test_a_new_lesion_outside_the_liver_is_spread_from_10_mm_and_equivocal_below(mm, category):
    # PRODUCT.md: a new lesion counts from 10 mm viable, in the liver or elsewhere; a smaller one is
    # equivocal (it rules out CR: target CR with an equivocal new lesion is PR)
    result = evaluate({BASE: {"a": 20}, F1: {"a": 0, "z": mm}}, organs={"z": "lung"}, as_of=F1)
    assert result.category == category
    if category == "PD":
        assert result.current.progression == ("new_extrahepatic_spread",)
        assert result.new_lesions == (bs("z"),)


def test_a_new_extrahepatic_lesion_counts_from_a_site_minimum_inclusive():
    crit = replace(CRITERIA, new_extrahepatic_lesion_min_viable_diameter_mm=Fraction(5))
    at = evaluate({BASE: {"a": 20}, F1: {"a": 20, "z": 5}}, organs={"z": "lung"}, as_of=F1, criteria=crit)
    below = evaluate({BASE: {"a": 20}, F1: {"a": 20, "z": 4.9}}, organs={"z": "lung"}, as_of=F1, criteria=crit)
    assert (at.category, below.category) == ("PD", "SD")


@pytest.mark.parametrize(("mm", "counts"), [(0, False), (1, True), (2, True)])
def test_with_no_minimum_for_new_liver_lesions_any_viable_one_counts_and_0_mm_does_not(mm, counts):
    crit = replace(CRITERIA, new_lesion_min_viable_diameter_mm=Fraction(0))
    result = evaluate({BASE: {"a": 20}, F1: {"a": 20, "n": mm}}, as_of=F1, criteria=crit)
    assert (result.category == "PD") is counts
    assert (result.new_lesions == (bs("n"),)) is counts


@pytest.mark.parametrize(("mm", "category", "equivocal"), [(0, "CR", ()), (1, "PR", (bs("n"),)), (9, "PR", (bs("n"),))])
def test_a_new_liver_lesion_below_10_mm_is_equivocal_only_while_viable(mm, category, equivocal):
    result = evaluate({BASE: {"a": 20}, F1: {"a": 0, "n": mm}}, as_of=F1)
    assert (result.category, result.current.new_lesions_below_threshold) == (category, equivocal)
    if equivocal:
        assert result.current.reasons[-1] == (
            f"Every target lesion is at 0 mm on 2026-07-01, but an equivocal new lesion ({bs('n')}): "
            "PR by the overall-response table (CR needs all of them gone)."
        )
        assert "Observation/size-n-20260701" in result.current.evidence


@pytest.mark.parametrize(("mm", "category"), [(0, "CR"), (1, "PR")])
def test_a_non_target_lesion_still_viable_at_1_mm_rules_out_cr(mm, category):
    result = evaluate({BASE: {"a": 20, "x": 5}, F1: {"a": 0, "x": mm}}, as_of=F1)
    assert result.category == category


@pytest.mark.parametrize(("mm", "non_targets", "category"), [(0, (), "CR"), (1, (bs("x"),), "PR")])
def test_a_lesion_at_0_mm_at_baseline_is_not_a_non_target_to_assess(mm, non_targets, category):
    # x is not measured at follow-up: a viable non-target left unassessed rules out CR, a 0 mm one does not
    result = evaluate({BASE: {"a": 20, "x": mm}, F1: {"a": 0}}, as_of=F1)
    assert result.baseline.non_targets == non_targets
    assert result.category == category


def test_a_target_still_0_mm_after_a_nadir_of_0_stays_cr():
    result = evaluate({BASE: {"a": 20}, F1: {"a": 0}, F2: {"a": 0}}, as_of=F2)
    assert [t.category for t in result.timeline] == ["CR", "CR"]
    assert result.reasons[-1] == "Every target lesion has no viable tumour (0 mm) on 2026-09-29, no new lesion: CR."


def test_a_nadir_of_1_mm_is_still_a_nadir_to_measure_change_from():
    result = evaluate({BASE: {"a": 20}, F1: {"a": 1}, F2: {"a": 1}}, as_of=F2)
    assert (result.category, result.current.change_from_nadir_pct) == ("PR", 0.0)


# -- dates that make things new ---------------------------------------------------------------------


@pytest.mark.parametrize(("onset", "category"), [(F1, "PD"), (date(2026, 7, 2), "SD")])
def test_a_thrombus_with_onset_on_the_follow_up_date_is_new_at_that_date(onset, category):
    pvtt = condition("portal_vein_tumour_thrombus", onset=onset, ref="Condition/pvtt")
    result = evaluate({BASE: {"a": 20}, F1: {"a": 20}}, conditions=[pvtt], as_of=F1)
    assert result.category == category


@pytest.mark.parametrize(("when", "category"), [(BASE, "SD"), (date(2026, 5, 3), "PD"), (F1, "PD")])
def test_a_recorded_non_target_progression_counts_after_baseline_up_to_the_follow_up(when, category):
    result = evaluate({BASE: {"a": 20}, F1: {"a": 20}}, progression=[RecordedProgression(when, "Observation/ntp")], as_of=F1)
    assert result.category == category


def test_a_thrombus_with_onset_on_the_baseline_date_is_non_target_tumour_not_new():
    pvtt = condition("portal_vein_tumour_thrombus", onset=BASE, ref="Condition/pvtt")
    result = evaluate({BASE: {"a": 20}, F1: {"a": 0}}, conditions=[pvtt], as_of=F1)
    assert (result.category, result.current.non_target_response) == ("PR", "non-CR/non-PD")
    assert "Condition/pvtt" in result.current.evidence


def test_a_thrombus_gone_before_baseline_is_no_non_target_tumour():
    gone = condition("portal_vein_tumour_thrombus", onset=date(2026, 1, 1), abatement=date(2026, 4, 1),
                     clinical_status="resolved", ref="Condition/old")
    result = evaluate({BASE: {"a": 20}, F1: {"a": 0}}, conditions=[gone], as_of=F1)
    assert (result.category, result.current.non_target_response) == ("CR", None)


def test_with_no_non_target_tumour_at_baseline_the_non_target_response_is_none():
    result = evaluate({BASE: {"a": 20}, F1: {"a": 0}}, as_of=F1)
    assert result.current.non_target_response is None


def test_a_non_target_gone_gives_a_non_target_cr_said_in_the_reason():
    result = evaluate({BASE: {"a": 20, "x": 5}, F1: {"a": 0, "x": 0}}, as_of=F1)
    assert (result.category, result.current.non_target_response) == ("CR", "CR")
    assert result.reasons[-1] == (
        "Every target lesion has no viable tumour (0 mm) on 2026-07-01, no new lesion and no viable non-target tumour: CR."
    )


def test_an_unassessed_non_target_makes_the_non_target_response_ne():
    result = evaluate({BASE: {"a": 20, "x": 5}, F1: {"a": 0}}, as_of=F1)
    assert (result.category, result.current.non_target_response) == ("PR", "NE")
    assert result.reasons[-1] == (
        f"Every target lesion is at 0 mm on 2026-07-01, but non-target lesion(s) not assessed ({bs('x')}): "
        "PR by the overall-response table (CR needs all of them gone)."
    )


@pytest.mark.parametrize(("as_of", "said"), [(START, False), (date(2026, 5, 4), True)])
def test_a_start_after_the_assessment_date_is_said_and_one_on_it_is_not(as_of, said):
    result = evaluate({BASE: {"a": 20}}, as_of=as_of)
    assert any("is after the assessment date" in r for r in result.reasons) is said


def test_without_a_baseline_the_first_later_imaging_is_named():
    result = evaluate({F1: {"a": 20}, F2: {"a": 20}})
    assert result.reasons[0] == (
        "No baseline: no tumour imaging on or before the treatment start 2026-05-05 (first imaging 2026-07-01, after it)."
    )


@pytest.mark.parametrize(("onset", "is_pd"), [(BASE, False), (date(2026, 5, 3), True), (AS_OF, True), (None, False)])
def test_without_follow_up_imaging_a_condition_after_baseline_up_to_the_assessment_is_pd_from_its_onset(onset, is_pd):
    pvtt = condition("portal_vein_tumour_thrombus", onset=onset, ref="Condition/pvtt")
    result = evaluate({BASE: {"a": 20}}, conditions=[pvtt])
    assert result.category == ("PD" if is_pd else None)
    if is_pd:
        assert result.current.date == onset
        assert result.current.reasons == (
            f"Portal-vein tumour thrombus Condition/pvtt with onset {onset}, after the latest sized imaging and "
            "after baseline 2026-05-02: new vascular invasion (PD from that date).",
        )


def test_dated_and_undated_conditions_can_be_sorted_together():
    conditions = [
        condition("portal_vein_tumour_thrombus", onset=None, ref="Condition/undated"),
        condition("extrahepatic_metastasis", onset=date(2026, 1, 1), ref="Condition/dated"),
    ]
    result = evaluate({BASE: {"a": 20}, F1: {"a": 0}}, conditions=conditions, as_of=F1)
    assert result.category == "PR"
    assert "Portal-vein tumour thrombus Condition/undated has no onset date: taken as present before baseline (non-target), not as new." in result.reasons


# -- targets and readings -----------------------------------------------------------------------------


def test_with_one_target_per_organ_allowed_only_the_largest_of_each_organ_is_a_target():
    crit = replace(CRITERIA, targets_max_per_organ=1)
    baseline = scans({BASE: {"a": 30, "b": 20, "c": 15}}, organs={"c": "lung"})
    assert [t.lesion for t in select_targets(baseline, crit)] == [bs("a"), bs("c")]


def test_a_single_reading_of_a_lesion_adds_no_note():
    result = evaluate({BASE: {"a": 20}, F1: {"a": 20}}, as_of=F1)
    assert not any("measurements on" in r for r in result.reasons)


def test_baseline_date_without_imaging_before_the_start_is_none():
    assert baseline_date(scans({F1: {"a": 20}}), START) is None
    assert baseline_date([], START) is None


def test_new_lesions_are_listed_in_the_order_first_seen():
    result = evaluate({BASE: {"m": 20}, F1: {"m": 20, "b": 12}, F2: {"m": 20, "a": 12, "b": 12}}, as_of=F2)
    assert result.new_lesions == (bs("b"), bs("a"))


# -- the sentence that explains each category ---------------------------------------------------------


def test_pr_is_explained_by_the_decrease_from_baseline():
    result = evaluate({BASE: {"a": 20}, F1: {"a": 14}}, as_of=F1)
    assert result.reasons[-1] == "Sum of viable diameters 14 mm is 30.0% below baseline 20 mm (PR at >=30% decrease)."


@pytest.mark.parametrize(
    ("table", "text"),
    [
        ({BASE: {"a": 20}, F1: {"a": 20}},
         "Sum of viable diameters 20 mm is 0.0% above baseline 20 mm and 0.0% above the nadir of 20 mm (2026-05-02)"),
        ({BASE: {"a": 20}, F1: {"a": 21}},
         "Sum of viable diameters 21 mm is 5.0% above baseline 20 mm and 5.0% above the nadir of 20 mm (2026-05-02)"),
        ({BASE: {"a": 40}, F1: {"a": 30}, F2: {"a": 29}},
         "Sum of viable diameters 29 mm is 27.5% below baseline 40 mm and 3.3% below the nadir of 30 mm (2026-07-01)"),
        ({BASE: {"a": 40}, F1: {"a": 30}, F2: {"a": 30.2}},
         "Sum of viable diameters 30.2 mm is 24.5% below baseline 40 mm and 0.7% above the nadir of 30 mm (2026-07-01)"),
    ],
)
def test_sd_is_explained_by_the_change_from_baseline_and_from_the_nadir(table, text):
    result = evaluate(table, as_of=max(table))
    assert result.category == "SD"
    assert result.reasons[-1] == text + ": neither PR (>=30% decrease) nor PD (>=20% increase), SD."


def test_a_subset_at_0_mm_after_a_nadir_of_0_mm_is_ne_and_not_above_it():
    result = evaluate({BASE: {"a": 20, "b": 20}, F1: {"a": 0, "b": 0}, F2: {"a": 0}}, as_of=F2)
    assert result.category == "NE"
    assert result.reasons[-1] == (
        f"Target(s) {bs('b')} not measured on 2026-09-29: not evaluable (NE); the 1 measured sum to 0 mm, "
        "not above the nadir of 0 mm."
    )


def test_ne_with_no_target_measured_says_so():
    result = evaluate({BASE: {"a": 20}, F1: {"x": 5}}, as_of=F1)
    assert result.category == "NE"
    assert result.reasons[-1] == f"Target(s) {bs('a')} not measured on 2026-07-01: not evaluable (NE); no target measured."


def test_ne_with_some_targets_measured_gives_their_change_from_their_nadir():
    result = evaluate({BASE: {"a": 20, "b": 20}, F1: {"a": 22}}, as_of=F1)
    assert result.reasons[-1] == (
        f"Target(s) {bs('b')} not measured on 2026-07-01: not evaluable (NE); the 1 measured sum to 22 mm, "
        "-45.0% from the nadir of the full sum, 40 mm (2026-05-02), short of PD (>=+20%)."
    )


def test_pd_by_the_sum_of_a_subset_says_which_targets_were_summed():
    result = evaluate({BASE: {"a": 20, "b": 20}, F1: {"a": 48}}, as_of=F1)
    assert result.current.reasons == (
        "Sum of viable diameters 48 mm is 20.0% above the nadir of 40 mm (2026-05-02) (PD at >=20%).",
        f"Sum over the 1 of 2 targets measured on 2026-07-01 ({bs('b')} not measured), against the nadir "
        "of the full target sum.",
    )


def test_pd_by_the_sum_of_every_target_adds_no_subset_note():
    result = evaluate({BASE: {"a": 20}, F1: {"a": 30}}, as_of=F1)
    assert result.current.reasons == ("Sum of viable diameters 30 mm is 50.0% above the nadir of 20 mm (2026-05-02) (PD at >=20%).",)


def test_pd_by_a_new_lesion_gives_the_targets_change_for_context():
    result = evaluate({BASE: {"a": 20}, F2: {"a": 18, "c": 12}}, as_of=F2)
    assert result.current.reasons == (
        f"New lesion {bs('c')} first seen 2026-09-29, viable 12 mm (>= 10 mm): PD.",
        "Targets measured on 2026-09-29: sum 18 mm, -10.0% from baseline 20 mm, -10.0% from the nadir of 20 mm.",
    )


def test_pd_by_new_spread_with_a_target_missing_gives_the_subset_context_without_a_nadir_change():
    result = evaluate({BASE: {"a": 20, "b": 20}, F1: {"a": 0, "b": 0}, F2: {"a": 0, "z": 15}},
                      organs={"z": "lung"}, as_of=F2)
    assert result.category == "PD"
    assert result.current.reasons == (
        f"New lesion {bs('z')} outside the liver (lung), first seen 2026-09-29, viable 15 mm: new extrahepatic spread (PD).",
        "Targets measured on 2026-09-29: sum 0 mm, -100.0% from baseline 20 mm.",
        f"Target(s) {bs('b')} not measured on 2026-09-29: not evaluable (NE); the 1 measured sum to 0 mm, not above "
        "the nadir of 0 mm.",
    )


def test_no_measurable_target_is_explained():
    result = evaluate({BASE: {"a": 5}, F1: {"a": 5}}, as_of=F1)
    assert result.category is None
    assert result.current.reasons == (
        f"Non-target lesions (viable diameters since baseline): {bs('a')} 5 mm (2026-05-02), 5 mm (2026-07-01).",
        "No measurable target lesion (>= 10 mm viable) at baseline 2026-05-02, and no progression: no mRECIST category.",
    )


def test_the_baseline_reason_lists_the_targets():
    result = evaluate({BASE: {"a": 20, "b": 12.5}, F1: {"a": 20, "b": 12.5}}, as_of=F1)
    assert result.reasons[0] == BASELINE_REASON + f"2 target(s): {bs('a')} 20 mm, {bs('b')} 12.5 mm; sum 32.5 mm."
    assert mrecist_json(result)["baseline"]["sum_mm"] == 32.5
    assert mrecist_json(result)["baseline"]["targets"][0]["diameter_mm"] == 20


def test_an_unusable_reading_does_not_drop_the_readings_after_it():
    readings = [lesion("a", BASE, float("nan")), lesion("b", BASE, 20), lesion("b", F1, 10)]
    result = evaluate_mrecist(readings, treatment_start=START, as_of=F1, criteria=CRITERIA)
    assert (result.category, [t.lesion for t in result.baseline.targets]) == ("PR", [bs("b")])
    assert any("has no usable diameter; not used." in r for r in result.reasons)


def test_select_targets_sets_an_unusable_reading_aside_and_cites_each_target():
    targets = select_targets([lesion("a", BASE, float("nan")), lesion("b", BASE, 20)], CRITERIA)
    assert [(t.lesion, t.ref) for t in targets] == [(bs("b"), "Observation/size-b-20260502")]


def test_the_baseline_cites_its_targets_and_gives_whole_sums_as_integers():
    result = evaluate({BASE: {"a": 20, "b": 15}, F1: {"a": 20, "b": 15}}, as_of=F1)
    assert result.baseline.evidence == ("Observation/size-a-20260502", "Observation/size-b-20260502")
    data = mrecist_json(result)
    assert type(data["baseline"]["sum_mm"]) is int and data["baseline"]["sum_mm"] == 35
    assert type(data["current"]["sum_mm"]) is int


def test_a_change_that_rounds_to_zero_is_reported_as_plus_zero():
    result = evaluate({BASE: {"a": 25}, F1: {"a": 24.99}}, as_of=F1)
    pct = result.current.change_from_baseline_pct
    assert pct == 0.0 and math.copysign(1, pct) == 1


def test_no_progression_has_no_first_progression():
    assert evaluate({BASE: {"a": 20}, F1: {"a": 20}}, as_of=F1).first_progression() is None


def test_with_no_target_measured_there_is_no_baseline_sum_of_the_measured_targets():
    result = evaluate({BASE: {"a": 20}, F1: {"x": 5}}, as_of=F1)
    assert (result.current.sum_mm, result.current.baseline_sum_mm, result.current.nadir) == (None, None, None)


def test_the_result_dict_without_follow_up_has_no_current_values():
    data = mrecist_json(evaluate({BASE: {"a": 20}}))
    assert data["baseline"]["date"] == "2026-05-02"
    assert (data["current"], data["nadir"], data["target_response"], data["non_target_response"]) == (None, None, None, None)
    assert (data["new_lesions"], data["new_lesions_below_threshold"], data["timeline"]) == ([], [], [])


def test_the_result_dict_with_follow_up_gives_the_current_responses():
    data = mrecist_json(evaluate({BASE: {"a": 20}, F1: {"a": 0, "n": 5}}, as_of=F1))
    assert (data["target_response"], data["non_target_response"]) == ("CR", "non-CR/non-PD")
    assert data["new_lesions_below_threshold"] == [bs("n")]
    assert data["timeline"][0]["nadir"] == {"date": "2026-05-02", "sum_mm": 20}
    assert mrecist_json(evaluate({BASE: {"a": 20}}))["baseline"] is not None
    assert mrecist_json(evaluate({F1: {"a": 20}}))["baseline"] is None


def test_malformed_mrecist_criteria_are_named_in_the_error():
    with pytest.raises(KnowledgeError, match="malformed 'mrecist' group"):
        MrecistCriteria.from_dict({"mrecist": {"citation": "c"}})


def test_a_new_liver_lesion_of_10_mm_is_named_as_the_progression():
    result = evaluate({BASE: {"a": 20}, F1: {"a": 20, "n": 12}}, as_of=F1)
    assert result.current.progression == ("new_lesion",)


def test_recorded_non_target_progressions_are_named_in_date_order():
    records = [RecordedProgression(F1, "Observation/late"), RecordedProgression(date(2026, 6, 1), "Observation/early")]
    result = evaluate({BASE: {"a": 20}, F1: {"a": 20}}, progression=records, as_of=F1)
    assert result.current.progression == ("non_target_progression",)
    assert result.current.reasons[:2] == (
        "Recorded on 2026-06-01 (Observation/early): unequivocal progression of non-target lesions (PD).",
        "Recorded on 2026-07-01 (Observation/late): unequivocal progression of non-target lesions (PD).",
    )


def test_a_lesion_first_seen_outside_the_liver_stays_outside_when_a_later_reading_has_no_site():
    readings = [lesion("a", BASE, 20), lesion("a", F1, 20), lesion("a", F2, 20),
                lesion("z", F1, 15, organ="lung"), lesion("z", F2, 15, organ=None)]
    result = evaluate_mrecist(readings, treatment_start=START, as_of=F2, criteria=CRITERIA)
    assert result.current.progression == ("new_extrahepatic_spread",)


def test_an_unusable_reading_after_the_assessment_date_is_not_mentioned():
    readings = [lesion("a", BASE, 20), lesion("a", F1, 20), lesion("a", F2, float("nan"))]
    result = evaluate_mrecist(readings, treatment_start=START, as_of=F1, criteria=CRITERIA)
    assert not any("no usable diameter" in r for r in result.reasons)


@pytest.mark.parametrize(("current", "pct"), [(40.1, 0.3), (39.9, -0.3), (40.02, 0.1), (39.98, -0.1)])
def test_percentages_round_half_away_from_zero(current, pct):
    result = evaluate({BASE: {"a": 40}, F1: {"a": current}}, as_of=F1)
    assert result.current.change_from_baseline_pct == pct


def test_every_result_carries_its_dates_citation_and_evidence():
    for table in ({F1: {"a": 20}}, {BASE: {"a": 20}}, {BASE: {"a": 20}, F1: {"a": 20}}):
        result = evaluate(table)
        assert (result.as_of, result.treatment_start, result.citation) == (AS_OF, START, CRITERIA.citation)
    assert evaluate({BASE: {"a": 20}}).evidence == ("Observation/size-a-20260502",)
    measured = evaluate({BASE: {"a": 20, "b": 20}, F1: {"a": 20, "b": 20}}, as_of=F1).current
    assert (measured.targets_measured, measured.baseline_sum_mm) == ((bs("a"), bs("b")), 40)


def test_the_timeline_and_snapshot_helpers_pass_conditions_and_recorded_progression_on():
    readings = scans({BASE: {"a": 20}, F1: {"a": 20}})
    pvtt = condition("portal_vein_tumour_thrombus", onset=date(2026, 6, 1))
    record = RecordedProgression(date(2026, 6, 1), "Observation/ntp")
    by_condition = mrecist_timeline(readings, treatment_start=START, as_of=F1, criteria=CRITERIA, conditions=[pvtt])
    by_record = mrecist_timeline(readings, treatment_start=START, as_of=F1, criteria=CRITERIA, non_target_progression=[record])
    assert (by_condition[-1].category, by_record[-1].category) == ("PD", "PD")
    snap = make_snapshot(lesions=readings, conditions=[pvtt])
    assert mrecist_for_snapshot(snap, treatment_start=START, as_of=F1, criteria=CRITERIA).category == "PD"
    snap = make_snapshot(lesions=readings)
    assert mrecist_for_snapshot(snap, treatment_start=START, as_of=F1, criteria=CRITERIA,
                                non_target_progression=[record]).category == "PD"


def test_no_imaging_at_all_gives_no_baseline_without_naming_a_later_image():
    result = evaluate_mrecist([], treatment_start=START, as_of=AS_OF, criteria=CRITERIA)
    assert (result.category, result.baseline) == (None, None)
    assert result.reasons == ("No baseline: no tumour imaging on or before the treatment start 2026-05-05.",)


def test_the_baseline_keeps_the_treatment_start_it_was_chosen_for():
    result = evaluate({BASE: {"a": 20}, F1: {"a": 20}}, as_of=F1)
    assert (result.baseline.date, result.baseline.treatment_start) == (BASE, START)
