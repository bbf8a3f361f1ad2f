"""TACE resistance windows at their edges (written against mutmut's surviving mutants).

JSH 2010 as the study applies it: events strictly after the first session and up
to the end date; sessions strictly before the event; a response strictly before
the event breaks the series; progression at most 92 days after the last session.
JSH-LCSGJ 2014: response imaging 28 to 92 days after a session (capped by the next
session, inclusive), AFP baseline up to 30 days before, insufficient response
strictly above 50%, viable liver lesions counted when > 0 mm.

Three tests began as strict ``xfail`` (fixed since): they describe what the rules should do where the
mutation run found a defect (see the note of the mutation-testing change). They
fail today; when the rule is fixed they pass and pytest reports them (strict), so
the marker is removed then.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.findings import Status
from rules.tace_resistance import _two_consecutive, evaluate_jsh_2014, evaluate_tace_resistance
from service.render.clinical_json import finding_json, tace_resistance_json
from tests.unit.rules.factories import condition, disease_status, lesion, make_snapshot, measurement, procedure

T1 = date(2026, 1, 10)
T2 = date(2026, 3, 10)  # T1 + 59 days
AS_OF = date(2026, 11, 28)


def day(n: int, base: date = T2) -> date:
    return base + timedelta(days=n)


def sizes(when: date, a: float, b: float):
    return [lesion("a", when, a), lesion("b", when, b)]


def baseline_and_sd():
    # baseline 60 mm before T1; 55 mm after T1 (SD: no response, nadir 55)
    return sizes(day(-5, T1), 40, 20) + sizes(day(30, T1), 37, 18)


def baseline_and_pr_after_t1():
    # baseline 60 mm before T1; 40 mm 30 days after T1 (-33%, PR): the series restarts after it
    return sizes(day(-5, T1), 40, 20) + sizes(day(30, T1), 27, 13)


def sessions(*days_: date, **kw):
    return [procedure("tace", d, ref=f"Procedure/tace-{d.isoformat()}", **kw) for d in days_]


def evaluate(knowledge, procedures, lesions=(), *, as_of=AS_OF, sorafenib_start=None, **kw):
    snap = make_snapshot(procedures=procedures, lesions=lesions, **kw)
    return evaluate_tace_resistance(snap, as_of, knowledge, sorafenib_start=sorafenib_start)


def worsened(when: date, ref: str | None = None):
    return disease_status(when, "worsened", ref=ref or f"Observation/ds-{when.isoformat()}")


# -- JSH 2010: which events count ------------------------------------------------------------------


def test_a_worsened_report_on_the_day_of_the_first_session_is_not_an_event(knowledge):
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_sd(), disease_status=[worsened(T1)])
    assert result.status is Status.UNKNOWN
    assert not any("worsened" in r for r in result.finding.reasons)


def test_a_worsened_report_on_the_assessment_day_is_an_event(knowledge):
    as_of = day(60)
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_sd(), as_of=as_of, disease_status=[worsened(as_of)])
    assert result.status is Status.MET
    assert result.finding.reasons == (
        "2 consecutive TACE sessions (2026-01-10, 2026-03-10); disease status reported as worsened on 2026-05-09, "
        "60 days after the last (at most 92).",
    )
    assert result.finding.evidence == ("Procedure/tace-2026-01-10", "Procedure/tace-2026-03-10", "Observation/ds-2026-05-09")
    assert result.finding.citation == knowledge.citation("tace_resistance")


def test_cpt_only_sessions_with_progression_are_unknown_with_the_sessions_and_event_as_evidence(knowledge):
    as_of = day(60)
    result = evaluate(knowledge, sessions(T1, T2, specific=False), baseline_and_sd(), as_of=as_of,
                      disease_status=[worsened(as_of)])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons[-1] == (
        "Sessions coded only by CPT 37243 (Procedure/tace-2026-01-10, Procedure/tace-2026-03-10), which also codes "
        "bland and Y-90 embolization: not known to be TACE."
    )
    assert result.finding.evidence == ("Procedure/tace-2026-01-10", "Procedure/tace-2026-03-10", "Observation/ds-2026-05-09")
    assert result.finding.citation == knowledge.citation("tace_resistance")


def test_a_stable_disease_status_report_is_not_progression(knowledge):
    report = disease_status(day(30), "stable")
    assert evaluate(knowledge, sessions(T1, T2), baseline_and_sd(), disease_status=[report]).status is Status.UNKNOWN


def test_a_thrombus_with_onset_on_the_day_of_the_first_session_is_not_a_new_event(knowledge):
    pvtt = condition("portal_vein_tumour_thrombus", onset=T1, ref="Condition/pvtt")
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_sd(), conditions=[pvtt])
    assert not any("on 2026-01-10 followed" in r for r in result.finding.reasons)


def test_a_thrombus_with_onset_on_the_assessment_day_is_progression(knowledge):
    as_of = day(60)
    pvtt = condition("portal_vein_tumour_thrombus", onset=as_of, ref="Condition/pvtt")
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_sd(), as_of=as_of, conditions=[pvtt])
    assert result.status is Status.MET
    assert "new vascular invasion (portal-vein tumour thrombus) on 2026-05-09" in result.finding.reasons[0]


def test_an_undated_thrombus_is_not_an_event(knowledge):
    pvtt = condition("portal_vein_tumour_thrombus", onset=None, ref="Condition/pvtt")
    assert evaluate(knowledge, sessions(T1, T2), baseline_and_sd(), conditions=[pvtt]).status is Status.UNKNOWN


# -- JSH 2010: which sessions form the series -----------------------------------------------------


def test_a_session_on_the_day_of_the_progression_is_not_part_of_the_series_before_it(knowledge):
    t3 = day(100)
    result = evaluate(knowledge, sessions(T1, T2, t3), baseline_and_sd(), disease_status=[worsened(t3)])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons[0] == (
        "Disease status reported as worsened on 2026-06-18 came 100 days after the session of 2026-03-10 (more than 92)."
    )


def test_a_response_seen_on_the_day_of_the_progression_does_not_break_the_series_before_it(knowledge):
    lesions = baseline_and_sd() + sizes(day(30), 20, 10)  # PR on the day the worsening is reported
    result = evaluate(knowledge, sessions(T1, T2), lesions, disease_status=[worsened(day(30))])
    assert result.status is Status.MET


def test_a_session_on_the_day_of_a_response_starts_the_new_series(knowledge):
    # T1; PR on imaging the day of the second session (imaging before the procedure, as for progression);
    # a third session; PD 15 days later: two sessions (day 60 and day 75) followed the response.
    lesions = [lesion("a", day(-5, T1), 40), lesion("a", day(60, T1), 20), lesion("a", day(90, T1), 40)]
    procs = sessions(T1, day(60, T1), day(75, T1))
    assert evaluate(knowledge, procs, lesions).status is Status.MET


def test_a_metastasis_recorded_before_the_first_session_is_not_progression_after_the_series(knowledge):
    # recorded two days before T1, after the baseline scan; the liver tumour is stable throughout
    met = condition("extrahepatic_metastasis", onset=day(-2, T1), ref="Condition/met")
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_sd() + sizes(day(30), 37, 18), conditions=[met])
    assert result.status is Status.NOT_MET
    assert not any(r.startswith("Appearance of new extrahepatic spread") for r in result.jsh_2014.reasons)


def test_without_sorafenib_a_session_on_the_assessment_day_counts(knowledge):
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_sd(), as_of=T2)
    assert result.sessions == ("Procedure/tace-2026-01-10", "Procedure/tace-2026-03-10")
    assert result.status is Status.UNKNOWN
    assert result.series_mrecist is not None


def test_a_session_on_the_day_sorafenib_starts_does_not_count(knowledge):
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_sd() + sizes(day(30), 44, 22), sorafenib_start=T2)
    assert result.status is Status.NOT_MET
    assert result.finding.reasons == (
        "Only 1 completed TACE session before sorafenib start 2026-03-10; at least 2 consecutive sessions are needed.",
    )
    assert result.finding.evidence == ("Procedure/tace-2026-01-10",)
    assert result.finding.citation == knowledge.citation("tace_resistance")


def test_no_session_at_all_says_so(knowledge):
    result = evaluate(knowledge, [], baseline_and_sd())
    assert result.status is Status.NOT_MET and result.sessions == () and result.series_mrecist is None
    assert result.finding.reasons == (
        "No completed TACE session before 2026-11-28; at least 2 consecutive sessions are needed.",
    )


def test_progression_after_a_response_with_no_session_since_is_not_resistance(knowledge):
    # PR 30 days after T2 leaves no session after it before the PD 30 days later
    lesions = sizes(day(-5, T1), 40, 20) + sizes(day(30), 27, 13) + sizes(day(60), 33, 16)
    result = evaluate(knowledge, sessions(T1, T2), lesions)
    assert result.status is Status.NOT_MET
    assert "followed only 0 session(s) after the response on 2026-04-09" in result.finding.reasons[0]


@pytest.mark.parametrize(("gap", "status"), [(91, Status.NOT_MET), (92, Status.NOT_MET), (93, Status.UNKNOWN)])
def test_a_progression_after_too_short_a_series_closes_the_window_only_within_92_days(knowledge, gap, status):
    # the PR after T1 leaves only T2 in the series; the worsening comes `gap` days after T2, with no imaging then
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_pr_after_t1(), disease_status=[worsened(day(gap))])
    assert result.status is status
    assert result.finding.reasons[0] == (
        f"Disease status reported as worsened on {day(gap).isoformat()} followed only 1 session(s) "
        "after the response on 2026-02-09."
    )
    if status is Status.NOT_MET:
        assert result.finding.reasons[-1] == (
            "The progression after the last TACE (2026-03-10) did not follow 2 consecutive sessions without response."
        )
        assert f"Observation/ds-{day(gap).isoformat()}" in result.finding.evidence


def test_an_early_dismissed_event_does_not_hide_a_later_qualifying_one(knowledge):
    lesions = baseline_and_sd() + sizes(day(30), 44, 22)
    result = evaluate(knowledge, sessions(T1, T2), lesions, disease_status=[worsened(day(20, T1))])
    assert result.status is Status.MET
    assert "mRECIST PD on imaging (target sum) on 2026-04-09, 30 days after the last" in result.finding.reasons[0]


def test_a_late_event_does_not_hide_a_later_one_after_a_third_session(knowledge):
    t3 = day(120)
    reports = [worsened(day(100)), worsened(day(30, t3))]
    result = evaluate(knowledge, sessions(T1, T2, t3), baseline_and_sd(), disease_status=reports)
    assert result.status is Status.MET
    assert result.finding.reasons[0].startswith("3 consecutive TACE sessions (2026-01-10, 2026-03-10, 2026-07-08);")
    assert "30 days after the last" in result.finding.reasons[0]


# -- JSH 2010: the 92-day window after the last session -------------------------------------------


def test_the_window_runs_from_the_last_of_three_sessions(knowledge):
    t3 = day(120)
    lesions = baseline_and_sd() + sizes(day(40, t3), 37, 18)
    result = evaluate(knowledge, sessions(T1, T2, t3), lesions)
    assert result.status is Status.NOT_MET
    assert result.finding.reasons[-1] == (
        "No progression within 92 days after the last TACE (2026-07-08): imaging on 2026-08-17 was SD."
    )


def test_imaging_on_the_day_of_the_last_session_is_not_after_it(knowledge):
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_sd() + sizes(T2, 37, 18))
    assert result.status is Status.UNKNOWN
    assert result.finding.evidence == ("Procedure/tace-2026-01-10", "Procedure/tace-2026-03-10")
    assert result.finding.citation == knowledge.citation("tace_resistance")
    assert result.finding.reasons[-1] == (
        "Progression within 92 days after the last TACE (2026-03-10) cannot be judged: there is no imaging after it."
    )


@pytest.mark.parametrize(("after", "status"), [(91, Status.NOT_MET), (92, Status.NOT_MET), (93, Status.UNKNOWN)])
def test_stable_imaging_up_to_92_days_after_the_last_session_closes_the_window(knowledge, after, status):
    lesions = baseline_and_sd() + sizes(day(after), 37, 18)
    result = evaluate(knowledge, sessions(T1, T2), lesions)
    assert result.status is status
    when = day(after).isoformat()
    if status is Status.NOT_MET:
        assert result.finding.reasons[-1] == (
            f"No progression within 92 days after the last TACE (2026-03-10): imaging on {when} was SD."
        )
        assert f"Observation/size-a-{when.replace('-', '')}" in result.finding.evidence
        assert result.finding.citation == knowledge.citation("tace_resistance")
    else:
        assert result.finding.reasons[-1] == (
            "Progression within 92 days after the last TACE (2026-03-10) cannot be judged: "
            f"the first imaging after it ({when}) was SD."
        )


def test_the_first_of_several_later_images_is_named(knowledge):
    lesions = baseline_and_sd() + sizes(day(100), 37, 18) + sizes(day(140), 20, 10)
    result = evaluate(knowledge, sessions(T1, T2), lesions)
    assert result.finding.reasons[-1].endswith("the first imaging after it (2026-06-18) was SD.")


@pytest.mark.parametrize(
    ("elapsed", "tail"),
    [(92, "there is no imaging after it yet (the 92-day window ends 2026-06-10)."), (93, "there is no imaging after it.")],
)
def test_an_open_window_is_said_to_be_open_up_to_92_days_after_the_last_session(knowledge, elapsed, tail):
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_sd(), as_of=day(elapsed))
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons[-1] == (
        f"Progression within 92 days after the last TACE (2026-03-10) cannot be judged: {tail}"
    )


# -- JSH-LCSGJ 2014 --------------------------------------------------------------------------------


def jsh_2014(knowledge, procedures, lesions=(), *, as_of=AS_OF, sorafenib_start=None, **kw):
    return evaluate(knowledge, procedures, lesions, as_of=as_of, sorafenib_start=sorafenib_start, **kw).jsh_2014


def afp(*values: tuple[date, float]):
    return [measurement("afp", v, d) for d, v in values]


FALLING_AFP = afp((day(-3, T1), 100), (day(40, T1), 90), (day(40), 80))


def liver(when: date, **mm: float):
    return [lesion(name, when, value) for name, value in mm.items()]


def test_jsh_2014_ignores_sessions_from_the_day_sorafenib_starts(knowledge):
    result = jsh_2014(knowledge, sessions(T1, T2), baseline_and_sd(), sorafenib_start=T2)
    assert result.status is Status.NOT_MET
    assert result.reasons == ("1 completed TACE session(s): at least 2 are needed.",)
    assert result.evidence == ("Procedure/tace-2026-01-10",)
    assert result.citation == knowledge.citation("jsh_2014")


def test_jsh_2014_ignores_sessions_after_sorafenib_started(knowledge):
    result = jsh_2014(knowledge, sessions(T1, T2), baseline_and_sd(), sorafenib_start=day(-1))
    assert result.status is Status.NOT_MET


def test_jsh_2014_counts_a_session_on_the_assessment_day_without_sorafenib(knowledge):
    pvtt = condition("portal_vein_tumour_thrombus", onset=T2, ref="Condition/pvtt")
    result = jsh_2014(knowledge, sessions(T1, T2), baseline_and_sd(), as_of=T2, conditions=[pvtt])
    assert result.status is Status.MET


@pytest.mark.parametrize(
    ("onset", "appears"),
    [(T1, False), (day(1, T1), True), (day(-1), True), (day(60), True), (None, False)],
)
def test_jsh_2014_vascular_invasion_appears_after_the_first_session_up_to_the_end(knowledge, onset, appears):
    as_of = day(60)
    pvtt = condition("portal_vein_tumour_thrombus", onset=onset, ref="Condition/pvtt")
    result = jsh_2014(knowledge, sessions(T1, T2), baseline_and_sd(), as_of=as_of, conditions=[pvtt])
    assert (result.status is Status.MET) is appears
    if appears:
        assert result.reasons == (
            f"Appearance of new vascular invasion (portal-vein tumour thrombus) on {onset.isoformat()} after TACE began.",
        )
        assert result.evidence == ("Condition/pvtt",)
        assert result.citation == knowledge.citation("jsh_2014")


def test_jsh_2014_new_extrahepatic_spread_on_imaging_appears(knowledge):
    lesions = liver(day(-5, T1), a=40) + liver(day(40, T1), a=30) + [lesion("z", day(40, T1), 10, organ="lung")]
    result = jsh_2014(knowledge, sessions(T1, T2), lesions)
    assert result.status is Status.MET
    assert result.reasons == ("Appearance of new extrahepatic spread on imaging on 2026-02-19 after TACE began.",)
    assert result.evidence == ("Observation/size-z-20260219",)


@pytest.mark.parametrize(
    ("after", "status"),
    [(27, Status.UNKNOWN), (28, Status.MET), (92, Status.MET), (93, Status.UNKNOWN)],
)
def test_jsh_2014_response_imaging_is_read_28_to_92_days_after_the_session(knowledge, after, status):
    lesions = liver(day(-5, T1), a=40) + liver(day(40, T1), a=30) + liver(day(after), a=30)
    result = jsh_2014(knowledge, sessions(T1, T2), lesions)
    assert result.status is status
    assert result.citation == knowledge.citation("jsh_2014")
    if status is Status.MET:
        assert result.reasons[0] == "Refractory: two consecutive insufficient responses (viable > 50%)."
        assert result.reasons[1] == (
            "TACE 2026-01-10: viable diameter per treated lesion BodyStructure/a 40 -> 30 mm (75%); liver lesions 1 -> 1."
        )
        assert "Observation/size-a-20260105" in result.evidence


def test_jsh_2014_imaging_on_the_day_of_the_next_session_is_both_the_response_and_the_new_baseline(knowledge):
    # 40 -> 30 (75%) after T1, read on the day of T2; 30 -> 20 (67%) after T2: two insufficient responses.
    # Were the day-of image not the baseline of T2, 40 -> 20 (50%) would not be insufficient.
    lesions = liver(day(-5, T1), a=40) + liver(T2, a=30) + liver(day(40), a=20)
    assert jsh_2014(knowledge, sessions(T1, T2), lesions).status is Status.MET


def test_jsh_2014_imaging_after_the_next_session_is_not_the_response_to_the_previous_one(knowledge):
    lesions = liver(day(-5, T1), a=40) + liver(day(30), a=35)  # 89 days after T1 but after T2
    result = jsh_2014(knowledge, sessions(T1, T2), lesions)
    assert result.status is Status.UNKNOWN
    assert "TACE 2026-01-10: no imaging before and 1-3 months after." in result.reasons


def test_jsh_2014_each_of_three_sessions_is_read_in_its_own_window(knowledge):
    t3 = day(59)
    lesions = liver(day(-5, T1), a=40) + liver(day(40, T1), a=30) + liver(day(40), a=25) + liver(day(40, t3), a=24)
    result = jsh_2014(knowledge, sessions(T1, T2, t3), lesions)
    assert result.status is Status.MET


@pytest.mark.parametrize("first_image", ["none before", "no viable tumour before"])
def test_jsh_2014_a_first_session_that_cannot_be_read_does_not_stop_the_next_two(knowledge, first_image):
    t3 = day(59)
    before = [] if first_image == "none before" else liver(day(-5, T1), a=0)
    lesions = before + liver(day(40, T1), a=30) + liver(day(40), a=30) + liver(day(40, t3), a=30)
    result = jsh_2014(knowledge, sessions(T1, T2, t3), lesions)
    assert result.status is Status.MET
    expected = (
        "TACE 2026-01-10: no imaging before and 1-3 months after."
        if first_image == "none before"
        else "TACE 2026-01-10: no viable tumour before it."
    )
    assert result.reasons[1] == expected


def test_jsh_2014_a_viable_sum_of_1_mm_before_a_session_is_still_tumour(knowledge):
    lesions = liver(day(-5, T1), a=1) + liver(day(40, T1), a=1) + liver(day(40), a=1)
    assert jsh_2014(knowledge, sessions(T1, T2), lesions).status is Status.MET


@pytest.mark.parametrize(("post", "status"), [(14.9, Status.NOT_MET), (15, Status.NOT_MET), (15.1, Status.MET)])
def test_jsh_2014_insufficient_response_is_strictly_above_50_percent_viable(knowledge, post, status):
    lesions = liver(day(-5, T1), a=40) + liver(day(40, T1), a=30) + liver(day(40), a=post)
    result = jsh_2014(knowledge, sessions(T1, T2), lesions, measurements=FALLING_AFP)
    assert result.status is status
    if status is Status.NOT_MET:
        assert result.reasons[0] == (
            "No refractoriness criterion met after the last two sessions; no new vascular invasion or extrahepatic spread."
        )
        assert "TACE 2026-01-10: AFP 100 -> 90 ng/mL." in result.reasons
        assert "Observation/afp-20260107-100" in result.evidence and "Observation/size-a-20260105" in result.evidence
        assert result.citation == knowledge.citation("jsh_2014")


GOOD_RESPONSE = liver(day(-5, T1), a=40) + liver(day(40, T1), a=10) + liver(day(40), a=4)


@pytest.mark.parametrize(("baseline_age", "status"), [(30, Status.MET), (31, Status.UNKNOWN)])
def test_jsh_2014_an_afp_baseline_counts_up_to_30_days_before_the_session(knowledge, baseline_age, status):
    values = afp((day(-baseline_age, T1), 100), (day(40, T1), 120), (day(40), 150))
    result = jsh_2014(knowledge, sessions(T1, T2), GOOD_RESPONSE, measurements=values)
    assert result.status is status
    if status is Status.MET:
        assert result.reasons[0] == "Refractory: AFP higher after two consecutive sessions."


def test_jsh_2014_a_first_session_without_afp_does_not_stop_the_next_two(knowledge):
    t3 = day(59)
    values = afp((day(-3), 100), (day(40), 120), (day(40, t3), 150))
    result = jsh_2014(knowledge, sessions(T1, T2, t3), GOOD_RESPONSE, measurements=values)
    assert result.status is Status.MET
    assert "TACE 2026-01-10: no AFP before and after." in result.reasons


def test_jsh_2014_an_afp_on_the_day_of_a_session_is_its_baseline(knowledge):
    values = afp((T1, 100), (day(40, T1), 120), (day(40), 150))
    assert jsh_2014(knowledge, sessions(T1, T2), GOOD_RESPONSE, measurements=values).status is Status.MET


def test_jsh_2014_an_afp_on_the_day_of_a_session_is_not_a_value_after_it(knowledge):
    values = afp((day(-3, T1), 100), (day(40, T1), 120), (T2, 130))
    result = jsh_2014(knowledge, sessions(T1, T2), GOOD_RESPONSE, measurements=values)
    assert result.status is Status.UNKNOWN
    assert result.reasons[0] == "Cannot decide: missing AFP before and after each of the last two sessions."


def test_jsh_2014_an_afp_on_the_day_of_the_next_session_is_the_value_after_the_previous_one(knowledge):
    values = afp((day(-3, T1), 100), (T2, 130), (day(40), 150))
    assert jsh_2014(knowledge, sessions(T1, T2), GOOD_RESPONSE, measurements=values).status is Status.MET


@pytest.mark.parametrize(("step", "status"), [(0, Status.NOT_MET), (1, Status.MET)])
def test_jsh_2014_an_unchanged_afp_is_not_a_rise_and_one_more_is(knowledge, step, status):
    values = afp((day(-3, T1), 100), (day(40, T1), 100 + step), (day(40), 100 + 2 * step))
    assert jsh_2014(knowledge, sessions(T1, T2), GOOD_RESPONSE, measurements=values).status is status


def test_jsh_2014_two_consecutive_increases_in_viable_liver_lesions_alone_are_refractoriness(knowledge):
    # 1 -> 2 -> 3 viable liver lesions (the third 1 mm), viable sums 40 -> 15 -> 6 mm (good responses), AFP falling
    lesions = liver(day(-5, T1), a=40) + liver(day(40, T1), a=10, b=5) + liver(day(40), a=3, b=2, c=1)
    result = jsh_2014(knowledge, sessions(T1, T2), lesions, measurements=FALLING_AFP)
    assert result.status is Status.MET
    assert result.reasons[0] == "Refractory: two consecutive increases in liver lesions."
    assert result.reasons[1] == (
        "TACE 2026-01-10: viable diameter per treated lesion BodyStructure/a 40 -> 10 mm (25%); liver lesions 1 -> 2."
    )
    assert "TACE 2026-03-10: AFP 90 -> 80 ng/mL." in result.reasons


def test_jsh_2014_lesions_at_0_mm_are_not_viable_lesions(knowledge):
    lesions = liver(day(-5, T1), a=40) + liver(day(40, T1), a=10, b=0) + liver(day(40), a=4, b=0, c=0)
    result = jsh_2014(knowledge, sessions(T1, T2), lesions, measurements=FALLING_AFP)
    assert result.status is Status.NOT_MET
    assert (
        "TACE 2026-03-10: viable diameter per treated lesion BodyStructure/a 10 -> 4 mm (40%); liver lesions 1 -> 1."
        in result.reasons
    )


def test_jsh_2014_extrahepatic_lesions_are_not_counted_as_liver_lesions(knowledge):
    # lung lesions known (0 mm) at baseline become viable: not new spread, and not liver lesions
    lungs = [lesion("x", day(-5, T1), 0, organ="lung"), lesion("y", day(-5, T1), 0, organ="lung"),
             lesion("x", day(40, T1), 10, organ="lung"), lesion("y", day(40, T1), 0, organ="lung"),
             lesion("x", day(40), 10, organ="lung"), lesion("y", day(40), 10, organ="lung")]
    lesions = GOOD_RESPONSE + lungs
    result = jsh_2014(knowledge, sessions(T1, T2), lesions, measurements=FALLING_AFP)
    assert "two consecutive increases in liver lesions" not in result.reasons[0]
    assert all("liver lesions 1 -> 1." in r for r in result.reasons if r.startswith("TACE") and "viable" in r)


def test_jsh_2014_a_stable_lung_metastasis_does_not_make_a_good_liver_response_insufficient(knowledge):
    lung = [lesion("x", d, 30, organ="lung") for d in (day(-5, T1), day(40, T1), day(40))]
    result = jsh_2014(knowledge, sessions(T1, T2), GOOD_RESPONSE + lung, measurements=FALLING_AFP)
    assert result.status is Status.NOT_MET


def test_jsh_2014_names_every_missing_input_when_it_cannot_decide(knowledge):
    result = jsh_2014(knowledge, sessions(T1, T2), liver(day(-5, T1), a=40))
    assert result.status is Status.UNKNOWN
    assert result.reasons[0] == (
        "Cannot decide: missing imaging before and 1-3 months after each of the last two sessions "
        "and AFP before and after each of the last two sessions."
    )


def test_jsh_2014_a_known_insufficient_response_with_unknown_markers_names_only_the_markers(knowledge):
    lesions = liver(day(-5, T1), a=40) + liver(day(40, T1), a=10) + liver(day(40), a=4)
    result = jsh_2014(knowledge, sessions(T1, T2), lesions)
    assert result.reasons[0] == "Cannot decide: missing AFP before and after each of the last two sessions."
    assert result.evidence  # the imaging read


def test_jsh_2014_called_directly_without_the_series_mrecist_still_reads_conditions(knowledge):
    pvtt = condition("portal_vein_tumour_thrombus", onset=day(5), ref="Condition/pvtt")
    snap = make_snapshot(procedures=sessions(T1, T2), conditions=[pvtt])
    assert evaluate_jsh_2014(snap, AS_OF, knowledge, sorafenib_start=None, series_mrecist=None).status is Status.MET


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], None),
        ([True], None),
        ([True, True], True),
        ([False, True, True], True),
        ([True, False, True], False),
        ([True, False], False),
        ([False, False], False),
        ([False, None], None),
        ([None, False], None),
        ([False, False, None], None),
        ([None, False, False], False),
    ],
)
def test_two_consecutive_needs_a_true_pair_or_the_last_two_known(flags, expected):
    assert _two_consecutive(flags) is expected


def test_the_resistance_dict_names_the_definition_sessions_and_jsh_2014(knowledge):
    result = evaluate(knowledge, sessions(T1, T2), baseline_and_sd())
    data = tace_resistance_json(result)
    assert data["definition"] == "JSH-2010" and data["status"] == "unknown"
    assert data["tace_sessions"] == ["Procedure/tace-2026-01-10", "Procedure/tace-2026-03-10"]
    assert data["jsh_2014"] == finding_json(result.jsh_2014)
