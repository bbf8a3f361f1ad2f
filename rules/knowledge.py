"""Clinical knowledge: value sets and thresholds, built from the documents in ``rules/data/``.

Pure: the caller (``service.knowledge``) reads the files and the site's override
file; this module checks, merges, indexes and answers questions about them. A site's
overrides may add codes to a concept and change scalar values; every change is
listed so the assessment can report it.

Everything is checked when the knowledge is built (``rules.criteria`` for the
thresholds, :data:`CONCEPT_SCHEMA` for the value sets): an unknown name, a wrong
type or an impossible value raises :class:`KnowledgeError` naming the file and the
key (:class:`OverridesError` when the site's overrides caused it). The rules read
the thresholds as typed objects (``k.criteria.child_pugh.inr_two_points_from``).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.criteria import (
    RESPONSE_CRITERIA_GROUPS,
    Check,
    ClinicalCriteria,
    KnowledgeError,
    Locate,
    flag,
    list_of,
    mapping_of,
    number,
    one_of,
    text,
    validate_thresholds,
)
from rules.mrecist import MrecistCriteria

__all__ = ["RULES_VERSION", "CodeEntry", "Coding", "Knowledge", "KnowledgeError", "Override", "OverridesError", "ValueSet"]

RULES_VERSION = "0.2.0"

# the file each document (or thresholds group) comes from, for error messages
DEFAULT_SOURCES: dict[str, str] = {
    "value_sets": "value_sets.json",
    "thresholds": "thresholds.json",
    **{f"thresholds.{group}": "response_criteria.json" for group in RESPONSE_CRITERIA_GROUPS},
}


class OverridesError(KnowledgeError):
    """The site's overrides are malformed, or make a value impossible."""


@dataclass(frozen=True)
class CodeEntry:
    concept: str
    system: str
    code: str
    display: str
    specific: bool = True
    mg_per_unit: float | None = None
    confirmed: bool = True
    # the body site the code itself names (a metastasis code's site, a body structure's organ); None: not said
    site: str | None = None
    # a severity the code itself implies ("severe": hepatic failure *with coma*); None: not said
    severity: str | None = None


def _normalised(code: str) -> str:
    """An ICD-style code without its dot and in upper case: "C78.7", "c787" and "C787" compare equal."""
    return code.replace(".", "").strip().upper()


@dataclass(frozen=True)
class _Prefix:
    system: str
    prefix: str  # normalised (no dot)
    concept: str
    site: str | None
    excluded: bool  # True: codes under this prefix are *not* in the concept (e.g. C78.7 in C77-C79)


@dataclass(frozen=True)
class Override:
    path: str
    old: Any
    new: Any

    def describe(self) -> str:
        if self.old is None:
            return f"{self.path}: added {self.new}"
        return f"{self.path}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class Coding:
    """A code the mapping reads inside a resource (a component, a trend's system)."""

    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True)
class ValueSet:
    """One concept of ``value_sets.json`` (after the site's overrides), typed: what the mapping reads.

    ``units``: unit -> (multiply by, divide by), exactly one of the two set; ``range``: the valid
    (low, high) of a scored value (ECOG 0-5).
    """

    name: str
    resource: str
    codes: tuple[CodeEntry, ...]
    unit: str | None = None
    units: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    unitless: bool = False
    value: str | None = None
    range: tuple[float, float] | None = None
    component: Coding | None = None
    components: dict[str, Coding] = field(default_factory=dict)
    terms: dict[str, str] = field(default_factory=dict)
    trends: dict[str, str] = field(default_factory=dict)
    trend_system: str | None = None
    note: str | None = None


def _coding(spec: Mapping[str, Any]) -> Coding:
    return Coding(str(spec["system"]), str(spec["code"]), spec.get("display"))


def _value_set(name: str, spec: Mapping[str, Any], codes: tuple[CodeEntry, ...]) -> ValueSet:
    """The typed view of a concept already checked against :data:`CONCEPT_SCHEMA`."""
    units: dict[str, tuple[float | None, float | None]] = {
        str(unit): ((float(rule), None) if not isinstance(rule, Mapping) else (None, float(rule["divide_by"])))
        for unit, rule in (spec.get("units") or {}).items()
    }
    low_high = spec.get("range")
    return ValueSet(
        name=name,
        resource=str(spec["resource"]),
        codes=codes,
        unit=spec.get("unit"),
        units=units,
        unitless=bool(spec.get("unitless", False)),
        value=spec.get("value"),
        range=(low_high[0], low_high[1]) if low_high else None,
        component=_coding(spec["component"]) if "component" in spec else None,
        components={k: _coding(v) for k, v in (spec.get("components") or {}).items()},
        terms=dict(spec.get("terms") or {}),
        trends=dict(spec.get("trends") or {}),
        trend_system=spec.get("trend_system"),
        note=spec.get("note"),
    )


# -- value-set schema --------------------------------------------------------------------------------


def _optional(spec: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """An object with only the names of ``spec`` (those in ``required`` must be there), each checked."""

    def check(value: Any, path: str, locate: Locate) -> Any:
        if not isinstance(value, Mapping):
            raise KnowledgeError(f"{locate(path)} must be an object, not {value!r}")
        for name in value:
            if name not in spec:
                raise KnowledgeError(f"{locate(f'{path}.{name}')} is not a known name (known: {', '.join(sorted(spec))})")
        for name in required:
            if name not in value:
                raise KnowledgeError(f"{locate(f'{path}.{name}')} is missing")
        for name, item in value.items():
            spec[name](item, f"{path}.{name}", locate)
        return value

    return check


def _unit_rule(value: Any, path: str, locate: Locate) -> Any:
    """A conversion to the canonical unit: a positive factor, or ``{"divide_by": x}``."""
    if isinstance(value, Mapping):
        return _optional({"divide_by": number(above=0), "source": text}, ("divide_by",))(value, path, locate)
    return number(above=0)(value, path, locate)


def _pair(value: Any, path: str, locate: Locate) -> Any:
    """``[low, high]``, two numbers with low <= high."""
    if not isinstance(value, list) or len(value) != 2:
        raise KnowledgeError(f"{locate(path)} must be [low, high], not {value!r}")
    low, high = list_of(number())(value, path, locate)
    if low > high:
        raise KnowledgeError(f"{locate(path)} must be [low, high] with low <= high, not {value!r}")
    return value


CODE_SCHEMA: dict[str, Check] = {
    "system": text,
    "code": text,
    "display": text,
    "specific": flag,
    "mg_per_unit": number(above=0),
    "confirmed": flag,
    "site": text,
    "severity": one_of("mild", "moderate", "severe"),
    "source": text,
}
CODE = _optional(CODE_SCHEMA, ("system", "code"))
PREFIX_GROUP = _optional(
    {"system": text, "prefixes": list_of(text), "except": list_of(text), "site": text, "source": text},
    ("system", "prefixes"),
)
CODING = _optional({"system": text, "code": text, "display": text, "source": text}, ("system", "code"))
CONCEPT_SCHEMA: dict[str, Check] = {
    "resource": text,
    "codes": list_of(CODE),
    "code_prefixes": list_of(PREFIX_GROUP),
    "note": text,
    "unit": text,
    "units": mapping_of(_unit_rule),
    "unitless": flag,
    "value": one_of("integer"),
    "range": _pair,
    "component": CODING,
    "components": mapping_of(CODING),
    "terms": mapping_of(text),
    "trends": mapping_of(text),
    "trend_system": text,
}
CONCEPT = _optional(CONCEPT_SCHEMA, ("resource",))


def validate_value_sets(value_sets: Mapping[str, Any], locate: Locate) -> None:
    """The value-set document: ``_meta`` and ``concepts``, every concept and code checked."""
    for name in value_sets:
        if name not in ("_meta", "concepts"):
            raise KnowledgeError(f"{locate(f'value_sets.{name}')} is not a known name (known: _meta, concepts)")
    concepts = value_sets.get("concepts")
    if not isinstance(concepts, Mapping):
        raise KnowledgeError("value sets need a 'concepts' object")
    mapping_of(CONCEPT)(concepts, "value_sets.concepts", locate)


# -- overrides ---------------------------------------------------------------------------------------


def _merge_codes(base: dict[str, Any], value: Any, here: str, changes: list[Override], locate: Locate) -> None:
    """A site's codes for a concept: new ones are added, re-declared ones updated (e.g. marked specific)."""
    if not isinstance(value, list):
        raise KnowledgeError(f"{locate(here)} must be a list of codes")
    existing = base.setdefault("codes", [])
    known = {(c["system"], c["code"]) for c in existing}
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or "system" not in entry or "code" not in entry:
            raise KnowledgeError(f"{locate(here)}: every code needs 'system' and 'code'")
        CODE(entry, f"{here}[{i}]", locate)
        key_pair = (entry["system"], entry["code"])
        if key_pair in known:
            for j, old in enumerate(existing):
                if (old["system"], old["code"]) == key_pair:
                    merged = {**old, **entry}
                    if merged != old:
                        changes.append(Override(f"{here}[{key_pair[0]}|{key_pair[1]}]", old, merged))
                    existing[j] = merged
            continue
        entry = {"display": entry.get("display", entry["code"]), "source": "site override", **entry}
        existing.append(entry)
        known.add(key_pair)
        changes.append(Override(here, None, f"{entry['system']}|{entry['code']}"))


def _merge_value(base: dict[str, Any], key: str, value: Any, here: str, changes: list[Override], locate: Locate) -> None:
    old = base.get(key)
    if isinstance(old, dict):
        raise KnowledgeError(f"{locate(here)} is a group, not a value")
    if old is not None and isinstance(old, (int, float)) and not isinstance(old, bool) and not isinstance(value, (int, float)):
        raise KnowledgeError(f"{locate(here)} must be a number")
    if old != value:
        changes.append(Override(here, old, value))
    base[key] = value


def _merge(base: dict[str, Any], extra: Mapping[str, Any], path: str, changes: list[Override], locate: Locate) -> None:
    for key, value in extra.items():
        here = f"{path}.{key}" if path else key
        if key == "codes":
            _merge_codes(base, value, here, changes, locate)
        elif isinstance(value, Mapping):
            target = base.setdefault(key, {})
            if not isinstance(target, dict):
                raise KnowledgeError(f"{locate(here)} is a value, not a group")
            _merge(target, value, here, changes, locate)
        else:
            _merge_value(base, key, value, here, changes, locate)


def _in_file(sources: Mapping[str, str]) -> Locate:
    """Where a key of the shipped documents is: ``thresholds.json: freshness.lab_max_age_days``."""

    def locate(path: str) -> str:
        section, _, rest = path.partition(".")
        group = rest.split(".", 1)[0].split("[", 1)[0]
        return f"{sources.get(f'{section}.{group}') or sources.get(section) or section}: {rest or path}"

    return locate


def _in_overrides(name: str) -> Locate:
    """Where a key of the site's overrides is: ``site.yaml: thresholds.freshness.lab_max_age_days``."""

    def locate(path: str) -> str:
        return f"{name}: {path}"

    return locate


def _apply_overrides(
    docs: dict[str, dict[str, Any]], overrides: Mapping[str, Any], locate: Locate
) -> tuple[Override, ...]:
    changes: list[Override] = []
    unknown = set(overrides) - set(docs)
    if unknown:
        raise KnowledgeError(f"overrides may only contain 'value_sets' and 'thresholds', not {sorted(unknown)}")
    for section, content in overrides.items():
        if not isinstance(content, Mapping):
            raise KnowledgeError(f"{locate(section)}: overrides.{section} must be an object")
        _merge(docs[section], content, section, changes, locate)
    return tuple(changes)


def _checked(docs: dict[str, dict[str, Any]], locate: Locate) -> tuple[ClinicalCriteria | None, tuple[str, ...]]:
    validate_value_sets(docs["value_sets"], locate)
    return validate_thresholds(docs["thresholds"], locate)


class Knowledge:
    """Indexed value sets and typed thresholds, after the site's overrides, checked when built.

    ``sources`` names the file of each document (default :data:`DEFAULT_SOURCES`) and
    ``overrides_source`` the site's file, for error messages. ``require_complete``: every
    thresholds group must be there (the service's load); without it a partial document
    (``thresholds.json`` alone) is accepted and :attr:`criteria` names what is missing.
    """

    def __init__(
        self,
        value_sets: Mapping[str, Any],
        thresholds: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        overrides_sha256: str | None = None,
        *,
        overrides_source: str = "overrides",
        sources: Mapping[str, str] | None = None,
        require_complete: bool = False,
    ) -> None:
        docs = {"value_sets": copy.deepcopy(dict(value_sets)), "thresholds": copy.deepcopy(dict(thresholds))}
        criteria, missing = _checked(docs, _in_file({**DEFAULT_SOURCES, **(sources or {})}))
        changes: tuple[Override, ...] = ()
        if overrides:
            try:
                changes = _apply_overrides(docs, overrides, _in_overrides(overrides_source))
                criteria, missing = _checked(docs, _in_overrides(overrides_source))
            except OverridesError:
                raise
            except KnowledgeError as exc:
                raise OverridesError(str(exc)) from exc
        if require_complete and missing:
            raise KnowledgeError(f"the thresholds lack the groups {', '.join(missing)}")
        self.value_sets: dict[str, Any] = docs["value_sets"]
        self.thresholds: dict[str, Any] = docs["thresholds"]
        self.overrides: tuple[Override, ...] = changes
        self.overrides_sha256 = overrides_sha256
        self._criteria = criteria
        self._missing = missing
        self._index: dict[tuple[str, str], CodeEntry] = {}
        self._prefixes: list[_Prefix] = []
        for concept, spec in self.value_sets["concepts"].items():
            self._index_concept(concept, spec)
        # the longest matching prefix decides (an exception, or a more specific site, beats its family)
        self._prefixes.sort(key=lambda p: -len(p.prefix))
        # answers of codes_of / concepts_for_resource: the value sets do not change after this point
        self._codes_of: dict[str, tuple[CodeEntry, ...]] = {}
        self._concepts_for: dict[str, tuple[str, ...]] = {}
        # each concept's unit conversions, for convert (the mapping converts every quantity it reads)
        self._units_of: dict[str, dict[str, Any]] = {
            name: spec.get("units") or {} for name, spec in self.value_sets["concepts"].items()
        }
        self._value_sets: dict[str, ValueSet] = {
            name: _value_set(name, spec, self.codes_of(name)) for name, spec in self.value_sets["concepts"].items()
        }

    @functools.cached_property
    def mrecist(self) -> MrecistCriteria:
        """mRECIST's numbers (``response_criteria.json``, group ``mrecist``), read once: checked against their
        schema when the knowledge was built, so a malformed group has already stopped start-up."""
        return MrecistCriteria.from_dict(self.thresholds["mrecist"])

    def _index_concept(self, concept: str, spec: Mapping[str, Any]) -> None:
        for c in spec.get("codes", []):
            entry = CodeEntry(
                concept=concept,
                system=c["system"],
                code=c["code"],
                display=c.get("display", c["code"]),
                specific=bool(c.get("specific", True)),
                mg_per_unit=c.get("mg_per_unit"),
                confirmed=bool(c.get("confirmed", True)),
                site=c.get("site"),
                severity=c.get("severity"),
            )
            self._index.setdefault((entry.system, entry.code), entry)
        for group in spec.get("code_prefixes", []):
            for prefix in group["prefixes"]:
                self._prefixes.append(_Prefix(group["system"], _normalised(prefix), concept, group.get("site"), False))
            for prefix in group.get("except", []):
                self._prefixes.append(_Prefix(group["system"], _normalised(prefix), concept, None, True))

    @property
    def criteria(self) -> ClinicalCriteria:
        """The thresholds as typed groups (``k.criteria.freshness.lab_max_age_days``)."""
        if self._criteria is None:
            raise KnowledgeError(f"the thresholds lack the groups {', '.join(self._missing)}")
        return self._criteria

    # -- versions -----------------------------------------------------------
    @property
    def value_sets_version(self) -> str:
        return str(self.value_sets.get("_meta", {}).get("version", "unknown"))

    @property
    def thresholds_version(self) -> str:
        return str(self.thresholds.get("_meta", {}).get("version", "unknown"))

    # -- codes --------------------------------------------------------------
    def lookup(self, system: str | None, code: str | None) -> CodeEntry | None:
        """The concept a coding belongs to, or None."""
        if not system or not code:
            return None
        hit = self._index.get((system, code))
        if hit is not None:
            return hit
        if not self._prefixes:
            return None
        normalised = _normalised(code)
        for p in self._prefixes:
            if system == p.system and normalised.startswith(p.prefix):
                if p.excluded:
                    return None
                return CodeEntry(concept=p.concept, system=system, code=code, display=code, site=p.site)
        return None

    def value_set(self, name: str) -> ValueSet:
        """A concept of the value sets, typed (``k.value_set("inr").unitless``)."""
        try:
            return self._value_sets[name]
        except KeyError as exc:
            raise KnowledgeError(f"unknown concept {name!r}") from exc

    def concept(self, name: str) -> dict[str, Any]:
        """A concept as the value-set document writes it (``service.mapping`` reads these; :meth:`value_set` is typed)."""
        try:
            spec: dict[str, Any] = self.value_sets["concepts"][name]
        except KeyError as exc:
            raise KnowledgeError(f"unknown concept {name!r}") from exc
        return spec

    def codes_of(self, concept: str) -> tuple[CodeEntry, ...]:
        found = self._codes_of.get(concept)
        if found is None:
            found = self._codes_of[concept] = tuple(e for e in self._index.values() if e.concept == concept)
        return found

    def concepts_for_resource(self, resource_type: str) -> tuple[str, ...]:
        found = self._concepts_for.get(resource_type)
        if found is None:
            found = self._concepts_for[resource_type] = tuple(
                name for name, spec in self.value_sets["concepts"].items() if spec.get("resource") == resource_type
            )
        return found

    def convert(self, concept: str, value: float, unit: str | None) -> float | None:
        """``value`` in ``unit`` expressed in the concept's canonical unit; None if not convertible.

        A plain number in the value set multiplies (cm -> mm: 10); ``{"divide_by": x}``
        divides (bilirubin umol/L -> mg/dL: 17.1). Results are rounded to 6 decimals so
        that a boundary written in either unit (34.2 umol/L = 2.0 mg/dL) stays a boundary.
        """
        if unit is None:
            return None
        units = self._units_of.get(concept)
        if units is None:
            units = self.concept(concept).get("units") or {}  # an unknown concept raises here
        rule = units.get(unit)
        if rule is None:
            return None
        if isinstance(rule, (int, float)):
            return round(float(value) * float(rule), 6)
        return round(float(value) / float(rule["divide_by"]), 6)

    # -- thresholds by name (rules.tace_resistance and tests; the rest read ``criteria``) --
    def threshold(self, group: str, name: str) -> Any:
        try:
            value = self.thresholds[group][name]
        except KeyError as exc:
            raise KnowledgeError(f"unknown threshold {group}.{name}") from exc
        return value

    def citation(self, group: str) -> str:
        return str(self.thresholds.get(group, {}).get("citation", ""))
