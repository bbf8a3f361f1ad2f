"""Sorafenib dose level and the study's next step.

The study's steps (``rules/data/thresholds.json``, group ``sorafenib_dose``):
800 mg/day (400 mg twice daily) -> 400 mg once daily -> 400 mg every other day;
interrupt on a grade 3-4 adverse event, then resume one level lower. A grade that
was already present before sorafenib (``AdverseEvent.baseline_grade``) drives the
steps only when it is worse than that baseline. Label events that stop the drug
override the steps (here: grade 4 hypertension, measured or clinician-graded; cardiac
ischaemia, haemorrhage needing intervention and GI perforation are not graded by
this service and are listed for the clinician).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules import wording
from rules.ctcae import AdverseEvent
from rules.knowledge import Knowledge
from rules.treatment import SorafenibHistory

LABEL_STOP_NOT_ASSESSED = wording.dose_cardiac_ischaemia_infarction_haemorrhage_needing()


@dataclass(frozen=True)
class DoseAdvice:
    current_mg_per_day: float | None
    level: str | None  # the study's level name, or None when the dose is not one of them
    next_step: str  # "continue", "interrupt-then-reduce", "stop", "unknown"
    next_level: str | None
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    citation: str


def level_name(mg_per_day: float | None, k: Knowledge) -> tuple[int | None, str | None]:
    levels = [float(x) for x in k.criteria.sorafenib_dose.levels_mg_per_day]
    names = k.criteria.sorafenib_dose.level_names
    if mg_per_day is None:
        return None, None
    for i, mg in enumerate(levels):
        if abs(mg - mg_per_day) < 1e-6:
            return i, str(names[i])
    return None, None


def current_dose(history: SorafenibHistory, as_of: date) -> tuple[float | None, tuple[str, ...]]:
    """The daily dose of the latest sorafenib record that covers ``as_of``."""
    covering = [m for m in history.records if m.start is not None and m.start <= as_of and (m.end is None or m.end >= as_of)]
    if not covering:
        return None, ()
    latest = max(covering, key=lambda m: (m.start, m.ref))
    return latest.daily_dose_mg, (latest.ref,)


def _level_reason(mg: float | None, name: str | None, names: tuple[str, ...]) -> str:
    if mg is None:
        return wording.dose_current_sorafenib_dose_not_recorded()
    if name is None:
        return wording.dose_current_dose_mg_day_not(mg, ', '.join(names))
    return wording.dose_current_dose_mg_day(mg, name)


def _interrupt(
    severe: list[AdverseEvent], mg: float | None, index: int | None, name: str | None, names: tuple[str, ...],
    reasons: list[str], evidence: tuple[str, ...], citation: str,
) -> DoseAdvice:
    """A grade 3-4 event beyond its baseline: interrupt, then resume one level lower (stop below the lowest)."""
    worst = ", ".join(f"{e.term} grade {e.grade}" for e in severe)
    if index is None:
        return DoseAdvice(mg, name, "interrupt-then-reduce", None,
                          tuple(reasons + [wording.dose_interrupt_next_level_cannot_named(worst)]),
                          evidence, citation)
    if index + 1 >= len(names):
        return DoseAdvice(mg, name, "stop", None,
                          tuple(reasons + [wording.dose_lowest_level_study_had_no(worst)]),
                          evidence, citation)
    nxt = str(names[index + 1])
    return DoseAdvice(mg, name, "interrupt-then-reduce", nxt,
                      tuple(reasons + [wording.dose_interrupt_until_grade_less_then(worst, nxt)]),
                      evidence, citation)


def dose_advice(history: SorafenibHistory, events: tuple[AdverseEvent, ...], as_of: date, k: Knowledge) -> DoseAdvice:
    """The study's next dose step: a label stop first, then interruption on grade 3-4 beyond baseline, else continue."""
    g = k.criteria.sorafenib_dose
    citation = g.citation
    names = g.level_names
    mg, evidence = current_dose(history, as_of)
    index, name = level_name(mg, k)
    reasons = [_level_reason(mg, name, names)]
    graded = [e for e in events if e.grade is not None]
    ev_refs = tuple(r for e in graded for r in e.evidence)
    if any(e.term == "hypertension" and e.grade == 4 for e in graded):
        return DoseAdvice(
            mg,
            name,
            "stop",
            None,
            tuple(reasons + [wording.dose_grade_hypertension_label_stops_sorafenib()]),
            evidence + ev_refs,
            citation,
        )
    at_grade = [e for e in graded if (e.grade or 0) >= g.interrupt_from_grade]
    reasons.append(wording.dose_label_events_that_stop_drug(LABEL_STOP_NOT_ASSESSED))
    for e in at_grade:
        if not e.worse_than_baseline:
            reasons.append(
                wording.dose_grade_was_already_grade_before(e.term, e.grade, e.baseline_grade)
            )
    severe = [e for e in at_grade if e.worse_than_baseline]
    if severe:
        return _interrupt(severe, mg, index, name, names, reasons, evidence + ev_refs, citation)
    if mg is None:
        return DoseAdvice(mg, name, "unknown", None, tuple(reasons), evidence, citation)
    last = wording.dose_no_grade_adverse_event_beyond() if at_grade else wording.dose_no_grade_adverse_event_continue()
    return DoseAdvice(mg, name, "continue", name, tuple(reasons + [last]), evidence, citation)
