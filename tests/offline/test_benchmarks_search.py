"""The search's own arithmetic agrees with lifelines, its input is validated, and it is deterministic."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from offline.benchmarks.pseudo_ipd import (
    ArmState,
    CohortDefinitionError,
    PublishedCurve,
    SearchProblem,
    kaplan_meier_steps,
    logrank_p_value,
    median_agrees_with_landmarks,
    median_ticks,
    reconstruct,
    survival_at_tick,
)

lifelines = pytest.importorskip("lifelines")
from lifelines import KaplanMeierFitter  # noqa: E402
from lifelines.statistics import logrank_test  # noqa: E402

GRID_MONTHS = 0.5

patients_on_grid = st.lists(st.tuples(st.integers(min_value=1, max_value=40), st.booleans()), min_size=2, max_size=16)


def as_state(patients) -> ArmState:
    return ArmState(
        death_ticks=tuple(tick for tick, died in patients if died),
        censor_ticks=tuple(tick for tick, died in patients if not died),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patients_on_grid)
def test_kaplan_meier_steps_and_median_match_lifelines(patients):
    assume(any(died for _, died in patients))
    state = as_state(patients)
    steps = kaplan_meier_steps(state.death_ticks, state.censor_ticks)
    fitter = KaplanMeierFitter().fit([tick * GRID_MONTHS for tick, _ in patients], [died for _, died in patients])
    for tick in range(0, 42):
        expected = float(fitter.survival_function_at_times(tick * GRID_MONTHS).iloc[0])
        assert survival_at_tick(steps, tick) == pytest.approx(expected, abs=1e-12)
    at_or_below, below = median_ticks(steps)
    if at_or_below is not None and at_or_below == below:  # unambiguous: every convention agrees
        assert fitter.median_survival_time_ == at_or_below * GRID_MONTHS


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patients_on_grid, patients_on_grid)
def test_log_rank_p_matches_lifelines(first, second):
    assume(any(died for _, died in first + second))
    result = logrank_test(
        [tick * GRID_MONTHS for tick, _ in first],
        [tick * GRID_MONTHS for tick, _ in second],
        event_observed_A=[died for _, died in first],
        event_observed_B=[died for _, died in second],
    )
    assume(math.isfinite(result.p_value))
    assert logrank_p_value(as_state(first), as_state(second)) == pytest.approx(result.p_value, rel=1e-9, abs=1e-12)


def test_a_plateau_at_fifty_percent_is_reported_as_ambiguous():
    steps = kaplan_meier_steps([2, 4, 8, 10], [])  # S = 0.75, 0.5 (from tick 4 to 8), 0.25, 0
    assert median_ticks(steps) == (4, 8)


def test_published_curve_drops_a_median_that_contradicts_a_landmark(cohort_definition):
    problem = SearchProblem.from_cohort(cohort_definition)
    combination, monotherapy = problem.searched_arms
    assert not median_agrees_with_landmarks(combination)  # 25 months vs 45% at 24 months
    assert median_agrees_with_landmarks(monotherapy)
    curve = problem.published_curve(combination)
    assert (25.0, 0.5) not in curve.anchors
    assert curve.survival_at(24) == pytest.approx(0.45) and curve.survival_at(49) == 0.0
    assert curve.survival_at(3) == 1.0  # nobody dies before 3 months
    assert curve.month_at(0.45) == pytest.approx(24)


def test_published_curve_interpolates_linearly_between_anchors():
    curve = PublishedCurve(anchors=((0.0, 1.0), (10.0, 0.5), (20.0, 0.0)))
    assert curve.survival_at(5) == pytest.approx(0.75)
    assert curve.month_at(0.25) == pytest.approx(15)


def test_search_problem_reads_its_targets_from_the_cohort_file(cohort_definition):
    problem = SearchProblem.from_cohort(cohort_definition)
    assert [arm.arm_id for arm in problem.searched_arms] == ["sorafenib-plus-tace", "sorafenib-alone"]
    assert problem.union_arm is not None and problem.union_arm.n == 34
    assert problem.months(problem.earliest_censoring_ticks) == 11
    assert problem.survival_tolerance == pytest.approx(0.03)


def test_missing_figures_are_reported_by_name(cohort_definition):
    broken = copy.deepcopy(cohort_definition)
    del broken["cohort_facts"]["deaths"]
    with pytest.raises(CohortDefinitionError, match="deaths"):
        SearchProblem.from_cohort(broken)


def test_deaths_that_do_not_add_up_are_refused(cohort_definition):
    broken = copy.deepcopy(cohort_definition)
    broken["cohort_facts"]["deaths"] = 29
    with pytest.raises(CohortDefinitionError, match="cannot give 29 deaths"):
        SearchProblem.from_cohort(broken)


def test_times_off_the_grid_are_refused(cohort_definition):
    broken = copy.deepcopy(cohort_definition)
    broken["reconstruction"]["earliest_censoring_months"] = 11.25
    with pytest.raises(CohortDefinitionError, match="grid"):
        SearchProblem.from_cohort(broken)


def small_cohort(cohort_definition):
    """A quick variant of the real cohort: 6 + 4 patients, 1 alive, a 1-month grid, follow-up to 20 months."""
    cohort = copy.deepcopy(cohort_definition)
    cohort["cohort_facts"].update(deaths=9, alive_at_study_end=1, follow_up_months={"median": 7, "min": 3, "max": 20})
    settings_ = cohort["reconstruction"]
    settings_.update(time_grid_months=1, earliest_censoring_months=11)
    arms = {arm["id"]: arm for arm in cohort["arms"]}
    arms["sorafenib-plus-tace"].update(n=6)
    arms["sorafenib-alone"].update(n=4)
    arms["overall"].update(n=10)
    return cohort


def test_search_is_deterministic_and_honours_its_constraints(cohort_definition):
    problem = SearchProblem.from_cohort(small_cohort(cohort_definition))
    first, second = reconstruct(problem), reconstruct(problem)
    assert first.patients == second.patients and first.score == second.score
    overall = first.patients["overall"]
    assert sum(patient.died for patient in overall) == 9
    assert min(patient.months for patient in overall if patient.died) >= 3
    assert all(patient.months >= 11 for patient in overall if not patient.died)
    assert max(patient.months for patient in overall) <= 20
