"""Clinical knowledge: value sets and thresholds, built from the documents in ``rules/data/``.

Pure: the caller (``service.knowledge``) reads the files and the site's override
file; this module merges, indexes and answers questions about them. A site's
overrides may add codes to a concept and change scalar values; every change is
listed so the assessment can report it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RULES_VERSION = "0.2.0"


class KnowledgeError(ValueError):
    """The value-set, threshold or override documents are malformed."""


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


def _merge(base: dict, extra: Mapping, path: str, changes: list[Override]) -> None:
    for key, value in extra.items():
        here = f"{path}.{key}" if path else key
        if key == "codes":
            if not isinstance(value, list):
                raise KnowledgeError(f"{here} must be a list of codes")
            existing = base.setdefault("codes", [])
            known = {(c["system"], c["code"]) for c in existing}
            for entry in value:
                if not isinstance(entry, dict) or "system" not in entry or "code" not in entry:
                    raise KnowledgeError(f"{here}: every code needs 'system' and 'code'")
                key_pair = (entry["system"], entry["code"])
                if key_pair in known:
                    # a site may re-declare a code, e.g. to mark CPT-coded sessions as specific
                    for i, old in enumerate(existing):
                        if (old["system"], old["code"]) == key_pair:
                            merged = {**old, **entry}
                            if merged != old:
                                changes.append(Override(f"{here}[{key_pair[0]}|{key_pair[1]}]", old, merged))
                            existing[i] = merged
                    continue
                entry = {"display": entry.get("display", entry["code"]), "source": "site override", **entry}
                existing.append(entry)
                known.add(key_pair)
                changes.append(Override(here, None, f"{entry['system']}|{entry['code']}"))
        elif isinstance(value, Mapping):
            target = base.setdefault(key, {})
            if not isinstance(target, dict):
                raise KnowledgeError(f"{here} is a value, not a group")
            _merge(target, value, here, changes)
        else:
            old = base.get(key)
            if isinstance(old, dict):
                raise KnowledgeError(f"{here} is a group, not a value")
            if old is not None and isinstance(old, (int, float)) and not isinstance(value, (int, float)):
                raise KnowledgeError(f"{here} must be a number")
            if old != value:
                changes.append(Override(here, old, value))
            base[key] = value


class Knowledge:
    """Indexed value sets and thresholds, after the site's overrides."""

    def __init__(
        self,
        value_sets: Mapping[str, Any],
        thresholds: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        overrides_sha256: str | None = None,
    ) -> None:
        docs = {"value_sets": copy.deepcopy(dict(value_sets)), "thresholds": copy.deepcopy(dict(thresholds))}
        changes: list[Override] = []
        if overrides:
            unknown = set(overrides) - set(docs)
            if unknown:
                raise KnowledgeError(f"overrides may only contain 'value_sets' and 'thresholds', not {sorted(unknown)}")
            for section, content in overrides.items():
                if not isinstance(content, Mapping):
                    raise KnowledgeError(f"overrides.{section} must be an object")
                _merge(docs[section], content, section, changes)
        self.value_sets: dict = docs["value_sets"]
        self.thresholds: dict = docs["thresholds"]
        self.overrides: tuple[Override, ...] = tuple(changes)
        self.overrides_sha256 = overrides_sha256
        self._index: dict[tuple[str, str], CodeEntry] = {}
        self._prefixes: list[_Prefix] = []
        concepts = self.value_sets.get("concepts")
        if not isinstance(concepts, dict):
            raise KnowledgeError("value sets need a 'concepts' object")
        for concept, spec in concepts.items():
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
                    self._prefixes.append(
                        _Prefix(group["system"], _normalised(prefix), concept, group.get("site"), False)
                    )
                for prefix in group.get("except", []):
                    self._prefixes.append(_Prefix(group["system"], _normalised(prefix), concept, None, True))
        # the longest matching prefix decides (an exception, or a more specific site, beats its family)
        self._prefixes.sort(key=lambda p: -len(p.prefix))
        # answers of codes_of / concepts_for_resource: the value sets do not change after this point
        self._codes_of: dict[str, tuple[CodeEntry, ...]] = {}
        self._concepts_for: dict[str, tuple[str, ...]] = {}

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

    def concept(self, name: str) -> dict:
        try:
            return self.value_sets["concepts"][name]
        except KeyError as exc:
            raise KnowledgeError(f"unknown concept {name!r}") from exc

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
        units = self.concept(concept).get("units")
        if units is None or unit not in units:
            return None
        rule = units[unit]
        if isinstance(rule, (int, float)):
            return round(float(value) * float(rule), 6)
        return round(float(value) / float(rule["divide_by"]), 6)

    # -- thresholds ---------------------------------------------------------
    def threshold(self, group: str, name: str) -> float:
        try:
            value = self.thresholds[group][name]
        except KeyError as exc:
            raise KnowledgeError(f"unknown threshold {group}.{name}") from exc
        return value

    def citation(self, group: str) -> str:
        return str(self.thresholds.get(group, {}).get("citation", ""))
