"""The course of the disease as the clinician page draws it: built once, when the assessment is stored.

The assessment JSON (``assessment.schema.json``) holds the findings, not the record they were read
from; the page's timeline needs each lesion's viable diameter on each study, the TACE sessions, the
sorafenib start and the TACE-resistance window, and its evidence lists read as "CT 2026-06-15:
lesion A 40 mm" rather than resource ids. :func:`page_course` builds that JSON-ready dict from the
assessment's snapshot; it is stored beside the assessment (never inside its JSON) so that the page
renders the record as it was when the card was issued, without refetching.
"""

from __future__ import annotations

import functools
import string
from datetime import date
from typing import Any

from rules import (
    Assessment,
    BloodPressure,
    ConditionFact,
    Knowledge,
    LesionMeasurement,
    MedicationFact,
    ProcedureFact,
    completed_tace,
)

COURSE_FORMAT = 1

# How a concept of the snapshot reads on the page (the rest: underscores to spaces).
CONCEPT_NAMES = {
    "inr": "INR",
    "afp": "AFP",
    "alt": "ALT",
    "ast": "AST",
    "ecog": "ECOG",
    "karnofsky": "Karnofsky",
    "hcc": "HCC diagnosis",
    "hbv": "hepatitis B",
    "portal_vein_tumour_thrombus": "portal-vein tumour thrombus",
    "tace": "TACE",
}


@functools.cache  # a few dozen concepts, named ~50 times a page
def concept_name(concept: str) -> str:
    name = CONCEPT_NAMES.get(concept, concept.replace("_", " "))
    return name[:1].upper() + name[1:]


def lesion_labels(assessment: Assessment) -> dict[str, str]:
    """Lesion reference -> "A", "B", ... in the order first imaged (ties by reference)."""
    first: dict[str, date] = {}
    for m in assessment.snapshot.lesions:
        first[m.lesion] = min(first.get(m.lesion, m.when), m.when)
    ordered = sorted(first, key=lambda ref: (first[ref], ref))
    letters = string.ascii_uppercase
    return {ref: letters[i] if i < len(letters) else f"{i + 1}" for i, ref in enumerate(ordered)}


def _number(value: float) -> str:
    return f"{value:g}"


def _evidence_texts(assessment: Assessment, labels: dict[str, str]) -> dict[str, str]:
    """Every resource the snapshot read -> one readable line (what, when, value)."""
    snap = assessment.snapshot
    texts: dict[str, str] = {m.ref: _lesion_text(m, labels) for m in snap.lesions}
    texts.update({lesion: f"Lesion {label}" for lesion, label in labels.items()})
    # one line per lab result (thousands in a long record): each concept's name and each day's text made once
    names: dict[str, str] = {}
    days: dict[date, str] = {}
    for meas in snap.measurements:
        day = days.get(meas.when)
        if day is None:
            day = days[meas.when] = meas.when.isoformat()
        name = names.get(meas.concept)
        if name is None:
            name = names[meas.concept] = concept_name(meas.concept)
        texts[meas.ref] = f"{name} {day}: {meas.recorded}"
    texts.update({p.ref: _procedure_text(p) for p in snap.procedures})
    texts.update({c.ref: _condition_text(c) for c in snap.conditions})
    texts.update({med.ref: _medication_text(med) for med in snap.medications})
    texts.update(
        {report.ref: f"Radiology disease status {report.when.isoformat()}: {report.trend}" for report in snap.disease_status}
    )
    texts.update({allergy.ref: f"Allergy: {concept_name(allergy.concept)}" for allergy in snap.allergies})
    texts.update({bp.ref: _blood_pressure_text(bp) for bp in snap.blood_pressures})
    texts.update(
        {event.ref: f"{concept_name(event.term)} grade {event.grade}, {event.when.isoformat()}" for event in snap.graded_events}
    )
    patient = snap.patient
    texts[f"Patient/{patient.id}"] = (
        f"Patient record (born {patient.birth_date.isoformat()})" if patient.birth_date else "Patient record"
    )
    return texts


def _lesion_text(m: LesionMeasurement, labels: dict[str, str]) -> str:
    organ = "" if m.organ in (None, "liver") else f" ({m.organ})"
    return (
        f"{m.modality or 'Imaging'} {m.when.isoformat()}: lesion {labels[m.lesion]}{organ} "
        f"{_number(m.viable_diameter_mm)} mm viable"
    )


def _procedure_text(p: ProcedureFact) -> str:
    when = p.performed.isoformat() if p.performed else "date not recorded"
    status = "" if p.status == "completed" else f" ({p.status}{': ' + p.status_reason if p.status_reason else ''})"
    return f"{concept_name(p.concept)} {when}{status}"


def _condition_text(c: ConditionFact) -> str:
    dated = c.onset or c.recorded
    when = f" since {dated.isoformat()}" if dated else " (date not recorded)"
    site = f" ({c.site})" if c.site else ""
    ended = f", resolved {c.abatement.isoformat()}" if c.abatement else ""
    return f"{concept_name(c.concept)}{site}{when}{ended}"


def _medication_text(med: MedicationFact) -> str:
    span = f" from {med.start.isoformat()}" if med.start else ""
    span += f" to {med.end.isoformat()}" if med.end else ""
    return f"{concept_name(med.concept)}{span} ({med.status})"


def _blood_pressure_text(bp: BloodPressure) -> str:
    sys_ = _number(bp.systolic) if bp.systolic is not None else "?"
    dia = _number(bp.diastolic) if bp.diastolic is not None else "?"
    return f"Blood pressure {bp.when.isoformat()}: {sys_}/{dia} mmHg"


def page_course(assessment: Assessment, k: Knowledge) -> dict[str, Any]:
    """The page-only data of one assessment (JSON-ready)."""
    snap = assessment.snapshot
    labels = lesion_labels(assessment)
    lesions = []
    for ref, label in labels.items():
        readings = sorted((m for m in snap.lesions if m.lesion == ref), key=lambda m: (m.when, m.ref))
        lesions.append(
            {
                "ref": ref,
                "label": label,
                "organ": readings[0].organ if readings else None,
                "readings": [
                    {"date": m.when.isoformat(), "mm": m.viable_diameter_mm, "ref": m.ref, "modality": m.modality}
                    for m in readings
                ],
            }
        )
    series = set(assessment.tace_resistance.sessions)
    sessions = [
        {"date": p.performed.isoformat(), "ref": p.ref, "in_series": p.ref in series}
        for p in completed_tace(snap, assessment.as_of, inclusive=True)
        if p.performed is not None
    ]
    not_done = [
        {"date": p.performed.isoformat(), "ref": p.ref, "reason": p.status_reason}
        for p in snap.procedures_of("tace")
        if p.status == "not-done" and p.performed is not None and p.performed <= assessment.as_of
    ]
    return {
        "format": COURSE_FORMAT,
        "window_days": k.criteria.tace_resistance.progression_window_days,
        "lesions": lesions,
        "tace_sessions": sessions,
        "tace_not_done": not_done,
        "sorafenib_start": assessment.sorafenib.start.isoformat() if assessment.sorafenib.start else None,
        "evidence": _evidence_texts(assessment, labels),
    }
