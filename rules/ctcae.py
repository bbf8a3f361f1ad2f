"""Adverse events graded by NCI-CTCAE v4.0, as the source study graded them.

- Thrombocytopenia from platelets (x10^9/L): grade 1 < LLN to 75, 2 < 75 to 50,
  3 < 50 to 25, 4 < 25.
- Hypertension from blood-pressure readings: a grade counts only when at least two
  readings in the window reach it (systolic 120/140/160 or diastolic 80/90/100
  mm[Hg] for grades 1/2/3).
- Clinician-graded terms (hand-foot skin reaction, diarrhoea, fatigue, anorexia,
  rash, and hypertension, so that a label stop can fire) are read as recorded.
- Baseline (PRODUCT.md, Adverse events): given the sorafenib start, each term is also
  graded at that date (the same windows, ending on the start day); a grade already
  present then is reported with its baseline, and ``worse_than_baseline`` says whether
  the current grade goes beyond it (only then does it drive dose advice).
Cut-offs and windows: ``rules/data/thresholds.json``, group ``ctcae``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from datetime import date

from rules import wording
from rules.knowledge import Knowledge
from rules.snapshot import BloodPressure, Snapshot
from rules.timing import days_before, taken_within


@dataclass(frozen=True)
class AdverseEvent:
    term: str
    grade: int | None  # None: cannot be graded (reason says why)
    date: date | None
    evidence: tuple[str, ...]
    reason: str
    # the grade of the same term before sorafenib started (None: no sorafenib start given, or not gradable then)
    baseline_grade: int | None = None
    baseline_date: datetime.date | None = None
    baseline_evidence: tuple[str, ...] = ()

    @property
    def worse_than_baseline(self) -> bool:
        """Graded, and beyond the pre-sorafenib grade (no known baseline: any grade counts)."""
        if self.grade is None:
            return False
        return self.baseline_grade is None or self.grade > self.baseline_grade


def platelet_grade(platelets: float, k: Knowledge) -> int:
    """CTCAE v4.0 'platelet count decreased' grade for a count in 10^9/L (0: not decreased)."""
    for grade, below in k.criteria.ctcae.platelets_below:
        if platelets < below:
            return grade
    return 0


def reading_grade(reading: BloodPressure, k: Knowledge) -> int:
    """The hypertension grade one reading reaches (the higher of systolic and diastolic)."""
    grade = 0
    for level, sys_from, dia_from in k.criteria.ctcae.hypertension_from:
        if (reading.systolic is not None and reading.systolic >= sys_from) or (
            reading.diastolic is not None and reading.diastolic >= dia_from
        ):
            grade = level
    return grade


def _fmt(r: BloodPressure) -> str:
    sys = f"{r.systolic:g}" if r.systolic is not None else "?"
    dia = f"{r.diastolic:g}" if r.diastolic is not None else "?"
    return f"{sys}/{dia}"


def thrombocytopenia(snapshot: Snapshot, as_of: date, k: Knowledge) -> AdverseEvent:
    window = k.criteria.freshness.lab_max_age_days
    earliest = days_before(as_of, window)
    recent = taken_within(snapshot.series("platelets"), earliest, as_of)
    if not recent:
        return AdverseEvent("thrombocytopenia", None, None, (), wording.ctcae_no_platelet_count_within_days(window))
    latest = recent[-1]
    grade = platelet_grade(latest.value, k)
    return AdverseEvent(
        "thrombocytopenia",
        grade,
        latest.when,
        (latest.ref,),
        wording.ctcae_platelets_x10_l_grade(latest.value, latest.when.isoformat(), grade),
    )


def hypertension(snapshot: Snapshot, as_of: date, k: Knowledge) -> AdverseEvent:
    window = k.criteria.ctcae.readings_max_age_days
    needed = k.criteria.ctcae.hypertension_min_readings
    earliest = days_before(as_of, window)
    readings = sorted(
        (r for r in snapshot.blood_pressures if earliest <= r.when <= as_of),
        key=lambda r: (r.when, r.ref),
    )
    if len(readings) < needed:
        return AdverseEvent(
            "hypertension",
            None,
            readings[-1].when if readings else None,
            tuple(r.ref for r in readings),
            wording.ctcae_blood_pressure_readings_within(len(readings), window, needed),
        )
    grades = sorted((reading_grade(r, k) for r in readings), reverse=True)
    grade = grades[needed - 1]  # the highest grade at least `needed` readings reach
    reaching = [r for r in readings if reading_grade(r, k) >= grade]
    shown = ", ".join(_fmt(r) for r in readings[-4:])
    return AdverseEvent(
        "hypertension",
        grade,
        reaching[-1].when,
        tuple(r.ref for r in reaching),
        wording.ctcae_grade_reached_readings_within_days(grade, len(reaching), len(readings), window, shown),
    )


def clinician_graded(snapshot: Snapshot, as_of: date, k: Knowledge) -> list[AdverseEvent]:
    window = k.criteria.ctcae.graded_event_max_age_days
    latest: dict[str, AdverseEvent] = {}
    earliest = days_before(as_of, window)
    for ev in sorted(snapshot.graded_events, key=lambda e: (e.when, e.ref)):
        if earliest <= ev.when <= as_of:
            latest[ev.term] = AdverseEvent(
                ev.term, ev.grade, ev.when, (ev.ref,), wording.ctcae_grade_recorded(ev.grade, ev.when.isoformat())
            )
    return [latest[t] for t in sorted(latest)]


def _graded_at(snapshot: Snapshot, day: date, k: Knowledge) -> tuple[AdverseEvent, ...]:
    return (thrombocytopenia(snapshot, day, k), hypertension(snapshot, day, k), *clinician_graded(snapshot, day, k))


def adverse_events(
    snapshot: Snapshot, as_of: date, k: Knowledge, sorafenib_start: date | None = None
) -> tuple[AdverseEvent, ...]:
    """Every graded event at ``as_of``: platelets, hypertension, and the clinician-graded terms.

    With ``sorafenib_start`` (``rules.treatment.sorafenib_history(...).start``), each event also carries
    the grade its term had on that date (the data before sorafenib), so dose advice can tell a
    pre-existing grade (e.g. the thrombocytopenia of portal hypertension) from a worsening.
    """
    current = _graded_at(snapshot, as_of, k)
    if sorafenib_start is None or sorafenib_start > as_of:
        return current
    baseline: dict[str, AdverseEvent] = {}
    for event in _graded_at(snapshot, sorafenib_start, k):
        if event.grade is not None:
            # a clinician-graded term and a measured one may share a name (hypertension): the worse counts
            if event.term not in baseline or event.grade > (baseline[event.term].grade or 0):
                baseline[event.term] = event
    with_baseline = []
    for event in current:
        before = baseline.get(event.term)
        if before is None or event.grade is None:
            with_baseline.append(event)
            continue
        reason = event.reason
        if before.grade and event.grade is not None:
            when = before.date.isoformat() if before.date else sorafenib_start.isoformat()
            if event.grade > before.grade:
                reason += wording.ctcae_baseline_before_sorafenib_grade_worse(before.grade, when)
            else:
                reason += (
                    wording.ctcae_already_grade_before_sorafenib_not(before.grade, when)
                )
        with_baseline.append(
            replace(
                event,
                reason=reason,
                baseline_grade=before.grade,
                baseline_date=before.date,
                baseline_evidence=before.evidence,
            )
        )
    return tuple(with_baseline)
