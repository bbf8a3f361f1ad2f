"""CTCAE v4.0 grading at its boundaries, and the study's dose steps."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.ctcae import AdverseEvent, adverse_events, hypertension, platelet_grade, thrombocytopenia
from rules.dose import dose_advice
from rules.snapshot import BloodPressure, GradedEvent
from rules.treatment import sorafenib_history
from service.render.clinical_json import adverse_event_json
from tests.unit.rules.factories import make_snapshot, measurement, medication

AS_OF = date(2026, 11, 28)


@pytest.mark.parametrize(
    ("platelets", "grade"),
    [(150, 0), (149, 1), (75, 1), (74.9, 2), (50, 2), (49.9, 3), (25, 3), (24.9, 4), (5, 4)],
)
def test_platelet_grades_at_75_50_25(knowledge, platelets, grade):
    assert platelet_grade(platelets, knowledge) == grade


def test_thrombocytopenia_from_the_latest_fresh_count_and_unknown_without_one(knowledge):
    snap = make_snapshot(measurements=[measurement("platelets", 200, AS_OF - timedelta(days=20)),
                                       measurement("platelets", 48, AS_OF - timedelta(days=2))])
    assert thrombocytopenia(snap, AS_OF, knowledge).grade == 3
    stale = make_snapshot(measurements=[measurement("platelets", 48, AS_OF - timedelta(days=31))])
    assert thrombocytopenia(stale, AS_OF, knowledge).grade is None


def bp(days_ago: int, sys: float, dia: float, ref: str) -> BloodPressure:
    return BloodPressure(AS_OF - timedelta(days=days_ago), sys, dia, ref)


@pytest.mark.parametrize(
    ("readings", "grade"),
    [
        ([(139, 89), (139, 89)], 1),
        ([(140, 85), (130, 90)], 2),  # 140 systolic and 90 diastolic: each reaches grade 2
        ([(159, 99), (150, 95)], 2),
        ([(160, 95), (150, 100)], 3),
        ([(160, 100), (130, 85)], 1),  # one reading at grade 3 does not make grade 3
        ([(119, 79), (118, 70)], 0),
    ],
)
def test_hypertension_needs_two_readings_reaching_the_grade(knowledge, readings, grade):
    snap = make_snapshot()
    snap = snap.__class__(**{**snap.__dict__, "blood_pressures": tuple(bp(i + 1, s, d, f"Observation/bp{i}") for i, (s, d) in enumerate(readings))})
    assert hypertension(snap, AS_OF, knowledge).grade == grade


def test_one_reading_cannot_grade_hypertension(knowledge):
    snap = make_snapshot()
    snap = snap.__class__(**{**snap.__dict__, "blood_pressures": (bp(1, 170, 110, "Observation/bp"),)})
    result = hypertension(snap, AS_OF, knowledge)
    assert result.grade is None and "at least 2" in result.reason


def on_sorafenib(mg: float):
    return sorafenib_history(make_snapshot(medications=[medication("sorafenib", AS_OF - timedelta(days=40), daily_dose_mg=mg)]), AS_OF)


def event(term: str, grade: int) -> AdverseEvent:
    return AdverseEvent(term, grade, AS_OF, ("Observation/ae",), "")


@pytest.mark.parametrize(
    ("mg", "events", "step", "next_level"),
    [
        (800, (), "continue", "400 mg twice daily"),
        (800, (event("diarrhoea", 2),), "continue", "400 mg twice daily"),
        (800, (event("diarrhoea", 3),), "interrupt-then-reduce", "400 mg once daily"),
        (400, (event("hand-foot skin reaction", 3),), "interrupt-then-reduce", "400 mg every other day"),
        (200, (event("fatigue", 3),), "stop", None),
        (800, (event("hypertension", 4),), "stop", None),
    ],
)
def test_dose_steps_800_400_qd_400_qod_interrupt_on_grade_3_and_label_stops(knowledge, mg, events, step, next_level):
    advice = dose_advice(on_sorafenib(mg), events, AS_OF, knowledge)
    assert (advice.next_step, advice.next_level) == (step, next_level)


# -- baseline before sorafenib (PRODUCT.md, Adverse events) -----------------------------------------------------------

START = AS_OF - timedelta(days=40)


def platelets_snapshot(before: float | None, now: float, *, before_day: date = START):
    counts = [measurement("platelets", now, AS_OF - timedelta(days=2))]
    if before is not None:
        counts.append(measurement("platelets", before, before_day))
    return make_snapshot(
        measurements=counts, medications=[medication("sorafenib", START, daily_dose_mg=800)]
    )


def advice_for(snap, k):
    history = sorafenib_history(snap, AS_OF)
    return dose_advice(history, adverse_events(snap, AS_OF, k, sorafenib_start=history.start), AS_OF, k)


@pytest.mark.parametrize(
    ("before", "now", "step"),
    [
        (45, 45, "continue"),   # grade 3 before sorafenib, grade 3 now: not worse -> no interruption
        (45, 26, "continue"),   # still grade 3 (25-50): not worse
        (45, 24.9, "interrupt-then-reduce"),  # grade 4 now: worse than the grade-3 baseline
        (80, 49.9, "interrupt-then-reduce"),  # grade 1 before, grade 3 now
        (None, 45, "interrupt-then-reduce"),  # no baseline count: the grade drives the advice
    ],
)
def test_low_platelets_before_sorafenib_drive_dose_advice_only_when_worse(knowledge, before, now, step):
    assert advice_for(platelets_snapshot(before, now), knowledge).next_step == step


def test_the_baseline_is_reported_with_the_event(knowledge):
    snap = platelets_snapshot(45, 45)
    event = next(e for e in adverse_events(snap, AS_OF, knowledge, sorafenib_start=START) if e.term == "thrombocytopenia")
    assert (event.grade, event.baseline_grade, event.baseline_date) == (3, 3, START)
    assert adverse_event_json(event)["baseline"]["grade"] == 3 and "before sorafenib" in event.reason
    advice = advice_for(snap, knowledge)
    assert any("already grade 3 before sorafenib" in r for r in advice.reasons)


@pytest.mark.parametrize(("days_before_start", "baseline"), [(0, 3), (30, 3), (31, None)])
def test_the_baseline_count_is_the_latest_within_30_days_up_to_the_start_day(knowledge, days_before_start, baseline):
    snap = platelets_snapshot(45, 45, before_day=START - timedelta(days=days_before_start))
    event = next(e for e in adverse_events(snap, AS_OF, knowledge, sorafenib_start=START) if e.term == "thrombocytopenia")
    assert event.baseline_grade == baseline


def test_a_count_after_the_start_is_not_a_baseline(knowledge):
    snap = platelets_snapshot(45, 45, before_day=START + timedelta(days=1))
    event = next(e for e in adverse_events(snap, AS_OF, knowledge, sorafenib_start=START) if e.term == "thrombocytopenia")
    assert event.baseline_grade is None and event.worse_than_baseline


def test_without_a_sorafenib_start_events_carry_no_baseline(knowledge):
    snap = platelets_snapshot(45, 45)
    assert all(e.baseline_grade is None for e in adverse_events(snap, AS_OF, knowledge))


# -- label stop from a clinician-graded record ---------------------------------------------------------------------------


def graded_snapshot(*events: tuple[str, int, date]):
    snap = make_snapshot(medications=[medication("sorafenib", START, daily_dose_mg=800)])
    graded = tuple(GradedEvent(term, grade, when, f"Observation/g{i}") for i, (term, grade, when) in enumerate(events))
    return snap.__class__(**{**snap.__dict__, "graded_events": graded})


@pytest.mark.parametrize(("grade", "step"), [(4, "stop"), (3, "interrupt-then-reduce"), (2, "continue")])
def test_clinician_graded_hypertension_grade_4_stops_sorafenib(knowledge, grade, step):
    advice = advice_for(graded_snapshot(("hypertension", grade, AS_OF - timedelta(days=1))), knowledge)
    assert advice.next_step == step
    if grade == 4:
        assert any("Grade 4 hypertension" in r for r in advice.reasons)


def test_a_grade_4_hypertension_stops_the_drug_even_when_it_was_grade_4_before_sorafenib(knowledge):
    # a label stop is never waived by a baseline
    snap = graded_snapshot(("hypertension", 4, START - timedelta(days=1)), ("hypertension", 4, AS_OF - timedelta(days=1)))
    events = adverse_events(snap, AS_OF, knowledge, sorafenib_start=START)
    assert [(e.grade, e.baseline_grade) for e in events if e.term == "hypertension" and e.baseline_grade] == [(4, 4)]
    assert advice_for(snap, knowledge).next_step == "stop"


def test_a_clinician_graded_term_already_at_grade_3_before_sorafenib_does_not_interrupt(knowledge):
    snap = graded_snapshot(("diarrhoea", 3, START - timedelta(days=2)), ("diarrhoea", 3, AS_OF - timedelta(days=1)))
    assert advice_for(snap, knowledge).next_step == "continue"
    worse = graded_snapshot(("diarrhoea", 2, START - timedelta(days=2)), ("diarrhoea", 3, AS_OF - timedelta(days=1)))
    assert advice_for(worse, knowledge).next_step == "interrupt-then-reduce"
