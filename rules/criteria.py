"""Clinical criteria as typed, validated data: every group of ``thresholds.json`` and ``response_criteria.json``.

Each group is a frozen dataclass whose fields are the group's keys; :func:`validate_thresholds`
checks the merged document (shipped files plus a site's overrides) when the knowledge is loaded:
an unknown group or name, a wrong type or an impossible value (a negative day window, a
percentage above 100, cut-offs in the wrong order) raises :class:`KnowledgeError` naming the
file and the key, so a typo stops start-up instead of surfacing on a patient.

The numbers of mRECIST (``MrecistCriteria``, in ``rules.mrecist``) are checked here too, by
schema; the object itself is built where it is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from fractions import Fraction
from typing import Any, TypeVar

# key path ("thresholds.freshness.lab_max_age_days") -> where to look ("thresholds.json: freshness.lab_max_age_days")
Locate = Callable[[str], str]
Check = Callable[[Any, str, Locate], Any]
T = TypeVar("T")


class KnowledgeError(ValueError):
    """The value-set, threshold or override documents are malformed."""


def _plain(path: str) -> str:
    return path


def _fail(locate: Locate, path: str, problem: str) -> KnowledgeError:
    return KnowledgeError(f"{locate(path)} {problem}")


# -- value checks -------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number(*, low: float | None = None, high: float | None = None, above: float | None = None) -> Check:
    """A finite number (kept as written: 3 stays an int, 3.0 a float) within the bounds."""

    def check(value: Any, path: str, locate: Locate) -> Any:
        if not _is_number(value):
            raise _fail(locate, path, f"must be a number, not {value!r}")
        if low is not None and value < low:
            raise _fail(locate, path, f"must be at least {low:g}, not {value!r}")
        if above is not None and value <= above:
            raise _fail(locate, path, f"must be above {above:g}, not {value!r}")
        if high is not None and value > high:
            raise _fail(locate, path, f"must be at most {high:g}, not {value!r}")
        return value

    return check


def whole(*, low: int | None = None, high: int | None = None) -> Check:
    """A whole number within the bounds."""
    bounded = number(low=low, high=high)

    def check(value: Any, path: str, locate: Locate) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(locate, path, f"must be a whole number, not {value!r}")
        return bounded(value, path, locate)

    return check


DAYS = whole(low=0)  # a day window: 0 (the same day) or more
GRADE = whole(low=1, high=5)  # a CTCAE grade
ECOG_GRADE = whole(low=0, high=5)


def text(value: Any, path: str, locate: Locate) -> str:
    if not isinstance(value, str):
        raise _fail(locate, path, f"must be text, not {value!r}")
    return value


def flag(value: Any, path: str, locate: Locate) -> bool:
    if not isinstance(value, bool):
        raise _fail(locate, path, f"must be true or false, not {value!r}")
    return value


def one_of(*allowed: str) -> Check:
    def check(value: Any, path: str, locate: Locate) -> str:
        if value not in allowed:
            raise _fail(locate, path, f"must be one of {', '.join(allowed)}, not {value!r}")
        return str(value)

    return check


def list_of(item: Check) -> Check:
    """A list, each item checked; kept as a tuple."""

    def check(value: Any, path: str, locate: Locate) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise _fail(locate, path, f"must be a list, not {value!r}")
        return tuple(item(v, f"{path}[{i}]", locate) for i, v in enumerate(value))

    return check


def group_of(cls: type[T]) -> Check:
    """A nested group built as ``cls``."""

    def check(value: Any, path: str, locate: Locate) -> T:
        return build(cls, value, path, locate)

    return check


def mapping_of(item: Check) -> Check:
    """An object whose values are each checked (keys are names)."""

    def check(value: Any, path: str, locate: Locate) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise _fail(locate, path, f"must be an object, not {value!r}")
        return {str(k): item(v, f"{path}.{k}", locate) for k, v in value.items()}

    return check


def key(check: Check, default: Any = MISSING) -> Any:
    """A dataclass field read from the group's key of the same name, checked by ``check``."""
    if default is MISSING:
        return field(metadata={"check": check})
    return field(default=default, metadata={"check": check})


def _known(spec: Mapping[str, Any], doc: Mapping[str, Any], path: str, locate: Locate) -> None:
    unknown = sorted(str(k) for k in doc if k not in spec)
    if unknown:
        raise _fail(locate, f"{path}.{unknown[0]}", f"is not a known name (known: {', '.join(sorted(spec))})")


def _group(doc: Any, path: str, locate: Locate) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise _fail(locate, path, f"must be an object (a group of values), not {doc!r}")
    return doc


def build(cls: type[T], doc: Any, path: str, locate: Locate = _plain) -> T:
    """``cls`` (a dataclass built with :func:`key` fields) from the group ``doc`` at ``path``, checked."""
    group = _group(doc, path, locate)
    specs: dict[str, Field[Any]] = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    _known(specs, group, path, locate)
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        if name not in group:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise _fail(locate, f"{path}.{name}", "is missing")
            continue
        values[name] = spec.metadata["check"](group[name], f"{path}.{name}", locate)
    built = cls(**values)
    for problem, name in getattr(built, "problems", lambda: [])():
        raise _fail(locate, f"{path}.{name}", problem)
    return built


def check_schema(spec: Mapping[str, Check | Mapping[str, Check]], doc: Any, path: str, locate: Locate) -> None:
    """Check a group against ``{key: check}`` (a nested mapping: a nested group), every key required."""
    group = _group(doc, path, locate)
    _known(spec, group, path, locate)
    for name, check in spec.items():
        if name not in group:
            raise _fail(locate, f"{path}.{name}", "is missing")
        if isinstance(check, Mapping):
            check_schema(check, group[name], f"{path}.{name}", locate)
        else:
            check(group[name], f"{path}.{name}", locate)


def _ordered(values: tuple[float, ...], names: tuple[str, ...], *, falling: bool) -> list[tuple[str, str]]:
    """Problems when ``values`` do not strictly rise (or fall): each names the key out of order."""
    problems = []
    for i in range(1, len(values)):
        before, value = values[i - 1], values[i]
        if (falling and not value < before) or (not falling and not value > before):
            side = "below" if falling else "above"
            problems.append((f"must be {side} {names[i - 1]} ({before:g}), not {value!r}", names[i]))
    return problems


# -- thresholds.json ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChildPughCriteria:
    """Pugh's cut-offs per item and the class limits (group ``child_pugh``)."""

    citation: str = key(text)
    bilirubin_mg_dl_two_points_from: float = key(number(above=0))
    bilirubin_mg_dl_three_points_above: float = key(number(above=0))
    albumin_g_dl_one_point_above: float = key(number(above=0))
    albumin_g_dl_three_points_below: float = key(number(above=0))
    inr_two_points_from: float = key(number(above=0))
    inr_three_points_above: float = key(number(above=0))
    class_a_max_score: int = key(whole(low=5, high=15))
    class_b_max_score: int = key(whole(low=5, high=15))

    def problems(self) -> list[tuple[str, str]]:
        found = []
        if self.bilirubin_mg_dl_three_points_above < self.bilirubin_mg_dl_two_points_from:
            found.append((f"must be at least bilirubin_mg_dl_two_points_from ({self.bilirubin_mg_dl_two_points_from:g})",
                          "bilirubin_mg_dl_three_points_above"))
        if self.albumin_g_dl_three_points_below > self.albumin_g_dl_one_point_above:
            found.append((f"must be at most albumin_g_dl_one_point_above ({self.albumin_g_dl_one_point_above:g})",
                          "albumin_g_dl_three_points_below"))
        if self.inr_three_points_above < self.inr_two_points_from:
            found.append((f"must be at least inr_two_points_from ({self.inr_two_points_from:g})", "inr_three_points_above"))
        if self.class_b_max_score <= self.class_a_max_score:
            found.append((f"must be above class_a_max_score ({self.class_a_max_score})", "class_b_max_score"))
        return found


@dataclass(frozen=True)
class FreshnessWindows:
    """How old a lab, a performance status or tumour imaging may be (group ``freshness``)."""

    citation: str = key(text)
    lab_max_age_days: int = key(DAYS)
    performance_status_max_age_days: int = key(DAYS)
    imaging_max_age_days: int = key(DAYS)


@dataclass(frozen=True)
class SorafenibEligibilityCriteria:
    """The source study's inclusion and exclusion numbers (group ``sorafenib_eligibility``)."""

    citation: str = key(text)
    min_age_years: int = key(whole(low=0, high=150))
    karnofsky_excluded_at_or_below: int = key(whole(low=0, high=100))
    ecog_excluded_from: int = key(ECOG_GRADE)
    bilirubin_mg_dl_max: float = key(number(above=0))


@dataclass(frozen=True)
class TaceResistanceCriteria:
    """JSH 2010 as the study defines TACE resistance (group ``tace_resistance``)."""

    citation: str = key(text)
    min_consecutive_sessions: int = key(whole(low=1))
    progression_window_days: int = key(DAYS)


@dataclass(frozen=True)
class Jsh2014Criteria:
    """JSH-LCSGJ 2014 TACE refractoriness (group ``jsh_2014``)."""

    citation: str = key(text)
    min_consecutive_sessions: int = key(whole(low=1))
    response_imaging_min_days: int = key(DAYS)
    response_imaging_max_days: int = key(DAYS)
    insufficient_viable_fraction_above: float = key(number(low=0, high=1))
    marker_baseline_max_days_before: int = key(DAYS)
    marker_after_max_days: int = key(DAYS)

    def problems(self) -> list[tuple[str, str]]:
        if self.response_imaging_max_days < self.response_imaging_min_days:
            return [(f"must be at least response_imaging_min_days ({self.response_imaging_min_days})",
                     "response_imaging_max_days")]
        return []


@dataclass(frozen=True)
class TaceCandidacyCriteria:
    """TACE contraindications for the combination (group ``tace_candidacy``)."""

    citation: str = key(text)
    bilirubin_mg_dl_max: float = key(number(above=0))
    child_pugh_class_excluded: str = key(one_of("A", "B", "C"))
    multiple_extrahepatic_metastases_min: int = key(whole(low=1))
    # Condition concepts a site declared to be portal-vein thrombus confined to a branch
    portal_vein_branch_only_concepts: tuple[str, ...] = key(list_of(text), default=())


@dataclass(frozen=True)
class RecommendationCriteria:
    """The decision table's number and the sentences every recommendation carries (group ``recommendation``)."""

    citation: str = key(text)
    continue_tace_max_ecog: int = key(ECOG_GRADE)
    context: str = key(text)
    combination_warning: str = key(text)


@dataclass(frozen=True)
class SafetyCriteria:
    """Safety notes beside the rules (group ``safety``)."""

    citation: str = key(text)
    antiviral_before_tace_max_days: int = key(DAYS)


@dataclass(frozen=True)
class CtcaeCriteria:
    """CTCAE v4.0 platelet and hypertension grades and their windows (group ``ctcae``)."""

    citation: str = key(text)
    platelets_lln_10e9_per_l: float = key(number(above=0))
    platelets_grade_1_below: float = key(number(above=0))
    platelets_grade_2_below: float = key(number(above=0))
    platelets_grade_3_below: float = key(number(above=0))
    platelets_grade_4_below: float = key(number(above=0))
    systolic_grade_1_from: float = key(number(above=0))
    systolic_grade_2_from: float = key(number(above=0))
    systolic_grade_3_from: float = key(number(above=0))
    diastolic_grade_1_from: float = key(number(above=0))
    diastolic_grade_2_from: float = key(number(above=0))
    diastolic_grade_3_from: float = key(number(above=0))
    hypertension_min_readings: int = key(whole(low=1))
    readings_max_age_days: int = key(DAYS)
    graded_event_max_age_days: int = key(DAYS)
    lln_note: str = key(text)

    @property
    def platelets_below(self) -> tuple[tuple[int, float], ...]:
        """(grade, count below which it applies), worst grade first."""
        return ((4, self.platelets_grade_4_below), (3, self.platelets_grade_3_below),
                (2, self.platelets_grade_2_below), (1, self.platelets_grade_1_below))

    @property
    def hypertension_from(self) -> tuple[tuple[int, float, float], ...]:
        """(grade, systolic from, diastolic from), grade 1 first."""
        return ((1, self.systolic_grade_1_from, self.diastolic_grade_1_from),
                (2, self.systolic_grade_2_from, self.diastolic_grade_2_from),
                (3, self.systolic_grade_3_from, self.diastolic_grade_3_from))

    def problems(self) -> list[tuple[str, str]]:
        grades = tuple(f"platelets_grade_{g}_below" for g in (1, 2, 3, 4))
        found = _ordered(tuple(getattr(self, n) for n in grades), grades, falling=True)
        for side in ("systolic", "diastolic"):
            names = tuple(f"{side}_grade_{g}_from" for g in (1, 2, 3))
            found += _ordered(tuple(getattr(self, n) for n in names), names, falling=False)
        return found


@dataclass(frozen=True)
class LabOrder:
    """A lab order the baseline-lab suggestion creates."""

    system: str = key(text)
    code: str = key(text)
    display: str = key(text)


@dataclass(frozen=True)
class SorafenibDoseCriteria:
    """The study's dose steps and the baseline labs before sorafenib (group ``sorafenib_dose``)."""

    citation: str = key(text)
    levels_mg_per_day: tuple[float, ...] = key(list_of(number(above=0)))
    level_names: tuple[str, ...] = key(list_of(text))
    max_mg_per_day: float = key(number(above=0))
    interrupt_from_grade: int = key(GRADE)
    reduction_reason_min_grade: int = key(GRADE)
    baseline_lab_max_age_days: int = key(DAYS)
    baseline_labs: tuple[str, ...] = key(list_of(text))
    baseline_lab_orders: dict[str, LabOrder] = key(mapping_of(group_of(LabOrder)))

    def problems(self) -> list[tuple[str, str]]:
        found = []
        if len(self.level_names) != len(self.levels_mg_per_day):
            found.append((f"must name each of the {len(self.levels_mg_per_day)} levels_mg_per_day", "level_names"))
        if not self.levels_mg_per_day:
            found.append(("must list at least one level", "levels_mg_per_day"))
        missing = [lab for lab in self.baseline_labs if lab not in self.baseline_lab_orders]
        if missing:
            found.append((f"has no order for {', '.join(missing)}", "baseline_lab_orders"))
        return found


@dataclass(frozen=True)
class CaptureLimits:
    """What the SMART app's measurement form accepts (group ``capture``): plausibility limits of the
    product, not clinical cut-offs. A diameter outside them is a typing error to show, never to write."""

    citation: str = key(text)
    min_diameter_mm: float = key(number(low=0))
    max_diameter_mm: float = key(number(above=0))
    diameter_decimal_places: int = key(whole(low=0, high=3))

    def problems(self) -> list[tuple[str, str]]:
        if self.max_diameter_mm <= self.min_diameter_mm:
            return [(f"must be above min_diameter_mm ({self.min_diameter_mm:g})", "max_diameter_mm")]
        return []


# -- response_criteria.json: BCLC and performance status (mRECIST: rules.mrecist) ------------------------


def _exact(value: float | int) -> Fraction:
    return Fraction(value) if isinstance(value, int) else Fraction(repr(float(value)))


BCLC_GROUP = "bclc_2010"
BCLC_NOTE_GROUP = "bclc_2022"
PERFORMANCE_STATUS_GROUP = "performance_status"


@dataclass(frozen=True)
class BclcCriteria:
    """BCLC 2010 cut-offs (``response_criteria.json``, group ``bclc_2010``) and the 2022 note."""

    citation: str
    very_early_single_nodule_below_mm: Fraction
    early_max_nodules: int
    early_multiple_nodules_max_diameter_mm: Fraction
    very_early_max_ecog: int
    early_intermediate_max_ecog: int
    advanced_max_ecog: int
    liver_organ: str
    note_2022: str
    citation_2022: str
    # imaging at most this many days before the staging date (thresholds.json, freshness)
    imaging_max_age_days: int = 90
    # site-declared concepts of portal-vein thrombus confined to a branch: vascular invasion too
    branch_thrombus_concepts: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> BclcCriteria:
        """Build from the merged knowledge document: ``response_criteria.json``'s groups ``bclc_2010`` and
        ``bclc_2022`` with ``thresholds.json``'s ``freshness`` (required: ``imaging_max_age_days``) and
        ``tace_candidacy`` (optional: ``portal_vein_branch_only_concepts``)."""
        try:
            group = document[BCLC_GROUP]
            note = document.get(BCLC_NOTE_GROUP, {})
            candidacy = document.get("tace_candidacy", {}) or {}
            return cls(
                citation=str(group["citation"]),
                very_early_single_nodule_below_mm=_exact(group["very_early_single_nodule_below_mm"]),
                early_max_nodules=int(group["early_max_nodules"]),
                early_multiple_nodules_max_diameter_mm=_exact(group["early_multiple_nodules_max_diameter_mm"]),
                very_early_max_ecog=int(group["very_early_max_ecog"]),
                early_intermediate_max_ecog=int(group["early_intermediate_max_ecog"]),
                advanced_max_ecog=int(group["advanced_max_ecog"]),
                liver_organ=str(group["liver_organ"]),
                note_2022=str(note.get("note", "")),
                citation_2022=str(note.get("citation", "")),
                imaging_max_age_days=int(document["freshness"]["imaging_max_age_days"]),
                branch_thrombus_concepts=tuple(str(c) for c in candidacy.get("portal_vein_branch_only_concepts", []) or []),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KnowledgeError(f"response criteria: malformed '{BCLC_GROUP}' group ({exc!r})") from exc


BCLC_2010_SCHEMA: dict[str, Check] = {
    "citation": text,
    "very_early_single_nodule_below_mm": number(above=0),
    "early_max_nodules": whole(low=1),
    "early_multiple_nodules_max_diameter_mm": number(above=0),
    "very_early_max_ecog": ECOG_GRADE,
    "early_intermediate_max_ecog": ECOG_GRADE,
    "advanced_max_ecog": ECOG_GRADE,
    "liver_organ": text,
}
BCLC_2022_SCHEMA: dict[str, Check] = {"citation": text, "note": text}


@dataclass(frozen=True)
class PerformanceStatusCriteria:
    """Valid ranges of both scales and their approximate correspondence, with the source."""

    citation: str
    ecog_min: int
    ecog_max: int
    karnofsky_min: int
    karnofsky_max: int
    karnofsky_range_by_ecog: tuple[tuple[int, int, int], ...]  # (ecog, karnofsky_min, karnofsky_max)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> PerformanceStatusCriteria:
        """Build from ``response_criteria.json`` (the whole document or its ``performance_status`` group)."""
        group = document.get(PERFORMANCE_STATUS_GROUP, document)
        try:
            table = tuple(
                sorted(
                    (int(ecog), int(band["min"]), int(band["max"]))
                    for ecog, band in group["karnofsky_range_by_ecog"].items()
                )
            )
            return cls(
                citation=str(group["citation"]),
                ecog_min=int(group["ecog_min"]),
                ecog_max=int(group["ecog_max"]),
                karnofsky_min=int(group["karnofsky_min"]),
                karnofsky_max=int(group["karnofsky_max"]),
                karnofsky_range_by_ecog=table,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KnowledgeError(f"response criteria: malformed '{PERFORMANCE_STATUS_GROUP}' group ({exc!r})") from exc


def _performance_status_checked(doc: Any, path: str, locate: Locate) -> PerformanceStatusCriteria:
    group = _group(doc, path, locate)
    scale = whole(low=0, high=100)
    check_schema({"citation": text, "ecog_min": ECOG_GRADE, "ecog_max": ECOG_GRADE, "karnofsky_min": scale,
                  "karnofsky_max": scale, "karnofsky_range_by_ecog": mapping_of(lambda v, p, loc: v)}, group, path, locate)
    table = f"{path}.karnofsky_range_by_ecog"
    for grade, band in group["karnofsky_range_by_ecog"].items():
        where = f"{table}.{grade}"
        if not str(grade).isdigit() or not group["ecog_min"] <= int(grade) <= group["ecog_max"]:
            raise _fail(locate, where, f"must name an ECOG grade from {group['ecog_min']} to {group['ecog_max']}")
        check_schema({"min": scale, "max": scale}, band, where, locate)
        if band["min"] > band["max"]:
            raise _fail(locate, f"{where}.max", f"must be at least its min ({band['min']}), not {band['max']!r}")
    return PerformanceStatusCriteria.from_dict(group)


# -- response_criteria.json: mRECIST (the object is rules.mrecist.MrecistCriteria) ---------------------

MRECIST_SCHEMA: dict[str, Check | Mapping[str, Check]] = {
    "citation": text,
    "target_min_viable_diameter_mm": number(low=0),
    "targets_max_per_organ": whole(low=1),
    "targets_max_total": whole(low=1),
    "partial_response_decrease_from_baseline_pct": number(above=0, high=100),
    "progression_increase_from_nadir_pct": number(low=0),
    "new_lesion_min_viable_diameter_mm": number(low=0),
    "new_extrahepatic_lesion_min_viable_diameter_mm": number(low=0),
    "liver_organ": text,
    "non_target_progression": {
        "citation": text,
        "enabled": flag,
        "min_ratio_to_smallest": number(low=1),
        "min_increase_mm": number(low=0),
    },
}


# -- the whole set ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClinicalCriteria:
    """Every criteria group the rules read, typed (mRECIST apart: ``rules.mrecist.MrecistCriteria``)."""

    child_pugh: ChildPughCriteria
    freshness: FreshnessWindows
    sorafenib_eligibility: SorafenibEligibilityCriteria
    tace_resistance: TaceResistanceCriteria
    jsh_2014: Jsh2014Criteria
    tace_candidacy: TaceCandidacyCriteria
    recommendation: RecommendationCriteria
    safety: SafetyCriteria
    ctcae: CtcaeCriteria
    sorafenib_dose: SorafenibDoseCriteria
    capture: CaptureLimits
    performance_status: PerformanceStatusCriteria
    bclc: BclcCriteria


TYPED_GROUPS: dict[str, type[Any]] = {
    "child_pugh": ChildPughCriteria,
    "freshness": FreshnessWindows,
    "sorafenib_eligibility": SorafenibEligibilityCriteria,
    "tace_resistance": TaceResistanceCriteria,
    "jsh_2014": Jsh2014Criteria,
    "tace_candidacy": TaceCandidacyCriteria,
    "recommendation": RecommendationCriteria,
    "safety": SafetyCriteria,
    "ctcae": CtcaeCriteria,
    "sorafenib_dose": SorafenibDoseCriteria,
    "capture": CaptureLimits,
}
SCHEMA_GROUPS: dict[str, Mapping[str, Check | Mapping[str, Check]]] = {
    "mrecist": MRECIST_SCHEMA,
    BCLC_GROUP: BCLC_2010_SCHEMA,
    BCLC_NOTE_GROUP: BCLC_2022_SCHEMA,
}
# the groups response_criteria.json holds (the others are in thresholds.json)
RESPONSE_CRITERIA_GROUPS = ("mrecist", BCLC_GROUP, BCLC_NOTE_GROUP, PERFORMANCE_STATUS_GROUP)
META = "_meta"
KNOWN_GROUPS = frozenset({*TYPED_GROUPS, *SCHEMA_GROUPS, PERFORMANCE_STATUS_GROUP, META})


def validate_thresholds(
    thresholds: Mapping[str, Any], locate: Locate = _plain, *, section: str = "thresholds"
) -> tuple[ClinicalCriteria | None, tuple[str, ...]]:
    """Check every group of the merged thresholds document; the typed set when every group is there.

    Returns ``(criteria, missing groups)``: criteria is None when a group is missing (a partial document,
    e.g. ``thresholds.json`` alone in a test). Raises :class:`KnowledgeError` on anything malformed.
    """
    for name in thresholds:
        if name not in KNOWN_GROUPS:
            raise _fail(locate, f"{section}.{name}", f"is not a known group (known: {', '.join(sorted(KNOWN_GROUPS))})")
    if META in thresholds:
        _group(thresholds[META], f"{section}.{META}", locate)
    typed: dict[str, Any] = {}
    for name, cls in TYPED_GROUPS.items():
        if name in thresholds:
            typed[name] = build(cls, thresholds[name], f"{section}.{name}", locate)
    for name, schema in SCHEMA_GROUPS.items():
        if name in thresholds:
            check_schema(schema, thresholds[name], f"{section}.{name}", locate)
    if PERFORMANCE_STATUS_GROUP in thresholds:
        typed[PERFORMANCE_STATUS_GROUP] = _performance_status_checked(
            thresholds[PERFORMANCE_STATUS_GROUP], f"{section}.{PERFORMANCE_STATUS_GROUP}", locate
        )
    needed = (*TYPED_GROUPS, *SCHEMA_GROUPS, PERFORMANCE_STATUS_GROUP)
    missing = tuple(name for name in needed if name not in thresholds)
    if missing:
        return None, missing
    typed["bclc"] = BclcCriteria.from_dict(thresholds)
    return ClinicalCriteria(**typed), ()
