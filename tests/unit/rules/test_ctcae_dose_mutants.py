"""Boundaries and wording of CTCAE grading with a pre-sorafenib baseline and of the dose advice (kills the mutants
tools/mutation.sh reported for rules/ctcae.py and rules/dose.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.ctcae import adverse_events, clinician_graded, hypertension
from rules.dose import current_dose, dose_advice, level_name
from rules.snapshot import BloodPressure, GradedEvent
from rules.treatment import sorafenib_history
from service.render.clinical_json import adverse_event_json
from tests.unit.rules.factories import make_snapshot, measurement, medication

AS_OF = date(2026, 11, 28)
START = AS_OF - timedelta(days=40)


def with_(snap, **fields):
    return snap.__class__(**{**snap.__dict__, **fields})


def sorafenib_snapshot(**fields):
    return with_(make_snapshot(medications=[medication("sorafenib", START, daily_dose_mg=800)]), **fields)


def by_term(events, term):
    return [e for e in events if e.term == term]


# -- baseline -------------------------------------------------------------------------------------------------------


def test_sorafenib_started_on_the_assessment_day_makes_todays_counts_the_baseline(knowledge):
    snap = with_(make_snapshot(medications=[medication("sorafenib", AS_OF, daily_dose_mg=800)]),
                 measurements=(measurement("platelets", 45, AS_OF - timedelta(days=2)),))
    event = by_term(adverse_events(snap, AS_OF, knowledge, sorafenib_start=AS_OF), "thrombocytopenia")[0]
    assert (event.grade, event.baseline_grade, event.worse_than_baseline) == (3, 3, False)
    history = sorafenib_history(snap, AS_OF)
    assert dose_advice(history, adverse_events(snap, AS_OF, knowledge, sorafenib_start=AS_OF), AS_OF,
                       knowledge).next_step == "continue"


def test_a_start_after_the_assessment_date_gives_no_baseline(knowledge):
    snap = sorafenib_snapshot(measurements=(measurement("platelets", 45, AS_OF - timedelta(days=2)),))
    events = adverse_events(snap, AS_OF, knowledge, sorafenib_start=AS_OF + timedelta(days=1))
    assert by_term(events, "thrombocytopenia")[0].baseline_grade is None


def bp(day: date, sys: float, dia: float, ref: str) -> BloodPressure:
    return BloodPressure(day, sys, dia, ref)


def test_the_worse_of_a_measured_and_a_clinician_graded_baseline_counts(knowledge):
    readings = (bp(START - timedelta(days=3), 165, 105, "Observation/bp1"), bp(START - timedelta(days=2), 170, 100, "Observation/bp2"))
    graded = (GradedEvent("hypertension", 1, START - timedelta(days=1), "Observation/g1"),
              GradedEvent("hypertension", 3, AS_OF - timedelta(days=1), "Observation/g2"))
    events = adverse_events(sorafenib_snapshot(blood_pressures=readings, graded_events=graded), AS_OF, knowledge,
                            sorafenib_start=START)
    graded_now = [e for e in by_term(events, "hypertension") if e.evidence == ("Observation/g2",)][0]
    assert (graded_now.baseline_grade, graded_now.baseline_evidence) == (3, ("Observation/bp1", "Observation/bp2"))
    assert graded_now.baseline_date == START - timedelta(days=2) and not graded_now.worse_than_baseline


def test_a_clinician_grade_above_a_measured_grade_0_is_the_baseline(knowledge):
    readings = (bp(START - timedelta(days=3), 110, 70, "Observation/bp1"), bp(START - timedelta(days=2), 112, 72, "Observation/bp2"))
    graded = (GradedEvent("hypertension", 1, START - timedelta(days=1), "Observation/g1"),
              GradedEvent("hypertension", 2, AS_OF - timedelta(days=1), "Observation/g2"))
    events = adverse_events(sorafenib_snapshot(blood_pressures=readings, graded_events=graded), AS_OF, knowledge,
                            sorafenib_start=START)
    graded_now = [e for e in by_term(events, "hypertension") if e.evidence == ("Observation/g2",)][0]
    assert (graded_now.baseline_grade, graded_now.baseline_evidence) == (1, ("Observation/g1",))


def test_equal_baselines_keep_the_measured_one(knowledge):
    readings = (bp(START - timedelta(days=3), 145, 85, "Observation/bp1"), bp(START - timedelta(days=2), 150, 85, "Observation/bp2"))
    graded = (GradedEvent("hypertension", 2, START - timedelta(days=1), "Observation/g1"),
              GradedEvent("hypertension", 3, AS_OF - timedelta(days=1), "Observation/g2"))
    events = adverse_events(sorafenib_snapshot(blood_pressures=readings, graded_events=graded), AS_OF, knowledge,
                            sorafenib_start=START)
    graded_now = [e for e in by_term(events, "hypertension") if e.evidence == ("Observation/g2",)][0]
    assert (graded_now.baseline_grade, graded_now.baseline_evidence) == (2, ("Observation/bp1", "Observation/bp2"))


@pytest.mark.parametrize(
    ("before", "now", "wording"),
    [
        (45, 45, "Already grade 3 before sorafenib ({start}): not worse than baseline"),
        (60, 45, "Baseline before sorafenib: grade 2 ({start}); worse than baseline."),
    ],
)
def test_the_reason_keeps_the_count_and_names_the_baseline_and_its_date(knowledge, before, now, wording):
    snap = sorafenib_snapshot(measurements=(measurement("platelets", now, AS_OF - timedelta(days=2)),
                                            measurement("platelets", before, START)))
    event = by_term(adverse_events(snap, AS_OF, knowledge, sorafenib_start=START), "thrombocytopenia")[0]
    assert event.reason.startswith(f"Platelets {now:g} x10^9/L on ")
    assert wording.format(start=START.isoformat()) in event.reason
    assert event.baseline_evidence == (snap.series("platelets")[0].ref,)


def test_a_baseline_of_grade_0_adds_nothing_to_the_reason(knowledge):
    snap = sorafenib_snapshot(measurements=(measurement("platelets", 45, AS_OF - timedelta(days=2)),
                                            measurement("platelets", 200, START)))
    event = by_term(adverse_events(snap, AS_OF, knowledge, sorafenib_start=START), "thrombocytopenia")[0]
    assert event.baseline_grade == 0 and event.worse_than_baseline and "before sorafenib" not in event.reason


# -- windows ending on the day, 30 days back inclusive --------------------------------------------------------------


@pytest.mark.parametrize(("days_ago", "counted"), [(0, True), (30, True), (31, False)])
def test_clinician_graded_records_count_from_30_days_back_to_the_day(knowledge, days_ago, counted):
    snap = with_(make_snapshot(), graded_events=(GradedEvent("diarrhoea", 3, AS_OF - timedelta(days=days_ago), "Observation/d"),))
    assert bool(clinician_graded(snap, AS_OF, knowledge)) == counted


@pytest.mark.parametrize(("days_ago", "grade"), [(0, 3), (30, 3), (31, None)])
def test_blood_pressure_readings_count_from_30_days_back_to_the_day(knowledge, days_ago, grade):
    readings = (bp(AS_OF - timedelta(days=days_ago), 170, 105, "Observation/a"), bp(AS_OF - timedelta(days=5), 165, 101, "Observation/b"))
    event = hypertension(with_(make_snapshot(), blood_pressures=readings), AS_OF, knowledge)
    assert event.grade == grade


def test_hypertension_reports_its_readings_and_the_latest_date(knowledge):
    readings = tuple(bp(AS_OF - timedelta(days=d), 165, 101, f"Observation/r{d}") for d in (9, 7, 5, 3, 1))
    event = hypertension(with_(make_snapshot(), blood_pressures=readings), AS_OF, knowledge)
    assert (event.term, event.grade, event.date) == ("hypertension", 3, AS_OF - timedelta(days=1))
    assert event.evidence == tuple(f"Observation/r{d}" for d in (9, 7, 5, 3, 1))
    assert event.reason == "Grade 3: reached by 5 of 5 readings within 30 days (165/101, 165/101, 165/101, 165/101 mm[Hg])."
    one = hypertension(with_(make_snapshot(), blood_pressures=(bp(AS_OF, 150, None, "Observation/x"),)), AS_OF, knowledge)
    assert (one.term, one.date, one.evidence) == ("hypertension", AS_OF, ("Observation/x",))


def test_no_platelet_count_is_an_ungraded_event_with_a_reason(knowledge):
    event = adverse_events(make_snapshot(), AS_OF, knowledge)[0]
    assert (event.term, event.grade, event.evidence, event.reason) == (
        "thrombocytopenia", None, (), "No platelet count within 30 days.")
    assert adverse_event_json(event) == {"term": "thrombocytopenia", "grade": None, "evidence": [], "reason": event.reason}


# -- dose --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mg", "index"), [(800, 0), (400, 1), (200, 0 + 2), (800.5, None), (799.999999, 0)])
def test_a_dose_is_a_study_level_only_when_it_equals_it(knowledge, mg, index):
    assert level_name(mg, knowledge)[0] == index


def test_the_current_dose_is_the_latest_record_covering_the_day(knowledge):
    active = medication("sorafenib", START, daily_dose_mg=800, ref="MedicationRequest/a")
    ended = medication("sorafenib", START + timedelta(days=10), end=AS_OF - timedelta(days=1), daily_dose_mg=400,
                       status="completed", ref="MedicationRequest/b")
    later = medication("sorafenib", START + timedelta(days=20), daily_dose_mg=400, ref="MedicationRequest/c")
    history = sorafenib_history(make_snapshot(medications=[active, ended]), AS_OF)
    assert current_dose(history, AS_OF) == (800, ("MedicationRequest/a",))
    history = sorafenib_history(make_snapshot(medications=[active, later]), AS_OF)
    assert current_dose(history, AS_OF) == (400, ("MedicationRequest/c",))


@pytest.mark.parametrize(("start", "end", "covered"), [(AS_OF, None, True), (START, AS_OF, True), (START, AS_OF - timedelta(days=1), False)])
def test_a_record_covers_its_start_and_end_days(knowledge, start, end, covered):
    history = sorafenib_history(make_snapshot(medications=[medication("sorafenib", start, end=end, daily_dose_mg=800)]), AS_OF)
    assert (current_dose(history, AS_OF)[0] == 800) == covered


def advice(knowledge, mg, *events):
    history = sorafenib_history(make_snapshot(medications=[medication("sorafenib", START, daily_dose_mg=mg, ref="MedicationRequest/s")]), AS_OF)
    return dose_advice(history, tuple(events), AS_OF, knowledge)


def ev(term, grade):
    from rules.ctcae import AdverseEvent

    return AdverseEvent(term, grade, AS_OF, ("Observation/e",), "")


def test_the_advice_names_the_dose_its_level_and_the_events(knowledge):
    a = advice(knowledge, 800, ev("thrombocytopenia", 3), ev("diarrhoea", 3))
    assert (a.current_mg_per_day, a.level, a.next_step, a.next_level) == (800, "400 mg twice daily", "interrupt-then-reduce", "400 mg once daily")
    assert a.reasons[0] == "Current dose 800 mg/day: 400 mg twice daily."
    assert a.reasons[-1] == "thrombocytopenia grade 3, diarrhoea grade 3: interrupt until grade 1 or less, then resume at 400 mg once daily."
    assert a.evidence == ("MedicationRequest/s", "Observation/e", "Observation/e") and a.citation == knowledge.citation("sorafenib_dose")
    stop = advice(knowledge, 800, ev("hypertension", 4))
    assert (stop.current_mg_per_day, stop.level, stop.next_step) == (800, "400 mg twice daily", "stop")
    assert stop.reasons[-1] == "Grade 4 hypertension: the label stops sorafenib."
    assert stop.evidence == ("MedicationRequest/s", "Observation/e") and stop.citation == knowledge.citation("sorafenib_dose")


def test_an_unrecorded_or_off_level_dose_is_said_so(knowledge):
    unknown = advice(knowledge, None)
    assert unknown.next_step == "unknown"
    assert unknown.reasons[0] == "The current sorafenib dose is not recorded in a form that gives mg per day."
    odd = advice(knowledge, 600, ev("fatigue", 3))
    assert (odd.current_mg_per_day, odd.level, odd.next_step, odd.next_level) == (600, None, "interrupt-then-reduce", None)
    assert odd.reasons[0] == ("Current dose 600 mg/day is not one of the study's levels (400 mg twice daily, "
                              "400 mg once daily, 400 mg every other day).")
    assert odd.reasons[-1] == "fatigue grade 3: interrupt; the next level cannot be named from this dose."


def test_a_reading_missing_one_pressure_shows_a_question_mark(knowledge):
    readings = (bp(AS_OF - timedelta(days=2), 170, None, "Observation/a"), bp(AS_OF - timedelta(days=1), None, 105, "Observation/b"))
    event = hypertension(with_(make_snapshot(), blood_pressures=readings), AS_OF, knowledge)
    assert event.grade == 3 and "(170/?, ?/105 mm[Hg])" in event.reason
