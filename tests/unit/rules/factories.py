"""Small, general factories for clinical snapshots in rules tests.

Every factory gives a deterministic reference derived from its arguments, so a
test can assert evidence without bookkeeping; pass ``ref=`` to choose one.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import rules
from rules.findings import DataIssue
from rules.snapshot import (
    AllergyFact,
    ConditionFact,
    DiseaseStatusReport,
    LesionMeasurement,
    Measurement,
    MedicationFact,
    PatientFacts,
    ProcedureFact,
    Snapshot,
    UnusableMeasurement,
)

DATA_DIR = Path(rules.__file__).resolve().parent / "data"
DEFAULT_UNITS = {
    "bilirubin": "mg/dL",
    "albumin": "g/dL",
    "inr": "1",
    "ecog": "1",
    "karnofsky": "%",
    "platelets": "10*9/L",
    "creatinine": "mg/dL",
    "afp": "ng/mL",
    "alt": "U/L",
    "ast": "U/L",
}


def load_data(name: str) -> dict[str, Any]:
    """A document of ``rules/data/`` (e.g. ``"response_criteria.json"``), freshly parsed."""
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


def response_criteria() -> dict[str, Any]:
    """``response_criteria.json`` with the thresholds groups BCLC also reads (as ``service.knowledge`` merges them)."""
    document = load_data("response_criteria.json")
    limits = load_data("thresholds.json")
    return {**document, "freshness": limits["freshness"], "tace_candidacy": limits["tace_candidacy"]}


def thresholds() -> dict[str, Any]:
    return load_data("thresholds.json")


def days_after(day: date, n: int) -> date:
    return day + timedelta(days=n)


def _slug(value: Any) -> str:
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    return str(value).replace("/", "-").replace(" ", "-")


def patient(
    id: str = "p1",
    *,
    birth_date: date | None = date(1950, 1, 1),
    sex: str | None = "male",
    deceased: bool | None = False,
    deceased_date: date | None = None,
) -> PatientFacts:
    return PatientFacts(id=id, birth_date=birth_date, sex=sex, deceased=deceased, deceased_date=deceased_date)


_default_patient = patient  # make_snapshot's ``patient`` keyword shadows the factory


def make_snapshot(
    *,
    patient: PatientFacts | None = None,
    measurements=(),
    unusable=(),
    conditions=(),
    procedures=(),
    medications=(),
    lesions=(),
    disease_status=(),
    allergies=(),
    data_issues=(),
) -> Snapshot:
    """A snapshot with a default patient; every collection defaults to empty."""
    return Snapshot(
        patient=patient if patient is not None else _default_patient(),
        measurements=tuple(measurements),
        unusable=tuple(unusable),
        conditions=tuple(conditions),
        procedures=tuple(procedures),
        medications=tuple(medications),
        lesions=tuple(lesions),
        disease_status=tuple(disease_status),
        allergies=tuple(allergies),
        data_issues=tuple(data_issues),
    )


def measurement(
    concept: str,
    value: float,
    when: date,
    *,
    unit: str | None = None,
    ref: str | None = None,
    recorded: str | None = None,
) -> Measurement:
    unit = unit if unit is not None else DEFAULT_UNITS.get(concept, "1")
    return Measurement(
        concept=concept,
        value=value,
        unit=unit,
        when=when,
        ref=ref or f"Observation/{concept}-{_slug(when)}-{_slug(value)}",
        recorded=recorded if recorded is not None else f"{value:g} {unit}",
    )


def unusable(concept: str, when: date | None, problem: str = "no unit", *, ref: str | None = None) -> UnusableMeasurement:
    return UnusableMeasurement(
        concept=concept, when=when, ref=ref or f"Observation/{concept}-{_slug(when or 'undated')}-unusable", problem=problem
    )


def lesion(
    name: str,
    when: date,
    diameter_mm: float,
    *,
    organ: str | None = "liver",
    ref: str | None = None,
) -> LesionMeasurement:
    """A viable-diameter measurement; ``name`` becomes ``BodyStructure/<name>`` unless it already is a reference."""
    identity = name if "/" in name else f"BodyStructure/{name}"
    return LesionMeasurement(
        lesion=identity,
        organ=organ,
        when=when,
        viable_diameter_mm=diameter_mm,
        ref=ref or f"Observation/size-{_slug(identity.split('/', 1)[1])}-{_slug(when)}",
    )


def condition(
    concept: str,
    *,
    onset: date | None = None,
    clinical_status: str | None = "active",
    verification_status: str | None = "confirmed",
    severity: str | None = None,
    abatement: date | None = None,
    ref: str | None = None,
    recorded: date | None = None,
    specific: bool = True,
    site: str | None = None,
) -> ConditionFact:
    return ConditionFact(
        concept=concept,
        ref=ref or f"Condition/{concept}-{_slug(onset or 'undated')}",
        onset=onset,
        clinical_status=clinical_status,
        verification_status=verification_status,
        severity=severity,
        abatement=abatement,
        recorded=recorded,
        specific=specific,
        site=site,
    )


def procedure(
    concept: str,
    performed: date | None,
    *,
    status: str = "completed",
    specific: bool = True,
    status_reason: str | None = None,
    ref: str | None = None,
) -> ProcedureFact:
    return ProcedureFact(
        concept=concept,
        ref=ref or f"Procedure/{concept}-{_slug(performed or 'undated')}",
        status=status,
        performed=performed,
        specific=specific,
        status_reason=status_reason,
    )


def medication(
    concept: str,
    start: date | None,
    *,
    status: str = "active",
    end: date | None = None,
    daily_dose_mg: float | None = None,
    ref: str | None = None,
) -> MedicationFact:
    return MedicationFact(
        concept=concept,
        ref=ref or f"MedicationRequest/{concept}-{_slug(start or 'undated')}",
        status=status,
        start=start,
        end=end,
        daily_dose_mg=daily_dose_mg,
    )


def disease_status(when: date, trend: str, *, ref: str | None = None) -> DiseaseStatusReport:
    return DiseaseStatusReport(when=when, trend=trend, ref=ref or f"Observation/disease-status-{_slug(when)}")


def allergy(
    concept: str, *, clinical_status: str | None = "active", criticality: str | None = None, ref: str | None = None
) -> AllergyFact:
    return AllergyFact(
        concept=concept,
        ref=ref or f"AllergyIntolerance/{concept}",
        clinical_status=clinical_status,
        criticality=criticality,
    )


def data_issue(resource: str, problem: str) -> DataIssue:
    return DataIssue(resource=resource, problem=problem)
