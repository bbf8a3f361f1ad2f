"""The shipped pseudo patients reproduce the published figures within the issue's targets.

Checked against an independent fit: the shipped pseudo patients are refitted with lifelines here,
so the tests do not trust the numbers the build wrote next to them.
"""

from __future__ import annotations

from collections import Counter

import pytest

lifelines = pytest.importorskip("lifelines")
from lifelines import KaplanMeierFitter  # noqa: E402
from lifelines.statistics import logrank_test  # noqa: E402

COMBINATION, MONOTHERAPY, OVERALL = "sorafenib-plus-tace", "sorafenib-alone", "overall"
ALL_ARMS = (COMBINATION, MONOTHERAPY, OVERALL)


def pseudo_patients(cohort, arm_id):
    return [(row["month"], row["died"]) for row in cohort.arm(arm_id).document["pseudo_ipd"]]


def fitted(cohort, arm_id) -> KaplanMeierFitter:
    patients = pseudo_patients(cohort, arm_id)
    return KaplanMeierFitter().fit([month for month, _ in patients], [died for _, died in patients])


@pytest.mark.parametrize("arm_id", ALL_ARMS)
def test_every_landmark_is_within_three_percentage_points(shipped_cohort, published_arms, cohort_definition, arm_id):
    tolerance = cohort_definition["reconstruction"]["tolerances"]["survival_percentage_points"] / 100
    assert tolerance == pytest.approx(0.03)
    fitter = fitted(shipped_cohort, arm_id)
    for point in published_arms[arm_id]["published"]["survival_percent"]:
        reconstructed = float(fitter.survival_function_at_times(point["month"]).iloc[0])
        assert abs(reconstructed - point["percent"] / 100) <= tolerance, (arm_id, point["month"], reconstructed)


@pytest.mark.parametrize("arm_id", [MONOTHERAPY, OVERALL])
def test_every_reachable_median_is_within_one_month(shipped_cohort, published_arms, arm_id):
    published = published_arms[arm_id]["published"]["median_os_months"]
    assert abs(fitted(shipped_cohort, arm_id).median_survival_time_ - published) <= 1.0


def test_combination_median_is_the_best_reachable_24_months_not_the_published_25(shipped_cohort, published_arms):
    published = published_arms[COMBINATION]["published"]
    survival_24 = next(p["percent"] for p in published["survival_percent"] if p["month"] == 24)
    assert published["median_os_months"] == 25 and survival_24 < 50  # the paper contradicts itself
    assert fitted(shipped_cohort, COMBINATION).median_survival_time_ == 24.0
    median_check = next(c for c in shipped_cohort.arm(COMBINATION).document["checks"] if c["id"] == "median-os")
    assert "inconsistency 9" in median_check["note"]
    assert any("25 months" in caveat for caveat in shipped_cohort.arm(COMBINATION).document["caveats"])


@pytest.mark.parametrize("arm_id", ALL_ARMS)
def test_medians_are_unambiguous_the_curve_steps_across_fifty_percent(shipped_cohort, arm_id):
    survival = fitted(shipped_cohort, arm_id).survival_function_.iloc[:, 0]
    assert not any(abs(value - 0.5) < 1e-9 for value in survival), (
        "a plateau at 50% makes the median convention-dependent"
    )


def test_arms_differ_by_log_rank_below_001_near_the_published_0002(shipped_cohort):
    combination, monotherapy = (pseudo_patients(shipped_cohort, arm) for arm in (COMBINATION, MONOTHERAPY))
    result = logrank_test(
        [m for m, _ in combination],
        [m for m, _ in monotherapy],
        event_observed_A=[d for _, d in combination],
        event_observed_B=[d for _, d in monotherapy],
    )
    assert result.p_value < 0.01
    assert result.p_value == pytest.approx(0.002, rel=0.25)
    assert shipped_cohort.document["logrank"]["p_value"] == pytest.approx(result.p_value, rel=1e-3)


def test_overall_arm_is_the_union_of_the_two_arms(shipped_cohort):
    union = Counter(pseudo_patients(shipped_cohort, COMBINATION)) + Counter(
        pseudo_patients(shipped_cohort, MONOTHERAPY)
    )
    assert Counter(pseudo_patients(shipped_cohort, OVERALL)) == union


def test_cohort_constraints_hold_deaths_follow_up_censoring_and_grid(shipped_cohort, cohort_definition):
    facts, settings = cohort_definition["cohort_facts"], cohort_definition["reconstruction"]
    patients = pseudo_patients(shipped_cohort, OVERALL)
    deaths = [month for month, died in patients if died]
    censored = [month for month, died in patients if not died]
    assert (
        (len(patients), len(deaths), len(censored)) == (34, facts["deaths"], facts["alive_at_study_end"]) == (34, 30, 4)
    )
    assert min(month for month, _ in patients) == facts["follow_up_months"]["min"] == 3
    assert max(month for month, _ in patients) == facts["follow_up_months"]["max"] == 49
    assert min(deaths) >= settings["earliest_death_months"] == 3  # inclusion: >= 3 months of sorafenib
    assert min(censored) >= settings["earliest_censoring_months"] == 11  # censoring only at study end
    assert all((month / settings["time_grid_months"]).is_integer() for month, _ in patients)


@pytest.mark.parametrize("arm_id", ALL_ARMS)
def test_served_figures_equal_an_independent_lifelines_fit(shipped_cohort, arm_id):
    arm = shipped_cohort.arm(arm_id)
    fitter = fitted(shipped_cohort, arm_id)
    lower, upper = fitter.confidence_interval_.columns
    for point in arm.document["survival"]:
        month = point["month"]
        at = fitter.survival_function_.index[fitter.survival_function_.index <= month].max()
        assert point["estimate"] == pytest.approx(fitter.survival_function_.loc[at].iloc[0], abs=1e-4)
        assert point["ci_lower"] == pytest.approx(fitter.confidence_interval_.loc[at, lower], abs=1e-4)
        assert point["ci_upper"] == pytest.approx(fitter.confidence_interval_.loc[at, upper], abs=1e-4)
    assert arm.median_os_months.estimate == fitter.median_survival_time_
    assert (arm.events, arm.censored) == (
        sum(fitter.event_observed),
        len(fitter.event_observed) - sum(fitter.event_observed),
    )


def test_published_survival_is_served_in_the_same_shape_as_fractions(shipped_cohort):
    published = shipped_cohort.arm(COMBINATION).document["published"]
    assert [(p["month"], p["estimate"]) for p in published["survival"]] == [(6, 0.95), (12, 0.77), (24, 0.45)]
    assert published["median_os_months"] == {"estimate": 25, "ci_lower": None, "ci_upper": None}


@pytest.mark.parametrize("arm_id", ALL_ARMS)
def test_time_to_progression_is_an_illustrative_curve_with_the_published_median(shipped_cohort, published_arms, arm_id):
    ttp = shipped_cohort.arm(arm_id).document["ttp_illustrative"]
    median = published_arms[arm_id]["published"]["median_ttp_months"]
    assert ttp["status"] == "illustrative" and ttp["median_months"] == median
    at_median = next(point["estimate"] for point in ttp["curve"] if point["month"] == median)
    assert at_median == pytest.approx(0.5, abs=1e-4)
    assert "illustrative" in ttp["note"].lower()


@pytest.mark.parametrize("arm_id", ALL_ARMS)
def test_response_and_adverse_event_rates_are_the_published_counts_over_n(shipped_cohort, published_arms, arm_id):
    arm = shipped_cohort.arm(arm_id).document
    published = published_arms[arm_id]["published"]
    for category in arm["response"]["categories"]:
        assert category["count"] == published["response"]["counts"][category["category"]]
        assert category["rate"] == pytest.approx(category["count"] / arm["n"], abs=1e-4)
    for event in arm["adverse_events"]:
        assert event["any_grade"]["rate"] == pytest.approx(event["any_grade"]["count"] / arm["n"], abs=1e-4)


def test_biloma_is_reported_for_the_combination_arm(shipped_cohort):
    events = {event["event"]: event for event in shipped_cohort.arm(COMBINATION).document["adverse_events"]}
    biloma = next(event for name, event in events.items() if name.startswith("Biloma"))
    assert (biloma["any_grade"]["count"], biloma["any_grade"]["n"]) == (3, 22)


def test_only_the_median_follow_up_is_outside_target_and_it_is_explained(shipped_cohort):
    outside = [
        (arm.arm_id, check["id"])
        for arm in shipped_cohort.arms.values()
        for check in arm.document["checks"]
        if check["within_target"] == "no"
    ]
    outside += [("between arms", c["id"]) for c in shipped_cohort.document["checks"] if c["within_target"] == "no"]
    assert outside == [(OVERALL, "follow-up-median")]
    note = next(c for c in shipped_cohort.arm(OVERALL).document["checks"] if c["id"] == "follow-up-median")["note"]
    assert "inconsistenc" in note
