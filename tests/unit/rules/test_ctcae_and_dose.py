"""CTCAE v4.0 grading at its boundaries, and the study's dose steps."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.ctcae import AdverseEvent, hypertension, platelet_grade, thrombocytopenia
from rules.dose import dose_advice
from rules.snapshot import BloodPressure
from rules.treatment import sorafenib_history
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
