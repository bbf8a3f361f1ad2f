"""TACE resistance defects found by the clinical safety review (issue: clinical core III).

Each failed on the code before the fix: same-day duplicate records were two sessions, one new lesion made
every later window progression, a condition dated only by recordedDate gave a confident answer, the
JSH 2014 "viable > 50%" was computed over summed diameters, and the reasons said "no imaging after it"
beside a radiologist's status report.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from rules.findings import Status
from rules.tace_resistance import evaluate_tace_resistance
from tests.unit.rules.factories import condition, disease_status, lesion, make_snapshot, procedure

T1 = date(2026, 1, 10)
T2 = date(2026, 3, 10)
T3 = date(2026, 6, 10)
AS_OF = date(2026, 11, 28)


def d(n: int, base: date) -> date:
    return base + timedelta(days=n)


def sizes(when: date, a: float, b: float):
    return [lesion("a", when, a), lesion("b", when, b)]


def evaluate(knowledge, procedures, lesions=(), **kw):
    snap = make_snapshot(procedures=procedures, lesions=lesions, **kw)
    return evaluate_tace_resistance(snap, AS_OF, knowledge, sorafenib_start=None)


def test_two_records_on_one_date_are_one_session(knowledge):
    # the same TACE recorded twice on T2 (an order and its report): one session, so only one completed session
    lesions = sizes(d(-5, T2), 40, 20) + sizes(d(30, T2), 48, 24)
    procs = [procedure("tace", T2, ref="Procedure/t2-order"), procedure("tace", T2, ref="Procedure/t2-report")]
    result = evaluate(knowledge, procs, lesions)
    assert result.status is Status.NOT_MET
    assert "Only 1 completed TACE session" in result.finding.reasons[0]
    assert result.sessions == ("Procedure/t2-order",)


def test_a_same_day_duplicate_is_named_and_a_specific_copy_makes_the_session_specific(knowledge):
    lesions = sizes(d(-5, T1), 40, 20) + sizes(d(30, T1), 37, 18) + sizes(d(30, T2), 48, 24)
    procs = [procedure("tace", T1), procedure("tace", T2, specific=False, ref="Procedure/t2-cpt"),
             procedure("tace", T2, ref="Procedure/t2-snomed")]
    result = evaluate(knowledge, procs, lesions)
    assert result.status is Status.MET  # the SNOMED copy says it was TACE
    assert any("one session" in r and "Procedure/t2-snomed" in r for r in result.finding.reasons), result.finding.reasons


def test_one_new_lesion_does_not_make_every_later_window_progression(knowledge):
    # T1, T2: a new 12 mm lesion after T1 (only one session then: dismissed). T2 and T3 follow; after T3 the
    # lesion is unchanged and the targets stable: nothing is new since the imaging before T3
    lesions = (
        sizes(d(-5, T1), 40, 20)
        + sizes(d(30, T1), 38, 19) + [lesion("x", d(30, T1), 12)]
        + sizes(d(30, T2), 38, 19) + [lesion("x", d(30, T2), 12)]
        + sizes(d(30, T3), 38, 19) + [lesion("x", d(30, T3), 12)]
    )
    result = evaluate(knowledge, [procedure("tace", T1), procedure("tace", T2), procedure("tace", T3)], lesions)
    assert result.status is Status.NOT_MET, result.finding.reasons


def test_a_lesion_new_since_the_imaging_before_the_later_session_is_still_progression(knowledge):
    lesions = (
        sizes(d(-5, T1), 40, 20)
        + sizes(d(30, T1), 38, 19)
        + sizes(d(30, T2), 38, 19) + [lesion("x", d(30, T2), 12)]
    )
    result = evaluate(knowledge, [procedure("tace", T1), procedure("tace", T2)], lesions)
    assert result.status is Status.MET


def test_ne_in_the_window_after_the_last_session_is_unknown(knowledge):
    # a target not measured after T2 (and the other not 20% above the nadir): NE -> unknown, not SD
    lesions = sizes(d(-5, T1), 40, 20) + sizes(d(30, T1), 37, 18) + [lesion("a", d(30, T2), 38)]
    result = evaluate(knowledge, [procedure("tace", T1), procedure("tace", T2)], lesions)
    assert result.status is Status.UNKNOWN, result.finding.reasons


@pytest.mark.parametrize(("days", "status"), [(92, Status.UNKNOWN), (93, Status.UNKNOWN)])
def test_no_imaging_within_92_days_is_unknown_even_with_later_stable_imaging(knowledge, days, status):
    lesions = sizes(d(-5, T1), 40, 20) + sizes(d(30, T1), 37, 18) + sizes(d(days + 1, T2), 37, 18)
    result = evaluate(knowledge, [procedure("tace", T1), procedure("tace", T2)], lesions)
    if days + 1 <= 92:
        assert result.status is Status.NOT_MET
    else:
        assert result.status is status


def test_a_thrombus_dated_only_by_recorded_date_after_the_series_began_makes_not_met_unknown(knowledge):
    lesions = sizes(d(-5, T1), 40, 20) + sizes(d(30, T1), 37, 18) + sizes(d(40, T2), 38, 18)
    pvtt = replace(condition("portal_vein_tumour_thrombus", ref="Condition/pvtt"), recorded=d(60, T2))
    result = evaluate(knowledge, [procedure("tace", T1), procedure("tace", T2)], lesions, conditions=[pvtt])
    assert result.status is Status.UNKNOWN
    assert any("Condition/pvtt" in r and "onset" in r for r in result.finding.reasons)
    # recorded before the series: pre-existing, the stable imaging decides
    before = replace(pvtt, recorded=d(-30, T1))
    assert evaluate(knowledge, [procedure("tace", T1), procedure("tace", T2)], lesions,
                    conditions=[before]).status is Status.NOT_MET


def test_no_imaging_after_the_last_session_is_not_said_when_a_status_report_exists(knowledge):
    lesions = sizes(d(-5, T1), 40, 20) + sizes(d(30, T1), 37, 18)
    report = disease_status(d(30, T2), "stable", ref="Observation/cds")
    result = evaluate(knowledge, [procedure("tace", T1), procedure("tace", T2)], lesions, disease_status=[report])
    assert result.status is Status.UNKNOWN
    text = " ".join(result.finding.reasons)
    assert "no imaging after it" not in text
    assert "Observation/cds" in text and "stable" in text


def test_jsh_2014_insufficient_response_is_judged_per_treated_lesion(knowledge):
    # a big lesion responds (60 -> 20 -> 5) and a small one does not (10 -> 9 -> 9): summed, 29/70 and 14/29
    # are below 50%; per lesion, lesion b keeps > 50% of its viable tumour twice -> refractory
    lesions = sizes(d(-5, T1), 60, 10) + sizes(d(40, T1), 20, 9) + sizes(d(40, T2), 5, 9)
    result = evaluate(knowledge, [procedure("tace", T1), procedure("tace", T2)], lesions)
    assert result.jsh_2014.status is Status.MET, result.jsh_2014.reasons
    assert any("approximation" in r.lower() for r in result.jsh_2014.reasons)


def test_jsh_2014_a_lesion_reduced_to_exactly_half_is_not_insufficient(knowledge):
    lesions = sizes(d(-5, T1), 40, 20) + sizes(d(40, T1), 20, 10) + sizes(d(40, T2), 10, 5)
    result = evaluate(knowledge, [procedure("tace", T1), procedure("tace", T2)], lesions)
    assert "two consecutive insufficient" not in " ".join(result.jsh_2014.reasons)


# -- the assessment around it ------------------------------------------------------------------------


def test_an_hcc_diagnosis_without_verification_status_is_taken_as_confirmed_and_said_so(knowledge):
    from rules.assessment import assess

    hcc = replace(condition("hcc", onset=d(-400, T1), ref="Condition/hcc"), verification_status=None)
    snap = make_snapshot(conditions=[hcc], procedures=[procedure("tace", T1)])
    result = assess(snap, AS_OF, knowledge)
    assert result.has_hcc
    assert result.recommendation.code != "not-applicable" or "deceased" in " ".join(result.recommendation.reasons)
    assert any("Condition/hcc" in a and "verificationStatus" in a for a in result.assumptions)


def test_a_worsened_report_beside_an_mrecist_sd_on_sorafenib_gets_a_note(knowledge):
    from rules.assessment import assess
    from tests.unit.rules.factories import medication

    start = d(10, T2)
    lesions = sizes(d(5, T2), 40, 20) + sizes(d(60, start), 40, 20)
    report = disease_status(d(60, start), "worsened", ref="Observation/worse")
    snap = make_snapshot(
        conditions=[condition("hcc", onset=d(-400, T1))], procedures=[procedure("tace", T1), procedure("tace", T2)],
        medications=[medication("sorafenib", start)], lesions=lesions, disease_status=[report],
    )
    result = assess(snap, AS_OF, knowledge)
    assert result.mrecist.category == "SD"
    assert any("Observation/worse" in w and "SD" in w for w in result.warnings), result.warnings
    # without the report, no such note
    calm = assess(replace(snap, disease_status=()), AS_OF, knowledge)
    assert not any("worsened" in w for w in calm.warnings)
