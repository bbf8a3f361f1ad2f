"""Treatment history read from the snapshot: sorafenib start, TACE sessions.

Sorafenib start (PRODUCT.md): the earliest of MedicationRequest ``authoredOn``,
dosage ``boundsPeriod.start`` and MedicationStatement ``effective[x]`` start, over
every sorafenib record that was not cancelled, refused or only a draft.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from rules import wording
from rules.snapshot import MedicationFact, ProcedureFact, Snapshot

NOT_STARTED_STATUSES = frozenset({"draft", "cancelled", "entered-in-error", "not-taken"})


@dataclass(frozen=True)
class SorafenibHistory:
    start: date | None
    records: tuple[MedicationFact, ...]  # the records that show sorafenib was started

    @property
    def evidence(self) -> tuple[str, ...]:
        return tuple(m.ref for m in self.records)

    def taking_on(self, day: date) -> bool:
        """Whether a sorafenib record covers ``day`` (started, not stopped before it)."""
        for med in self.records:
            if med.start is None or med.start > day:
                continue
            if med.end is not None:
                if med.end >= day:
                    return True
            elif med.status in ("active", "on-hold", "intended", "unknown", "recorded"):
                return True
        return False


def sorafenib_history(snapshot: Snapshot, as_of: date) -> SorafenibHistory:
    started = tuple(
        m
        for m in snapshot.medications_of("sorafenib")
        if m.status not in NOT_STARTED_STATUSES and m.start is not None and m.start <= as_of
    )
    start = min((m.start for m in started if m.start is not None), default=None)
    return SorafenibHistory(start=start, records=started)


def completed_tace(snapshot: Snapshot, before: date, *, inclusive: bool) -> tuple[ProcedureFact, ...]:
    """Completed, dated TACE sessions before ``before`` (or on it when ``inclusive``), oldest first.

    Records on the same calendar date are one session (PRODUCT.md, Data contract): a second record
    of a day is a duplicate (an order and its report, a SNOMED and a CPT copy), not a second session.
    The session keeps the first record's reference and is specific (known to be TACE) when any of
    its records is.
    """
    by_day: dict[date, list[ProcedureFact]] = {}
    for p in snapshot.procedures_of("tace"):
        if p.status != "completed" or p.performed is None:
            continue
        if p.performed <= before if inclusive else p.performed < before:
            by_day.setdefault(p.performed, []).append(p)
    return tuple(
        replace(records[0], specific=any(r.specific for r in records)) if len(records) > 1 else records[0]
        for _, records in sorted(by_day.items())
    )


def same_day_duplicates(snapshot: Snapshot, sessions: tuple[ProcedureFact, ...]) -> dict[str, tuple[str, ...]]:
    """For each session (by reference) with more than one completed record on its date, the other records."""
    refs = {s.ref: s.performed for s in sessions}
    out: dict[str, tuple[str, ...]] = {}
    for ref, day in refs.items():
        others = tuple(
            p.ref
            for p in snapshot.procedures_of("tace")
            if p.status == "completed" and p.performed == day and p.ref != ref
        )
        if others:
            out[ref] = others
    return out


def tace_not_done(snapshot: Snapshot, as_of: date) -> tuple[ProcedureFact, ...]:
    return tuple(
        p for p in snapshot.procedures_of("tace") if p.status == "not-done" and (p.performed is None or p.performed <= as_of)
    )


ENDED_STATUSES = frozenset({"stopped", "completed"})


@dataclass(frozen=True)
class EndedCourse:
    """An earlier sorafenib course that has ended by ``as_of``: its dates, status and stop reason."""

    record: MedicationFact
    start: date | None
    end: date | None
    status: str
    stop_reason: str | None

    def describe(self) -> str:
        start = self.start.isoformat() if self.start else wording.treatment_start_not_recorded()
        end = self.end.isoformat() if self.end else wording.treatment_end_date_not_recorded()
        reason = self.stop_reason or wording.treatment_no_stop_reason_recorded()
        return wording.treatment_earlier_sorafenib_course(start, end, self.status, reason, self.record.ref)


def ended_sorafenib_courses(snapshot: Snapshot, as_of: date) -> tuple[EndedCourse, ...]:
    """Sorafenib courses begun by ``as_of`` that have ended: status stopped / completed, or an end date before ``as_of``.

    A record not started (draft, cancelled, not-taken, entered in error) or starting after ``as_of``
    is no course. The stop reason is read only when the snapshot carries one (``status_reason``).
    """
    ended = []
    for m in snapshot.medications_of("sorafenib"):
        if m.status in NOT_STARTED_STATUSES or (m.start is not None and m.start > as_of):
            continue
        if m.status in ENDED_STATUSES or (m.end is not None and m.end < as_of):
            reason = getattr(m, "status_reason", None)
            ended.append(EndedCourse(m, m.start, m.end, m.status, str(reason) if reason else None))
    return tuple(sorted(ended, key=lambda c: (c.start or date.min, c.record.ref)))
