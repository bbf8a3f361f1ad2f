"""FHIR R4 JSON -> ``rules.Snapshot``: the only module that knows FHIR paths.

Every resource the mapping uses is checked first, in the elements the mapping
reads, by the typed decoder of ``service.fhir.decode`` (FHIR's primitive rules,
a few microseconds a resource); one that fails is skipped and reported in
``data_issues``. In strict mode (``HCC_FHIR_STRICT_VALIDATION``) each is
validated whole with fhir.resources' R4B models instead, and those outcomes are
kept per process by content (SHA-256 of the resource's JSON), so a record sent
again (every chart open sends the whole record) is not validated again. A
resource the mapping would ignore anyway (a well-formed code outside the value
sets, a BodyStructure no TumorSize names) is not checked: it cannot change the
snapshot.
Codes come from the value sets
(``rules/data/value_sets.json`` plus the site's overrides); units are converted
to each concept's canonical unit, and a value without a unit or with one that
cannot be converted is unusable (reported, never guessed). ``entered-in-error``
and ``cancelled`` resources are ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from pydantic import ValidationError

from rules.findings import DataIssue
from rules.knowledge import CodeEntry, Knowledge
from rules.snapshot import (
    AllergyFact,
    BloodPressure,
    ConditionFact,
    DiseaseStatusReport,
    GradedEvent,
    LesionMeasurement,
    Measurement,
    MedicationFact,
    PatientFacts,
    ProcedureFact,
    Snapshot,
    UnusableMeasurement,
)
from service.fhir.dates import FhirDate, choice_date, parse_fhir_date, period_end
from service.fhir.decode import READ_ELEMENTS, decode_problem, problem_location, twins_accept
from service.gc_pause import collector_paused

UCUM = "http://unitsofmeasure.org"
_isfinite = math.isfinite


def _frozen_constructor(cls: type) -> Any:
    """A faster equivalent of ``cls(...)`` for a frozen, slotted dataclass whose fields are all given (no
    defaults, no ``__post_init__``): the same instance (same type, fields, equality, hash), its fields set
    through the slots' descriptors instead of ``object.__setattr__`` (half the cost: one per lab result of a
    long record). Any other class: ``cls`` itself."""
    fields = dataclasses.fields(cls)
    params = getattr(cls, "__dataclass_params__", None)
    if (
        params is None
        or not params.frozen
        or "__slots__" not in cls.__dict__
        or hasattr(cls, "__post_init__")
        or any(not f.init or f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in fields)
    ):
        return cls
    names = [f.name for f in fields]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{n}": cls.__dict__[n].__set__ for n in names})
    source = (
        f"def new({', '.join(names)}):\n    self = _new(_cls)\n"
        + "".join(f"    _set_{n}(self, {n})\n" for n in names)
        + "    return self\n"
    )
    exec(source, namespace)  # a constructor made from the dataclass's own field names
    return namespace["new"]


_new_measurement = _frozen_constructor(Measurement)
IGNORED_STATUSES = frozenset({"entered-in-error", "cancelled"})
USABLE_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected", "appended"})
SEVERITY_CODES = {"255604002": "mild", "6736007": "moderate", "24484000": "severe"}
SCORE_CONCEPTS = frozenset({"ecog", "karnofsky"})
LAB_CONCEPTS_EXCLUDED = frozenset({"tumour_size", "disease_status"})

R4B_MODELS = {
    "Patient": "fhir.resources.R4B.patient.Patient",
    "Observation": "fhir.resources.R4B.observation.Observation",
    "Condition": "fhir.resources.R4B.condition.Condition",
    "Procedure": "fhir.resources.R4B.procedure.Procedure",
    "MedicationRequest": "fhir.resources.R4B.medicationrequest.MedicationRequest",
    "MedicationStatement": "fhir.resources.R4B.medicationstatement.MedicationStatement",
    "BodyStructure": "fhir.resources.R4B.bodystructure.BodyStructure",
    "AllergyIntolerance": "fhir.resources.R4B.allergyintolerance.AllergyIntolerance",
}
_MODEL_CACHE: dict[str, Any] = {}


def _model(resource_type: str) -> Any:
    if resource_type not in _MODEL_CACHE:
        module_name, _, class_name = R4B_MODELS[resource_type].rpartition(".")
        _MODEL_CACHE[resource_type] = getattr(importlib.import_module(module_name), class_name)
    return _MODEL_CACHE[resource_type]


# A longer record is mapped with the garbage collector paused (service/gc_pause.py): its collections walked the
# record's growing objects again and again, ~15-25 % of mapping 10 000 Observations (BENCHMARKS.md).
PAUSE_COLLECTOR_FROM_RESOURCES = 200
VALIDATION_CACHE_ENTRIES = 50_000  # ~10 MB a process at most


class ValidationCache:
    """fhir.resources validation outcomes by content, bounded, least recently used first out.

    The key is the SHA-256 of the resource's JSON (``orjson``, in the resource's own key order; a
    reordered copy is merely a miss). orjson writes NaN and Infinity as ``null``, so a resource
    whose JSON holds ``null`` is keyed from the standard library's output instead, which keeps them
    apart; one orjson cannot write at all (a huge integer, a lone surrogate) is likewise keyed from
    the standard library, and one that neither can write is validated every time.

    The entries sit in an ``OrderedDict`` (least recently used first): a hit moves its entry to the
    end and a full cache drops the first one with ``popitem(last=False)``, both constant time. (A
    plain dict emptied from the front, ``del d[next(iter(d))]``, must skip every slot deleted since
    its last resize: with the cache full, each put cost more than the one before, 4 µs to 180 µs
    over 200 000 puts.)
    """

    def __init__(self, max_entries: int = VALIDATION_CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._outcomes: OrderedDict[bytes, str | None] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(resource: dict) -> bytes | None:
        try:
            data = orjson.dumps(resource)
        except (TypeError, orjson.JSONEncodeError):
            data = b"null"
        if b"null" in data:
            try:
                data = json.dumps(resource, allow_nan=True).encode("utf-8", "surrogatepass")
            except (TypeError, ValueError):
                return None
        return hashlib.sha256(data).digest()

    def get(self, key: bytes) -> tuple[bool, str | None]:
        with self._lock:
            if key not in self._outcomes:
                self.misses += 1
                return False, None
            self.hits += 1
            self._outcomes.move_to_end(key)  # most recently used last
            return True, self._outcomes[key]

    def put(self, key: bytes, outcome: str | None) -> None:
        with self._lock:
            self._outcomes[key] = outcome
            self._outcomes.move_to_end(key)  # a put of a known key refreshes it too
            while len(self._outcomes) > self.max_entries:
                self._outcomes.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._outcomes.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._outcomes)

    def keys(self) -> list[bytes]:
        """The cached keys, least recently used first (the next to go first)."""
        with self._lock:
            return list(self._outcomes)


VALIDATION_CACHE = ValidationCache()


def validation_problem(
    resource: dict, cache: ValidationCache | None = VALIDATION_CACHE, *, strict: bool = False
) -> str | None:
    """None if the resource may be used, else a short description of what is wrong with it.

    Default: the elements the mapping reads are checked (``service.fhir.decode``). ``strict``: the whole
    resource is validated against its R4B model (outcomes cached by content in ``cache``).
    """
    if not strict:
        return _read_elements_problem(resource)
    key = cache.key(resource) if cache is not None else None
    if cache is None or key is None:
        return _validate(resource)
    known, outcome = cache.get(key)
    if not known:
        outcome = _validate(resource)
        cache.put(key, outcome)
    return outcome


def _read_elements_problem(resource: dict) -> str | None:
    """The typed decoder's verdict; when it refuses the resource, fhir.resources' message for the first
    error in an element the mapping reads (strict mode's words), else the decoder's own."""
    message = decode_problem(resource)
    return None if message is None else _refusal(resource, message)


def _refusal(resource: dict, message: str) -> str:
    """The problem reported for a resource the typed decoder refused with ``message`` (see above)."""
    read = READ_ELEMENTS[resource["resourceType"]]
    for where, msg in _validation_errors(resource):
        if where is not None and where.split(".", 1)[0] in read:
            return f"fails FHIR R4 validation at {where}: {msg}"
    where, msg = problem_location(message)
    return f"fails FHIR R4 validation at {where}: {msg}"


def _validation_errors(resource: dict) -> list[tuple[str | None, str]]:
    """fhir.resources' errors for ``resource`` as (location, message), in its order: the location is
    "resource" for an error of the whole resource, None when the model raised outside pydantic's checks."""
    model = _model(resource["resourceType"])
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [
            (".".join(str(p) for p in error.get("loc", ())) or "resource", str(error.get("msg", "invalid")))
            for error in exc.errors()
        ]
    except (ValueError, TypeError) as exc:
        return [(None, str(exc))]
    return []


def _validate(resource: dict) -> str | None:
    """Strict mode's verdict: None, or fhir.resources' first error."""
    errors = _validation_errors(resource)
    if not errors:
        return None
    where, msg = errors[0]
    return f"fails FHIR R4 validation: {msg}" if where is None else f"fails FHIR R4 validation at {where}: {msg}"


def ref_of(resource: dict) -> str:
    return f"{resource.get('resourceType', 'Unknown')}/{resource.get('id', '?')}"



# Imaging modality of a TumorSize Observation (its ``method``), for display only ("CT 2026-06-15: ...")
MODALITY_CODES = {"77477000": "CT", "113091000": "MRI", "16310003": "US", "82918005": "PET"}
_MODALITY_WORDS = (("tomograph", "CT"), ("magnetic", "MRI"), ("mri", "MRI"), ("ultraso", "US"), ("ct", "CT"))


def imaging_modality(method: Any) -> str | None:
    """"CT", "MRI", "US" or "PET" from an Observation.method, else None (never guessed from elsewhere)."""
    for coding in _codings(method):
        if coding.get("code") in MODALITY_CODES:
            return MODALITY_CODES[coding["code"]]
    texts = [str(c.get("display") or "") for c in _codings(method)]
    if isinstance(method, dict) and method.get("text"):
        texts.append(str(method["text"]))
    for text in texts:
        words = text.lower()
        for word, modality in _MODALITY_WORDS:
            if (word in words.split()) if len(word) <= 3 else (word in words):
                return modality
    return None

def _codings(concept: Any) -> list[dict]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def _severity(concept: Any) -> str | None:
    """mild / moderate / severe from a Condition.severity's SNOMED code (the last one that says), else None."""
    severity = None
    for coding in _codings(concept):
        if coding.get("code") in SEVERITY_CODES:
            severity = SEVERITY_CODES[coding["code"]]
    return severity


def _coded_status(concept: Any) -> str | None:
    for coding in _codings(concept):
        if coding.get("code"):
            return str(coding["code"])
    return None


def finite_number(value: Any) -> float | None:
    """A JSON number as a finite float; None for non-numbers, booleans, and values beyond float range."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer such as 10**400 is valid JSON and valid FHIR, but not a float
        return None
    return number if math.isfinite(number) else None


# A dose counted in tablets or capsules: UCUM annotations (``{pill}``, ``{tbl}``, ``{tab}``, ``{capsule}`` ...; the
# CDS Hooks sandbox writes ``{pill}``) or the same word as plain unit text. An annotation carries no UCUM meaning
# beyond "a count", so its word is compared without case; a count of tablets is read only where the medication's
# code names its strength (``mg_per_unit`` in the value set, e.g. sorafenib 200 mg tablets).
_DOSE_UNIT_WORDS = frozenset({
    "pill", "pills", "tbl", "tab", "tabs", "tablet", "tablets", "cap", "caps", "capsule", "capsules",
})
_PERIOD_UNITS_PER_DAY = {"d": 1.0, "wk": 7.0, "h": 1 / 24}


def _dose_unit(dose: dict) -> str | None:
    """``mg``, ``unit`` (a tablet or capsule), or None: the dose's UCUM code, else its unit text."""
    unit = dose.get("code") or dose.get("unit")
    if not isinstance(unit, str):
        return None
    unit = unit.strip()
    if unit == "mg":
        return "mg"
    word = unit[1:-1] if unit.startswith("{") and unit.endswith("}") else unit
    return "unit" if word.strip().lower() in _DOSE_UNIT_WORDS else None


def _positive(value: Any, default: float | None = None) -> float | None:
    """A finite number > 0 (``default`` when absent); None for anything else."""
    if value is None:
        return default
    number = finite_number(value)
    return number if number is not None and number > 0 else None


def daily_dose_mg(dosage: dict, entry: CodeEntry) -> float | None:
    """mg per day from one FHIR Dosage: dose (mg, or tablets/capsules x the code's mg per unit) x frequency / period.

    None when it cannot be read (no dose, a unit other than mg or a tablet/capsule count, a count of a product
    whose code names no strength, a dose, frequency or period that is not a positive number): the caller says so.
    """
    rates = dosage.get("doseAndRate") or []
    if not isinstance(rates, list) or not rates or not isinstance(rates[0], dict):
        return None
    dose = rates[0].get("doseQuantity") or {}
    if not isinstance(dose, dict):
        return None
    value, unit = _positive(dose.get("value")), _dose_unit(dose)
    if value is None or unit is None:
        return None
    if unit == "mg":
        mg = value
    elif entry.mg_per_unit:
        mg = value * entry.mg_per_unit
    else:
        return None
    timing = dosage.get("timing") or {}
    repeat = timing.get("repeat") or {} if isinstance(timing, dict) else None
    if not isinstance(repeat, dict):
        return None
    frequency, period = _positive(repeat.get("frequency"), 1.0), _positive(repeat.get("period"), 1.0)
    period_unit = repeat.get("periodUnit", "d")
    per_day = _PERIOD_UNITS_PER_DAY.get(period_unit) if isinstance(period_unit, str) else None
    if frequency is None or period is None or per_day is None:
        return None
    daily = mg * frequency / (period * per_day)
    return daily if math.isfinite(daily) else None


@dataclass
class _Builder:
    k: Knowledge
    patient_id: str
    issues: list[DataIssue] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    unusable: list[UnusableMeasurement] = field(default_factory=list)
    conditions: list[ConditionFact] = field(default_factory=list)
    procedures: list[ProcedureFact] = field(default_factory=list)
    medications: list[MedicationFact] = field(default_factory=list)
    lesions: list[LesionMeasurement] = field(default_factory=list)
    disease_status: list[DiseaseStatusReport] = field(default_factory=list)
    allergies: list[AllergyFact] = field(default_factory=list)
    blood_pressures: list[BloodPressure] = field(default_factory=list)
    graded_events: list[GradedEvent] = field(default_factory=list)
    body_structures: dict[str, dict] = field(default_factory=dict)
    # the entry may_use found for a resource (by id(); the resources outlive the mapping): once the resource
    # is validated its codings are well-formed, so match() would find this same first entry again
    matched: dict[int, CodeEntry] = field(default_factory=dict)
    _allowed: dict[str, frozenset[str]] = field(default_factory=dict)

    def issue(self, resource: dict | str, problem: str) -> None:
        ref = resource if isinstance(resource, str) else ref_of(resource)
        self.issues.append(DataIssue(resource=ref, problem=problem))

    def matched_entry(self, resource: dict, concept: Any, resource_type: str) -> CodeEntry | None:
        """:meth:`match` of a resource's code, as :meth:`may_use` found it when it did."""
        entry = self.matched.get(id(resource))
        return entry if entry is not None else self.match(concept, resource_type)

    def match(self, concept: Any, resource_type: str) -> CodeEntry | None:
        """The first coding of ``concept`` that belongs to a value set for ``resource_type``."""
        allowed = self.allowed(resource_type)
        for coding in _codings(concept):
            entry = self.k.lookup(coding.get("system"), coding.get("code"))
            if entry is not None and entry.concept in allowed:
                return entry
        return None

    def matches(self, concept: Any, resource_type: str) -> list[CodeEntry]:
        allowed = self.allowed(resource_type)
        found = []
        for coding in _codings(concept):
            entry = self.k.lookup(coding.get("system"), coding.get("code"))
            if entry is not None and entry.concept in allowed:
                found.append(entry)
        return found

    def may_use(self, resource: dict) -> bool:
        """False only when the mapping certainly ignores ``resource`` (read before validation): its
        code is well-formed and outside every value set of its type. Anything else is validated."""
        rtype = resource["resourceType"]
        if rtype in ("MedicationRequest", "MedicationStatement"):
            if "medicationCodeableConcept" not in resource:
                return True  # a medicationReference is reported as unresolved
            return self._may_match(resource, resource["medicationCodeableConcept"], "MedicationRequest")
        code_of = _CODE_VALUE_SET.get(rtype)
        if code_of is None:
            return True
        return self._may_match(resource, resource.get("code"), code_of)

    def allowed(self, resource_type: str) -> frozenset[str]:
        """The concepts of the value sets for ``resource_type``, as a set (made once a mapping)."""
        found = self._allowed.get(resource_type)
        if found is None:
            found = self._allowed[resource_type] = frozenset(self.k.concepts_for_resource(resource_type))
        return found

    def _may_match(self, resource: dict, concept: Any, resource_type: str) -> bool:
        """True when a coding of ``concept`` is in a value set for ``resource_type`` (the first such entry is
        kept for the handler) or when ``concept`` is not a well-formed CodeableConcept (absent: no coding)."""
        if concept is None:
            return False
        if not isinstance(concept, dict):
            return True
        if "coding" not in concept:
            return False
        codings = concept["coding"]
        if not isinstance(codings, list):
            return True
        allowed = self.allowed(resource_type)
        lookup = self.k.lookup
        for coding in codings:
            if not isinstance(coding, dict):
                return True
            system, code = coding.get("system"), coding.get("code")
            if not (system is None or isinstance(system, str)) or not (code is None or isinstance(code, str)):
                return True
            entry = lookup(system, code)
            if entry is not None and entry.concept in allowed:
                # a coding after this one may be malformed: then the decoder refuses the resource, and this
                # entry is never read; if it is well-formed, this is the entry match() would find
                self.matched[id(resource)] = entry
                return True
        return False

    # -- Observation ---------------------------------------------------------
    def observation(self, obs: dict, ref: str | None = None) -> None:
        """``ref``: ``ref_of(obs)``, when the caller has it."""
        status = obs.get("status")
        if status in IGNORED_STATUSES:
            return
        entry = self.matched_entry(obs, obs.get("code"), "Observation")
        if entry is None:
            return
        if ref is None:
            ref = ref_of(obs)
        if status not in USABLE_OBSERVATION_STATUSES:
            self.issue(ref, f"status '{status}' is not a final result; not used")
            return
        when, problem = choice_date(obs, "effective")
        if when is None:
            self.issue(ref, problem or "no effective date; not used")
            self.unusable.append(UnusableMeasurement(entry.concept, None, ref, problem or "no effective date"))
            return
        if not when.precise:
            self.issue(ref, "effective date is not precise to the day; not used")
            self.unusable.append(UnusableMeasurement(entry.concept, when.day, ref, "date not precise to the day"))
            return
        if entry.concept == "tumour_size":
            self.tumour_size(obs, ref, when.day)
        elif entry.concept == "disease_status":
            self.disease(obs, ref, when.day)
        elif entry.concept in SCORE_CONCEPTS:
            self.score(obs, ref, entry.concept, when.day)
        elif entry.concept == "blood_pressure":
            self.blood_pressure(obs, ref, when.day)
        elif entry.concept == "adverse_event_grade":
            self.graded_event(obs, ref, entry, when.day)
        else:
            self.quantity(ref, entry.concept, when.day, obs.get("valueQuantity"))

    def quantity(self, ref: str, concept: str, day: date, q: Any) -> None:
        if isinstance(q, dict):
            value = q.get("value")
            # a float is its own finite_number when finite (the usual lab value); anything else is read by it
            value = value if type(value) is float and _isfinite(value) else finite_number(value)
        else:
            value = None
        if value is None:
            problem = "no numeric valueQuantity (or one out of range)"
            self.issue(ref, f"{concept}: {problem}")
            self.unusable.append(UnusableMeasurement(concept, day, ref, problem))
            return
        spec = self.k.concept(concept)
        unit = q.get("code") or q.get("unit")  # the UCUM code, else the unit's text
        recorded = f"{q['value']:g} {unit}" if unit else f"{q['value']:g} (no unit)"
        if not unit and spec.get("unitless"):
            unit = str(spec.get("unit", "1"))  # dimensionless (INR): no unit is the unit 1
            recorded = f"{q['value']:g}"
        if not unit:
            problem = "value has no unit"
            self.issue(ref, f"{concept}: {problem}; not used")
            self.unusable.append(UnusableMeasurement(concept, day, ref, problem))
            return
        converted = self.k.convert(concept, value, str(unit))
        if converted is None:
            problem = f"unit '{unit}' cannot be converted to {spec.get('unit')}"
            self.issue(ref, f"{concept}: {problem}; not used")
            self.unusable.append(UnusableMeasurement(concept, day, ref, problem))
            return
        if converted < 0:
            problem = "negative value"
            self.issue(ref, f"{concept}: {problem}; not used")
            self.unusable.append(UnusableMeasurement(concept, day, ref, problem))
            return
        self.measurements.append(_new_measurement(concept, converted, str(spec.get("unit", unit)), day, ref, recorded))

    def score(self, obs: dict, ref: str, concept: str, day: date) -> None:
        value: Any = obs.get("valueInteger")
        if value is None and isinstance(obs.get("valueQuantity"), dict):
            value = obs["valueQuantity"].get("value")
        low, high = self.k.concept(concept).get("range", [0, 100])
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != int(value) or not low <= value <= high:
            problem = f"{concept} value must be an integer from {low} to {high}"
            self.issue(ref, f"{problem}; not used")
            self.unusable.append(UnusableMeasurement(concept, day, ref, problem))
            return
        unit = str(self.k.concept(concept).get("unit", "1"))
        self.measurements.append(Measurement(concept, float(int(value)), unit, day, ref, str(int(value))))

    def blood_pressure(self, obs: dict, ref: str, day: date) -> None:
        spec = self.k.concept("blood_pressure")
        values: dict[str, float | None] = {"systolic": None, "diastolic": None}
        for comp in obs.get("component") or []:
            for part, code in spec["components"].items():
                if any(c.get("system") == code["system"] and c.get("code") == code["code"] for c in _codings(comp.get("code"))):
                    q = comp.get("valueQuantity")
                    unit = (q or {}).get("code") or (q or {}).get("unit")
                    value = (q or {}).get("value")
                    if not isinstance(value, (int, float)) or isinstance(value, bool) or unit not in spec["units"]:
                        self.issue(ref, f"{part} blood pressure without a numeric value in mm[Hg]; not used")
                        continue
                    values[part] = float(value)
        if values["systolic"] is None and values["diastolic"] is None:
            self.issue(ref, "blood pressure without usable systolic or diastolic component; not used")
            return
        self.blood_pressures.append(BloodPressure(day, values["systolic"], values["diastolic"], ref))

    def graded_event(self, obs: dict, ref: str, entry: CodeEntry, day: date) -> None:
        term = self.k.concept("adverse_event_grade")["terms"].get(entry.code, entry.display)
        grade = obs.get("valueInteger")
        if not isinstance(grade, int) or isinstance(grade, bool) or not 0 <= grade <= 5:
            self.issue(ref, f"{term}: the CTCAE grade must be an integer from 0 to 5 (valueInteger); not used")
            return
        self.graded_events.append(GradedEvent(term, grade, day, ref))

    def tumour_size(self, obs: dict, ref: str, day: date) -> None:
        component_code = self.k.concept("tumour_size")["component"]
        diameter = None
        for comp in obs.get("component") or []:
            for coding in _codings(comp.get("code")):
                if coding.get("system") == component_code["system"] and coding.get("code") == component_code["code"]:
                    diameter = comp.get("valueQuantity")
        if diameter is None:
            self.issue(ref, "TumorSize without a longest-dimension component (LOINC 33728-7); not used")
            return
        focus = [f.get("reference") for f in obs.get("focus") or [] if isinstance(f, dict) and f.get("reference")]
        if len(focus) != 1:
            self.issue(ref, "TumorSize needs exactly one focus (the lesion's BodyStructure) to follow the lesion; not used")
            return
        size = finite_number(diameter.get("value")) if isinstance(diameter, dict) else None
        if size is None:
            self.issue(ref, "TumorSize longest dimension has no numeric value in range; not used")
            return
        unit = diameter.get("code") or diameter.get("unit")
        if not unit:
            self.issue(ref, "TumorSize longest dimension has no unit; not used")
            return
        mm = self.k.convert("tumour_size", size, str(unit))
        if mm is None or mm < 0:
            self.issue(ref, f"TumorSize longest dimension in '{unit}' is not a usable length; not used")
            return
        lesion_ref = str(focus[0])
        self.lesions.append(LesionMeasurement(lesion_ref, None, day, mm, ref, imaging_modality(obs.get("method"))))

    def disease(self, obs: dict, ref: str, day: date) -> None:
        spec = self.k.concept("disease_status")
        for coding in _codings(obs.get("valueCodeableConcept")):
            if coding.get("system") == spec["trend_system"] and coding.get("code") in spec["trends"]:
                self.disease_status.append(DiseaseStatusReport(day, spec["trends"][coding["code"]], ref))
                return
        self.issue(ref, "CancerDiseaseStatus value is not a known trend code; not used")

    # -- Condition -----------------------------------------------------------
    def condition(self, cond: dict) -> None:
        verification = _coded_status(cond.get("verificationStatus"))
        if verification in ("entered-in-error", "refuted"):
            return
        entry = self.matched_entry(cond, cond.get("code"), "Condition")
        if entry is None:
            return
        onset, recorded = self.condition_dates(cond, entry.concept)
        abatement, _ = choice_date(cond, "abatement")
        same = [e for e in self.matches(cond.get("code"), "Condition") if e.concept == entry.concept]
        self.conditions.append(
            ConditionFact(
                concept=entry.concept,
                ref=ref_of(cond),
                onset=onset.day if onset else None,
                clinical_status=_coded_status(cond.get("clinicalStatus")),
                verification_status=verification,
                severity=_severity(cond.get("severity")) or next((e.severity for e in same if e.severity), None),
                abatement=abatement.day if abatement else None,
                recorded=recorded.day if recorded else None,
                specific=any(e.specific for e in same),
                site=next((e.site for e in same if e.site), None) or self.body_site(cond.get("bodySite")),
            )
        )

    def condition_dates(self, cond: dict, concept: str) -> tuple[FhirDate | None, FhirDate | None]:
        """(onset, recorded), each reported when it cannot be read. onset[x] goes to ``onset`` and recordedDate
        to ``recorded``, for every concept: a condition dated only by recordedDate is known present by then,
        not begun then (rules.timing.condition_presence)."""
        onset, problem = choice_date(cond, "onset")
        if onset is None and "onsetAge" in cond:
            problem = "onsetAge is not a date: onset unknown"
        recorded = parse_fhir_date(cond.get("recordedDate"))
        if cond.get("recordedDate") is not None and recorded is None:
            self.issue(cond, "recordedDate cannot be read as a calendar date: the recorded date is unknown "
                             "(the condition itself is used)")
        if problem and onset is None:
            problem = problem.replace(" is not a valid date", " cannot be read as a calendar date")
            self.issue(cond, f"{problem}: the onset is unknown (the condition itself is used)")
        if onset is None and recorded is None and concept != "hcc":
            self.issue(cond, f"{concept.replace('_', ' ')}: no onset and no recordedDate, so the date it began "
                             "is unknown (findings at a past date that it would change are unknown)")
        return onset, recorded

    def body_site(self, body_sites: Any) -> str | None:
        """The organ a Condition.bodySite names (an ``extrahepatic_structures`` or ``liver_structures`` code), or None."""
        if not isinstance(body_sites, list):
            return None
        for concept in body_sites:
            for coding in _codings(concept):
                entry = self.k.lookup(coding.get("system"), coding.get("code"))
                if entry is not None and entry.concept == "extrahepatic_structures":
                    return entry.site or entry.display
                if entry is not None and entry.concept == "liver_structures":
                    return "liver"
        return None

    # -- Procedure -----------------------------------------------------------
    def procedure(self, proc: dict) -> None:
        status = proc.get("status")
        if status in IGNORED_STATUSES:
            return
        entries = self.matches(proc.get("code"), "Procedure")
        if not entries:
            return
        concept = entries[0].concept
        performed, problem = choice_date(proc, "performed")
        if performed is None and status == "completed":
            self.issue(proc, problem or "completed procedure without a performed date")
        reason = proc.get("statusReason")
        reason_text = None
        if isinstance(reason, dict):
            reason_text = reason.get("text") or next((c.get("display") or c.get("code") for c in _codings(reason)), None)
        self.procedures.append(
            ProcedureFact(
                concept=concept,
                ref=ref_of(proc),
                status=str(status),
                performed=performed.day if performed else None,
                specific=any(e.specific for e in entries if e.concept == concept),
                status_reason=reason_text,
            )
        )

    # -- Medications ---------------------------------------------------------
    def medication(self, med: dict) -> None:
        status = med.get("status")
        if status in IGNORED_STATUSES:
            return
        entry = self.matched_entry(med, med.get("medicationCodeableConcept"), "MedicationRequest")
        if entry is None:
            if "medicationReference" in med and "medicationCodeableConcept" not in med:
                self.issue(med, "medicationReference is not resolved; the medication is not identified")
            return
        if med["resourceType"] == "MedicationRequest":
            starts, ends, dosages = _request_course(med)
        else:
            starts, ends, dosages = _statement_course(med)
        daily_dose = None
        for dosage in dosages:
            dose = daily_dose_mg(dosage, entry)
            if dose is not None:
                daily_dose = (daily_dose or 0.0) + dose
        self.medications.append(
            MedicationFact(
                concept=entry.concept,
                ref=ref_of(med),
                status=str(status),
                start=min(starts) if starts else None,
                end=max(ends) if ends else None,
                daily_dose_mg=daily_dose,
            )
        )

    # -- AllergyIntolerance --------------------------------------------------
    def allergy(self, allergy: dict) -> None:
        if _coded_status(allergy.get("verificationStatus")) in ("entered-in-error", "refuted"):
            return
        entry = self.matched_entry(allergy, allergy.get("code"), "MedicationRequest")
        if entry is None:
            return
        self.allergies.append(
            AllergyFact(
                concept=entry.concept,
                ref=ref_of(allergy),
                clinical_status=_coded_status(allergy.get("clinicalStatus")),
                criticality=allergy.get("criticality"),
            )
        )

    def resolve_lesion_organs(self) -> None:
        """Each lesion's organ from its BodyStructure.location: "liver" for the liver or any part of it
        (``liver_structures``), the organ an ``extrahepatic_structures`` code names, else None (unknown:
        never extrahepatic) with a data issue."""
        resolved = []
        organs: dict[str, tuple[str | None, str | None]] = {}  # a lesion's (organ, problem), read once
        reported: set[str] = set()
        for lesion in self.lesions:
            body = self.body_structures.get(lesion.lesion)
            organ = None
            if body is None:
                self.issue(lesion.ref, f"lesion {lesion.lesion} not found: its organ is unknown")
            else:
                if lesion.lesion not in organs:
                    organs[lesion.lesion] = self.organ_of(body.get("location"))
                organ, problem = organs[lesion.lesion]
                if problem and lesion.lesion not in reported:
                    reported.add(lesion.lesion)
                    self.issue(
                        lesion.lesion, f"{problem}: the lesion's organ is unknown (neither intrahepatic nor extrahepatic)"
                    )
            resolved.append(
                LesionMeasurement(lesion.lesion, organ, lesion.when, lesion.viable_diameter_mm, lesion.ref, lesion.modality)
            )
        self.lesions = resolved

    def organ_of(self, location: Any) -> tuple[str | None, str | None]:
        """("liver" | an organ name | None, the problem when None) for a BodyStructure.location."""
        codings = _codings(location)
        if not codings:
            return None, "BodyStructure has no coded location"
        organs: set[str] = set()
        for coding in codings:
            entry = self.k.lookup(coding.get("system"), coding.get("code"))
            if entry is None:
                continue
            if entry.concept == "liver_structures":
                organs.add("liver")
            elif entry.concept == "extrahepatic_structures":
                organs.add(entry.site or entry.display)
        if len(organs) == 1:
            return organs.pop(), None
        shown = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in codings[:3])
        if organs:
            return None, f"BodyStructure location codes name different organs ({', '.join(sorted(organs))})"
        return None, f"BodyStructure location {shown} is not a recognised liver or extrahepatic structure"


def _request_course(med: dict) -> tuple[list[date], list[date], list[dict]]:
    """A MedicationRequest's start dates (authoredOn, each dosage's boundsPeriod.start), end dates
    (boundsPeriod.end) and dosages."""
    starts: list[date] = []
    ends: list[date] = []
    authored = parse_fhir_date(med.get("authoredOn"))
    if authored:
        starts.append(authored.day)
    dosages = med.get("dosageInstruction") or []
    for dosage in dosages:
        bounds = ((dosage.get("timing") or {}).get("repeat") or {}).get("boundsPeriod") or {}
        for key, target in (("start", starts), ("end", ends)):
            parsed = parse_fhir_date(bounds.get(key))
            if parsed:
                target.append(parsed.day)
    return starts, ends, dosages


def _statement_course(med: dict) -> tuple[list[date], list[date], list[dict]]:
    """A MedicationStatement's start (effective[x]), end (effectivePeriod.end) and dosages."""
    effective, _ = choice_date(med, "effective")
    end = period_end(med, "effective")
    return ([effective.day] if effective else []), ([end.day] if end else []), (med.get("dosage") or [])


def map_patient(patient: dict) -> tuple[PatientFacts, list[DataIssue]]:
    issues: list[DataIssue] = []
    birth = parse_fhir_date(patient.get("birthDate"))
    if patient.get("birthDate") is not None and birth is None:
        issues.append(DataIssue(ref_of(patient), "birthDate is not a valid date"))
    deceased: bool | None = None
    deceased_date = None
    if "deceasedBoolean" in patient:
        deceased = bool(patient["deceasedBoolean"])
    elif "deceasedDateTime" in patient:
        deceased = True
        parsed = parse_fhir_date(patient["deceasedDateTime"])
        deceased_date = parsed.day if parsed else None
    return (
        PatientFacts(
            id=str(patient["id"]),
            birth_date=birth.day if birth and birth.precise else None,
            sex=patient.get("gender"),
            deceased=deceased,
            deceased_date=deceased_date,
        ),
        issues,
    )


# the value sets each resource type's ``code`` is read against (medications: medicationCodeableConcept)
_CODE_VALUE_SET = {
    "Observation": "Observation",
    "Condition": "Condition",
    "Procedure": "Procedure",
    "AllergyIntolerance": "MedicationRequest",
}

HANDLERS: dict[str, Callable[[_Builder, dict], None]] = {
    "Observation": _Builder.observation,
    "Condition": _Builder.condition,
    "Procedure": _Builder.procedure,
    "MedicationRequest": _Builder.medication,
    "MedicationStatement": _Builder.medication,
    "AllergyIntolerance": _Builder.allergy,
}


def _focus_references(resources: list[dict]) -> set[str]:
    """The ``focus`` references of the Observations (the lesions that TumorSize results follow)."""
    named: set[str] = set()
    for resource in resources:
        if resource["resourceType"] == "Observation":
            for focus in resource.get("focus") or []:
                if isinstance(focus, dict) and isinstance(focus.get("reference"), str):
                    named.add(focus["reference"])
    return named


def map_to_snapshot(
    patient: dict,
    resources: Iterable[dict],
    k: Knowledge,
    *,
    prior_issues: Iterable[DataIssue] = (),
    strict: bool = False,
) -> Snapshot:
    """Build the snapshot of one patient from their resources (already restricted to that patient).

    ``strict``: validate each resource used whole with fhir.resources (``HCC_FHIR_STRICT_VALIDATION``).
    A record of more than :data:`PAUSE_COLLECTOR_FROM_RESOURCES` is mapped with the garbage collector paused.
    """
    resources = resources if isinstance(resources, Sequence) else list(resources)
    if len(resources) <= PAUSE_COLLECTOR_FROM_RESOURCES:
        return _snapshot_of(patient, resources, k, prior_issues, strict)
    with collector_paused():
        return _snapshot_of(patient, resources, k, prior_issues, strict)


def _snapshot_of(
    patient: dict, resources: Sequence[dict], k: Knowledge, prior_issues: Iterable[DataIssue], strict: bool
) -> Snapshot:
    issues = list(prior_issues)
    problem = validation_problem(patient, strict=strict)
    if problem:
        issues.append(DataIssue(ref_of(patient), problem))
        patient = {"resourceType": "Patient", "id": patient.get("id", "?")}
    facts, patient_issues = map_patient(patient)
    builder = _Builder(k=k, patient_id=facts.id, issues=issues + patient_issues)
    seen: set[str] = set()
    pending: list[dict] = []
    pending_refs: list[str] = []  # ref_of of each pending resource (an Observation's handler takes it)
    bodies: list[tuple[str, dict]] = []
    # the resources to validate, in the record's order, with each duplicate id where it came (None: reported there)
    candidates: list[tuple[dict | None, str]] = []
    for resource in resources:
        rtype = resource.get("resourceType")
        if rtype not in R4B_MODELS or rtype == "Patient":
            continue
        ref = ref_of(resource)
        if ref in seen:
            candidates.append((None, ref))
            continue
        seen.add(ref)
        if rtype == "BodyStructure":
            bodies.append((ref, resource))  # validated below if a TumorSize names it
            continue
        if builder.may_use(resource):  # else ignored by the mapping: not validated
            candidates.append((resource, ref))
    # the typed decoder's twin on all the Observations first (most of a long record), blocks of them a call
    observations = [] if strict else [r for r, _ in candidates if r is not None and r["resourceType"] == "Observation"]
    twin_verdicts = iter(twins_accept(observations, "Observation"))
    for candidate, ref in candidates:
        if candidate is None:
            builder.issue(ref, "duplicate resource id; only the first copy used")
            continue
        resource = candidate
        if strict:
            problem = validation_problem(resource, strict=True)
        else:  # validation_problem's default path, without its two calls in between (once a resource)
            twin = next(twin_verdicts) if resource["resourceType"] == "Observation" else None
            problem = decode_problem(resource, twin)
            if problem is not None:
                problem = _refusal(resource, problem)
        if problem:
            builder.issue(resource, problem)
            continue
        pending.append(resource)
        pending_refs.append(ref)
    named = _focus_references(pending)
    for ref, body in bodies:
        if ref not in named:
            continue  # no TumorSize follows this lesion: not used
        problem = validation_problem(body, strict=strict)
        if problem:
            builder.issue(body, problem)
            continue
        builder.body_structures[ref] = body
    observation = builder.observation
    for resource, ref in zip(pending, pending_refs):
        rtype = resource["resourceType"]
        if rtype == "Observation":
            observation(resource, ref)
        else:
            HANDLERS[rtype](builder, resource)
    builder.resolve_lesion_organs()
    return Snapshot(
        patient=facts,
        measurements=tuple(builder.measurements),
        unusable=tuple(builder.unusable),
        conditions=tuple(builder.conditions),
        procedures=tuple(builder.procedures),
        medications=tuple(builder.medications),
        lesions=tuple(builder.lesions),
        disease_status=tuple(builder.disease_status),
        allergies=tuple(builder.allergies),
        blood_pressures=tuple(builder.blood_pressures),
        graded_events=tuple(builder.graded_events),
        data_issues=tuple(builder.issues),
    )
