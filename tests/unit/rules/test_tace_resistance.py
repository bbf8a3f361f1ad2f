"""TACE resistance (JSH 2010 as the study defines it) and JSH-LCSGJ 2014 beside it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.findings import Status
from rules.tace_resistance import evaluate_tace_resistance
from tests.unit.rules.factories import condition, disease_status, lesion, make_snapshot, measurement, procedure

T1 = date(2026, 1, 10)
T2 = date(2026, 3, 10)
AS_OF = date(2026, 11, 28)


def day(n: int, base: date = T2) -> date:
    return base + timedelta(days=n)


def sizes(when: date, a: float, b: float):
    return [lesion("a", when, a), lesion("b", when, b)]


def two_sessions(**kw):
    return [procedure("tace", T1, **kw), procedure("tace", T2, **kw)]


def baseline_and_sd():
    # baseline 60 mm before T1; after T1 55 mm (SD, no response); nadir 55
    return sizes(day(-5, T1), 40, 20) + sizes(day(30, T1), 37, 18)


def evaluate(knowledge, procedures, lesions=(), sorafenib_start=None, **kw):
    snap = make_snapshot(procedures=procedures, lesions=lesions, **kw)
    return evaluate_tace_resistance(snap, AS_OF, knowledge, sorafenib_start=sorafenib_start)


@pytest.mark.parametrize(("days_after", "status"), [(92, Status.MET), (93, Status.NOT_MET)])
def test_progression_92_days_after_the_second_session_counts_and_93_does_not(knowledge, days_after, status):
    # PD: 66 mm vs nadir 55 (+20%); at 93 days the last evaluable imaging in the window is SD
    lesions = baseline_and_sd() + sizes(day(40), 37, 18) + sizes(day(days_after), 44, 22)
    result = evaluate(knowledge, two_sessions(), lesions)
    assert result.status is status, result.finding.reasons
    if status is Status.MET:
        assert result.sessions == tuple(p.ref for p in two_sessions())
        assert "92 days after the last" in result.finding.reasons[0]


def test_an_entered_in_error_session_is_not_counted(knowledge):
    from dataclasses import replace

    from service.mapping import map_to_snapshot
    from tests import fhir_factories as f

    procs = [
        f.procedure("441525007", {"performedDateTime": T1.isoformat()}, rid="t1"),
        f.procedure("441525007", {"performedDateTime": T2.isoformat()}, rid="t2", status="entered-in-error"),
    ]
    mapped = map_to_snapshot(f.patient(), procs, knowledge)
    lesions = baseline_and_sd() + sizes(day(30), 44, 22)
    snap = replace(make_snapshot(lesions=lesions), procedures=mapped.procedures)
    result = evaluate_tace_resistance(snap, AS_OF, knowledge, sorafenib_start=None)
    assert [p.ref for p in mapped.procedures] == ["Procedure/t1"]
    assert result.status is Status.NOT_MET and "Only 1 completed TACE session" in result.finding.reasons[0]
    # the same two sessions, both valid, are resistant
    both = map_to_snapshot(f.patient(), [procs[0], {**procs[1], "status": "completed"}], knowledge)
    snap = replace(make_snapshot(lesions=lesions), procedures=both.procedures)
    assert evaluate_tace_resistance(snap, AS_OF, knowledge, sorafenib_start=None).status is Status.MET


def test_a_not_done_session_is_not_counted(knowledge):
    lesions = baseline_and_sd() + sizes(day(30), 44, 22)
    result = evaluate(knowledge, [procedure("tace", T1), procedure("tace", T2, status="not-done")], lesions)
    assert result.status is Status.NOT_MET


def test_a_series_broken_by_a_response_restarts(knowledge):
    # after T1 a PR (60 -> 40 mm, -33%); after T2 PD against the nadir: only one session since the response
    lesions = sizes(day(-5, T1), 40, 20) + sizes(day(30, T1), 27, 13) + sizes(day(30), 33, 16)
    result = evaluate(knowledge, two_sessions(), lesions)
    assert result.status is Status.NOT_MET
    assert any("after the response on" in r for r in result.finding.reasons)


def test_progression_shown_only_by_a_worsened_disease_status_report(knowledge):
    lesions = baseline_and_sd()
    result = evaluate(knowledge, two_sessions(), lesions, disease_status=[disease_status(day(45), "worsened", ref="Observation/cds")])
    assert result.status is Status.MET
    assert "Observation/cds" in result.finding.evidence and "worsened" in result.finding.reasons[0]


def test_new_vascular_invasion_after_the_second_session_is_progression(knowledge):
    result = evaluate(
        knowledge,
        two_sessions(),
        baseline_and_sd(),
        conditions=[condition("portal_vein_tumour_thrombus", onset=day(20), ref="Condition/pvtt")],
    )
    assert result.status is Status.MET and "Condition/pvtt" in result.finding.evidence
    assert result.jsh_2014.status is Status.MET


def test_cpt_only_sessions_make_it_at_most_unknown(knowledge):
    lesions = baseline_and_sd() + sizes(day(30), 44, 22)
    result = evaluate(knowledge, two_sessions(specific=False), lesions)
    assert result.status is Status.UNKNOWN and any("CPT 37243" in r for r in result.finding.reasons)


def test_one_cpt_only_session_in_the_deciding_pair_is_enough_to_make_it_unknown(knowledge):
    lesions = baseline_and_sd() + sizes(day(30), 44, 22)
    procs = [procedure("tace", T1), procedure("tace", T2, specific=False)]
    assert evaluate(knowledge, procs, lesions).status is Status.UNKNOWN


def test_no_imaging_after_the_last_session_is_unknown(knowledge):
    result = evaluate(knowledge, two_sessions(), baseline_and_sd())
    assert result.status is Status.UNKNOWN and "cannot be judged" in result.finding.reasons[-1]


def test_stable_disease_after_the_second_session_is_not_met(knowledge):
    lesions = baseline_and_sd() + sizes(day(40), 38, 18)
    assert evaluate(knowledge, two_sessions(), lesions).status is Status.NOT_MET


def test_a_new_10_mm_lesion_is_progression_and_a_9_mm_one_is_not(knowledge):
    base = baseline_and_sd() + sizes(day(40), 37, 18)
    assert evaluate(knowledge, two_sessions(), base + [lesion("c", day(40), 10)]).status is Status.MET
    assert evaluate(knowledge, two_sessions(), base + [lesion("c", day(40), 9)]).status is Status.NOT_MET


def test_sessions_after_sorafenib_start_do_not_count(knowledge):
    lesions = baseline_and_sd() + sizes(day(30), 44, 22)
    result = evaluate(knowledge, two_sessions(), lesions, sorafenib_start=day(-1))
    assert result.status is Status.NOT_MET and "sorafenib start" in result.finding.reasons[0]


def test_jsh_2014_two_insufficient_responses(knowledge):
    lesions = sizes(day(-5, T1), 40, 20) + sizes(day(40, T1), 38, 19) + sizes(day(40), 37, 19)
    afp = [measurement("afp", 100, day(-3, T1)), measurement("afp", 90, day(40, T1)), measurement("afp", 95, day(-3)),
           measurement("afp", 80, day(40))]
    result = evaluate(knowledge, two_sessions(), lesions, measurements=afp)
    assert result.jsh_2014.status is Status.MET and "insufficient" in result.jsh_2014.reasons[0]


def test_jsh_2014_not_met_when_tumour_responds_and_afp_falls(knowledge):
    lesions = sizes(day(-5, T1), 40, 20) + sizes(day(40, T1), 20, 8) + sizes(day(40), 12, 5)
    afp = [measurement("afp", 100, day(-3, T1)), measurement("afp", 60, day(40, T1)), measurement("afp", 60, day(-3)),
           measurement("afp", 30, day(40))]
    assert evaluate(knowledge, two_sessions(), lesions, measurements=afp).jsh_2014.status is Status.NOT_MET


def test_jsh_2014_unknown_without_markers(knowledge):
    lesions = sizes(day(-5, T1), 40, 20) + sizes(day(40, T1), 20, 8) + sizes(day(40), 12, 5)
    result = evaluate(knowledge, two_sessions(), lesions)
    assert result.jsh_2014.status is Status.UNKNOWN and "AFP" in result.jsh_2014.reasons[0]
