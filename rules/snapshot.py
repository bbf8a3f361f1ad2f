"""The clinical snapshot: what the rules know about one patient.

Plain frozen dataclasses in normalised units (bilirubin mg/dL, albumin g/dL,
platelets 10^9/L, diameters mm). ``service.mapping`` is the only producer;
the rules never see FHIR. Every fact keeps the relative reference of the
resource it came from, so findings can cite their evidence.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from operator import attrgetter
from typing import TypeVar

from rules.findings import DataIssue


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """Demographics: what ages and applicability are computed from."""

    id: str
    birth_date: date | None
    sex: str | None
    deceased: bool | None  # None: not recorded
    deceased_date: date | None = None

    @property
    def ref(self) -> str:
        return f"Patient/{self.id}"


@dataclass(frozen=True, slots=True)
class Measurement:
    """A usable quantitative result in the concept's canonical unit."""

    concept: str  # e.g. "bilirubin", "albumin", "inr", "ecog", "karnofsky"
    value: float
    unit: str  # canonical unit of the concept ("mg/dL", "g/dL", "1", ...)
    when: date
    ref: str
    recorded: str  # what the record said, e.g. "34.2 umol/L"


@dataclass(frozen=True, slots=True)
class UnusableMeasurement:
    """A result of a known concept that cannot be used (no unit, unknown unit, no value)."""

    concept: str
    when: date | None
    ref: str
    problem: str


@dataclass(frozen=True, slots=True)
class ConditionFact:
    """A coded condition. ``onset`` is onset[x] only; ``recorded`` is recordedDate.

    Dating (PRODUCT.md, Data contract): a condition with an onset began then; one dated only
    by ``recorded`` is known to be present by that date but cannot date a *new* invasion or
    spread; one with neither is undated (assumed present before the first TACE, its date
    unknown). ``rules.timing.condition_presence`` reads these three cases.
    """

    concept: str  # "hcc", "ascites", "encephalopathy", "portal_vein_tumour_thrombus", ...
    ref: str
    onset: date | None
    clinical_status: str | None  # active / recurrence / relapse / inactive / remission / resolved
    verification_status: str | None  # confirmed / provisional / ...; None: not recorded
    severity: str | None = None  # "mild" / "moderate" / "severe"; None: not recorded
    abatement: date | None = None
    recorded: date | None = None  # recordedDate
    # False: the code does not say what the rule needs exactly, e.g. a portal-vein thrombosis
    # code that does not say *tumour* thrombus ("tumour vs bland thrombus to confirm")
    specific: bool = True
    site: str | None = None  # body site (e.g. of a metastasis: "lung", "bone"); None: not recorded

    @property
    def dated_by(self) -> date | None:
        """The earliest date the condition is known to be present: onset, else recordedDate."""
        return self.onset if self.onset is not None else self.recorded

    @property
    def is_active(self) -> bool:
        """Active unless recorded otherwise (absent clinicalStatus counts as active)."""
        return self.clinical_status in (None, "active", "recurrence", "relapse")

    @property
    def is_confirmed(self) -> bool:
        """Confirmed, or no verificationStatus recorded (PRODUCT.md: taken as confirmed, and said so)."""
        return self.verification_status in ("confirmed", None)


@dataclass(frozen=True, slots=True)
class ProcedureFact:
    concept: str  # "tace", "resection", "transplant"
    ref: str
    status: str  # completed / not-done / in-progress / ...
    performed: date | None
    specific: bool = True  # False: coded only by a code that also covers other procedures (CPT 37243)
    status_reason: str | None = None


@dataclass(frozen=True, slots=True)
class MedicationFact:
    concept: str  # "sorafenib", "vitamin_k_antagonist", "diuretic", "lactulose", "rifaximin", ...
    ref: str
    status: str
    start: date | None
    end: date | None = None
    daily_dose_mg: float | None = None


@dataclass(frozen=True, slots=True)
class LesionMeasurement:
    """Viable (arterially enhancing) longest diameter of one lesion on one imaging date."""

    lesion: str  # stable lesion identity (the focus BodyStructure reference)
    # "liver" (the liver or any part of it: lobes, Couinaud segments), another organ's name, or
    # None when the location is missing or unrecognised (unknown, never extrahepatic)
    organ: str | None
    when: date
    viable_diameter_mm: float
    ref: str
    modality: str | None = None  # "CT", "MRI", "US" ... from Observation.method; descriptive only


@dataclass(frozen=True, slots=True)
class DiseaseStatusReport:
    """mCODE CancerDiseaseStatus: the radiologist's or clinician's overall trend."""

    when: date
    trend: str  # "worsened", "stable", "improved", "remission", "undetermined", ...
    ref: str


@dataclass(frozen=True, slots=True)
class AllergyFact:
    concept: str  # e.g. "sorafenib"
    ref: str
    clinical_status: str | None
    criticality: str | None


@dataclass(frozen=True, slots=True)
class BloodPressure:
    """One blood-pressure reading (systolic and diastolic in mm[Hg])."""

    when: date
    systolic: float | None
    diastolic: float | None
    ref: str


@dataclass(frozen=True, slots=True)
class GradedEvent:
    """A clinician-graded adverse event (CTCAE grade as recorded)."""

    term: str  # "hand-foot skin reaction", "diarrhoea", "fatigue", "anorexia", "rash"
    grade: int
    when: date
    ref: str


class DatedSeries(tuple):  # type: ignore[type-arg]
    """One concept's results as :meth:`Snapshot.series` gives them: sorted by ``(when, ref)``, oldest first. A tuple
    (equal to, and shown as, the plain tuple of the same results); its type tells ``rules.timing`` that it may
    bisect by date instead of reading every result (a long record holds thousands)."""

    __slots__ = ()


_NO_SERIES = DatedSeries()
_WHEN = attrgetter("when")
_REF = attrgetter("ref")


@dataclass(frozen=True)
class Snapshot:
    """Everything the rules may use about one patient, and what could not be used."""

    patient: PatientFacts
    measurements: tuple[Measurement, ...] = ()
    unusable: tuple[UnusableMeasurement, ...] = ()
    conditions: tuple[ConditionFact, ...] = ()
    procedures: tuple[ProcedureFact, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    lesions: tuple[LesionMeasurement, ...] = ()
    disease_status: tuple[DiseaseStatusReport, ...] = ()
    allergies: tuple[AllergyFact, ...] = ()
    blood_pressures: tuple[BloodPressure, ...] = ()
    graded_events: tuple[GradedEvent, ...] = ()
    data_issues: tuple[DataIssue, ...] = field(default=())

    def series(self, concept: str) -> tuple[Measurement, ...]:
        """Usable results of one concept, oldest first (ties by reference): a :class:`DatedSeries`."""
        return self._series_by_concept.get(concept, _NO_SERIES)

    @functools.cached_property
    def _series_by_concept(self) -> dict[str, tuple[Measurement, ...]]:
        """Every concept's :meth:`series`, sorted once: the rules ask for a series ~10 times a call. (A stable
        sort of all, then split by concept, keeps each concept's ties in the order filtering then sorting
        would.)"""
        # by (when, ref) as two stable sorts, the reference first: one key each, compared without building tuples
        ordered = sorted(self.measurements, key=_REF)
        ordered.sort(key=_WHEN)
        by_concept = _by_concept(ordered)
        return {concept: DatedSeries(series) for concept, series in by_concept.items()}

    def unusable_of(self, concept: str) -> tuple[UnusableMeasurement, ...]:
        """One concept's unusable results, in the snapshot's order."""
        return self._unusable_by_concept.get(concept, ())

    @functools.cached_property
    def _unusable_by_concept(self) -> dict[str, tuple[UnusableMeasurement, ...]]:
        return _by_concept(self.unusable)

    def conditions_of(self, concept: str) -> tuple[ConditionFact, ...]:
        """One concept's conditions, in the snapshot's order (split once: Child-Pugh alone asks at three dates)."""
        return self._conditions_by_concept.get(concept, ())

    @functools.cached_property
    def _conditions_by_concept(self) -> dict[str, tuple[ConditionFact, ...]]:
        return _by_concept(self.conditions)

    def procedures_of(self, concept: str) -> tuple[ProcedureFact, ...]:
        """One concept's procedures, oldest first (undated first; ties by reference)."""
        return self._procedures_by_concept.get(concept, ())

    @functools.cached_property
    def _procedures_by_concept(self) -> dict[str, tuple[ProcedureFact, ...]]:
        return _by_concept(sorted(self.procedures, key=lambda p: (p.performed or date.min, p.ref)))

    def medications_of(self, concept: str) -> tuple[MedicationFact, ...]:
        """One concept's medications, in the snapshot's order."""
        return self._medications_by_concept.get(concept, ())

    @functools.cached_property
    def _medications_by_concept(self) -> dict[str, tuple[MedicationFact, ...]]:
        return _by_concept(self.medications)


_Fact = TypeVar("_Fact", Measurement, ProcedureFact, UnusableMeasurement, ConditionFact, MedicationFact)


def _by_concept(facts: Iterable[_Fact]) -> dict[str, tuple[_Fact, ...]]:
    """``facts`` split by concept, each concept's in the order given."""
    grouped: dict[str, list[_Fact]] = {}
    for fact in facts:
        grouped.setdefault(fact.concept, []).append(fact)
    return {concept: tuple(group) for concept, group in grouped.items()}
