"""TACE resistance after clinical core III at its edges (written against mutmut's surviving mutants, issue 17).

The series' mRECIST takes a thrombus or metastasis dated on or before the first session as pre-existing and one
dated after it as new; a thrombus or metastasis dated only by recordedDate counts as possibly new when recorded
strictly after the first session and up to the end date (unless refuted or entered in error); a status report
is "after the last session" strictly after it and up to the end date; JSH 2014 cannot call a response
sufficient when a treated lesion was not measured; and the reasons a clinician reads are exact.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from rules.findings import Status
from rules.knowledge import Knowledge
from rules.tace_resistance import evaluate_tace_resistance
from tests.unit.rules.factories import condition, disease_status, lesion, make_snapshot, measurement, procedure

T1 = date(2026, 1, 10)
T2 = date(2026, 3, 10)  # T1 + 59 days
AS_OF = date(2026, 11, 28)
PVTT = "portal_vein_tumour_thrombus"
MET_ = "extrahepatic_metastasis"


def day(n: int, base: date = T2) -> date:
    return base + timedelta(days=n)


def sizes(when: date, a: float, b: float):
    return [lesion("a", when, a), lesion("b", when, b)]


def two_sessions():
    return [procedure("tace", T1, ref="Procedure/t1"), procedure("tace", T2, ref="Procedure/t2")]


def evaluate(knowledge, procedures, lesions=(), *, as_of=AS_OF, sorafenib_start=None, **kw):
    snap = make_snapshot(procedures=procedures, lesions=lesions, **kw)
    return evaluate_tace_resistance(snap, as_of, knowledge, sorafenib_start=sorafenib_start)


def stable_series():
    # baseline 60 mm before T1, 55 mm after T1 and after T2 (SD, no response), the latter within 92 days of T2
    return sizes(day(-5, T1), 40, 20) + sizes(day(30, T1), 37, 18) + sizes(day(40), 38, 18)


def recorded_only(concept: str, recorded: date, ref: str, **kw):
    return replace(condition(concept, ref=ref, **kw), recorded=recorded)


# -- the series' mRECIST: pre-existing or new thrombus / metastasis ----------------------------------------


def test_a_metastasis_with_onset_on_the_first_session_day_is_pre_existing_for_jsh_2014(knowledge):
    # baseline imaging 5 days before T1; the metastasis began on T1 itself: present when the series began
    met = condition(MET_, onset=T1, ref="Condition/met")
    result = evaluate(knowledge, two_sessions(), stable_series(), conditions=[met])
    assert result.status is Status.NOT_MET
    # refractory by the insufficient responses only, not by an appearance of extrahepatic spread
    assert result.jsh_2014.reasons[0] == "Refractory: two consecutive insufficient responses (viable > 50%)."
    assert all(t.category != "PD" for t in result.series_mrecist.timeline)
    # one day later it is new spread, seen on the imaging after T1
    later = condition(MET_, onset=day(1, T1), ref="Condition/met")
    result = evaluate(knowledge, two_sessions(), stable_series(), conditions=[later])
    assert result.jsh_2014.reasons[:2] == (
        "Appearance of new extrahepatic spread on 2026-01-11 after TACE began.",
        "Appearance of new extrahepatic spread on imaging on 2026-02-09 after TACE began.",
    )
    assert result.series_mrecist.timeline[0].category == "PD"


def test_a_metastasis_after_the_imaging_before_the_last_session_is_progression_on_the_imaging_after_it(knowledge):
    # onset between the imaging after T1 (T1+30) and T2: the condition itself follows only T1 (dismissed), but
    # the first imaging after T2 shows spread new since the imaging before T2: PD after two sessions
    met = condition(MET_, onset=day(-10), ref="Condition/met")
    result = evaluate(knowledge, two_sessions(), stable_series(), conditions=[met])
    assert result.status is Status.MET, result.finding.reasons
    assert result.finding.reasons[0] == (
        "2 consecutive TACE sessions (2026-01-10, 2026-03-10); mRECIST PD on imaging (new extrahepatic spread) "
        "on 2026-04-19, 40 days after the last (at most 92)."
    )
    assert result.series_mrecist.timeline[-1].progression == ("new_extrahepatic_spread",)


# -- a thrombus or metastasis dated only by recordedDate ---------------------------------------------------


def test_a_thrombus_recorded_on_the_first_session_day_is_present_when_the_series_began(knowledge):
    pvtt = recorded_only(PVTT, T1, "Condition/pvtt")
    result = evaluate(knowledge, two_sessions(), stable_series(), conditions=[pvtt])
    assert result.status is Status.NOT_MET, result.finding.reasons


def test_a_thrombus_recorded_on_the_day_sorafenib_starts_may_be_new_within_the_window(knowledge):
    start = day(60)
    pvtt = recorded_only(PVTT, start, "Condition/pvtt")
    result = evaluate(knowledge, two_sessions(), stable_series(), sorafenib_start=start, conditions=[pvtt])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons == (
        "Imaging on 2026-04-19 was SD, but vascular invasion (portal-vein tumour thrombus) Condition/pvtt recorded "
        "on 2026-05-09 has no onset date: it may be new vascular invasion or spread within the window.",
    )
    assert result.finding.citation == knowledge.citation("tace_resistance")
    # recorded the day after sorafenib started: outside the series, the stable imaging decides
    after = recorded_only(PVTT, day(61), "Condition/pvtt")
    assert evaluate(knowledge, two_sessions(), stable_series(), sorafenib_start=start,
                    conditions=[after]).status is Status.NOT_MET


def test_two_undated_spreads_are_both_named(knowledge):
    pvtt = recorded_only(PVTT, day(50), "Condition/pvtt")
    met = recorded_only(MET_, day(55), "Condition/met")
    result = evaluate(knowledge, two_sessions(), stable_series(), conditions=[pvtt, met])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons == (
        "Imaging on 2026-04-19 was SD, but vascular invasion (portal-vein tumour thrombus) Condition/pvtt recorded "
        "on 2026-04-29 has no onset date; extrahepatic spread Condition/met recorded on 2026-05-04 has no onset "
        "date: it may be new vascular invasion or spread within the window.",
    )


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_a_refuted_or_erroneous_thrombus_without_onset_does_not_make_the_answer_unknown(knowledge, verification):
    pvtt = recorded_only(PVTT, day(50), "Condition/pvtt", verification_status=verification)
    result = evaluate(knowledge, two_sessions(), stable_series(), conditions=[pvtt])
    assert result.status is Status.NOT_MET, result.finding.reasons


def test_a_refuted_thrombus_does_not_hide_a_valid_one_recorded_after_it(knowledge):
    refuted = recorded_only(PVTT, day(45), "Condition/pvtt-refuted", verification_status="refuted")
    valid = recorded_only(PVTT, day(50), "Condition/pvtt")
    result = evaluate(knowledge, two_sessions(), stable_series(), conditions=[refuted, valid])
    assert result.status is Status.UNKNOWN
    assert "Condition/pvtt recorded on 2026-04-29" in result.finding.reasons[0]
    assert "pvtt-refuted" not in result.finding.reasons[0]


# -- status reports after the last session -----------------------------------------------------------------


def test_a_status_report_on_the_day_of_the_last_session_is_not_after_it(knowledge):
    lesions = sizes(day(-5, T1), 40, 20) + sizes(day(30, T1), 37, 18)
    report = disease_status(T2, "stable", ref="Observation/ds")
    result = evaluate(knowledge, two_sessions(), lesions, disease_status=[report])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons == (
        "Progression within 92 days after the last TACE (2026-03-10) cannot be judged: there is no imaging after it.",
    )


def test_a_status_report_on_the_day_sorafenib_starts_is_read(knowledge):
    lesions = sizes(day(-5, T1), 40, 20) + sizes(day(30, T1), 37, 18)
    start = day(120)
    reports = [disease_status(day(100), "improved", ref="Observation/ds-0"),
               disease_status(start, "stable", ref="Observation/ds")]
    result = evaluate(knowledge, two_sessions(), lesions, sorafenib_start=start, disease_status=reports)
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons == (
        "Progression within 92 days after the last TACE (2026-03-10) cannot be judged: no sized imaging after it "
        "(disease status reported improved on 2026-06-18, Observation/ds-0; disease status reported stable on "
        "2026-07-08, Observation/ds: a trend other than worsened does not measure a response).",
    )
    assert result.finding.citation == knowledge.citation("tace_resistance")


def test_imaging_after_the_window_without_a_category_is_said_not_evaluable(knowledge):
    # baseline without a measurable target (8 mm): the imaging 120 days after T2 has no category
    lesions = [lesion("a", day(-5, T1), 8), lesion("a", day(120), 8)]
    result = evaluate(knowledge, two_sessions(), lesions)
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons == (
        "Progression within 92 days after the last TACE (2026-03-10) cannot be judged: the first imaging after it "
        "(2026-07-08) was not evaluable.",
    )


# -- reasons a clinician reads ------------------------------------------------------------------------------


def test_same_day_records_are_counted_in_the_reason(knowledge):
    procs = [procedure("tace", T1, ref="Procedure/t1"), procedure("tace", T2, ref="Procedure/t2-a"),
             procedure("tace", T2, ref="Procedure/t2-b"), procedure("tace", T2, ref="Procedure/t2-c")]
    result = evaluate(knowledge, procs, stable_series())
    assert "3 TACE records on 2026-03-10 (Procedure/t2-a, Procedure/t2-b, Procedure/t2-c) are one session." in (
        result.finding.reasons
    )


def test_a_progression_after_a_response_names_the_response_that_broke_the_series(knowledge):
    # PR after T1 (-33%); new 12 mm lesion 30 days after T2: only T2 follows the response
    lesions = (sizes(day(-5, T1), 40, 20) + sizes(day(30, T1), 27, 13) + sizes(day(30), 27, 13)
               + [lesion("x", day(30), 12)])
    result = evaluate(knowledge, two_sessions(), lesions)
    assert result.status is Status.NOT_MET
    assert result.finding.reasons[0] == (
        "mRECIST PD on imaging (new lesion) on 2026-04-09 followed only 1 session(s) after the response on 2026-02-09."
    )
    # no response: a new lesion after the first session only (unchanged after the second) names no response
    single = evaluate(knowledge, two_sessions(),
                      sizes(day(-5, T1), 40, 20) + sizes(day(30, T1), 37, 18) + [lesion("x", day(30, T1), 12)]
                      + sizes(day(30), 37, 18) + [lesion("x", day(30), 12)])
    assert single.status is Status.NOT_MET
    assert single.finding.reasons[0] == "mRECIST PD on imaging (new lesion) on 2026-02-09 followed only 1 session(s)."


def test_progression_by_two_kinds_at_once_names_both(knowledge):
    lesions = (sizes(day(-5, T1), 40, 20) + sizes(day(30, T1), 37, 18) + sizes(day(30), 50, 25)
               + [lesion("x", day(30), 12)])
    result = evaluate(knowledge, two_sessions(), lesions)
    assert result.status is Status.MET
    assert "mRECIST PD on imaging (new lesion, target sum) on 2026-04-09" in result.finding.reasons[0]


# -- JSH-LCSGJ 2014 -----------------------------------------------------------------------------------------


def afp(when: date, value: float):
    return measurement("afp", value, when, ref=f"Observation/afp-{when.isoformat()}")


def falling_afp():
    return [afp(day(-3, T1), 100), afp(day(40, T1), 80), afp(day(40), 60)]


def test_jsh_2014_a_treated_lesion_not_measured_after_the_session_leaves_the_response_unknown(knowledge):
    # lesion b is not measured after T1: that response cannot be called sufficient, even though a shrank
    lesions = sizes(day(-5, T1), 40, 20) + [lesion("a", day(40, T1), 15), lesion("a", day(40), 7)]
    result = evaluate(knowledge, two_sessions(), lesions, measurements=falling_afp())
    assert result.jsh_2014.status is Status.UNKNOWN, result.jsh_2014.reasons
    assert result.jsh_2014.reasons[0] == (
        "Cannot decide: missing imaging before and 1-3 months after each of the last two sessions."
    )
    assert (
        "TACE 2026-01-10: viable diameter per treated lesion BodyStructure/a 40 -> 15 mm (38%); "
        "BodyStructure/b 20 mm -> not measured; liver lesions 2 -> 1."
    ) in result.jsh_2014.reasons
    # measured and shrunk by more than half: not refractory
    measured = lesions + [lesion("b", day(40, T1), 8), lesion("b", day(40), 3)]
    assert evaluate(knowledge, two_sessions(), measured, measurements=falling_afp()).jsh_2014.status is Status.NOT_MET


def test_jsh_2014_a_first_session_without_prior_imaging_does_not_stop_the_later_ones(knowledge):
    t3 = day(59)
    procs = [*two_sessions(), procedure("tace", t3, ref="Procedure/t3")]
    # first imaging between T1 and T2; insufficient responses after T2 and after T3
    lesions = sizes(day(-10), 40, 20) + sizes(day(40), 38, 19) + sizes(day(40, t3), 37, 19)
    result = evaluate(knowledge, procs, lesions)
    assert result.jsh_2014.status is Status.MET, result.jsh_2014.reasons
    assert result.jsh_2014.reasons[0] == "Refractory: two consecutive insufficient responses (viable > 50%)."
    assert "TACE 2026-01-10: no imaging before and 1-3 months after." in result.jsh_2014.reasons


def test_jsh_2014_names_every_criterion_met_and_the_approximation(knowledge):
    lesions = sizes(day(-5, T1), 40, 20) + sizes(day(40, T1), 38, 19) + sizes(day(40), 37, 19)
    markers = [afp(day(-3, T1), 100), afp(day(40, T1), 150), afp(day(40), 200)]
    result = evaluate(knowledge, two_sessions(), lesions, measurements=markers)
    assert result.jsh_2014.status is Status.MET
    assert result.jsh_2014.reasons[0] == (
        "Refractory: two consecutive insufficient responses (viable > 50%), AFP higher after two consecutive sessions."
    )
    assert result.jsh_2014.reasons[-1] == (
        "Approximation: the response is read per treated lesion from viable longest diameters (the criterion "
        "speaks of the viable tumour, not a diameter)."
    )


def test_jsh_2014_a_first_session_without_viable_tumour_before_it_does_not_stop_the_later_ones(knowledge):
    t3 = day(59)
    procs = [*two_sessions(), procedure("tace", t3, ref="Procedure/t3")]
    # no viable tumour before T1 (0 mm); viable tumour before T2, insufficient responses after T2 and T3
    lesions = sizes(day(-5, T1), 0, 0) + sizes(day(40, T1), 40, 20) + sizes(day(40), 38, 19) + sizes(day(40, t3), 37, 19)
    result = evaluate(knowledge, procs, lesions)
    assert result.jsh_2014.status is Status.MET, result.jsh_2014.reasons
    assert result.jsh_2014.reasons[0] == "Refractory: two consecutive insufficient responses (viable > 50%)."
    assert "TACE 2026-01-10: no viable tumour before it." in result.jsh_2014.reasons


def test_jsh_2014_reads_afp_within_its_own_window_not_the_imaging_window(knowledge):
    # a site that reads AFP up to 60 days after a session (imaging still 28-92 days): an AFP 80 days after T2
    # is no value after it, so the rise after T2 is unknown
    site = Knowledge(knowledge.value_sets, knowledge.thresholds, {"thresholds": {"jsh_2014": {"marker_after_max_days": 60}}})
    lesions = sizes(day(-5, T1), 40, 20) + sizes(day(40, T1), 15, 8) + sizes(day(40), 6, 3)
    markers = [afp(day(-3, T1), 100), afp(day(40, T1), 150), afp(day(80), 200)]
    result = evaluate(site, two_sessions(), lesions, measurements=markers)
    assert result.jsh_2014.status is Status.UNKNOWN, result.jsh_2014.reasons
    assert result.jsh_2014.reasons[0] == "Cannot decide: missing AFP before and after each of the last two sessions."
    assert evaluate(knowledge, two_sessions(), lesions, measurements=markers).jsh_2014.status is Status.MET


def test_jsh_2014_a_treated_lesion_not_measured_does_not_hide_another_ones_insufficient_response(knowledge):
    # lesion a is never measured after a session; lesion b keeps more than half its viable diameter twice
    lesions = sizes(day(-5, T1), 40, 20) + [lesion("b", day(40, T1), 19), lesion("b", day(40), 18)]
    result = evaluate(knowledge, two_sessions(), lesions)
    assert result.jsh_2014.status is Status.MET, result.jsh_2014.reasons
    assert result.jsh_2014.reasons[0] == "Refractory: two consecutive insufficient responses (viable > 50%)."
    assert (
        "TACE 2026-01-10: viable diameter per treated lesion BodyStructure/a 40 mm -> not measured; "
        "BodyStructure/b 20 -> 19 mm (95%); liver lesions 2 -> 1."
    ) in result.jsh_2014.reasons
