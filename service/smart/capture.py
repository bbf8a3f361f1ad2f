"""Measurement capture: the SMART app's form -> validated input -> one FHIR transaction Bundle.

Pure: no HTTP, no database. :func:`capture_context` reads what the form needs from a gathered record
(``service.gather.PatientRecord.resources``) through the mapping itself (``service.mapping``), so the form
shows exactly the lesions, last sizes, HCC diagnosis date and CPT-only TACE sessions that the assessment
sees. :func:`read_form` checks what the clinician typed and gives either a :class:`CaptureInput` or
:class:`CaptureErrors` (one message per field, plus what was typed, to show again).
:func:`build_transaction` writes what ``service.mapping`` reads back (design note, section 5), every code
from the knowledge (value sets with the site's overrides), and validates each resource with fhir.resources
(R4B) before returning: a builder bug raises :class:`CaptureBuildError`, it is never sent.

Form fields (the template uses these names; anything else is ignored):

- ``study_date``: the imaging study's date, ``YYYY-MM-DD``;
- ``modality``: a token of :attr:`CaptureContext.modalities` (``CT``, ``MRI``, ``US``, ``PET``);
- ``size__<BodyStructure id>``: the viable longest diameter in mm of an existing lesion (blank: not measured
  in this study; ``0``: no viable tumour);
- ``new_location__<n>`` / ``new_size__<n>`` for n in ``0 .. NEW_LESION_ROWS - 1``: a new lesion's location
  (a code of :attr:`CaptureContext.liver_locations` or :attr:`CaptureContext.extrahepatic_locations`) and
  diameter; a row needs both, or neither;
- ``vascular_invasion``: checkbox (value ``1``): portal-vein tumour thrombus seen on this study;
- ``extrahepatic__<code>``: checkbox (value ``1``) per extrahepatic location code: spread there seen on this study;
- ``confirm_tace__<Procedure id>``: checkbox (value ``1``): this CPT-only session was a chemoembolisation.

:attr:`CaptureErrors.errors` is keyed by field name; :data:`FORM_ERROR` keys an error of the whole form
("nothing to record").
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from rules.criteria import CaptureLimits
from rules.knowledge import Coding, Knowledge, KnowledgeError
from rules.snapshot import Snapshot
from service.mapping import MODALITY_CODES, UCUM, map_to_snapshot

# -- form field names -------------------------------------------------------------------------------
STUDY_DATE = "study_date"
MODALITY = "modality"
SIZE_PREFIX = "size__"
NEW_LOCATION_PREFIX = "new_location__"
NEW_SIZE_PREFIX = "new_size__"
VASCULAR_INVASION = "vascular_invasion"
EXTRAHEPATIC_PREFIX = "extrahepatic__"
CONFIRM_TACE_PREFIX = "confirm_tace__"
FORM_ERROR = "_form"
NEW_LESION_ROWS = 3
CHECKED = frozenset({"1", "on", "true", "yes"})

# -- FHIR structure (infrastructure codes and profiles, not clinical codes) ---------------------------
SNOMED = "http://snomed.info/sct"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
TUMOR_PROFILE = MCODE + "mcode-tumor"
TUMOR_SIZE_PROFILE = MCODE + "mcode-tumor-size"
SECONDARY_CANCER_PROFILE = MCODE + "mcode-secondary-cancer-condition"
LESION_IDENTIFIER_SYSTEM = "urn:hcc-cds:lesion"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
MODALITY_LABELS = {"CT": "CT", "MRI": "MRI", "US": "Ultrasound", "PET": "PET"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


class CaptureBuildError(ValueError):
    """The builder made a resource fhir.resources refuses: a bug; nothing is sent."""


@dataclass(frozen=True)
class ExistingLesion:
    """A lesion BodyStructure of the record, with its latest measurement as the mapping reads it."""

    body_structure_id: str
    location_code: str | None
    location_label: str
    in_liver: bool
    last_date: date | None
    last_size_mm: Decimal | None


@dataclass(frozen=True)
class UnconfirmedTace:
    """A completed Procedure coded only by a non-specific embolisation code (e.g. CPT 37243)."""

    procedure_id: str
    performed: date | None
    label: str
    resource: dict  # as read (keeps meta.versionId, the If-Match of the PUT)
    problem: str | None = None  # why it cannot be corrected here (the PUT would send a resource R4B refuses)


@dataclass(frozen=True)
class CaptureCodes:
    """Every code a save writes, taken from the knowledge when the form is shown."""

    tumour_size: Coding
    longest_dimension: Coding
    diameter_unit: str
    morphology: Coding
    locations: dict[str, Coding]  # location code -> its coding (liver and extrahepatic structures)
    location_sites: dict[str, str]  # extrahepatic location code -> the organ it names ("lung")
    portal_vein_thrombus: Coding
    metastasis: Coding  # the generic secondary-malignancy code
    metastasis_by_site: dict[str, Coding]  # organ -> its site-specific (confirmed) code
    tace_specific: Coding | None
    modality_codes: dict[str, str]  # token ("CT") -> SNOMED code


@dataclass(frozen=True)
class CaptureContext:
    patient_id: str
    today: date
    diagnosis_date: date | None
    lesions: tuple[ExistingLesion, ...]
    unconfirmed_tace: tuple[UnconfirmedTace, ...]
    liver_locations: tuple[tuple[str, str], ...]  # (code, label) from liver_structures
    extrahepatic_locations: tuple[tuple[str, str], ...]  # from extrahepatic_structures
    modalities: tuple[tuple[str, str], ...]  # (token, label)
    limits: CaptureLimits
    codes: CaptureCodes

    def lesion(self, body_structure_id: str) -> ExistingLesion | None:
        return next((x for x in self.lesions if x.body_structure_id == body_structure_id), None)

    def tace(self, procedure_id: str) -> UnconfirmedTace | None:
        return next((t for t in self.unconfirmed_tace if t.procedure_id == procedure_id), None)


@dataclass(frozen=True)
class NewLesion:
    location_code: str
    size_mm: Decimal


@dataclass(frozen=True)
class CaptureInput:
    """What the form asks to record, checked."""

    study_date: date | None  # None only when the form confirms TACE sessions and nothing else
    modality: str | None  # a token of CaptureContext.modalities; None when nothing is measured
    sizes: tuple[tuple[str, Decimal], ...]  # (BodyStructure id, viable diameter in mm)
    new_lesions: tuple[NewLesion, ...]
    vascular_invasion: bool
    extrahepatic: tuple[str, ...]  # extrahepatic location codes
    confirm_tace: tuple[str, ...]  # Procedure ids


@dataclass(frozen=True)
class CaptureErrors:
    errors: dict[str, str]  # field name -> a message a clinician understands
    values: dict[str, str]  # what was typed, to show again


# -- the context --------------------------------------------------------------------------------------


def _coding(entry: Any) -> Coding:
    return Coding(entry.system, entry.code, entry.display)


def _first(k: Knowledge, concept: str) -> Coding:
    codes = k.codes_of(concept)
    if not codes:
        raise KnowledgeError(f"the value set {concept!r} has no code to write")
    return _coding(codes[0])


def _first_specific(k: Knowledge, concept: str) -> Coding:
    """The first code of a concept that says the finding itself (a site's specific code first), else the first."""
    codes = k.codes_of(concept)
    specific = next((e for e in codes if e.specific), None)
    return _coding(specific) if specific is not None else _first(k, concept)


def capture_codes(k: Knowledge) -> CaptureCodes:
    """The codes a save writes, from the value sets (site overrides included); KnowledgeError if one is missing."""
    size = k.value_set("tumour_size")
    if size.component is None or size.unit is None:
        raise KnowledgeError("the value set 'tumour_size' needs its component and unit")
    locations = {e.code: _coding(e) for c in ("liver_structures", "extrahepatic_structures") for e in k.codes_of(c)}
    sites = {e.code: e.site or e.display for e in k.codes_of("extrahepatic_structures")}
    metastases = k.codes_of("extrahepatic_metastasis")
    generic = next((e for e in metastases if e.site is None and e.specific), None)
    if generic is None:
        raise KnowledgeError("the value set 'extrahepatic_metastasis' has no code without a site to write")
    by_site: dict[str, Coding] = {}
    for entry in metastases:
        if entry.site and entry.confirmed and entry.site not in by_site:
            by_site[entry.site] = _coding(entry)
    specific = next((e for e in k.codes_of("tace") if e.specific), None)
    return CaptureCodes(
        tumour_size=_first(k, "tumour_size"),
        longest_dimension=size.component,
        diameter_unit=size.unit,
        morphology=_first(k, "lesion_morphology"),
        locations=locations,
        location_sites=sites,
        portal_vein_thrombus=_first_specific(k, "portal_vein_tumour_thrombus"),
        metastasis=_coding(generic),
        metastasis_by_site=by_site,
        tace_specific=_coding(specific) if specific else None,
        modality_codes={token: code for code, token in MODALITY_CODES.items()},
    )


def _location(body: dict, codes: CaptureCodes, liver: set[str]) -> tuple[str | None, str, bool]:
    """(code, label, in the liver) of a BodyStructure's location; the description leads the label when there is one."""
    code = None
    for coding in (body.get("location") or {}).get("coding") or []:
        if isinstance(coding, dict) and coding.get("code") in codes.locations:
            code = str(coding["code"])
            break
    place = (codes.locations[code].display or code) if code else "location not recognised"
    description = body.get("description")
    label = f"{description} ({place})" if isinstance(description, str) and description.strip() else str(place)
    return code, label, code in liver


def _lesions(resources: list[dict], snapshot: Snapshot, codes: CaptureCodes, liver: set[str]) -> tuple[ExistingLesion, ...]:
    latest: dict[str, tuple[date, float]] = {}
    for m in snapshot.lesions:
        if m.lesion not in latest or m.when >= latest[m.lesion][0]:
            latest[m.lesion] = (m.when, m.viable_diameter_mm)
    found = []
    for body in resources:
        if body.get("resourceType") != "BodyStructure" or body.get("active") is False:
            continue
        code, label, in_liver = _location(body, codes, liver)
        last = latest.get(f"BodyStructure/{body.get('id')}")
        size = Decimal(repr(last[1])).normalize() if last else None
        found.append(ExistingLesion(str(body.get("id")), code, label, in_liver, last[0] if last else None, size))
    return tuple(sorted(found, key=lambda x: (x.location_label, x.body_structure_id)))


def _unconfirmed(resources: list[dict], snapshot: Snapshot) -> tuple[UnconfirmedTace, ...]:
    """CPT-only TACE sessions that can be corrected safely: completed, and versioned (the PUT's If-Match)."""
    by_ref = {f"Procedure/{r.get('id')}": r for r in resources if r.get("resourceType") == "Procedure"}
    found = []
    for proc in snapshot.procedures_of("tace"):
        resource = by_ref.get(proc.ref)
        if proc.specific or proc.status != "completed" or resource is None:
            continue
        if not (resource.get("meta") or {}).get("versionId"):
            continue  # no version to send as If-Match: a blind PUT could undo another's change
        code = resource.get("code") or {}
        codings = [c for c in code.get("coding") or [] if isinstance(c, dict)]
        label = code.get("text") or next((c.get("display") or c.get("code") for c in codings), None) or "Procedure"
        found.append(UnconfirmedTace(str(resource["id"]), proc.performed, str(label), resource, _put_problem(resource)))
    return tuple(found)


def _put_problem(resource: dict) -> str | None:
    """Why the Procedure as read cannot be sent back whole (a PUT), or None: the whole form must not fail on it."""
    try:
        _models()["Procedure"].model_validate(resource)
    except (ValidationError, ValueError, TypeError) as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)]
        return f"the EHR's Procedure does not pass FHIR validation ({first[0].strip()[:160]}); correct its coding in the EHR"
    return None


def capture_context(
    patient_id: str, resources: list[dict], today: date, knowledge: Knowledge, *, snapshot: Snapshot | None = None
) -> CaptureContext:
    """What the form needs, read from the patient's gathered resources through the mapping: ``snapshot`` is the
    mapping of those resources when the caller has it already (the app: its assessment's), else mapped here."""
    if snapshot is None:
        snapshot = map_to_snapshot({"resourceType": "Patient", "id": patient_id}, resources, knowledge)
    codes = capture_codes(knowledge)
    liver = [(e.code, e.display) for e in knowledge.codes_of("liver_structures")]
    extrahepatic = [(e.code, e.site or e.display) for e in knowledge.codes_of("extrahepatic_structures")]
    hcc = [c.onset or c.recorded for c in snapshot.conditions_of("hcc") if c.is_confirmed]
    dated = [d for d in hcc if d is not None]
    return CaptureContext(
        patient_id=patient_id,
        today=today,
        diagnosis_date=min(dated) if dated else None,
        lesions=_lesions(resources, snapshot, codes, {code for code, _ in liver}),
        unconfirmed_tace=_unconfirmed(resources, snapshot),
        liver_locations=tuple(liver),
        extrahepatic_locations=tuple(extrahepatic),
        modalities=tuple((token, MODALITY_LABELS.get(token, token)) for token in dict.fromkeys(MODALITY_CODES.values())),
        limits=knowledge.criteria.capture,
        codes=codes,
    )


# -- reading the form ----------------------------------------------------------------------------------


def _mm(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _diameter(raw: str, limits: CaptureLimits) -> Decimal | str:
    """The diameter typed, or a message saying what is wrong with it."""
    text = raw.strip().replace(",", ".")
    low, high = Decimal(str(limits.min_diameter_mm)), Decimal(str(limits.max_diameter_mm))
    if not _NUMBER.fullmatch(text):
        return f"Diameter {raw.strip()[:20]!r} is not a number of millimetres (for example 32 or 32.5)."
    try:
        value = Decimal(text)
    except InvalidOperation:
        return f"Diameter {raw.strip()[:20]!r} is not a number of millimetres (for example 32 or 32.5)."
    exponent = value.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > limits.diameter_decimal_places:
        return (f"Diameter {text} mm has more than {limits.diameter_decimal_places} decimal place(s): "
                f"round it to {Decimal(1).scaleb(-limits.diameter_decimal_places)} mm.")
    if value > high:
        return f"Diameter {text} mm is over {_mm(high)} mm: check the value (a typing error?)."
    if value < low:
        return f"Diameter {text} mm is under {_mm(low)} mm: 0 means no viable tumour."
    return value


def _study_date(raw: str, ctx: CaptureContext) -> date | str | None:
    """The study date, None when blank, or a message."""
    text = raw.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text) if _DATE.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        return f"Study date {text[:20]!r} is not a date (YYYY-MM-DD)."
    if day > ctx.today:
        return f"Study date {day} is in the future (today is {ctx.today})."
    if ctx.diagnosis_date is not None and day < ctx.diagnosis_date:
        return f"Study date {day} is before the HCC diagnosis ({ctx.diagnosis_date}): check the date."
    return day


def _checked(fields: Mapping[str, str], name: str) -> bool:
    return str(fields.get(name, "")).strip().lower() in CHECKED


def _existing_sizes(fields: Mapping[str, str], ctx: CaptureContext, errors: dict[str, str]) -> list[tuple[str, Decimal]]:
    sizes = []
    for name, raw in fields.items():
        if not name.startswith(SIZE_PREFIX) or not str(raw).strip():
            continue
        lesion_id = name.removeprefix(SIZE_PREFIX)
        if ctx.lesion(lesion_id) is None:
            errors[name] = "This lesion is not in the patient's record (reload the form)."
            continue
        value = _diameter(str(raw), ctx.limits)
        if isinstance(value, str):
            errors[name] = value
        else:
            sizes.append((lesion_id, value))
    return sizes


def _new_lesions(fields: Mapping[str, str], ctx: CaptureContext, errors: dict[str, str]) -> list[NewLesion]:
    known = {code for code, _ in (*ctx.liver_locations, *ctx.extrahepatic_locations)}
    found = []
    for n in range(NEW_LESION_ROWS):
        loc_name, size_name = f"{NEW_LOCATION_PREFIX}{n}", f"{NEW_SIZE_PREFIX}{n}"
        location, raw = str(fields.get(loc_name, "")).strip(), str(fields.get(size_name, "")).strip()
        if not location and not raw:
            continue
        if location and location not in known:
            errors[loc_name] = "Choose the new lesion's location from the list."
        elif not location:
            errors[loc_name] = "A new lesion needs its location."
        value = _diameter(raw, ctx.limits) if raw else "A new lesion needs its diameter."
        if isinstance(value, str):
            errors[size_name] = value
        elif loc_name not in errors:
            found.append(NewLesion(location, value))
    return found


def _codes_checked(fields: Mapping[str, str], prefix: str, known: set[str], unknown: str, errors: dict[str, str]) -> list[str]:
    chosen = []
    for name in fields:
        if name.startswith(prefix) and _checked(fields, name):
            value = name.removeprefix(prefix)
            if value in known:
                chosen.append(value)
            else:
                errors[name] = unknown
    return chosen


def _dates_after_last(day: date, ctx: CaptureContext) -> str | None:
    """A message when the study is not after the record's latest lesion study.

    Whatever the form records (a diameter, a new lesion, a finding) belongs to a study later than every study
    already recorded: an earlier one would move the baseline or the nadir the response is measured from, or slip a
    new lesion or a thrombus in before it could count as progression; a same-day study is a duplicate."""
    dated = [lesion for lesion in ctx.lesions if lesion.last_date is not None]
    if not dated:
        return None
    latest = max(lesion.last_date for lesion in dated if lesion.last_date is not None)
    if day > latest:
        return None
    if day == latest:
        names = ", ".join(dict.fromkeys(lesion.location_label for lesion in dated if lesion.last_date == day))
        return (f"Study date: a study of {day} is already recorded ({names}); correct it in the EHR rather than "
                "adding it again.")
    return (f"Study date: the latest recorded study is of {latest}: only a later study can be added here (an earlier "
            "one would change the baseline or the nadir the response is measured from).")


def _typed(fields: Mapping[str, str]) -> dict[str, str]:
    """The form's own fields as typed (to show again); anything else is left out."""
    prefixes = (SIZE_PREFIX, NEW_LOCATION_PREFIX, NEW_SIZE_PREFIX, EXTRAHEPATIC_PREFIX, CONFIRM_TACE_PREFIX)
    return {
        name: str(value)[:200]
        for name, value in fields.items()
        if name in (STUDY_DATE, MODALITY, VASCULAR_INVASION) or name.startswith(prefixes)
    }


def read_form(fields: Mapping[str, str], ctx: CaptureContext) -> CaptureInput | CaptureErrors:
    """The checked input, or every error at once (keyed by field) with what was typed."""
    errors: dict[str, str] = {}
    day = _study_date(str(fields.get(STUDY_DATE, "")), ctx)
    if isinstance(day, str):
        errors[STUDY_DATE] = day
    sizes = _existing_sizes(fields, ctx, errors)
    new = _new_lesions(fields, ctx, errors)
    invasion = _checked(fields, VASCULAR_INVASION)
    extrahepatic_codes = {code for code, _ in ctx.extrahepatic_locations}
    spread = _codes_checked(fields, EXTRAHEPATIC_PREFIX, extrahepatic_codes, "Not an extrahepatic location of the list.", errors)
    tace_ids = {t.procedure_id for t in ctx.unconfirmed_tace if t.problem is None}
    confirms = _codes_checked(fields, CONFIRM_TACE_PREFIX, tace_ids, "This session is not in the patient's record (reload the form).", errors)
    measured = bool(sizes or new)
    modality = str(fields.get(MODALITY, "")).strip()
    if modality and modality not in dict(ctx.modalities):
        errors[MODALITY] = "Choose the imaging modality from the list."
    elif measured and not modality:
        errors[MODALITY] = "Say which imaging the diameters come from."
    if isinstance(day, date) and (measured or invasion or spread) and STUDY_DATE not in errors:
        problem = _dates_after_last(day, ctx)
        if problem:
            errors[STUDY_DATE] = problem
    if day is None and (measured or invasion or spread):
        errors[STUDY_DATE] = "Give the date of the imaging study."
    if not (measured or invasion or spread or confirms) and not errors:
        errors[FORM_ERROR] = "Nothing to record: enter a diameter, a finding or a TACE confirmation."
    if errors:
        return CaptureErrors(errors, _typed(fields))
    return CaptureInput(
        study_date=day if isinstance(day, date) else None,
        modality=modality or None,
        sizes=tuple(sizes),
        new_lesions=tuple(new),
        vascular_invasion=invasion,
        extrahepatic=tuple(dict.fromkeys(spread)),
        confirm_tace=tuple(dict.fromkeys(confirms)),
    )


# -- the transaction ------------------------------------------------------------------------------------


def _cc(coding: Coding, text: str | None = None) -> dict:
    out: dict[str, Any] = {"coding": [{k: v for k, v in (("system", coding.system), ("code", coding.code),
                                                         ("display", coding.display)) if v}]}
    if text:
        out["text"] = text
    return out


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class _Writer:
    """The entries of one save, in order, and what the Provenance must name."""

    ctx: CaptureContext
    entries: list[dict] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    created: bool = False

    def post(self, resource: dict) -> str:
        full_url = f"urn:uuid:{uuid.uuid4()}"
        self.entries.append({"fullUrl": full_url, "resource": resource,
                             "request": {"method": "POST", "url": resource["resourceType"]}})
        self.targets.append(full_url)
        self.created = True
        return full_url

    @property
    def subject(self) -> dict:
        return {"reference": f"Patient/{self.ctx.patient_id}"}

    def new_lesion(self, lesion: NewLesion, day: date) -> tuple[str, str]:
        coding = self.ctx.codes.locations[lesion.location_code]
        label = coding.display or coding.code
        identifier = str(uuid.uuid4())
        ref = self.post({
            "resourceType": "BodyStructure",
            "meta": {"profile": [TUMOR_PROFILE]},
            "identifier": [{"system": LESION_IDENTIFIER_SYSTEM, "value": identifier}],
            "active": True,
            "morphology": _cc(self.ctx.codes.morphology),
            "location": _cc(coding),
            "description": f"Lesion in {label}, first recorded on the study of {day.isoformat()}",
            "patient": self.subject,
        })
        return ref, label

    def tumour_size(self, focus: str, label: str, size: Decimal, day: date, modality: str) -> None:
        codes = self.ctx.codes
        method = Coding(SNOMED, codes.modality_codes[modality], None)
        self.post({
            "resourceType": "Observation",
            "meta": {"profile": [TUMOR_SIZE_PROFILE]},
            "status": "final",
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "imaging"}]}],
            "code": _cc(codes.tumour_size),
            "subject": self.subject,
            "focus": [{"reference": focus, "display": label}],
            "effectiveDateTime": day.isoformat(),
            "method": _cc(method, MODALITY_LABELS.get(modality, modality)),
            "component": [{
                "code": _cc(codes.longest_dimension),
                "valueQuantity": {"value": _number(size), "unit": codes.diameter_unit, "system": UCUM,
                                  "code": codes.diameter_unit},
            }],
        })

    def condition(self, code: Coding, day: date, recorded: date, *, site: Coding | None = None) -> None:
        resource: dict[str, Any] = {
            "resourceType": "Condition",
            "clinicalStatus": _cc(Coding(CONDITION_CLINICAL, "active", None)),
            "verificationStatus": _cc(Coding(CONDITION_VERIFICATION, "confirmed", None)),
            "category": [_cc(Coding(CONDITION_CATEGORY, "problem-list-item", None))],
            "code": _cc(code),
            "subject": self.subject,
            "onsetDateTime": day.isoformat(),
            "recordedDate": recorded.isoformat(),
        }
        if site is not None:
            resource["meta"] = {"profile": [SECONDARY_CANCER_PROFILE]}
            resource["bodySite"] = [_cc(site)]
        self.post(resource)

    def confirm(self, tace: UnconfirmedTace) -> None:
        specific = self.ctx.codes.tace_specific
        if specific is None:
            raise CaptureBuildError("the value sets hold no specific TACE code to add")
        resource = copy.deepcopy(tace.resource)
        code = resource.setdefault("code", {})
        code.setdefault("coding", []).append(_cc(specific)["coding"][0])
        version = str(tace.resource["meta"]["versionId"])
        url = f"Procedure/{tace.procedure_id}"
        self.entries.append({"fullUrl": url, "resource": resource,
                             "request": {"method": "PUT", "url": url, "ifMatch": f'W/"{version}"'}})
        self.targets.append(url)


def _findings(writer: _Writer, inp: CaptureInput, day: date, recorded: date) -> None:
    codes = writer.ctx.codes
    if inp.vascular_invasion:
        writer.condition(codes.portal_vein_thrombus, day, recorded)
    for location in inp.extrahepatic:
        site = codes.location_sites.get(location, "")
        code = codes.metastasis_by_site.get(site, codes.metastasis)
        writer.condition(code, day, recorded, site=codes.locations[location])


def _provenance(writer: _Writer, author: str, device: str, now: datetime) -> dict:
    activity = "CREATE" if writer.created else "UPDATE"
    return {
        "resourceType": "Provenance",
        "target": [{"reference": t} for t in writer.targets],
        "recorded": now.isoformat(),
        "activity": _cc(Coding(DATA_OPERATION, activity, activity.lower())),
        "agent": [
            {"type": _cc(Coding(PARTICIPANT_TYPE, "author", "Author")), "who": {"reference": author}},
            {"type": _cc(Coding(PARTICIPANT_TYPE, "assembler", "Assembler")), "who": {"display": device}},
        ],
    }


def build_transaction(inp: CaptureInput, ctx: CaptureContext, *, author: str, app_name: str, app_version: str,
                      now: datetime) -> dict:
    """The transaction Bundle recording ``inp``, each resource validated (R4B); CaptureBuildError on a bug."""
    if now.tzinfo is None or not author.strip():
        raise CaptureBuildError("a Provenance needs a recorded time with its zone and the author's reference")
    writer = _Writer(ctx)
    day, modality = inp.study_date, inp.modality
    measured = bool(inp.sizes or inp.new_lesions)
    if (day is None and (measured or inp.vascular_invasion or inp.extrahepatic)) or \
            (measured and modality not in ctx.codes.modality_codes):
        raise CaptureBuildError("a measurement without its study date or modality: read_form was bypassed")
    if day is not None:
        for lesion_id, size in inp.sizes:
            lesion = ctx.lesion(lesion_id)
            if lesion is None:
                raise CaptureBuildError(f"lesion {lesion_id!r} is not in the record: read_form was bypassed")
            writer.tumour_size(f"BodyStructure/{lesion_id}", lesion.location_label, size, day, str(modality))
        for new in inp.new_lesions:
            ref, label = writer.new_lesion(new, day)
            writer.tumour_size(ref, label, new.size_mm, day, str(modality))
        _findings(writer, inp, day, ctx.today)  # the site's day (HCC_TIMEZONE), as the study date was checked
    for procedure_id in inp.confirm_tace:
        tace = ctx.tace(procedure_id)
        if tace is None:
            raise CaptureBuildError(f"Procedure {procedure_id!r} is not an unconfirmed TACE of the record")
        writer.confirm(tace)
    if not writer.entries:
        raise CaptureBuildError("nothing to write: read_form was bypassed")
    provenance = _provenance(writer, author, f"{app_name} {app_version}", now)
    writer.entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": provenance,
                           "request": {"method": "POST", "url": "Provenance"}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": writer.entries}
    validate_bundle(bundle)
    return bundle


def _models() -> dict[str, Any]:
    """fhir.resources' R4B models of what a save writes (imported on first use: they take a while to load)."""
    from fhir.resources.R4B.bodystructure import BodyStructure
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.observation import Observation
    from fhir.resources.R4B.procedure import Procedure
    from fhir.resources.R4B.provenance import Provenance

    return {"BodyStructure": BodyStructure, "Bundle": Bundle, "Condition": Condition, "Observation": Observation,
            "Procedure": Procedure, "Provenance": Provenance}


def validate_bundle(bundle: dict) -> None:
    """Every entry's resource, and the Bundle, against fhir.resources R4B; CaptureBuildError naming the first fault."""
    models = _models()
    for i, entry in enumerate(bundle.get("entry", [])):
        resource = entry["resource"]
        model = models.get(resource.get("resourceType"))
        if model is None:
            raise CaptureBuildError(f"entry {i}: the builder does not write a {resource.get('resourceType')}")
        try:
            model.model_validate(resource)
        except (ValidationError, ValueError, TypeError) as exc:
            raise CaptureBuildError(f"entry {i} ({resource['resourceType']}) fails FHIR R4B validation: {exc}") from exc
    try:
        models["Bundle"].model_validate(bundle)
    except (ValidationError, ValueError, TypeError) as exc:
        raise CaptureBuildError(f"the transaction Bundle fails FHIR R4B validation: {exc}") from exc


# -- what was written, for the result page ------------------------------------------------------------------


def _display(concept: Any) -> str:
    codings = [c for c in (concept or {}).get("coding") or [] if isinstance(c, dict)]
    return str((concept or {}).get("text") or next((c.get("display") or c.get("code") for c in codings), "") or "")


def _describe(resource: dict, request: dict) -> str:
    rtype = resource.get("resourceType")
    if rtype == "Observation":
        comp = (resource.get("component") or [{}])[0].get("valueQuantity") or {}
        focus = (resource.get("focus") or [{}])[0]
        method = _display(resource.get("method"))
        return (f"TumorSize {comp.get('value')} {comp.get('unit', '')}, {focus.get('display') or focus.get('reference')}, "
                f"{resource.get('effectiveDateTime')}" + (f" ({method})" if method else ""))
    if rtype == "BodyStructure":
        return f"New lesion, {_display(resource.get('location'))}"
    if rtype == "Condition":
        site = ", ".join(_display(s) for s in resource.get("bodySite") or [])
        return f"{_display(resource.get('code'))}{f' ({site})' if site else ''}, onset {resource.get('onsetDateTime')}"
    if rtype == "Procedure":
        added = ((resource.get("code") or {}).get("coding") or [{}])[-1]
        performed = resource.get("performedDateTime") or (resource.get("performedPeriod") or {}).get("start") or "undated"
        return f"{request.get('url')} of {performed}: confirmed as {added.get('display') or added.get('code')}"
    if rtype == "Provenance":
        agents = resource.get("agent") or []
        who = " with ".join(str(a.get("who", {}).get("reference") or a.get("who", {}).get("display")) for a in agents)
        return f"Provenance: recorded {resource.get('recorded')} by {who}"
    return f"{rtype} ({request.get('method')})"


def describe_writes(bundle: dict) -> list[str]:
    """One line per entry of a transaction Bundle built here ("TumorSize 40 mm, segment VII, 2026-11-13 (CT)")."""
    return [_describe(e.get("resource") or {}, e.get("request") or {}) for e in bundle.get("entry", [])]
