"""Issue 17 (clinical core III): candidacy, BCLC, eligibility and recommendation as PRODUCT.md now fixes them.

Each test failed on the code before this change; each boundary is tested on both sides.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.assessment import assess
from rules.bclc import assess_bclc
from rules.candidacy import evaluate_tace_candidacy
from rules.child_pugh import ChildPugh
from rules.eligibility import bclc_b_at_first_tace
from rules.findings import Finding, Status, finding
from rules.knowledge import Knowledge
from rules.performance_status import PerformanceStatus
from rules.recommendation import recommend
from tests.unit.rules.factories import (
    condition,
    lesion,
    make_snapshot,
    measurement,
    medication,
    patient,
    procedure,
    response_criteria,
)

AS_OF = date(2026, 11, 28)
CRITERIA = response_criteria()
PVT = "portal_vein_tumour_thrombus"
MET_ = "extrahepatic_metastasis"


def days(n: int) -> timedelta:
    return timedelta(days=n)


def cp(klass: str | None = "A", anchor: date = AS_OF) -> ChildPugh:
    return ChildPugh(anchor=anchor, score=None, klass=klass, points={}, reasons=("cp",), cautions=(), citation="cp")


def candidacy(knowledge, *, lesions=None, conditions=(), procedures=(), klass="A"):
    snap = make_snapshot(
        lesions=[lesion("a", AS_OF - days(10), 30)] if lesions is None else lesions,
        measurements=[measurement("bilirubin", 1.0, AS_OF - days(3))],
        conditions=conditions,
        procedures=procedures,
    )
    return evaluate_tace_candidacy(snap, AS_OF, knowledge, child_pugh=cp(klass))


def with_overrides(knowledge, thresholds: dict) -> Knowledge:
    return Knowledge(knowledge.value_sets, knowledge.thresholds, {"thresholds": thresholds})


# -- 1. portal-vein thrombosis stops candidacy ----------------------------------------------------------


def test_a_recorded_portal_vein_thrombosis_makes_candidacy_not_met_with_the_main_trunk_to_confirm(knowledge):
    pvt = condition(PVT, onset=AS_OF - days(20), ref="Condition/pvt")
    result = candidacy(knowledge, conditions=[pvt])
    assert result.status is Status.NOT_MET
    assert result.finding.reasons[-1] == (
        "TACE contraindicated: portal-vein thrombosis (Condition/pvt): main portal trunk involvement not excluded: confirm."
    )
    assert "Condition/pvt" in result.finding.evidence
    assert "No TACE contraindication recorded." not in result.finding.reasons


@pytest.mark.parametrize(("onset", "status"), [(AS_OF, Status.NOT_MET), (AS_OF + days(1), Status.MET)])
def test_a_thrombus_counts_from_its_onset(knowledge, onset, status):
    assert candidacy(knowledge, conditions=[condition(PVT, onset=onset)]).status is status


def test_a_thrombosis_code_that_does_not_say_tumour_thrombus_says_tumour_vs_bland_to_confirm(knowledge):
    pvt = condition(PVT, onset=AS_OF - days(20), ref="Condition/pvt", specific=False)
    result = candidacy(knowledge, conditions=[pvt])
    assert result.status is Status.NOT_MET
    assert "tumour vs bland thrombus to confirm" in result.finding.reasons[-1]
    assert "main portal trunk involvement not excluded: confirm" in result.finding.reasons[-1]


def test_a_site_declared_branch_only_thrombus_does_not_stop_candidacy_but_still_stages_c(knowledge):
    site = with_overrides(knowledge, {"tace_candidacy": {"portal_vein_branch_only_concepts": ["portal_vein_branch_thrombus"]}})
    branch = condition("portal_vein_branch_thrombus", onset=AS_OF - days(20), ref="Condition/branch")
    result = candidacy(site, conditions=[branch])
    assert result.status is Status.MET
    assert result.to_confirm and "confined to a branch (Condition/branch)" in result.to_confirm[0]
    criteria = {**site.thresholds, **{k: v for k, v in CRITERIA.items() if k not in site.thresholds}}
    snap = make_snapshot(lesions=[lesion("a", AS_OF - days(10), 30)], conditions=[branch])
    bclc = assess_bclc(snap, as_of=AS_OF, first_tace=None, child_pugh_at_first_tace=None, ecog_at_first_tace=None,
                       child_pugh_now="A", ecog_now=0, criteria=criteria)
    assert bclc.current.stage == "C" and bclc.tumour_extent.stage == "C"


def test_bclc_and_the_recommendation_say_tumour_vs_bland_for_a_non_specific_thrombosis(knowledge):
    pvt = condition(PVT, onset=AS_OF - days(20), ref="Condition/pvt", specific=False)
    snap = make_snapshot(lesions=[lesion("a", AS_OF - days(10), 30)], conditions=[pvt])
    bclc = assess_bclc(snap, as_of=AS_OF, first_tace=None, child_pugh_at_first_tace=None, ecog_at_first_tace=None,
                       child_pugh_now="A", ecog_now=0, criteria=CRITERIA)
    assert bclc.current.stage == "C"
    assert any("tumour vs bland thrombus to confirm" in r for r in bclc.reasons)
    rec = run_recommend(knowledge, snap, tace_resistance=f(Status.NOT_MET))
    assert rec.code == "refer-mdt"
    assert any("vascular invasion (Condition/pvt; tumour vs bland thrombus to confirm)" in r for r in rec.reasons)


# -- 2. only liver tumour makes TACE possible ------------------------------------------------------------


def test_viable_tumour_outside_the_liver_does_not_make_tace_possible(knowledge):
    result = candidacy(knowledge, lesions=[lesion("a", AS_OF - days(10), 0), lesion("lung", AS_OF - days(10), 25, organ="lung")])
    assert result.status is Status.NOT_MET
    assert result.finding.reasons[0].startswith("No viable (arterially enhancing) liver tumour on the latest imaging")
    assert "Lesions outside the liver (BodyStructure/lung) do not count." in result.finding.reasons[0]


def test_viable_tumour_of_unknown_organ_only_leaves_candidacy_unknown(knowledge):
    result = candidacy(knowledge, lesions=[lesion("a", AS_OF - days(10), 0), lesion("x", AS_OF - days(10), 25, organ=None)])
    assert result.status is Status.UNKNOWN
    assert "unknown organ (BodyStructure/x)" in result.finding.reasons[0]
    with_liver = [lesion("a", AS_OF - days(10), 12), lesion("x", AS_OF - days(10), 25, organ=None)]
    assert candidacy(knowledge, lesions=with_liver).status is Status.MET


# -- 3. imaging at most 90 days old ----------------------------------------------------------------------


@pytest.mark.parametrize(("age", "status"), [(90, Status.MET), (91, Status.UNKNOWN), (700, Status.UNKNOWN)])
def test_candidacy_uses_imaging_at_most_90_days_old(knowledge, age, status):
    result = candidacy(knowledge, lesions=[lesion("a", AS_OF - days(age), 30)])
    assert result.status is status
    if status is Status.UNKNOWN:
        scan = (AS_OF - days(age)).isoformat()
        assert result.finding.reasons[0] == (
            f"Latest liver imaging ({scan}) is {age} days old, more than 90: "
            "whether viable liver tumour remains is unknown (new imaging needed)."
        )


def test_the_imaging_window_is_configurable(knowledge):
    site = with_overrides(knowledge, {"freshness": {"imaging_max_age_days": 120}})
    assert candidacy(site, lesions=[lesion("a", AS_OF - days(120), 30)]).status is Status.MET
    assert candidacy(site, lesions=[lesion("a", AS_OF - days(121), 30)]).status is Status.UNKNOWN


def multinodular(when: date) -> list:
    return [lesion(f"n{i}", when, 40) for i in range(4)]


def bclc(lesions, conditions=(), first_tace=None):
    snap = make_snapshot(lesions=lesions, conditions=conditions)
    return assess_bclc(snap, as_of=AS_OF, first_tace=first_tace, child_pugh_at_first_tace="A" if first_tace else None,
                       ecog_at_first_tace=0 if first_tace else None, child_pugh_now="A", ecog_now=0, criteria=CRITERIA)


@pytest.mark.parametrize(("age", "stage"), [(90, "B"), (91, None), (700, None)])
def test_current_bclc_uses_imaging_at_most_90_days_old(age, stage):
    result = bclc(multinodular(AS_OF - days(age)))
    assert (result.current.stage, result.tumour_extent.stage) == (stage, stage)
    if stage is None:
        assert any(f"is {age} days before {AS_OF.isoformat()}, more than 90: tumour burden unknown." in r for r in result.reasons)


FIRST = AS_OF - days(400)


@pytest.mark.parametrize(("age", "stage"), [(90, "B"), (91, None), (700, None)])
def test_bclc_at_the_first_tace_uses_imaging_at_most_90_days_before_it(age, stage):
    result = bclc(multinodular(FIRST - days(age)) + multinodular(AS_OF - days(5)), first_tace=FIRST)
    assert result.at_first_tace.stage == stage and result.tumour_extent_at_first_tace.stage == stage
    assert result.current.stage == "B"


# -- 4. a TACE not done after the last completed session: see test_candidacy_mutants (no recency window) --


def test_a_tace_refused_years_ago_after_the_last_session_still_stops_candidacy(knowledge):
    done = procedure("tace", AS_OF - days(1000), ref="Procedure/done")
    refused = procedure("tace", AS_OF - days(900), status="not-done", status_reason="refused", ref="Procedure/nd")
    result = candidacy(knowledge, procedures=[done, refused])
    assert result.status is Status.NOT_MET
    assert "TACE not done (refused; 2024-06-11, after the last completed session (2024-03-03))" in result.finding.reasons[-1]


# -- 5. multiple extrahepatic metastases = distinct sites ------------------------------------------------


def metastasis(ref: str, site: str | None) -> object:
    return condition(MET_, onset=AS_OF - days(40), ref=f"Condition/{ref}", site=site)


def test_two_records_of_one_site_are_not_multiple_metastases(knowledge):
    result = candidacy(knowledge, conditions=[metastasis("m1", "lung"), metastasis("m2", "Lung")])
    assert result.status is Status.MET


def test_metastases_with_no_recorded_site_leave_candidacy_unknown_and_say_so(knowledge):
    result = candidacy(knowledge, conditions=[metastasis("m1", None), metastasis("m2", None)])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons[-1] == (
        "Cannot exclude a contraindication: whether extrahepatic metastases involve 2 or more distinct sites "
        "(metastasis with no recorded site: Condition/m1, Condition/m2)."
    )
    one = candidacy(knowledge, conditions=[metastasis("m1", None)])
    assert one.status is Status.MET


def test_a_metastasis_and_a_viable_lesion_of_another_organ_are_two_sites(knowledge):
    lesions = [lesion("a", AS_OF - days(10), 30), lesion("b", AS_OF - days(10), 15, organ="bone")]
    result = candidacy(knowledge, lesions=lesions, conditions=[metastasis("m1", "lung")])
    assert result.status is Status.NOT_MET
    assert "multiple extrahepatic metastases (2 sites: bone (Observation/size-b-20261118), lung (Condition/m1))" in result.finding.reasons[-1]
    same = [lesion("a", AS_OF - days(10), 30), lesion("l", AS_OF - days(10), 15, organ="lung")]
    assert candidacy(knowledge, lesions=same, conditions=[metastasis("m1", "lung")]).status is Status.MET


def test_both_lungs_are_two_sites_and_a_lung_without_its_side_beside_one_is_unknown(knowledge):
    both = candidacy(knowledge, conditions=[metastasis("r", "right lung"), metastasis("l", "left lung")])
    assert both.status is Status.NOT_MET
    assert "multiple extrahepatic metastases (2 sites: left lung (Condition/l), right lung (Condition/r))" in both.finding.reasons[-1]
    maybe = candidacy(knowledge, conditions=[metastasis("r", "right lung"), metastasis("u", "lung")])
    assert maybe.status is Status.UNKNOWN
    assert "metastasis site recorded without its side: Condition/u; known sites: right lung (Condition/r)" in maybe.finding.reasons[-1]
    assert candidacy(knowledge, conditions=[metastasis("u", "lung"), metastasis("v", "lung")]).status is Status.MET


# -- 6. the recommendation table, rows 1-8 ---------------------------------------------------------------


def f(status: Status, *reasons: str) -> Finding:
    return finding(status, reasons or (f"{status.value} reason",), citation="c")


def ps(ecog: int | None = 0) -> PerformanceStatus:
    return PerformanceStatus(anchor=AS_OF, ecog=ecog, karnofsky=None, date=AS_OF if ecog is not None else None,
                             source="ecog" if ecog is not None else None, evidence=(), reasons=("ps reason",),
                             citation="ps", max_age_days=90)


def run_recommend(knowledge, snapshot=None, **kw):
    args = dict(has_hcc=f(Status.MET), tace_sessions_recorded=2, on_sorafenib=False, tace_resistance=f(Status.MET),
                eligibility_status="eligible", eligibility_reasons=["eligibility reason"],
                candidacy=f(Status.MET, "candidacy reason"), performance=ps())
    args.update(kw)
    return recommend(snapshot or make_snapshot(), AS_OF, knowledge, **args)


def test_on_sorafenib_comes_before_no_completed_tace(knowledge):
    assert run_recommend(knowledge, on_sorafenib=True, tace_sessions_recorded=0).code == "on-sorafenib"


def test_ineligible_comes_before_unknown_resistance(knowledge):
    rec = run_recommend(knowledge, tace_resistance=f(Status.UNKNOWN), eligibility_status="ineligible")
    assert rec.code == "outside-study-criteria"
    assert rec.reasons == ("TACE resistance unknown.", "eligibility reason")


def test_not_resistant_with_vascular_invasion_of_unknown_presence_is_insufficient_data(knowledge):
    # recorded after the assessment date with no onset: present from then, unknown on AS_OF
    later = condition(PVT, recorded=AS_OF + days(3), ref="Condition/pvt")
    rec = run_recommend(knowledge, make_snapshot(conditions=[later]), tace_resistance=f(Status.NOT_MET))
    assert rec.code == "insufficient-data"
    assert any("vascular invasion: recorded after 2026-11-28, presence then unknown (Condition/pvt)" in r for r in rec.reasons)
    on_the_day = condition(PVT, recorded=AS_OF, ref="Condition/pvt")
    assert run_recommend(knowledge, make_snapshot(conditions=[on_the_day]), tace_resistance=f(Status.NOT_MET)).code == "refer-mdt"


def test_not_resistant_with_a_viable_lesion_of_unknown_organ_is_insufficient_data(knowledge):
    snap = make_snapshot(lesions=[lesion("x", AS_OF - days(10), 20, organ=None)])
    rec = run_recommend(knowledge, snap, tace_resistance=f(Status.NOT_MET))
    assert rec.code == "insufficient-data"
    assert any("viable lesion(s) of unknown organ (BodyStructure/x)" in r for r in rec.reasons)
    liver = make_snapshot(lesions=[lesion("x", AS_OF - days(10), 20)])
    assert run_recommend(knowledge, liver, tace_resistance=f(Status.NOT_MET)).code == "continue-tace"


def assessed(knowledge, **kw):
    kw.setdefault("conditions", [condition("hcc", onset=date(2024, 1, 1))])
    kw.setdefault("measurements", [measurement("bilirubin", 1.0, AS_OF - days(3)), measurement("albumin", 4.0, AS_OF - days(3)),
                                   measurement("inr", 1.0, AS_OF - days(3)), measurement("karnofsky", 90, AS_OF - days(5))])
    return assess(make_snapshot(**kw), AS_OF, knowledge)


@pytest.mark.parametrize("status", ["preparation", "in-progress", "not-done"])
def test_only_completed_tace_sessions_count_as_tace_recorded(knowledge, status):
    sessions = [procedure("tace", AS_OF - days(200), status=status, ref="Procedure/t1"),
                procedure("tace", AS_OF - days(100), status=status, ref="Procedure/t2")]
    result = assessed(knowledge, procedures=sessions)
    assert result.recommendation.code == "not-applicable"
    assert result.recommendation.reasons[0].startswith("No completed TACE session recorded")


TWO_SESSIONS = [procedure("tace", AS_OF - days(400), ref="Procedure/t1"), procedure("tace", AS_OF - days(300), ref="Procedure/t2")]


@pytest.mark.parametrize(("end", "status", "code"), [
    (AS_OF - days(1), "active", "refer-mdt"),  # end date before as_of
    (AS_OF, "active", "on-sorafenib"),  # still taken on as_of
    (None, "stopped", "refer-mdt"),
    (None, "completed", "refer-mdt"),
])
def test_an_earlier_sorafenib_course_that_has_ended_is_referred_with_its_dates(knowledge, end, status, code):
    sora = medication("sorafenib", AS_OF - days(200), status=status, end=end, ref="MedicationRequest/sora")
    result = assessed(knowledge, procedures=TWO_SESSIONS, medications=[sora])
    assert result.recommendation.code == code
    if code == "refer-mdt":
        shown_end = end.isoformat() if end else "end date not recorded"
        assert (f"Earlier sorafenib course 2026-05-12 to {shown_end} ({status}; no stop reason recorded; "
                "MedicationRequest/sora).") in result.recommendation.reasons


def test_an_ended_course_reads_a_stop_reason_when_the_snapshot_carries_one():
    from dataclasses import dataclass

    from rules.snapshot import MedicationFact
    from rules.treatment import ended_sorafenib_courses

    @dataclass(frozen=True)
    class WithReason(MedicationFact):
        status_reason: str | None = None

    med = WithReason("sorafenib", "MedicationRequest/s", "stopped", AS_OF - days(100), AS_OF - days(10), None, "hand-foot skin reaction")
    (course,) = ended_sorafenib_courses(make_snapshot(medications=[med]), AS_OF)
    assert "stopped; hand-foot skin reaction" in course.describe()
    assert ended_sorafenib_courses(make_snapshot(medications=[medication("sorafenib", AS_OF + days(1), status="stopped")]), AS_OF) == ()


# -- 7. eligibility judged at the sorafenib start -----------------------------------------------------


START = AS_OF - days(200)


def on_sorafenib(knowledge, birth: date = date(1950, 1, 1)):
    labs = [measurement("bilirubin", 1.0, START - days(3)), measurement("albumin", 4.0, START - days(3)),
            measurement("inr", 1.0, START - days(3)), measurement("karnofsky", 90, START - days(5))]
    return assessed(knowledge, measurements=labs, patient=patient(birth_date=birth),
                    procedures=TWO_SESSIONS, medications=[medication("sorafenib", START)])


def criterion(result, cid):
    return next(c for c in result.sorafenib_eligibility.criteria if c.id == cid)


def test_eligibility_of_a_patient_on_sorafenib_is_judged_at_the_sorafenib_start(knowledge):
    result = on_sorafenib(knowledge)
    for cid in ("bilirubin_above_3", "karnofsky_above_70"):
        c = criterion(result, cid)
        assert c.status is Status.NOT_MET
        assert c.reasons[-1] == f"Judged at the sorafenib start ({START.isoformat()}), as the study did."
    assert criterion(result, "child_pugh_a_or_b").status is Status.MET


@pytest.mark.parametrize(("birth", "status"), [(date(2008, 5, 13), Status.NOT_MET), (date(2008, 5, 12), Status.MET)])
def test_age_is_taken_at_the_sorafenib_start(knowledge, birth, status):
    # 18 on AS_OF either way; 18 on the start (2026-05-12) only when born on or before 2008-05-12
    assert criterion(on_sorafenib(knowledge, birth), "age").status is status


# -- 8. undated thrombus or metastasis: unknown at a past date ------------------------------------------


def test_an_undated_thrombus_makes_bclc_at_the_first_tace_unknown_and_says_the_onset_is_missing():
    undated = condition(PVT, ref="Condition/pvt")
    result = bclc(multinodular(FIRST - days(10)) + multinodular(AS_OF - days(5)), [undated], first_tace=FIRST)
    assert result.at_first_tace.stage is None and result.tumour_extent_at_first_tace.stage is None
    assert "onset missing" in result.tumour_extent_at_first_tace.reasons[0]
    assert any("Condition/pvt has no onset or recorded date" in r for r in result.reasons)
    assert result.current.stage == "C"  # present now: it is in the record


@pytest.mark.parametrize(("recorded", "stage"), [(FIRST, "C"), (FIRST + days(1), None)])
def test_a_thrombus_dated_only_by_recorded_date_is_present_from_it(recorded, stage):
    pvt = condition(PVT, recorded=recorded, ref="Condition/pvt")
    result = bclc(multinodular(FIRST - days(10)) + multinodular(AS_OF - days(5)), [pvt], first_tace=FIRST)
    assert result.tumour_extent_at_first_tace.stage == stage


def test_an_undated_metastasis_makes_bclc_b_at_the_first_tace_unknown_for_eligibility():
    undated = condition(MET_, ref="Condition/m", site="lung")
    result = bclc(multinodular(FIRST - days(10)) + multinodular(AS_OF - days(5)), [undated], first_tace=FIRST)
    c = bclc_b_at_first_tace(result, cp("A", FIRST), "c")
    assert c.status is Status.UNKNOWN
    assert any("onset missing" in r for r in c.reasons)
    dated = condition(MET_, onset=FIRST + days(1), ref="Condition/m", site="lung")
    later = bclc(multinodular(FIRST - days(10)) + multinodular(AS_OF - days(5)), [dated], first_tace=FIRST)
    assert bclc_b_at_first_tace(later, cp("A", FIRST), "c").status is Status.MET


# -- 9. wording -----------------------------------------------------------------------------------------


def test_the_ecog_1_warning_says_karnofsky_70_was_excluded_and_80_included(knowledge):
    labs = [measurement("bilirubin", 1.0, AS_OF - days(3)), measurement("albumin", 4.0, AS_OF - days(3)),
            measurement("inr", 1.0, AS_OF - days(3)), measurement("ecog", 1, AS_OF - days(5))]
    warnings = assessed(knowledge, measurements=labs).sorafenib_eligibility.warnings
    assert (
        "Only ECOG 1 recorded: it may correspond to Karnofsky 70-80, of which the study excluded 70 and included 80; "
        "the study's criterion was Karnofsky > 70, and it nevertheless included ECOG 2 patients. "
        "Record a Karnofsky score to decide."
    ) in warnings
