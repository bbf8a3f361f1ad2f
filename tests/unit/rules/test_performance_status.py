"""Performance status: 90-day window, most recent scale decides, no invented conversions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.performance_status import (
    PerformanceStatusCriteria,
    approximate_equivalent,
    ecog_range_for_karnofsky,
    karnofsky_range_for_ecog,
    performance_status_at,
)
from service.render.clinical_json import performance_status_json
from tests.unit.rules.factories import make_snapshot, measurement, response_criteria, thresholds, unusable

ANCHOR = date(2026, 11, 28)
MAX_AGE = int(thresholds()["freshness"]["performance_status_max_age_days"])
CRITERIA = response_criteria()


def status_of(*measurements, unusable_results=(), anchor=ANCHOR):
    snapshot = make_snapshot(measurements=measurements, unusable=unusable_results)
    return performance_status_at(snapshot, anchor, max_age_days=MAX_AGE, criteria=CRITERIA)


def test_the_window_is_ninety_days_as_in_the_thresholds_file():
    assert MAX_AGE == 90


@pytest.mark.parametrize(
    ("age_days", "counts"),
    [(0, True), (1, True), (89, True), (90, True), (91, False), (120, False)],
)
def test_an_ecog_counts_up_to_90_days_before_the_anchor_inclusive(age_days, counts):
    ps = status_of(measurement("ecog", 1, ANCHOR - timedelta(days=age_days)))
    assert (ps.ecog == 1) is counts
    assert ps.known is counts
    if not counts:
        assert ps.source is None and ps.date is None and ps.evidence == ()


@pytest.mark.parametrize(("age_days", "counts"), [(90, True), (91, False)])
def test_a_karnofsky_counts_up_to_90_days_before_the_anchor_inclusive(age_days, counts):
    ps = status_of(measurement("karnofsky", 80, ANCHOR - timedelta(days=age_days)))
    assert (ps.karnofsky == 80) is counts


def test_a_score_after_the_anchor_date_is_not_used():
    ps = status_of(measurement("ecog", 0, ANCHOR + timedelta(days=1)))
    assert ps.source is None
    assert ps.reasons[0] == f"No ECOG or Karnofsky recorded on or before {ANCHOR.isoformat()}."


def test_a_more_recent_karnofsky_decides_and_ecog_is_reported_as_null():
    ps = status_of(
        measurement("ecog", 2, date(2026, 10, 1)),
        measurement("karnofsky", 80, date(2026, 11, 20)),
    )
    assert (ps.source, ps.karnofsky, ps.ecog, ps.date) == ("karnofsky", 80, None, date(2026, 11, 20))
    assert ps.evidence == ("Observation/karnofsky-20261120-80",)
    assert performance_status_json(ps)["ecog"] is None


def test_a_more_recent_ecog_decides_and_karnofsky_is_reported_as_null():
    ps = status_of(
        measurement("karnofsky", 90, date(2026, 10, 1)),
        measurement("ecog", 1, date(2026, 11, 23)),
    )
    assert (ps.source, ps.ecog, ps.karnofsky, ps.date) == ("ecog", 1, None, date(2026, 11, 23))
    assert performance_status_json(ps) == {
        "ecog": 1,
        "karnofsky": None,
        "date": "2026-11-23",
        "source": "ecog",
        "reasons": list(ps.reasons),
        "evidence": ["Observation/ecog-20261123-1"],
        "citation": ps.citation,
    }


def test_the_latest_of_several_ecog_scores_decides():
    ps = status_of(
        measurement("ecog", 0, date(2026, 9, 1)),
        measurement("ecog", 2, date(2026, 11, 1)),
        measurement("ecog", 1, date(2026, 10, 1)),
    )
    assert ps.ecog == 2


def test_a_fresh_karnofsky_decides_and_a_stale_ecog_is_not_reported():
    ps = status_of(
        measurement("karnofsky", 70, date(2026, 9, 1)),
        measurement("ecog", 0, date(2026, 8, 1)),
    )
    assert (ps.source, ps.karnofsky, ps.ecog) == ("karnofsky", 70, None)


def test_both_scales_on_the_same_day_are_both_reported_with_karnofsky_as_the_source():
    day = date(2026, 11, 1)
    ps = status_of(measurement("ecog", 1, day), measurement("karnofsky", 80, day))
    assert (ps.ecog, ps.karnofsky, ps.source, ps.date) == (1, 80, "karnofsky", day)


def test_no_score_in_the_window_says_which_was_the_latest():
    ps = status_of(measurement("ecog", 1, date(2026, 6, 1)))
    assert ps.source is None
    assert ps.reasons[0] == "No ECOG or Karnofsky within 90 days before 2026-11-28 (latest ECOG 2026-06-01)."


def test_no_score_at_all_is_unknown_with_a_reason():
    ps = status_of()
    assert (ps.ecog, ps.karnofsky, ps.date, ps.source) == (None, None, None, None)
    assert ps.reasons == ("No ECOG or Karnofsky recorded on or before 2026-11-28.",)
    assert performance_status_json(ps)["date"] is None
    assert ps.citation


@pytest.mark.parametrize(("concept", "value"), [("ecog", 6), ("ecog", 1.5), ("ecog", -1), ("karnofsky", 110)])
def test_a_value_outside_its_scale_is_not_used_and_is_explained(concept, value):
    ps = status_of(measurement(concept, value, date(2026, 11, 1)))
    assert ps.source is None
    assert any("not a whole number" in r for r in ps.reasons)


def test_an_unusable_score_is_reported_in_the_reasons():
    ps = status_of(unusable_results=[unusable("karnofsky", date(2026, 11, 1), "no value")])
    assert ps.source is None
    assert any("could not be used: no value" in r for r in ps.reasons)


@pytest.mark.parametrize(
    ("ecog", "band"),
    [(0, (90, 100)), (1, (70, 80)), (2, (50, 60)), (3, (30, 40)), (4, (10, 20)), (5, (0, 0)), (6, None)],
)
def test_ecog_maps_to_the_dossiers_approximate_karnofsky_band(ecog, band):
    assert karnofsky_range_for_ecog(ecog, CRITERIA) == band


@pytest.mark.parametrize(
    ("karnofsky", "grades"),
    [(100, (0, 0)), (80, (1, 1)), (85, (0, 1)), (65, (1, 2)), (0, (5, 5)), (5, (4, 5)), (101, None)],
)
def test_karnofsky_maps_to_the_neighbouring_ecog_grades(karnofsky, grades):
    assert ecog_range_for_karnofsky(karnofsky, CRITERIA) == grades


def test_the_equivalent_is_offered_as_a_sentence_for_warnings_only():
    ps = status_of(measurement("ecog", 1, date(2026, 11, 1)))
    text = approximate_equivalent(ps, PerformanceStatusCriteria.from_dict(CRITERIA))
    assert text.startswith("ECOG 1 corresponds approximately to Karnofsky 70-80")
    assert ps.karnofsky is None
    assert approximate_equivalent(status_of(), CRITERIA) is None
