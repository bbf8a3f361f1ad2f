"""Safety notes beside the rules: sorafenib hypersensitivity (a drug-label contraindication),
hepatitis B without antiviral therapy before TACE, pregnancy before sorafenib."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules import wording
from rules.knowledge import Knowledge
from rules.snapshot import Snapshot
from rules.timing import condition_present_at, medication_active_at

INACTIVE_ALLERGY = frozenset({"inactive", "resolved"})


@dataclass(frozen=True)
class SafetyNote:
    id: str
    text: str
    label_contraindication: bool  # only these may make a card critical
    evidence: tuple[str, ...]
    citation: str


def safety_notes(snapshot: Snapshot, as_of: date, k: Knowledge) -> tuple[SafetyNote, ...]:
    citation = k.criteria.safety.citation
    notes: list[SafetyNote] = []
    allergies = [a for a in snapshot.allergies if a.concept == "sorafenib" and a.clinical_status not in INACTIVE_ALLERGY]
    if allergies:
        notes.append(
            SafetyNote(
                "sorafenib-hypersensitivity",
                wording.safety_sorafenib_hypersensitivity_recorded_sorafenib_contraindicated(),
                True,
                tuple(a.ref for a in allergies),
                citation,
            )
        )
    hbv = [c for c in snapshot.conditions_of("hepatitis_b") if condition_present_at(c, as_of)]
    antivirals = [m for m in snapshot.medications_of("hbv_antiviral") if medication_active_at(m, as_of)]
    if hbv and not antivirals:
        notes.append(
            SafetyNote(
                "hbv-without-antiviral",
                wording.safety_hepatitis_b_without_recorded_antiviral(),
                False,
                tuple(c.ref for c in hbv),
                citation,
            )
        )
    pregnant = [c for c in snapshot.conditions_of("pregnancy") if condition_present_at(c, as_of)]
    if pregnant:
        notes.append(
            SafetyNote(
                "pregnancy",
                wording.safety_pregnancy_recorded_sorafenib_can_cause(),
                False,
                tuple(c.ref for c in pregnant),
                citation,
            )
        )
    return tuple(notes)
