"""Sorafenib eligibility by the study's criteria: each criterion at its boundary, and how they combine."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.assessment import assess
from rules.eligibility import combine
from rules.findings import Status, finding
from tests.unit.rules.factories import condition, make_snapshot, measurement, patient, procedure

AS_OF = date(2026, 11, 28)


def fresh_labs(bilirubin: float = 1.0, albumin: float = 4.0, inr: float = 1.0):
    return [
        measurement("bilirubin", bilirubin, AS_OF - timedelta(days=3)),
        measurement("albumin", albumin, AS_OF - timedelta(days=3)),
        measurement("inr", inr, AS_OF - timedelta(days=3)),
    ]


def criterion(result, cid):
    return next(c for c in result.sorafenib_eligibility.criteria if c.id == cid)


def run(knowledge, **kw):
    kw.setdefault("measurements", fresh_labs() + [measurement("karnofsky", 90, AS_OF - timedelta(days=5))])
    kw.setdefault("conditions", [condition("hcc", onset=date(2024, 1, 1))])
    return assess(make_snapshot(**kw), AS_OF, knowledge)


@pytest.mark.parametrize(("birth", "status"), [(date(2008, 11, 29), Status.NOT_MET), (date(2008, 11, 28), Status.MET)])
def test_age_17_is_excluded_and_18_on_the_birthday_is_included(knowledge, birth, status):
    result = run(knowledge, patient=patient(birth_date=birth))
    assert criterion(result, "age").status is status


def test_unknown_birth_date_leaves_age_unknown(knowledge):
    assert criterion(run(knowledge, patient=patient(birth_date=None)), "age").status is Status.UNKNOWN


@pytest.mark.parametrize(("bilirubin", "status"), [(3.0, Status.NOT_MET), (3.1, Status.MET)])
def test_bilirubin_above_3_mg_dl_excludes_and_3_0_does_not(knowledge, bilirubin, status):
    ms = fresh_labs(bilirubin=bilirubin) + [measurement("karnofsky", 90, AS_OF)]
    assert criterion(run(knowledge, measurements=ms), "bilirubin_above_3").status is status


def test_stale_bilirubin_leaves_the_exclusion_unknown(knowledge):
    ms = [measurement("bilirubin", 1.0, AS_OF - timedelta(days=31)), measurement("karnofsky", 90, AS_OF)]
    assert criterion(run(knowledge, measurements=ms), "bilirubin_above_3").status is Status.UNKNOWN


@pytest.mark.parametrize(("kps", "status"), [(70, Status.MET), (80, Status.NOT_MET)])
def test_karnofsky_70_excludes_and_80_does_not(knowledge, kps, status):
    ms = fresh_labs() + [measurement("karnofsky", kps, AS_OF - timedelta(days=1))]
    assert criterion(run(knowledge, measurements=ms), "karnofsky_above_70").status is status


@pytest.mark.parametrize(("ecog", "status", "warned"), [(1, Status.NOT_MET, True), (2, Status.NOT_MET, True), (3, Status.MET, False), (0, Status.NOT_MET, False)])
def test_ecog_alone_3_excludes_and_1_2_are_allowed_with_a_warning(knowledge, ecog, status, warned):
    ms = fresh_labs() + [measurement("ecog", ecog, AS_OF - timedelta(days=1))]
    result = run(knowledge, measurements=ms)
    assert criterion(result, "karnofsky_above_70").status is status
    assert any("Only ECOG" in w for w in result.sorafenib_eligibility.warnings) is warned


def test_a_later_karnofsky_decides_over_an_earlier_ecog_3(knowledge):
    ms = fresh_labs() + [
        measurement("ecog", 3, AS_OF - timedelta(days=20)),
        measurement("karnofsky", 80, AS_OF - timedelta(days=2)),
    ]
    assert criterion(run(knowledge, measurements=ms), "karnofsky_above_70").status is Status.NOT_MET


def test_a_later_ecog_3_decides_over_an_earlier_karnofsky_80(knowledge):
    ms = fresh_labs() + [
        measurement("karnofsky", 80, AS_OF - timedelta(days=20)),
        measurement("ecog", 3, AS_OF - timedelta(days=2)),
    ]
    assert criterion(run(knowledge, measurements=ms), "karnofsky_above_70").status is Status.MET


def test_no_performance_status_within_90_days_is_unknown(knowledge):
    ms = fresh_labs() + [measurement("karnofsky", 90, AS_OF - timedelta(days=91))]
    assert criterion(run(knowledge, measurements=ms), "karnofsky_above_70").status is Status.UNKNOWN


@pytest.mark.parametrize(
    ("labs", "status", "warned"),
    [
        (fresh_labs(), Status.MET, False),
        (fresh_labs(bilirubin=2.5, albumin=3.0), Status.MET, True),  # B (8)
        (fresh_labs(bilirubin=3.5, albumin=2.5, inr=2.0), Status.NOT_MET, False),  # C (10)
        (fresh_labs()[:2], Status.UNKNOWN, False),  # INR missing, A or B
    ],
)
def test_child_pugh_a_met_b_met_with_caution_c_not_met_incomplete_unknown(knowledge, labs, status, warned):
    result = run(knowledge, measurements=labs + [measurement("karnofsky", 90, AS_OF)])
    assert criterion(result, "child_pugh_a_or_b").status is status
    assert any("Child-Pugh B" in w for w in result.sorafenib_eligibility.warnings) is warned


@pytest.mark.parametrize("concept", ["resection", "transplant"])
def test_prior_resection_or_transplant_excludes(knowledge, concept):
    result = run(knowledge, procedures=[procedure(concept, date(2020, 5, 1))])
    c = criterion(result, "prior_resection_or_transplant")
    assert c.status is Status.MET and c.evidence
    assert result.sorafenib_eligibility.status == "ineligible"


def test_no_recorded_surgery_is_assumed_none_and_said_so(knowledge):
    result = run(knowledge)
    assert criterion(result, "prior_resection_or_transplant").status is Status.NOT_MET
    assert "No liver resection or transplant recorded: assumed none." in result.assumptions


def test_a_not_done_resection_does_not_exclude(knowledge):
    result = run(knowledge, procedures=[procedure("resection", date(2020, 5, 1), status="not-done")])
    assert criterion(result, "prior_resection_or_transplant").status is Status.NOT_MET


def _f(status, kind):
    return finding(status, ["r"], citation="c", id="x", kind=kind)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([(Status.MET, "inclusion"), (Status.NOT_MET, "exclusion")], "eligible"),
        ([(Status.NOT_MET, "inclusion"), (Status.UNKNOWN, "exclusion")], "ineligible"),
        ([(Status.MET, "inclusion"), (Status.MET, "exclusion")], "ineligible"),
        ([(Status.UNKNOWN, "inclusion"), (Status.NOT_MET, "exclusion")], "indeterminate"),
        ([(Status.MET, "inclusion"), (Status.UNKNOWN, "exclusion")], "indeterminate"),
    ],
)
def test_an_unmet_inclusion_or_applying_exclusion_wins_over_unknowns(statuses, expected):
    assert combine(tuple(_f(s, k) for s, k in statuses)) == expected


def test_no_hcc_diagnosis_is_reported_not_met(knowledge):
    result = run(knowledge, conditions=[])
    assert result.hcc_diagnosis.status is Status.NOT_MET and not result.has_hcc


def test_a_provisional_or_resolved_hcc_diagnosis_does_not_count(knowledge):
    provisional = condition("hcc", onset=date(2024, 1, 1), verification_status="provisional")
    resolved = condition("hcc", onset=date(2024, 1, 1), clinical_status="resolved", ref="Condition/r")
    assert not run(knowledge, conditions=[provisional]).has_hcc
    assert not run(knowledge, conditions=[resolved]).has_hcc
