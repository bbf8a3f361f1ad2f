"""Boundary tests written to kill the mutants mutmut left alive (``tools/mutation.sh``).

Each test pins one comparison at its edge: the exact boundary, one step below and
one step above, so that ``<`` for ``<=``, ``>`` for ``>=``, a changed constant or a
flipped boolean in the check makes it fail. Modules: ``rules.timing``,
``rules.child_pugh``, ``rules.eligibility``, ``rules.performance_status``,
``rules.demographics`` and ``rules.knowledge`` (``convert``, ``lookup``).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.bclc import BclcAssessment, BclcStage
from rules.child_pugh import ChildPugh, evaluate_child_pugh
from rules.demographics import age_on
from rules.eligibility import TO_CONFIRM, bclc_b_at_first_tace, evaluate_eligibility, tace_resistant
from rules.findings import Notes, Status, finding
from rules.knowledge import CodeEntry, Knowledge
from rules.performance_status import (
    PerformanceStatus,
    PerformanceStatusCriteria,
    approximate_equivalent,
    ecog_range_for_karnofsky,
    performance_status_at,
)
from rules.timing import condition_present_at, latest_before, latest_within, medication_active_at
from service.render.clinical_json import child_pugh_json, eligibility_json
from tests.unit.rules.factories import (
    condition,
    make_snapshot,
    measurement,
    medication,
    patient,
    procedure,
    response_criteria,
    unusable,
)

AS_OF = date(2026, 11, 28)
CRITERIA = response_criteria()


def days(n: int) -> timedelta:
    return timedelta(days=n)


# -- rules.timing --------------------------------------------------------------------------------


@pytest.mark.parametrize(("age", "used"), [(-1, False), (0, True), (29, True), (30, True), (31, False)])
def test_latest_within_counts_a_result_from_the_anchor_day_back_to_exactly_max_age_days(age, used):
    m = measurement("bilirubin", 1.0, AS_OF - days(age))
    assert (latest_within([m], AS_OF, 30) == m) is used


def test_latest_before_includes_a_result_taken_on_the_anchor_day():
    on_the_day = measurement("bilirubin", 1.0, AS_OF)
    assert latest_before([on_the_day], AS_OF) == on_the_day


def test_latest_before_ignores_a_result_taken_the_day_after_the_anchor():
    assert latest_before([measurement("bilirubin", 1.0, AS_OF + days(1))], AS_OF) is None


def test_latest_before_picks_the_most_recent_of_several_old_results():
    old, older = measurement("bilirubin", 1.0, AS_OF - days(40)), measurement("bilirubin", 2.0, AS_OF - days(80))
    assert latest_before([older, old], AS_OF) == old
    assert latest_before([old, older], AS_OF) == old


@pytest.mark.parametrize(
    ("onset", "abatement", "present"),
    [
        (AS_OF + days(1), None, False),  # begins the day after
        (AS_OF, None, True),  # begins that day
        (AS_OF - days(10), AS_OF, False),  # abated that day
        (AS_OF - days(10), AS_OF + days(1), True),  # abated the day after
    ],
)
def test_a_condition_is_present_from_its_onset_day_until_the_day_before_its_abatement(onset, abatement, present):
    c = condition("ascites", onset=onset, abatement=abatement, clinical_status="resolved" if abatement else "active")
    assert condition_present_at(c, AS_OF) is present


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "not-taken", "draft"])
def test_a_medication_record_that_was_never_taken_is_never_active_even_within_its_dates(status):
    assert medication_active_at(medication("diuretic", AS_OF - days(10), status=status), AS_OF) is False
    assert medication_active_at(medication("diuretic", AS_OF - days(10), end=AS_OF + days(10), status=status), AS_OF) is False


@pytest.mark.parametrize(("start", "active"), [(AS_OF - days(1), True), (AS_OF, True), (AS_OF + days(1), False)])
def test_a_medication_is_active_from_its_start_day_and_not_the_day_before(start, active):
    assert medication_active_at(medication("diuretic", start), AS_OF) is active


def test_an_undated_active_medication_is_active():
    assert medication_active_at(medication("diuretic", None), AS_OF) is True


@pytest.mark.parametrize(("end", "active"), [(AS_OF - days(1), False), (AS_OF, True), (AS_OF + days(1), True)])
def test_a_medication_is_active_through_its_end_day_and_not_the_day_after(end, active):
    assert medication_active_at(medication("diuretic", AS_OF - days(30), end=end), AS_OF) is active


@pytest.mark.parametrize(
    ("status", "active"),
    [("active", True), ("on-hold", True), ("intended", True), ("unknown", True), ("recorded", True),
     ("completed", False), ("stopped", False)],
)
def test_without_an_end_date_only_an_ongoing_status_keeps_a_medication_active(status, active):
    assert medication_active_at(medication("diuretic", AS_OF - days(30), status=status), AS_OF) is active


# -- rules.child_pugh ----------------------------------------------------------------------------


def normal_labs(when: date = AS_OF):
    return [measurement("bilirubin", 1.0, when), measurement("albumin", 4.0, when), measurement("inr", 1.0, when)]


def child_pugh(snapshot, knowledge, anchor: date = AS_OF):
    return evaluate_child_pugh(snapshot, anchor, knowledge, Notes())


def test_an_unusable_lab_dated_after_the_anchor_is_not_offered_as_a_reason(knowledge):
    later = unusable("bilirubin", AS_OF + days(1), ref="Observation/later")
    on_the_day = unusable("bilirubin", AS_OF, ref="Observation/same-day")
    undated = unusable("bilirubin", None, ref="Observation/undated")
    labs = [m for m in normal_labs() if m.concept != "bilirubin"]
    result = child_pugh(make_snapshot(measurements=labs, unusable=[later, on_the_day, undated]), knowledge)
    text = " ".join(result.reasons)
    assert "Observation/same-day (bilirubin) not used" in text
    assert "Observation/undated (bilirubin) not used" in text
    assert "Observation/later" not in text


def test_the_score_sentence_comes_first_even_when_an_item_adds_its_own_reason(knowledge):
    snap = make_snapshot(measurements=normal_labs(), conditions=[condition("ascites", onset=AS_OF - days(5))])
    result = child_pugh(snap, knowledge)
    assert result.reasons[0].startswith("Score 6 (A): ")
    assert "recorded without severity, scored as mild" in result.reasons[1]


def test_a_scored_lab_shows_its_value_unit_and_evidence(knowledge):
    result = child_pugh(make_snapshot(measurements=normal_labs()), knowledge)
    bili = result.points["bilirubin"]
    assert (bili.value, bili.evidence, bili.date) == ("1 mg/dL", "Observation/bilirubin-20261128-1.0", AS_OF)
    inr_only = [measurement("inr", 1.0, AS_OF, recorded="1")] + [m for m in normal_labs() if m.concept != "inr"]
    assert child_pugh(make_snapshot(measurements=inr_only), knowledge).points["inr"].value == "1"  # unit "1" not printed
    converted = measurement("bilirubin", 2.0, AS_OF, recorded="34.2 umol/L")
    labs = [converted] + [m for m in normal_labs() if m.concept != "bilirubin"]
    assert child_pugh(make_snapshot(measurements=labs), knowledge).points["bilirubin"].value == "2 mg/dL (recorded 34.2 umol/L)"


def test_a_graded_condition_is_shown_with_its_severity_and_evidence_and_an_absent_one_as_assumed(knowledge):
    graded = [
        condition("ascites", onset=AS_OF - days(5), severity="mild", ref="Condition/a-mild"),
        condition("ascites", onset=AS_OF - days(5), severity="severe", ref="Condition/a-severe"),
    ]
    result = child_pugh(make_snapshot(measurements=normal_labs(), conditions=graded), knowledge)
    assert (result.points["ascites"].value, result.points["ascites"].evidence) == ("severe", "Condition/a-severe")
    assert (result.points["encephalopathy"].points, result.points["encephalopathy"].value) == (1, "none (assumed)")
    assert result.citation == knowledge.citation("child_pugh")


def test_of_several_ungraded_conditions_the_first_by_reference_is_cited(knowledge):
    ungraded = [condition("ascites", onset=AS_OF - days(5), ref="Condition/b"), condition("ascites", onset=AS_OF - days(9), ref="Condition/a")]
    result = child_pugh(make_snapshot(measurements=normal_labs(), conditions=ungraded), knowledge)
    item = result.points["ascites"]
    assert (item.points, item.value, item.evidence) == (2, "present, severity not recorded", "Condition/a")


def test_the_child_pugh_dict_gives_the_score_class_points_and_evidence(knowledge):
    snap = make_snapshot(measurements=normal_labs(), conditions=[condition("ascites", onset=AS_OF - days(5), severity="mild", ref="Condition/asc")])
    data = child_pugh_json(child_pugh(snap, knowledge))
    assert (data["date"], data["score"], data["class"]) == ("2026-11-28", 6, "A")
    assert data["points"]["bilirubin"] == {"points": 1, "value": "1 mg/dL", "evidence": "Observation/bilirubin-20261128-1.0",
                                           "date": "2026-11-28"}
    assert data["points"]["ascites"] == {"points": 2, "value": "mild", "evidence": "Condition/asc"}
    assert data["points"]["encephalopathy"] == {"points": 1, "value": "none (assumed)"}
    assert data["reasons"][0].startswith("Score 6 (A)") and data["cautions"] == []
    assert data["evidence"] == ["Observation/bilirubin-20261128-1.0", "Observation/albumin-20261128-4.0",
                                "Observation/inr-20261128-1.0", "Condition/asc"]
    assert data["citation"] == knowledge.citation("child_pugh")


def test_an_incomplete_score_lists_a_class_reachable_only_with_two_points_for_the_missing_item(knowledge):
    # With class A up to 8 and B = 9 only, known items worth 7 leave 8 (A), 9 (B) or 10 (C) for a missing
    # bilirubin: the middle value (2 points) must be tried too.
    k = Knowledge(knowledge.value_sets, knowledge.thresholds, {"thresholds": {"child_pugh": {"class_a_max_score": 8}}})
    snap = make_snapshot(
        measurements=[measurement("albumin", 3.0, AS_OF), measurement("inr", 1.0, AS_OF)],
        conditions=[
            condition("ascites", onset=AS_OF - days(5), severity="mild"),
            condition("encephalopathy", onset=AS_OF - days(5), severity="mild"),
        ],
    )
    result = child_pugh(snap, k)
    assert result.klass is None
    assert result.reasons[0].endswith("the class could be any of A, B, C.")


# -- rules.eligibility ---------------------------------------------------------------------------


def fresh_labs(bilirubin: float = 1.0):
    return [
        measurement("bilirubin", bilirubin, AS_OF - days(3)),
        measurement("albumin", 4.0, AS_OF - days(3)),
        measurement("inr", 1.0, AS_OF - days(3)),
    ]


def ps(**kw) -> PerformanceStatus:
    base = dict(anchor=AS_OF, ecog=None, karnofsky=None, date=AS_OF, source=None, evidence=("Observation/ps",),
                reasons=("ps reason",), citation="ps", max_age_days=90)
    return PerformanceStatus(**{**base, **kw})


def cp(klass: str | None, reasons=("cp reason",)) -> ChildPugh:
    return ChildPugh(anchor=AS_OF, score=None, klass=klass, points={}, reasons=tuple(reasons), cautions=(), citation="cp")


def eligibility(knowledge, snapshot=None, *, performance=None, child=None):
    snapshot = snapshot or make_snapshot(measurements=fresh_labs())
    resistance = finding(Status.MET, ["resistant"], ["Procedure/t"], citation="jsh")
    return evaluate_eligibility(
        snapshot,
        AS_OF,
        knowledge,
        Notes(),
        child_pugh=child or cp("A"),
        performance=performance or ps(source="karnofsky", karnofsky=90),
        bclc_b_at_first_tace=finding(Status.MET, ["B"], citation="bclc", id="bclc_b_at_first_tace", kind="inclusion"),
        tace_resistance=tace_resistant(resistance),
    )


def crit(result, cid):
    return next(c for c in result.criteria if c.id == cid)


EXPECTED_KINDS = {
    "age": "inclusion",
    "bclc_b_at_first_tace": "inclusion",
    "tace_resistant": "inclusion",
    "child_pugh_a_or_b": "inclusion",
    "prior_resection_or_transplant": "exclusion",
    "karnofsky_above_70": "exclusion",
    "bilirubin_above_3": "exclusion",
}


@pytest.mark.parametrize(
    "scenario",
    ["typical", "no_birth_date", "child_pugh_c", "child_pugh_unknown", "surgery", "karnofsky_70", "ecog_3", "ecog_1",
     "no_ps", "bilirubin_3_1", "no_bilirubin"],
)
def test_every_criterion_keeps_its_id_kind_and_the_study_citation_whatever_its_outcome(knowledge, scenario):
    snap = make_snapshot(measurements=fresh_labs())
    kw: dict = {}
    if scenario == "no_birth_date":
        snap = make_snapshot(measurements=fresh_labs(), patient=patient(birth_date=None))
    elif scenario == "child_pugh_c":
        kw["child"] = cp("C")
    elif scenario == "child_pugh_unknown":
        kw["child"] = cp(None)
    elif scenario == "surgery":
        snap = make_snapshot(measurements=fresh_labs(), procedures=[procedure("resection", date(2020, 1, 1))])
    elif scenario == "karnofsky_70":
        kw["performance"] = ps(source="karnofsky", karnofsky=70)
    elif scenario == "ecog_3":
        kw["performance"] = ps(source="ecog", ecog=3)
    elif scenario == "ecog_1":
        kw["performance"] = ps(source="ecog", ecog=1)
    elif scenario == "no_ps":
        kw["performance"] = ps(source=None, date=None, evidence=())
    elif scenario == "bilirubin_3_1":
        snap = make_snapshot(measurements=fresh_labs(bilirubin=3.1))
    elif scenario == "no_bilirubin":
        snap = make_snapshot(measurements=fresh_labs()[1:])
    result = eligibility(knowledge, snap, **kw)
    study = knowledge.citation("sorafenib_eligibility")
    assert {c.id: c.kind for c in result.criteria} == EXPECTED_KINDS
    for c in result.criteria:
        assert c.reasons, c.id
        if c.id not in ("bclc_b_at_first_tace", "tace_resistant"):
            assert c.citation == study, c.id
    assert result.to_confirm == TO_CONFIRM


@pytest.mark.parametrize(("birth", "text"), [(date(2008, 11, 28), "Age 18 >= 18."), (date(2008, 11, 29), "Age 17 < 18.")])
def test_the_age_reason_states_the_comparison_with_the_minimum(knowledge, birth, text):
    snap = make_snapshot(measurements=fresh_labs(), patient=patient(birth_date=birth))
    age = crit(eligibility(knowledge, snap), "age")
    assert age.reasons == (text,) and age.evidence == ("Patient/p1",)


def test_an_unknown_birth_date_cites_the_patient(knowledge):
    age = crit(eligibility(knowledge, make_snapshot(measurements=fresh_labs(), patient=patient(birth_date=None))), "age")
    assert (age.status, age.reasons, age.evidence) == (Status.UNKNOWN, ("No birth date recorded.",), ("Patient/p1",))


@pytest.mark.parametrize(
    ("performed", "status"),
    [(AS_OF - days(1), Status.MET), (AS_OF, Status.MET), (AS_OF + days(1), Status.NOT_MET), (None, Status.MET)],
)
def test_a_resection_up_to_and_on_the_assessment_day_excludes_and_one_after_it_does_not(knowledge, performed, status):
    snap = make_snapshot(measurements=fresh_labs(), procedures=[procedure("resection", performed, ref="Procedure/r")])
    c = crit(eligibility(knowledge, snap), "prior_resection_or_transplant")
    assert c.status is status
    if status is Status.MET:
        when = performed.isoformat() if performed else "undated"
        assert c.reasons == (f"Prior liver resection ({when}).",) and c.evidence == ("Procedure/r",)
    else:
        assert c.reasons == ("No liver resection or transplant recorded (assumed none).",) and c.evidence == ()


@pytest.mark.parametrize(("kps", "status", "text"), [(70, Status.MET, "Karnofsky 70 <= 70."), (71, Status.NOT_MET, "Karnofsky 71 > 70.")])
def test_karnofsky_at_and_just_above_70_gives_the_reason_and_the_evidence(knowledge, kps, status, text):
    c = crit(eligibility(knowledge, performance=ps(source="karnofsky", karnofsky=kps)), "karnofsky_above_70")
    assert (c.status, c.reasons, c.evidence) == (status, (text,), ("Observation/ps",))


@pytest.mark.parametrize(("ecog", "status", "band"), [(0, Status.NOT_MET, None), (1, Status.NOT_MET, "70-80"),
                                                      (2, Status.NOT_MET, "50-60"), (3, Status.MET, None)])
def test_ecog_alone_at_and_around_3_and_the_karnofsky_band_named_in_the_warning(knowledge, ecog, status, band):
    result = eligibility(knowledge, performance=ps(source="ecog", ecog=ecog))
    c = crit(result, "karnofsky_above_70")
    assert c.status is status and c.evidence == ("Observation/ps",)
    assert c.reasons[0].startswith(f"ECOG {ecog} (no more recent Karnofsky)")
    warned = [w for w in result.warnings if w.startswith("Only ECOG")]
    if band:
        assert warned and f"may correspond to Karnofsky {band}" in warned[0]
    else:
        assert not warned


def test_no_performance_status_passes_its_reasons_and_evidence_through(knowledge):
    c = crit(eligibility(knowledge, performance=ps(source=None, evidence=("Observation/old",))), "karnofsky_above_70")
    assert (c.status, c.reasons, c.evidence) == (Status.UNKNOWN, ("ps reason",), ("Observation/old",))


@pytest.mark.parametrize(("value", "status", "text"), [(3.0, Status.NOT_MET, "Bilirubin 3 mg/dL <= 3."),
                                                       (3.01, Status.MET, "Bilirubin 3.01 mg/dL > 3.")])
def test_bilirubin_at_and_just_above_3_gives_the_reason_and_the_evidence(knowledge, value, status, text):
    c = crit(eligibility(knowledge, make_snapshot(measurements=fresh_labs(bilirubin=value))), "bilirubin_above_3")
    assert (c.status, c.reasons, c.evidence) == (status, (text,), (f"Observation/bilirubin-20261125-{value}",))


def test_an_applying_bilirubin_exclusion_makes_the_patient_ineligible(knowledge):
    assert eligibility(knowledge, make_snapshot(measurements=fresh_labs(bilirubin=3.01))).status == "ineligible"
    assert eligibility(knowledge, make_snapshot(measurements=fresh_labs(bilirubin=3.0))).status == "eligible"


def test_a_stale_bilirubin_names_its_date_and_unusable_results(knowledge):
    stale = measurement("bilirubin", 1.0, AS_OF - days(31))
    snap = make_snapshot(measurements=[stale], unusable=[unusable("bilirubin", AS_OF, "no unit", ref="Observation/u")])
    c = crit(eligibility(knowledge, snap), "bilirubin_above_3")
    assert c.status is Status.UNKNOWN and c.evidence == ()
    assert c.reasons == ("Latest bilirubin 2026-10-28 is older than 30 days.", "Observation/u not used: no unit.")
    c = crit(eligibility(knowledge, make_snapshot()), "bilirubin_above_3")
    assert c.reasons == ("No usable bilirubin result.",)


def test_child_pugh_findings_carry_the_classs_reasons_and_evidence(knowledge):
    klass_c = crit(eligibility(knowledge, child=cp("C", ["Score 10 (C): ..."])), "child_pugh_a_or_b")
    assert (klass_c.status, klass_c.reasons) == (Status.NOT_MET, ("Child-Pugh C (Score 10 (C): ...)",))
    unknown = crit(eligibility(knowledge, child=cp(None, ["Incomplete."])), "child_pugh_a_or_b")
    assert (unknown.status, unknown.reasons) == (Status.UNKNOWN, ("Child-Pugh class unknown.", "Incomplete."))
    a = crit(eligibility(knowledge, child=cp("A", ["Score 5 (A): ..."])), "child_pugh_a_or_b")
    assert (a.status, a.reasons) == (Status.MET, ("Child-Pugh A: Score 5 (A): ...",))


@pytest.mark.parametrize(
    ("labs", "status"),
    [
        ([("bilirubin", 1.0), ("albumin", 4.0), ("inr", 1.0)], Status.MET),  # A
        ([("bilirubin", 3.5), ("albumin", 2.5), ("inr", 2.0)], Status.NOT_MET),  # C (10)
        ([("bilirubin", 1.0), ("albumin", 3.0)], Status.UNKNOWN),  # INR missing: A or B
    ],
)
def test_the_child_pugh_finding_cites_the_lab_evidence_whatever_the_class(knowledge, labs, status):
    snap = make_snapshot(measurements=[measurement(c, v, AS_OF - days(3)) for c, v in labs])
    real = evaluate_child_pugh(snap, AS_OF, knowledge, Notes())
    c = crit(eligibility(knowledge, child=real), "child_pugh_a_or_b")
    assert c.status is status
    assert c.evidence == real.evidence and len(c.evidence) == len(labs)


def test_tace_resistant_copies_the_resistance_finding_as_an_inclusion():
    source = finding(Status.UNKNOWN, ["why"], ["Procedure/a"], citation="JSH")
    c = tace_resistant(source)
    assert (c.status, c.reasons, c.evidence, c.citation, c.id, c.kind) == (
        Status.UNKNOWN, ("why",), ("Procedure/a",), "JSH", "tace_resistant", "inclusion")


def extent(stage: str | None) -> BclcStage:
    return BclcStage(stage, (f"extent {stage}",), ("Observation/size",), "bclc")


def bclc_with(extent_first: BclcStage | None) -> BclcAssessment:
    now = extent("B")
    return BclcAssessment(at_first_tace=None, current=now, tumour_extent=now, tumour_extent_at_first_tace=extent_first,
                          reasons=(), evidence=(), assumptions=(), note="", citation="bclc")


def child_pugh_at(klass: str | None) -> ChildPugh:
    return ChildPugh(anchor=date(2026, 1, 10), score=None, klass=klass, points={}, reasons=("cp at first TACE",),
                     cautions=(), citation="cp")


@pytest.mark.parametrize(
    ("stage", "klass", "status", "first_reason"),
    [
        (None, "A", Status.UNKNOWN, "Tumour-extent stage at the first TACE (2026-01-10) unknown."),
        ("A", "A", Status.NOT_MET, "Tumour-extent stage A at the first TACE (2026-01-10), not B."),
        ("C", "A", Status.NOT_MET, "Tumour-extent stage C at the first TACE (2026-01-10), not B."),
        ("B", None, Status.UNKNOWN, "Tumour-extent stage B at the first TACE (2026-01-10), but Child-Pugh at that date is unknown."),
        ("B", "C", Status.NOT_MET, "Tumour-extent stage B but Child-Pugh C at the first TACE (2026-01-10): BCLC D."),
        ("B", "B", Status.MET, "Tumour-extent stage B with Child-Pugh B at the first TACE (2026-01-10)."),
        ("B", "A", Status.MET, "Tumour-extent stage B with Child-Pugh A at the first TACE (2026-01-10)."),
    ],
)
def test_bclc_b_at_the_first_tace_needs_extent_b_and_child_pugh_a_or_b(stage, klass, status, first_reason):
    c = bclc_b_at_first_tace(bclc_with(extent(stage)), child_pugh_at(klass), "cite")
    assert (c.status, c.reasons[0], c.citation, c.id, c.kind) == (status, first_reason, "cite", "bclc_b_at_first_tace", "inclusion")
    assert c.evidence == ("Observation/size",)  # the ChildPugh here has no points, so no lab evidence
    if stage != "B":
        assert c.reasons[1:] == (f"extent {stage}",)
    if stage == "B" and klass is None:
        assert c.reasons[1:] == ("cp at first TACE",)


def test_bclc_b_at_the_first_tace_without_a_child_pugh_at_that_date_is_unknown():
    c = bclc_b_at_first_tace(bclc_with(extent("B")), None, "cite")
    assert c.status is Status.UNKNOWN
    assert c.reasons == ("Tumour-extent stage B at the first TACE, but Child-Pugh at that date is unknown.",)


def test_bclc_b_at_the_first_tace_without_any_tace_is_unknown():
    c = bclc_b_at_first_tace(bclc_with(None), None, "cite")
    assert (c.status, c.reasons, c.evidence, c.citation, c.id, c.kind) == (
        Status.UNKNOWN, ("No TACE recorded: no stage at the first TACE.",), (), "cite", "bclc_b_at_first_tace", "inclusion")


def test_bclc_b_at_the_first_tace_cites_the_child_pugh_lab_evidence_too(knowledge):
    real = evaluate_child_pugh(make_snapshot(measurements=fresh_labs()), AS_OF, knowledge, Notes())
    c = bclc_b_at_first_tace(bclc_with(extent("B")), real, "cite")
    assert c.evidence == ("Observation/size", *real.evidence)


def test_the_eligibility_dict_lists_criteria_confirmations_and_warnings(knowledge):
    result = eligibility(knowledge, performance=ps(source="ecog", ecog=1))
    data = eligibility_json(result)
    assert data["to_confirm"] == list(TO_CONFIRM) and data["warnings"] == list(result.warnings) and data["warnings"]
    assert [c["kind"] for c in data["criteria"]] == list(EXPECTED_KINDS.values())


# -- rules.performance_status --------------------------------------------------------------------


def status_of(*ms, anchor=AS_OF):
    return performance_status_at(make_snapshot(measurements=ms), anchor, max_age_days=90, criteria=CRITERIA)


@pytest.mark.parametrize(
    ("concept", "value", "used"),
    [("ecog", 0, True), ("ecog", 5, True), ("ecog", 6, False), ("ecog", -1, False),
     ("karnofsky", 0, True), ("karnofsky", 100, True), ("karnofsky", 101, False)],
)
def test_a_score_is_used_from_the_lowest_to_the_highest_value_of_its_scale_inclusive(concept, value, used):
    result = status_of(measurement(concept, value, AS_OF - days(1)))
    assert (getattr(result, concept) == value) is used


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_score_is_set_aside_without_an_error(value):
    result = status_of(measurement("ecog", value, AS_OF - days(1), recorded="??"))
    assert result.source is None
    assert any("ECOG ?? on 2026-11-27" in r and "is not a whole number from 0 to 5" in r for r in result.reasons)


def test_every_unusable_score_is_reported_not_only_the_first():
    result = status_of(measurement("ecog", 7, AS_OF - days(2)), measurement("ecog", 1, AS_OF - days(1)))
    assert result.ecog == 1


def test_an_unusable_score_gives_its_date_or_says_it_is_unknown():
    snap = make_snapshot(unusable=[unusable("ecog", None, "no value", ref="Observation/e"),
                                   unusable("karnofsky", AS_OF - days(2), "no unit", ref="Observation/k")])
    result = performance_status_at(snap, AS_OF, max_age_days=90, criteria=CRITERIA)
    assert "ECOG on an unknown date (Observation/e) could not be used: no value." in result.reasons
    assert "Karnofsky on 2026-11-26 (Observation/k) could not be used: no unit." in result.reasons


def test_malformed_performance_status_criteria_are_named_in_the_error():
    from rules.knowledge import KnowledgeError

    with pytest.raises(KnowledgeError, match="malformed 'performance_status' group"):
        PerformanceStatusCriteria.from_dict({"performance_status": {"citation": "c"}})


def test_with_only_stale_scores_the_most_recent_of_them_is_named():
    result = status_of(
        measurement("ecog", 1, AS_OF - days(200)),
        measurement("ecog", 2, AS_OF - days(120)),
        measurement("karnofsky", 80, AS_OF - days(150)),
        measurement("karnofsky", 70, AS_OF - days(300)),
    )
    assert result.reasons[0] == (
        "No ECOG or Karnofsky within 90 days before 2026-11-28 (latest ECOG 2026-07-31, latest Karnofsky 2026-07-01)."
    )


def test_every_status_carries_its_anchor_window_and_citation():
    same_day = AS_OF - days(3)
    for result in (
        status_of(),
        status_of(measurement("ecog", 1, same_day), measurement("karnofsky", 80, same_day)),
        status_of(measurement("ecog", 1, same_day)),
        status_of(measurement("karnofsky", 80, same_day)),
    ):
        assert (result.anchor, result.max_age_days, result.citation) == (AS_OF, 90, CRITERIA["performance_status"]["citation"])
        assert all(isinstance(r, str) and r for r in result.reasons)


def test_the_reasons_say_which_scale_was_superseded_or_absent():
    assert status_of(measurement("ecog", 1, AS_OF - days(3))).reasons[1] == "No Karnofsky in the window; none is inferred from ECOG."
    assert status_of(measurement("karnofsky", 80, AS_OF - days(3))).reasons[1] == "No ECOG in the window; none is inferred from Karnofsky."
    newer_ecog = status_of(measurement("ecog", 1, AS_OF - days(3)), measurement("karnofsky", 80, AS_OF - days(9)))
    assert newer_ecog.reasons[1] == "An older Karnofsky 80 on 2026-11-19 is superseded; Karnofsky is not reported."
    newer_kps = status_of(measurement("ecog", 1, AS_OF - days(9)), measurement("karnofsky", 80, AS_OF - days(3)))
    assert newer_kps.reasons[1] == "An older ECOG 1 on 2026-11-19 is superseded; ECOG is not reported."
    same = status_of(measurement("ecog", 1, AS_OF - days(3)), measurement("karnofsky", 80, AS_OF - days(3)))
    assert same.reasons[0] == (
        "ECOG 1 and Karnofsky 80 on 2026-11-25 (within 90 days before 2026-11-28); "
        "both recorded the same day, Karnofsky (the study's criterion) is named the source."
    )


@pytest.mark.parametrize(
    ("kps", "text"),
    [(80, "ECOG 1"), (85, "ECOG 0-1"), (100, "ECOG 0"), (0, "ECOG 5"), (5, "ECOG 4-5")],
)
def test_a_karnofsky_score_is_given_its_approximate_ecog_grade_for_warnings(kps, text):
    result = status_of(measurement("karnofsky", kps, AS_OF - days(1)))
    assert approximate_equivalent(result, CRITERIA) == (
        f"Karnofsky {kps} corresponds approximately to {text} (Prasad et al., World J Clin Oncol 2018; not a measured value)."
    )


@pytest.mark.parametrize(("ecog", "text"), [(0, "Karnofsky 90-100"), (5, "Karnofsky 0")])
def test_an_ecog_grade_is_given_its_approximate_karnofsky_band_for_warnings(ecog, text):
    result = status_of(measurement("ecog", ecog, AS_OF - days(1)))
    assert approximate_equivalent(result, CRITERIA) == (
        f"ECOG {ecog} corresponds approximately to {text} (Prasad et al., World J Clin Oncol 2018; not a measured value)."
    )


def test_on_the_same_day_the_karnofsky_source_decides_which_equivalent_is_offered():
    result = status_of(measurement("ecog", 1, AS_OF - days(1)), measurement("karnofsky", 90, AS_OF - days(1)))
    assert approximate_equivalent(result, CRITERIA).startswith("Karnofsky 90 corresponds approximately to ECOG 0")


def test_no_equivalent_is_offered_outside_the_table():
    empty = PerformanceStatusCriteria(citation="c", ecog_min=0, ecog_max=5, karnofsky_min=0, karnofsky_max=100,
                                      karnofsky_range_by_ecog=())
    assert ecog_range_for_karnofsky(50, empty) is None
    assert approximate_equivalent(ps(source="karnofsky", karnofsky=50), empty) is None
    assert approximate_equivalent(ps(source="ecog", ecog=3), empty) is None


# -- rules.demographics --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        (date(1950, 6, 15), date(2026, 6, 14), 75),  # the day before the birthday
        (date(1950, 6, 15), date(2026, 6, 15), 76),  # the birthday
        (date(1950, 6, 15), date(2026, 6, 16), 76),
        (date(1950, 6, 15), date(2026, 5, 20), 75),  # an earlier month, a later day
        (date(1950, 6, 15), date(2026, 7, 1), 76),  # a later month, an earlier day
        (date(2008, 2, 29), date(2026, 2, 28), 17),  # born on 29 February: not yet 18 on 28 February
        (date(2008, 2, 29), date(2026, 3, 1), 18),  # reached on 1 March
        (date(2008, 2, 29), date(2028, 2, 29), 20),  # and on the day in a leap year
    ],
)
def test_age_is_completed_years_reached_on_the_birthday(birth, day, age):
    assert age_on(birth, day) == age


# -- rules.knowledge: convert and lookup ---------------------------------------------------------

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.mark.parametrize(
    ("concept", "value", "unit", "expected"),
    [
        ("tumour_size", 1.5, "cm", 15.0),  # a plain number multiplies
        ("tumour_size", 1.23456789, "cm", 12.345679),  # rounded to 6 decimals
        ("tumour_size", 12, "mm", 12.0),
        ("bilirubin", 34.2, "umol/L", 2.0),  # a boundary written in umol/L stays the boundary
        ("bilirubin", 51.3, "umol/L", 3.0),
        ("bilirubin", 1, "umol/L", 0.05848),  # divide_by, rounded to 6 decimals
        ("albumin", 35, "g/L", 3.5),
    ],
)
def test_convert_multiplies_or_divides_into_the_canonical_unit_to_6_decimals(knowledge, concept, value, unit, expected):
    assert knowledge.convert(concept, value, unit) == expected


@pytest.mark.parametrize(("unit",), [(None,), ("furlong",)])
def test_convert_refuses_a_missing_or_unknown_unit(knowledge, unit):
    assert knowledge.convert("bilirubin", 1.0, unit) is None


def test_lookup_matches_a_code_prefix_only_in_its_own_system(knowledge):
    assert knowledge.lookup(ICD10, "C78.01") == CodeEntry(
        concept="extrahepatic_metastasis", system=ICD10, code="C78.01", display="C78.01", site="right lung")
    assert knowledge.lookup("http://snomed.info/sct", "C78.01") is None
    assert knowledge.lookup(ICD10, "D78.01") is None
    assert knowledge.lookup(ICD10, "C78.7") is None  # secondary of liver: intrahepatic, an exception to C77-C79


@pytest.mark.parametrize(("system", "code"), [(ICD10, None), (ICD10, ""), (None, "C78.7"), ("", "C78.7"), (None, None)])
def test_lookup_of_a_coding_without_system_or_code_is_none(knowledge, system, code):
    assert knowledge.lookup(system, code) is None
