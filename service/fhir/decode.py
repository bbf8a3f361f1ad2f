"""The fast typed check of what the mapping reads: FHIR R4 resources narrowed to the fields it uses.

PRODUCT.md: a resource that fails validation *in a field the mapping reads* is skipped and reported;
errors in fields it does not read are not its concern (a strict mode, ``HCC_FHIR_STRICT_VALIDATION``,
validates whole resources with fhir.resources). This module is that narrower check, written as
msgspec structs so that it costs a few microseconds a resource whether or not the resource was seen
before (fhir.resources builds ~10 nested models a resource: ~0.1-0.4 ms).

What is checked, field by field, is what fhir.resources checks on the same fields, with FHIR's
primitive rules (https://hl7.org/fhir/R4/datatypes.html): ``id``, ``code``, ``uri``, ``string``,
``date``/``dateTime``/``instant`` (their regular expressions, and a date that exists), ``decimal``
(a JSON number, finite; never a boolean or a string), ``integer`` (32 bits) and ``positiveInt``,
``boolean``; complex types (Coding, CodeableConcept, Quantity, Period, Reference) refuse unknown
members, as fhir.resources does; lists must be lists of objects; a choice element ``x[x]`` holds one
type at most; the required elements the mapping and the gathering read must be there
(``Observation.status`` and ``code``, a component's ``code``, ``Procedure.status``, the medication
statements' ``status`` and ``medication[x]``, and the reference to the patient where R4 requires one).
Elements the mapping does not read (``meta``, ``text``, ``identifier``, ``category``, an
``intent``...) are not looked at. Where fhir.resources is laxer (a decimal written as the string
``"12"``, a date-time written as a number), this check refuses the value: it is not FHIR JSON.

The message of a refusal is fhir.resources' own when it finds an error in a field the mapping reads
(the same text as in strict mode); otherwise msgspec's, with the element's path.
"""

from __future__ import annotations

import functools
import re
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from operator import attrgetter
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

import msgspec
from msgspec import Meta, Struct, field

from service.fhir.ids import FHIR_ID_PATTERN

# -- primitive types (https://hl7.org/fhir/R4/datatypes.html#primitive) -----------------------------------------
# msgspec applies a pattern with re.search: each is anchored at both ends (\Z: no trailing newline).
Id = Annotated[str, Meta(pattern=rf"^{FHIR_ID_PATTERN}\Z")]  # _ID_PATTERN below
Code = Annotated[str, Meta(pattern=r"^[^\s]+(\s[^\s]+)*\Z")]
Uri = Annotated[str, Meta(pattern=r"^\S*\Z")]
String = Annotated[str, Meta(min_length=1)]
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
DateStr = Annotated[str, Meta(pattern=rf"^{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?\Z")]
DateTimeStr = Annotated[
    str, Meta(pattern=rf"^{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])({_TIME})?)?)?\Z")
]
InstantStr = Annotated[str, Meta(pattern=rf"^{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1]){_TIME}\Z")]
Integer = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
PositiveInt = Annotated[int, Meta(ge=1, le=2**31 - 1)]
# a decimal is a JSON number: any integer, or a finite float (the bounds refuse NaN and the infinities)
Decimal = int | Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]


def _date_problem(name: str, value: object) -> str | None:
    """A date that matched its pattern must also exist (2026-02-30 does not)."""
    if isinstance(value, str) and len(value) >= 10:
        try:
            date.fromisoformat(value[:10])
        except ValueError:
            return f"{name}: {value!r} is not a calendar date"
    return None


def _one_of_problem(prefix: str, present: Iterable[str]) -> str | None:
    names = sorted(present)
    return f"{prefix}[x] holds more than one type ({', '.join(names)})" if len(names) > 1 else None


def _check_nested(struct: Struct, dates: tuple[str, ...] = (), one_of: tuple[str, tuple[str, ...]] | None = None) -> None:
    """``__post_init__`` of a nested element: its dates exist, its choice holds one type at most."""
    for name in dates:
        problem = _date_problem(name, getattr(struct, name))
        if problem:
            raise ValueError(problem)
    if one_of:
        values = _getter(one_of[1])(struct)  # all the choice's members at once (a C call)
        if len(values) - values.count(None) > 1:  # (the values are JSON values or structs: none equals None)
            present = [n for n, v in zip(one_of[1], values) if v is not None]
            raise ValueError(_one_of_problem(one_of[0], present))  # the message (a sort) only for a refusal


@functools.cache  # one a choice
def _getter(names: tuple[str, ...]) -> attrgetter:
    """``attrgetter(*names)``, made once for each choice (every choice has two members or more: a tuple)."""
    return attrgetter(*names)


# -- complex types: every R4 member declared (unknown members are refused, as fhir.resources does) --------------
# gc=False on every struct: the decoded structs hold JSON values (trees, never cycles) and are dropped at once;
# not tracking them spares the garbage collector's bookkeeping for each of the ~20 a resource builds.
class Element(Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    id: Any = None
    extension: Any = None


class Coding(Element):
    system: Uri | None = None
    version: Any = None
    code: Code | None = None
    display: String | None = None
    userSelected: Any = None
    system_: Any = field(default=None, name="_system")
    version_: Any = field(default=None, name="_version")
    code_: Any = field(default=None, name="_code")
    display_: Any = field(default=None, name="_display")
    userSelected_: Any = field(default=None, name="_userSelected")


class CodeableConcept(Element):
    coding: list[Coding] | None = None
    text: String | None = None
    text_: Any = field(default=None, name="_text")


class Quantity(Element):
    value: Decimal | None = None
    comparator: Any = None
    unit: String | None = None
    system: Uri | None = None
    code: Code | None = None
    value_: Any = field(default=None, name="_value")
    comparator_: Any = field(default=None, name="_comparator")
    unit_: Any = field(default=None, name="_unit")
    system_: Any = field(default=None, name="_system")
    code_: Any = field(default=None, name="_code")


class Period(Element):
    start: DateTimeStr | None = None
    end: DateTimeStr | None = None
    start_: Any = field(default=None, name="_start")
    end_: Any = field(default=None, name="_end")

    def __post_init__(self) -> None:
        _check_nested(self, dates=("start", "end"))


class Reference(Element):
    reference: String | None = None
    type: Any = None
    identifier: Any = None
    display: Any = None
    reference_: Any = field(default=None, name="_reference")
    type_: Any = field(default=None, name="_type")
    display_: Any = field(default=None, name="_display")


class Resource(Struct, kw_only=True, gc=False):
    resourceType: Any = None  # the dispatch key: read before decoding
    id: Id | None = None


# -- backbone elements the mapping reads into (their other members are not its concern) -------------------------
_VALUE_X = ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "valueRange",
            "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod")


class _ValueX(Resource):  # Observation and its components (a component's id is an element id)
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueInteger: Integer | None = None
    valueString: Any = None
    valueBoolean: Any = None
    valueRange: Any = None
    valueRatio: Any = None
    valueSampledData: Any = None
    valueTime: Any = None
    valueDateTime: Any = None
    valuePeriod: Any = None


class ObservationComponent(_ValueX, kw_only=True):
    code: CodeableConcept

    def __post_init__(self) -> None:
        _check_nested(self, one_of=("value", _VALUE_X))


class Repeat(Struct, gc=False):
    boundsPeriod: Period | None = None
    boundsDuration: Any = None
    boundsRange: Any = None
    frequency: PositiveInt | None = None
    period: Decimal | None = None
    periodUnit: Code | None = None

    def __post_init__(self) -> None:
        _check_nested(self, one_of=("bounds", ("boundsPeriod", "boundsDuration", "boundsRange")))


class Timing(Struct, gc=False):
    repeat: Repeat | None = None


class DoseAndRate(Struct, gc=False):
    doseQuantity: Quantity | None = None
    doseRange: Any = None

    def __post_init__(self) -> None:
        _check_nested(self, one_of=("dose", ("doseQuantity", "doseRange")))


class Dosage(Struct, gc=False):
    timing: Timing | None = None
    doseAndRate: list[DoseAndRate] | None = None


# -- resources: what service/mapping.py and service/gather.py read ------------------------------------------------
# A resource's own choice elements and dates are checked on the JSON object after decoding (TOP_LEVEL below):
# a set intersection costs less than a __post_init__ reading a dozen attributes.
class Patient(Resource):
    birthDate: DateStr | None = None
    gender: Code | None = None
    deceasedBoolean: bool | None = None
    deceasedDateTime: DateTimeStr | None = None


class Observation(_ValueX, kw_only=True):
    status: Code
    code: CodeableConcept
    subject: Reference | None = None
    focus: list[Reference] | None = None
    method: CodeableConcept | None = None
    component: list[ObservationComponent] | None = None
    effectiveDateTime: DateTimeStr | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: InstantStr | None = None
    effectiveTiming: Any = None


class Condition(Resource, kw_only=True):
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    severity: CodeableConcept | None = None
    code: CodeableConcept | None = None
    bodySite: list[CodeableConcept] | None = None
    subject: Reference
    onsetDateTime: DateTimeStr | None = None
    onsetPeriod: Period | None = None
    onsetAge: Any = None
    onsetRange: Any = None
    onsetString: Any = None
    abatementDateTime: DateTimeStr | None = None
    abatementPeriod: Period | None = None
    abatementAge: Any = None
    abatementRange: Any = None
    abatementString: Any = None
    recordedDate: DateTimeStr | None = None


class Procedure(Resource, kw_only=True):
    status: Code
    statusReason: CodeableConcept | None = None
    code: CodeableConcept | None = None
    subject: Reference
    performedDateTime: DateTimeStr | None = None
    performedPeriod: Period | None = None
    performedString: Any = None
    performedAge: Any = None
    performedRange: Any = None


class _MedicationX(Resource, kw_only=True):
    status: Code
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None
    subject: Reference


class MedicationRequest(_MedicationX):
    authoredOn: DateTimeStr | None = None
    dosageInstruction: list[Dosage] | None = None


class MedicationStatement(_MedicationX):
    effectiveDateTime: DateTimeStr | None = None
    effectivePeriod: Period | None = None
    dosage: list[Dosage] | None = None


class AllergyIntolerance(Resource, kw_only=True):
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    criticality: Code | None = None
    code: CodeableConcept | None = None
    patient: Reference


class BodyStructure(Resource, kw_only=True):
    location: CodeableConcept | None = None
    patient: Reference


@dataclass(frozen=True)
class TopLevelChecks:
    """What a resource type's struct leaves to the JSON object: its dates exist, its choices hold one type at
    most, and the choices it must have are there."""

    dates: tuple[str, ...] = ()
    choices: tuple[tuple[str, frozenset[str]], ...] = ()
    required_choices: tuple[str, ...] = ()


def _choice(prefix: str, *types: str) -> tuple[str, frozenset[str]]:
    return prefix, frozenset(prefix + t for t in types)


_DATE_X = ("DateTime", "Age", "Period", "Range", "String")
_MEDICATION_X = _choice("medication", "CodeableConcept", "Reference")
TOP_LEVEL: dict[str, TopLevelChecks] = {
    "Patient": TopLevelChecks(("birthDate", "deceasedDateTime"), (_choice("deceased", "Boolean", "DateTime"),)),
    "Observation": TopLevelChecks(
        ("effectiveDateTime", "effectiveInstant"),
        (_choice("effective", "DateTime", "Period", "Instant", "Timing"), ("value", frozenset(_VALUE_X))),
    ),
    "Condition": TopLevelChecks(
        ("onsetDateTime", "abatementDateTime", "recordedDate"),
        (_choice("onset", *_DATE_X), _choice("abatement", *_DATE_X, "Boolean")),
    ),
    "Procedure": TopLevelChecks(("performedDateTime",), (_choice("performed", *_DATE_X),)),
    "MedicationRequest": TopLevelChecks(("authoredOn",), (_MEDICATION_X,), ("medication",)),
    "MedicationStatement": TopLevelChecks(
        ("effectiveDateTime",), (_MEDICATION_X, _choice("effective", "DateTime", "Period")), ("medication",)
    ),
    "AllergyIntolerance": TopLevelChecks(),
    "BodyStructure": TopLevelChecks(),
}
DECODERS: dict[str, type[Resource]] = {
    cls.__name__: cls
    for cls in (Patient, Observation, Condition, Procedure, MedicationRequest, MedicationStatement,
                AllergyIntolerance, BodyStructure)
}
# the top-level elements each type's check reads: a strict-mode error outside them is not the mapping's concern
READ_ELEMENTS: dict[str, frozenset[str]] = {
    name: frozenset(f.encode_name for f in msgspec.structs.fields(cls)) for name, cls in DECODERS.items()
}

_PATH = re.compile(r" - at `\$(.*)`$")


# -- the same check, with each string's pattern tested once -------------------------------------------------------
# msgspec runs a Meta(pattern=...) with re.search on every string, and most of the strings of a record are the
# same few systems, codes, units and dates: two thirds of the decoder's time went to these searches. So each
# resource is first decoded by a twin of its struct in which a patterned string is a marker type that msgspec
# hands to _checked_string (its dec_hook), which runs the same pattern (re.search) and keeps the strings it
# found valid in a small bounded set, so a string seen again costs a set lookup. Only the twin's *acceptance*
# is trusted: whatever it refuses is decoded again by the strict struct above, whose message is the answer
# (so every refusal, and its words, is exactly the strict decoder's).
CHECKED_STRINGS_MAX = 4096  # strings kept per pattern (a full set is emptied): at most ~1 MB a pattern
CHECKED_STRING_LENGTH_MAX = 128  # a longer string is tested every time and not kept


class CheckedString:
    """A string with a pattern, in a twin struct: msgspec leaves it to :func:`_checked_string`."""

    __slots__ = ()
    pattern: ClassVar[re.Pattern[str]]
    valid: ClassVar[set[str]]  # strings the pattern matched (a cache of values, never of resources)
    calendar: ClassVar[bool]  # a date, dateTime or instant: its date must also exist (as _date_problem checks)
    instance: ClassVar[CheckedString]


def _checked_string(kind: type[CheckedString], value: Any) -> CheckedString:
    """msgspec's dec_hook for the twins: a string the pattern matches, else a refusal (the strict struct says why).
    (An unhashable value raises TypeError here: a refusal too.)"""
    if value in kind.valid:
        return kind.instance
    if type(value) is not str or kind.pattern.search(value) is None:
        raise ValueError("checked again by the strict decoder")
    if kind.calendar and _date_problem("", value):
        raise ValueError("checked again by the strict decoder")
    if len(value) <= CHECKED_STRING_LENGTH_MAX:
        if len(kind.valid) >= CHECKED_STRINGS_MAX:
            kind.valid.clear()
        kind.valid.add(value)
    return kind.instance


_CHECKED_KINDS: dict[str, type[CheckedString]] = {}
_TWINS: dict[type, type] = {}


_ID_PATTERN = rf"^{FHIR_ID_PATTERN}\Z"  # the pattern of Id above
_CALENDAR_PATTERNS = frozenset(get_args(t)[1].pattern for t in (DateStr, DateTimeStr, InstantStr))
# a twin's date strings are checked to exist: a Period's __post_init__, which checks only that, is left out
_POST_INIT_LEFT_OUT = (Period,)


def _checked_kind(pattern: str) -> type[CheckedString]:
    """The CheckedString kind of one pattern (one per pattern: its strings found valid are shared)."""
    if pattern not in _CHECKED_KINDS:
        namespace = {"__slots__": (), "pattern": re.compile(pattern), "valid": set(),
                     "calendar": pattern in _CALENDAR_PATTERNS}
        kind: type[CheckedString] = type(f"CheckedString{len(_CHECKED_KINDS)}", (CheckedString,), namespace)
        kind.instance = kind()
        _CHECKED_KINDS[pattern] = kind
    return _CHECKED_KINDS[pattern]


def _twin_type(tp: Any) -> Any:
    """``tp`` with each patterned string a CheckedString kind and each struct its twin."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *metas = get_args(tp)
        if (base is str and len(metas) == 1 and metas[0].pattern and metas[0] == Meta(pattern=metas[0].pattern)
                and metas[0].pattern != _ID_PATTERN):  # an id names one resource: msgspec checks it (never seen again)
            return _checked_kind(metas[0].pattern)
        return tp
    if origin in (Union, types.UnionType):
        return Union[tuple(_twin_type(t) for t in get_args(tp))]  # noqa: UP007 (built from a tuple)
    if origin is list:
        return list[_twin_type(get_args(tp)[0])]  # type: ignore[misc]
    if isinstance(tp, type) and issubclass(tp, Struct):
        return _twin(tp)
    return tp


def _twin(cls: type[Struct]) -> type[Struct]:
    """The struct ``cls`` with its patterned strings left to :func:`_checked_string` (same fields, names,
    defaults, options and ``__post_init__``)."""
    if cls not in _TWINS:
        config = cls.__struct_config__
        fields = [
            (f.name, _twin_type(f.type),
             msgspec.field(default=f.default, name=f.encode_name) if not f.required else msgspec.field(name=f.encode_name))
            for f in msgspec.structs.fields(cls)
        ]
        post_init = None if cls in _POST_INIT_LEFT_OUT else getattr(cls, "__post_init__", None)
        _TWINS[cls] = msgspec.defstruct(
            f"{cls.__name__}Twin", fields, kw_only=True, namespace={"__post_init__": post_init} if post_init else None,
            forbid_unknown_fields=config.forbid_unknown_fields, omit_defaults=config.omit_defaults, gc=config.gc,
        )
    return _TWINS[cls]


TWINS: dict[str, type[Struct]] = {name: _twin(cls) for name, cls in DECODERS.items()}


def _twin_accepts(resource: dict, rtype: str) -> bool:
    try:
        msgspec.convert(resource, TWINS[rtype], dec_hook=_checked_string)
    except msgspec.ValidationError:
        return False
    return True


TWIN_BLOCK = 64  # resources a msgspec call in twins_accept: its per-call cost shared, a refused block redone alone
_TWIN_LISTS: dict[str, Any] = {name: list[twin] for name, twin in TWINS.items()}  # type: ignore[valid-type]


def twins_accept(resources: list[dict], rtype: str) -> list[bool]:
    """Whether the twin of ``rtype`` accepts each of ``resources`` (all of that type), as :func:`_twin_accepts` says:
    a list of them converts if and only if each does, so blocks of them are converted in one call each (a long
    record's thousands of Observations: ~a fifth of the decoder's cost is per call), and a block refused is
    converted again one resource at a time to tell which."""
    many = _TWIN_LISTS[rtype]
    verdicts: list[bool] = []
    for start in range(0, len(resources), TWIN_BLOCK):
        block = resources[start : start + TWIN_BLOCK]
        try:
            msgspec.convert(block, many, dec_hook=_checked_string)
        except msgspec.ValidationError:
            verdicts.extend(_twin_accepts(resource, rtype) for resource in block)
        else:
            verdicts.extend([True] * len(block))
    return verdicts


def _struct_problem(resource: dict, rtype: str) -> str | None:
    """msgspec's refusal of ``resource`` by its strict struct (None: accepted)."""
    try:
        msgspec.convert(resource, DECODERS[rtype])
    except msgspec.ValidationError as exc:
        return str(exc)
    return None


def decode_problem(resource: dict, twin_accepted: bool | None = None) -> str | None:
    """None if every field the mapping reads is valid FHIR R4, else the first problem, as a short text.

    ``resource`` must carry a ``resourceType`` that :data:`DECODERS` knows. Checked in this order: the
    struct (the twin, else the strict struct for its message), the choices, the dates (which exist when
    the twin accepted: its date strings were checked to). ``twin_accepted``: the twin's verdict when the
    caller has it (:func:`twins_accept`).
    """
    rtype = resource["resourceType"]
    if twin_accepted is None:
        twin_accepted = _twin_accepts(resource, rtype)
    if not twin_accepted:
        problem = _struct_problem(resource, rtype)
        if problem:
            return problem
    checks = TOP_LEVEL[rtype]
    keys = resource.keys()
    for prefix, names in checks.choices:
        present = keys & names
        if len(present) > 1:
            return _one_of_problem(prefix, present)
        if not present and prefix in checks.required_choices:
            return f"{prefix}[x] is required"
    if twin_accepted:
        return None
    for name in checks.dates:
        value = resource.get(name)
        if value is not None and len(value) >= 10:  # a string: the struct checked its pattern
            problem = _date_problem(name, value)
            if problem:
                return f"{problem} - at `$.{name}`"
    return None


def problem_location(message: str) -> tuple[str, str]:
    """("valueQuantity.code", "Expected `str`, got `int`") from msgspec's "... - at `$.valueQuantity.code`"."""
    match = _PATH.search(message)
    if not match:
        return "resource", message
    path = match.group(1).lstrip(".")
    path = re.sub(r"\[(\d+)\]", r".\1", path)
    return path or "resource", message[: match.start()]
