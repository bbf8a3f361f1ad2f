"""mRECIST response of hepatocellular carcinoma (Lencioni R, Llovet JM, Semin Liver Dis 2010;30:52-60).

Measurements are **viable** (arterially enhancing) longest diameters (dossier
§3.3); a lesion is identified across studies by its ``focus`` BodyStructure
reference, and an imaging study is the set of lesion measurements of one date.
The rules, as PRODUCT.md fixes them (numbers in ``rules/data/response_criteria.json``,
group ``mrecist``):

* **Baseline** = the latest imaging on or before the start of the treatment
  (sorafenib start, or the first TACE of a series). A lesion first seen after
  baseline is **new**; it counts as progression when its viable diameter has
  reached 10 mm. A new lesion outside the liver is new extrahepatic spread
  when it reaches ``new_extrahepatic_lesion_min_viable_diameter_mm``.
  A smaller new lesion still viable is equivocal: not PD, but it rules out CR.
  With treatment sessions (a TACE series), what is new at a date is judged
  since the imaging before the latest session before it; a lesion seen by then
  is tracked as a non-target.
* **Targets** = lesions viable >= 10 mm at baseline, at most 2 per organ and 5
  in total, largest first, ties by lesion identifier; an unrecorded organ is
  its own group ``"unknown"``.
* **Order of evaluation at a follow-up date**: PD when a new lesion counts,
  vascular invasion is new (a portal-vein tumour thrombus with onset after
  baseline), extrahepatic spread is new (a metastasis with onset after
  baseline, or a new lesion outside the liver), unequivocal non-target
  progression (recorded through ``non_target_progression``, or by the
  configurable size rule of the ``non_target_progression`` criteria: >= 1.5x
  the lesion's smallest viable diameter since baseline and >= 10 mm larger; a
  smaller rise is reported, not counted), or the sum of the
  targets measured is >= 20% above the nadir; else NE when a target lacks a
  measurement on that date; else CR when every target is 0 mm; PR when the sum
  is >= 30% below baseline; SD otherwise.
* **Nadir** = the smallest sum from baseline on, over the dates before the one
  evaluated (baseline included), of the full target sum (dates on which a
  target was not measured are skipped). When a target is missing, the sum of
  the targets measured is compared with that nadir (RECIST 1.1 practice): PD
  when already >= 20% above it, otherwise NE. A nadir of 0 mm makes any
  reappearance PD. There is no 5 mm absolute minimum (dossier §3.3: mRECIST
  gives none).
* **Overall response** by the dossier's table (:func:`overall_response`):
  target CR with non-target tumour persisting (or an equivocal new lesion, or a
  non-target not assessed) is PR. Non-target tumour = non-target lesions viable
  at baseline and a portal-vein thrombus or metastasis present at baseline.
* ``category`` is None without a baseline, without follow-up imaging, or
  without a measurable target at baseline (unless PD by a new lesion, new
  invasion or spread, or non-target progression).

The evaluation at one follow-up date (:func:`_evaluate_at`) is one function per
step, in this order: new lesions (:func:`_new_lesions`), new thrombus or
metastasis (:func:`_new_conditions_step`), non-target progression
(:func:`_recorded_progression_step`, :func:`_non_target_growth_step`), target
sums and nadir (:func:`_target_sums`), target response
(:func:`_target_response`), non-target response (:func:`_non_target_response`),
overall response (:func:`overall_response`), and the explanation of a category
(:func:`_pd_context`, :func:`_explanation`). :func:`evaluate_mrecist` chooses the
baseline and its targets (:func:`_choose_baseline`, :func:`_choose_targets`) and
builds the timeline (:func:`_timeline`).

Thresholds compare exact rationals (a diameter is read as the decimal it
prints as), so exactly +20% from the nadir is PD and exactly -30% from baseline
is PR. Percentages in the output are rounded to one decimal, half away from zero.
"""

from __future__ import annotations

import datetime
import functools
import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any, NamedTuple

from rules import wording
from rules.criteria import KnowledgeError
from rules.snapshot import ConditionFact, LesionMeasurement, Snapshot
from rules.timing import condition_present_at

CRITERIA_GROUP = "mrecist"
PVTT = "portal_vein_tumour_thrombus"
METASTASIS = "extrahepatic_metastasis"
CONDITION_LABELS = {
    PVTT: wording.mrecist_portal_vein_tumour_thrombus(),
    METASTASIS: wording.mrecist_extrahepatic_metastasis(),
}
MRECIST_CONDITIONS = (PVTT, METASTASIS)  # the only conditions mRECIST reads
NOT_COUNTED_VERIFICATION = ("refuted", "entered-in-error")
UNKNOWN_ORGAN = "unknown"

CR, PR, SD, PD, NE = "CR", "PR", "SD", "PD", "NE"
NON_CR_NON_PD = "non-CR/non-PD"


# -- criteria -------------------------------------------------------------------


def _exact(value: float | int | Fraction) -> Fraction:
    """A number as an exact rational: a float is read as the decimal it prints as (12.3 -> 123/10)."""
    if isinstance(value, float):  # a record's diameters: tested first, a test for Fraction goes through ABCMeta
        return _decimal_fraction(float(value))
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    return _decimal_fraction(float(value))


@functools.lru_cache(maxsize=4096)
def _decimal_fraction(value: float) -> Fraction:
    """``Fraction(repr(value))``, kept: parsing the text is most of what mRECIST's arithmetic costs, and a
    record's diameters repeat (each is read at every follow-up date)."""
    return Fraction(repr(value))


@dataclass(frozen=True)
class MrecistCriteria:
    """The numbers of mRECIST (``response_criteria.json``, group ``mrecist``) with their citation."""

    citation: str
    target_min_viable_diameter_mm: Fraction
    targets_max_per_organ: int
    targets_max_total: int
    partial_response_decrease_from_baseline_pct: Fraction
    progression_increase_from_nadir_pct: Fraction
    new_lesion_min_viable_diameter_mm: Fraction
    new_extrahepatic_lesion_min_viable_diameter_mm: Fraction
    liver_organ: str
    non_target_progression_enabled: bool = True
    non_target_progression_min_ratio: Fraction = Fraction(3, 2)
    non_target_progression_min_increase_mm: Fraction = Fraction(10)
    non_target_progression_citation: str = ""

    @functools.cached_property
    def progression_factor_pct(self) -> Fraction:
        """100 + the PD increase (120): the sum at PD is at least the nadir times this over 100."""
        return 100 + self.progression_increase_from_nadir_pct

    @functools.cached_property
    def partial_response_factor_pct(self) -> Fraction:
        """100 - the PR decrease (70): the sum at PR is at most the baseline times this over 100."""
        return 100 - self.partial_response_decrease_from_baseline_pct

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> MrecistCriteria:
        """Build from ``response_criteria.json`` (the whole document or its ``mrecist`` group)."""
        group = document.get(CRITERIA_GROUP, document)
        try:
            return cls(
                citation=str(group["citation"]),
                target_min_viable_diameter_mm=_exact(group["target_min_viable_diameter_mm"]),
                targets_max_per_organ=int(group["targets_max_per_organ"]),
                targets_max_total=int(group["targets_max_total"]),
                partial_response_decrease_from_baseline_pct=_exact(group["partial_response_decrease_from_baseline_pct"]),
                progression_increase_from_nadir_pct=_exact(group["progression_increase_from_nadir_pct"]),
                new_lesion_min_viable_diameter_mm=_exact(group["new_lesion_min_viable_diameter_mm"]),
                new_extrahepatic_lesion_min_viable_diameter_mm=_exact(
                    group["new_extrahepatic_lesion_min_viable_diameter_mm"]
                ),
                liver_organ=str(group["liver_organ"]),
                **_non_target_rule(group["non_target_progression"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KnowledgeError(f"response criteria: malformed '{CRITERIA_GROUP}' group ({exc!r})") from exc


def _non_target_rule(group: Mapping[str, Any]) -> dict[str, Any]:
    enabled = group["enabled"]
    if not isinstance(enabled, bool):
        raise TypeError("non_target_progression.enabled must be true or false")
    ratio = _exact(group["min_ratio_to_smallest"])
    increase = _exact(group["min_increase_mm"])
    if ratio < 1 or increase < 0:
        raise ValueError("non_target_progression needs min_ratio_to_smallest >= 1 and min_increase_mm >= 0")
    return {
        "non_target_progression_enabled": enabled,
        "non_target_progression_min_ratio": ratio,
        "non_target_progression_min_increase_mm": increase,
        "non_target_progression_citation": str(group["citation"]),
    }


def _criteria(criteria: Mapping[str, Any] | MrecistCriteria) -> MrecistCriteria:
    return criteria if isinstance(criteria, MrecistCriteria) else MrecistCriteria.from_dict(criteria)


# -- output shapes ----------------------------------------------------------------


def _mm(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


_PCT_LIMIT = Decimal("1e300")  # a finite float, whatever absurd diameter a record holds


def _exact_sum(values: Iterable[Fraction]) -> Fraction:
    """``sum(values, Fraction(0))`` with one normalisation instead of one per term (the same value: the
    terms are added as integers over a common denominator)."""
    numerator, denominator = 0, 1
    for value in values:
        n, d = value.numerator, value.denominator
        if d == denominator:
            numerator += n
        else:
            numerator, denominator = numerator * d + n * denominator, denominator * d
    return Fraction(numerator, denominator)


def _at_least(a: Fraction, k: Fraction | int, b: Fraction, m: Fraction | int) -> bool:
    """``a * k >= b * m``, exactly, by cross-multiplying integers (no Fraction built); denominators are
    positive, so the direction of the comparison holds (an int has them too: itself over 1)."""
    left = a.numerator * k.numerator * b.denominator * m.denominator
    return left >= b.numerator * m.numerator * a.denominator * k.denominator


_PCT_FAST_LIMIT = 10**15  # below it in magnitude, 28 digits round a quotient far finer than the tenth


def _pct(change: Fraction) -> float:
    """A percentage rounded to one decimal, half away from zero.

    In integers when the value is below 1e15 and not within 1e-10 of a tenth's half (the value
    :func:`_pct_decimal` gives: its 28-digit quotient cannot cross such a boundary); else by
    :func:`_pct_decimal`.
    """
    n, d = change.numerator, change.denominator
    magnitude = abs(n)
    if magnitude < _PCT_FAST_LIMIT * d:
        tenths, rest = divmod(magnitude * 10, d)
        distance = abs(2 * rest - d)  # from the half: 0 on it, d at a whole tenth
        if distance * 10**10 > d or distance == 0:
            tenths += 1 if 2 * rest >= d else 0
            return (tenths if n >= 0 else -tenths) / 10 + 0.0
    return _pct_decimal(change)


def _pct_decimal(change: Fraction) -> float:
    """:func:`_pct` by the decimal module.

    The decimal context gets as many digits as the value needs (a record may hold a diameter of
    1e308 mm: 28 digits could not round it), and the result stays a finite float.
    """
    with localcontext() as context:
        context.prec = max(28, len(str(abs(change.numerator))) + 2)
        exact = Decimal(change.numerator) / Decimal(change.denominator)
        exact = min(max(exact, -_PCT_LIMIT), _PCT_LIMIT)
        return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)) + 0.0


def _pct_text(change: Fraction) -> str:
    return f"{abs(_pct(change)):.1f}%"


@dataclass(frozen=True)
class RecordedProgression:
    """Unequivocal progression of non-target lesions as recorded by a radiologist (the only way it enters)."""

    when: date
    ref: str
    description: str = wording.mrecist_unequivocal_progression_non_target_lesions()


@dataclass(frozen=True)
class Reading:
    """One lesion on one imaging date, its viable diameter exact."""

    lesion: str
    organ: str | None
    when: date
    diameter_mm: Fraction
    ref: str


@dataclass(frozen=True)
class Target:
    """A target lesion with its baseline viable diameter."""

    lesion: str
    organ: str | None
    diameter_mm: Fraction
    ref: str


@dataclass(frozen=True)
class SumAt:
    """A sum of viable target diameters on one date."""

    date: date
    sum_mm: Fraction


@dataclass(frozen=True)
class Baseline:
    """The baseline study: its date, the targets chosen and their sum."""

    date: date
    treatment_start: datetime.date  # ``date`` here would name the field above
    targets: tuple[Target, ...]
    sum_mm: Fraction
    non_targets: tuple[str, ...]  # lesions viable at baseline that are not targets
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class TimepointEvaluation:
    """mRECIST at one follow-up date: target, non-target and overall response, with the nadir used."""

    date: date
    category: str | None  # overall response: CR / PR / SD / PD / NE / None
    target_response: str | None  # None: no target lesion
    non_target_response: str | None  # CR / non-CR/non-PD / PD / NE / None (no non-target tumour)
    sum_mm: Fraction | None  # sum of the targets measured on this date
    targets_measured: tuple[str, ...]
    targets_missing: tuple[str, ...]
    baseline_sum_mm: Fraction | None  # baseline sum of the same targets
    nadir: SumAt | None  # nadir of the same targets, dates before this one
    change_from_baseline_pct: float | None
    change_from_nadir_pct: float | None
    new_lesions: tuple[str, ...]  # new lesions that count (>= 10 mm, or outside the liver)
    new_lesions_below_threshold: tuple[str, ...]  # equivocal: viable, below 10 mm
    progression: tuple[str, ...]  # what made it PD: "new_lesion", "new_vascular_invasion", ...
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    imaging: bool = True  # False: PD from a thrombus or metastasis recorded after the latest sized imaging


@dataclass(frozen=True)
class MrecistResult:
    """mRECIST at the latest follow-up on or before ``as_of``, with the timeline of every follow-up."""

    category: str | None
    baseline: Baseline | None
    current: TimepointEvaluation | None
    timeline: tuple[TimepointEvaluation, ...]
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    citation: str
    as_of: date
    treatment_start: date

    @property
    def nadir(self) -> SumAt | None:
        return self.current.nadir if self.current else None

    @property
    def new_lesions(self) -> tuple[str, ...]:
        return self.current.new_lesions if self.current else ()

    def first_progression(self) -> TimepointEvaluation | None:
        """The earliest follow-up evaluated PD, if any."""
        return next((t for t in self.timeline if t.category == PD), None)


# -- building blocks ------------------------------------------------------------------


def overall_response(target: str | None, non_target: str | None, new_lesion: bool) -> str | None:
    """Overall response from target, non-target and new-lesion responses (dossier §3.3 table).

    ============ ============== ========== =======
    Target       Non-target     New lesion Overall
    ============ ============== ========== =======
    CR           CR (or none)   no         CR
    CR           non-CR / NE    no         PR
    PR           non-PD         no         PR
    SD           non-PD         no         SD
    PD           any            any        PD
    any          PD             any        PD
    any          any            yes        PD
    NE           non-PD         no         NE
    none         non-PD         no         None (no measurable target)
    ============ ============== ========== =======

    Target CR with a non-target not assessed is PR (RECIST 1.1's table; not in the dossier's).
    """
    if target == PD or non_target == PD or new_lesion:
        return PD
    if target is None:
        return None
    if target == NE:
        return NE
    if target == CR:
        return CR if non_target in (CR, None) else PR
    return target


_BY_DATE_LESION_REF = operator.attrgetter("when", "lesion", "ref")


@dataclass(frozen=True)
class LesionStudies:
    """A record's lesion measurements read once (:func:`lesion_studies`): the studies, oldest first, each one
    reading per lesion (the largest); and what is said of the measurements, each with its date, in the order
    it is said. A call's two mRECIST evaluations (the TACE series', the current treatment's) share it, each
    reading the studies up to its own date (:meth:`up_to`)."""

    by_date: dict[date, dict[str, Reading]]
    unusable: tuple[tuple[date, str], ...]  # measurements without a usable diameter
    several: tuple[tuple[date, str], ...]  # lesions measured more than once on a date, with different diameters

    def up_to(self, as_of: date | None, notes: list[str]) -> dict[date, dict[str, Reading]]:
        """The studies on or before ``as_of`` (every study when None); their notes are added to ``notes``."""
        notes.extend(note for day, note in self.unusable if as_of is None or day <= as_of)
        notes.extend(note for day, note in self.several if as_of is None or day <= as_of)
        return {day: study for day, study in self.by_date.items() if as_of is None or day <= as_of}


def lesion_studies(lesions: Iterable[LesionMeasurement]) -> LesionStudies:
    """Readings grouped by date and lesion; one per lesion and date (the largest).

    The measurements are read in (date, lesion, reference) order, so the groups come out in (date, lesion)
    order without a second sort."""
    unusable: list[tuple[date, str]] = []
    grouped: dict[tuple[date, str], list[Reading]] = {}
    for m in sorted(lesions, key=_BY_DATE_LESION_REF):
        value = m.viable_diameter_mm
        if value is None or not math.isfinite(value) or value < 0:
            unusable.append(
                (m.when, wording.mrecist_lesion_measurement_has_no_usable(m.ref, m.lesion, m.when.isoformat()))
            )
            continue
        reading = Reading(m.lesion, m.organ, m.when, _exact(value), m.ref)  # lesion, organ, when, diameter, ref
        key = (m.when, m.lesion)
        if key in grouped:
            grouped[key].append(reading)
        else:
            grouped[key] = [reading]
    studies: dict[date, dict[str, Reading]] = {}
    several: list[tuple[date, str]] = []
    for (when, lesion), readings in grouped.items():
        if len(readings) == 1:  # the common case: no choice to make or report
            studies.setdefault(when, {})[lesion] = readings[0]
            continue
        chosen = max(readings, key=operator.attrgetter("diameter_mm", "ref"))  # the largest; ties by reference
        if len({r.diameter_mm for r in readings}) > 1:
            several.append((when, wording.mrecist_has_measurements_largest_mm_used(
                lesion, len(readings), when.isoformat(), _mm(chosen.diameter_mm), chosen.ref
            )))
        studies.setdefault(when, {})[lesion] = chosen
    return LesionStudies(studies, tuple(unusable), tuple(several))


def _organ_group(organ: str | None) -> str:
    return organ if organ is not None else UNKNOWN_ORGAN


_LESION = operator.attrgetter("lesion")
_DIAMETER = operator.attrgetter("diameter_mm")


def _choose_targets(readings: Iterable[Reading], crit: MrecistCriteria) -> tuple[Target, ...]:
    # largest first, ties by lesion: sorted by lesion, then (stably) by diameter, largest first
    by_lesion = sorted(
        (r for r in readings if r.diameter_mm >= crit.target_min_viable_diameter_mm), key=_LESION
    )
    measurable = sorted(by_lesion, key=_DIAMETER, reverse=True)
    per_organ: dict[str, int] = {}
    targets: list[Target] = []
    for r in measurable:
        if len(targets) >= crit.targets_max_total:
            break
        group = _organ_group(r.organ)
        if per_organ.get(group, 0) >= crit.targets_max_per_organ:
            continue
        per_organ[group] = per_organ.get(group, 0) + 1
        targets.append(Target(lesion=r.lesion, organ=r.organ, diameter_mm=r.diameter_mm, ref=r.ref))
    return tuple(targets)


def select_targets(
    baseline_lesions: Iterable[LesionMeasurement], criteria: Mapping[str, Any] | MrecistCriteria
) -> tuple[Target, ...]:
    """Target lesions of one baseline study (mRECIST; 2 per organ / 5 in total as in RECIST 1.1).

    Viable >= 10 mm, largest first, ties by lesion identifier; an unrecorded organ
    forms its own group ``"unknown"``.
    """
    crit = _criteria(criteria)
    studies = lesion_studies(baseline_lesions).by_date
    readings = [r for study in studies.values() for r in study.values()]
    return _choose_targets(readings, crit)


def baseline_date(lesions: Iterable[LesionMeasurement], treatment_start: date) -> date | None:
    """The latest imaging date on or before ``treatment_start``, or None."""
    dates = [m.when for m in lesions if m.when <= treatment_start]
    return max(dates) if dates else None


def _counts(condition: ConditionFact) -> bool:
    return condition.verification_status not in NOT_COUNTED_VERIFICATION


# -- evaluation -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """What every follow-up date's evaluation reads (built once by :func:`_context`)."""

    crit: MrecistCriteria
    studies: dict[date, dict[str, Reading]]
    baseline: Baseline
    follow_ups: tuple[date, ...]
    first_seen_after_baseline: dict[str, date]  # new lesions and the date first seen
    organ_of: dict[str, str | None]
    known_non_targets: tuple[str, ...]  # lesions seen on or before baseline that are not targets
    conditions: tuple[ConditionFact, ...]  # PVTT and metastases that count
    non_target_progression: tuple[RecordedProgression, ...]
    sessions: tuple[date, ...] = ()  # treatment sessions: what is new is judged since the imaging before each
    # computed once from the fields above (by :func:`_context`), read at every follow-up date:
    first_seen_by_lesion: tuple[tuple[str, date], ...] = ()  # ``first_seen_after_baseline`` by lesion
    first_seen_by_date: tuple[tuple[str, date], ...] = ()  # the same, by date then lesion
    readings_of: Mapping[str, tuple[Reading, ...]] = field(default_factory=dict)  # by lesion, oldest first
    nadir_before: Mapping[date, SumAt] = field(default_factory=dict)  # each follow-up's nadir
    full_sum_at: Mapping[date, Fraction] = field(default_factory=dict)  # the full target sum, where all were measured
    present_at_baseline: tuple[ConditionFact, ...] = ()  # see :func:`_present_at_baseline`
    # "12.3 mm (2024-01-05)" by (lesion, date), for the lesions that are not targets (listed at every date)
    size_text: Mapping[tuple[str, date], str] = field(default_factory=dict)

    def reference_for(self, day: date) -> date:
        """The imaging against which lesions are new at ``day``: the baseline, or with sessions, the latest
        imaging on or before the latest session before ``day`` (a lesion seen by then is tracked, not new)."""
        before = [s for s in self.sessions if s < day]
        if not before:
            return self.baseline.date
        imaging = [d for d in self.studies if self.baseline.date <= d <= before[-1]]
        return max(imaging, default=self.baseline.date)


class _Step(NamedTuple):
    """What one step of a time point's evaluation found: kinds of progression, the reasons for PD, the other
    reasons, and the evidence, each in the order the step met them.

    This and the other per-date intermediates (``_NewLesion``, ``_Sums``, ``_Targets``, ``_NonTargets``)
    are immutable named tuples: several are built at every follow-up date of both evaluations a call makes,
    and a named tuple costs a fraction of a frozen dataclass to build."""

    progression: tuple[str, ...] = ()
    pd_reasons: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()


_NOTHING = _Step()  # what a step that found nothing returns


def _merge(steps: tuple[_Step, ...]) -> _Step:
    """The steps' findings in step order (a kind of progression found twice is listed once)."""
    found = [step for step in steps if step is not _NOTHING]  # most steps find nothing at most dates
    return _Step(
        progression=tuple(dict.fromkeys(kind for step in found for kind in step.progression)),
        pd_reasons=tuple(reason for step in found for reason in step.pd_reasons),
        reasons=tuple(reason for step in found for reason in step.reasons),
        evidence=tuple(ref for step in found for ref in step.evidence),
    )


# -- step: new lesions ------------------------------------------------------------------


def _tracked_lesions(reference: date, ctx: _Context) -> tuple[str, ...]:
    """Lesions first seen after baseline but by the reference imaging: tracked as non-targets, not new."""
    return tuple(lesion for lesion, first_seen in ctx.first_seen_by_lesion if first_seen <= reference)


class _NewLesion(NamedTuple):
    """One new lesion at a follow-up: ``kind`` is ``"new_extrahepatic_spread"`` or ``"new_lesion"`` when it
    counts as progression, ``"equivocal"`` when viable but below the limit."""

    lesion: str
    kind: str
    reason: str
    evidence: tuple[str, ...]


def _classify_new_lesion(
    lesion: str, first_seen: date, readings: list[Reading], organ: str | None, crit: MrecistCriteria, since: str
) -> _NewLesion | None:
    """Outside the liver, a largest viable diameter at the extrahepatic limit is new extrahepatic spread; else
    (any organ) one at the new-lesion limit (10 mm) is a new lesion; else a lesion still viable on the date is
    equivocal; None otherwise (no viable tumour)."""
    largest = max(r.diameter_mm for r in readings)
    latest = readings[-1]
    outside_liver = organ is not None and organ != crit.liver_organ
    if outside_liver and largest > 0 and largest >= crit.new_extrahepatic_lesion_min_viable_diameter_mm:
        return _NewLesion(
            lesion,
            "new_extrahepatic_spread",
            wording.mrecist_new_lesion_outside_liver_first(lesion, organ, first_seen.isoformat(), since, _mm(largest)),
            tuple(r.ref for r in readings),
        )
    if largest >= crit.new_lesion_min_viable_diameter_mm and largest > 0:
        where = "" if organ == crit.liver_organ else (f" ({organ})" if organ else wording.mrecist_organ_unknown())
        return _NewLesion(
            lesion,
            "new_lesion",
            wording.mrecist_new_lesion_pd(
                lesion, where, first_seen.isoformat(), since, _mm(largest), _mm(crit.new_lesion_min_viable_diameter_mm)
            ),
            tuple(r.ref for r in readings),
        )
    if latest.diameter_mm > 0:
        where = wording.mrecist_outside_liver(organ) if outside_liver else ""
        limit = (
            crit.new_extrahepatic_lesion_min_viable_diameter_mm
            if outside_liver
            else crit.new_lesion_min_viable_diameter_mm
        )
        return _NewLesion(
            lesion,
            "equivocal",
            wording.mrecist_new_lesion_equivocal(
                lesion, where, first_seen.isoformat(), _mm(latest.diameter_mm), _mm(limit)
            ),
            (latest.ref,),
        )
    return None


class _NewLesions(NamedTuple):
    """The new lesions at one follow-up date, oldest first."""

    found: tuple[_NewLesion, ...]

    @property
    def counting(self) -> tuple[str, ...]:
        return tuple(n.lesion for n in self.found if n.kind != "equivocal")

    @property
    def equivocal(self) -> tuple[str, ...]:
        return tuple(n.lesion for n in self.found if n.kind == "equivocal")

    def step(self) -> _Step:
        if not self.found:
            return _NOTHING
        kinds = {n.kind for n in self.found}
        return _Step(
            progression=tuple(k for k in ("new_lesion", "new_extrahepatic_spread") if k in kinds),
            pd_reasons=tuple(n.reason for n in self.found if n.kind != "equivocal"),
            reasons=tuple(n.reason for n in self.found if n.kind == "equivocal"),
            evidence=tuple(ref for n in self.found for ref in n.evidence),
        )


def _new_lesions(day: date, reference: date, ctx: _Context) -> _NewLesions:
    """The lesions first seen after the reference imaging and up to ``day``, oldest first, classified."""
    since = (
        ""
        if reference == ctx.baseline.date
        else wording.mrecist_new_since_imaging_before_latest(reference.isoformat())
    )
    found: list[_NewLesion] = []
    base_day = ctx.baseline.date
    for lesion, first_seen in ctx.first_seen_by_date:
        if first_seen > day or first_seen <= reference:
            continue
        readings = [r for r in ctx.readings_of[lesion] if base_day < r.when <= day]  # follow-ups up to ``day``
        new = _classify_new_lesion(lesion, first_seen, readings, ctx.organ_of.get(lesion), ctx.crit, since)
        if new is not None:
            found.append(new)
    return _NewLesions(tuple(found))


# -- step: new vascular invasion or extrahepatic spread recorded as Conditions ------------------

_NEW_CONDITION_KINDS = (
    (PVTT, "new_vascular_invasion", wording.mrecist_new_vascular_invasion()),
    (METASTASIS, "new_extrahepatic_spread", wording.mrecist_new_extrahepatic_spread()),
)


def _new_conditions_step(day: date, reference: date, ctx: _Context) -> _Step:
    """A thrombus or metastasis with onset after the reference imaging and up to ``day``: PD."""
    if not ctx.conditions:
        return _NOTHING
    after = "baseline" if reference == ctx.baseline.date else wording.mrecist_imaging()
    progression: list[str] = []
    pd_reasons: list[str] = []
    evidence: list[str] = []
    for concept, key, what in _NEW_CONDITION_KINDS:
        new = [
            (c, c.onset) for c in ctx.conditions
            if c.concept == concept and c.onset is not None and reference < c.onset <= day
        ]
        for c, onset in new:
            evidence.append(c.ref)
            pd_reasons.append(
                wording.mrecist_onset_after_pd(
                    CONDITION_LABELS[concept].capitalize(), c.ref, onset.isoformat(), after, reference.isoformat(), what
                )
            )
        if new:
            progression.append(key)
    return _Step(progression=tuple(progression), pd_reasons=tuple(pd_reasons), evidence=tuple(evidence))


# -- step: non-target progression -------------------------------------------------------------


def _recorded_progression_step(day: date, ctx: _Context) -> _Step:
    """Unequivocal non-target progression recorded after baseline and up to ``day``: PD."""
    recorded = [p for p in ctx.non_target_progression if ctx.baseline.date < p.when <= day]
    if not recorded:
        return _NOTHING
    return _Step(
        progression=("non_target_progression",),
        pd_reasons=tuple(f"Recorded on {p.when.isoformat()} ({p.ref}): {p.description} (PD)." for p in recorded),
        evidence=tuple(p.ref for p in recorded),
    )


_Growth = tuple[str, Fraction, Fraction, date]  # lesion, smallest since baseline, now, date of the smallest


def _non_target_growth(
    day: date, ctx: _Context, tracked: tuple[str, ...]
) -> tuple[list[_Growth], list[_Growth], list[str]]:
    """Non-target lesions at ``day``: (unequivocal growth, smaller rises to confirm, every lesion's sizes).

    Non-targets are the lesions known at baseline that are not targets (beyond the target limits,
    viable but < 10 mm, or not viable) and the lesions tracked since an earlier session. A lesion's
    reference is its smallest viable diameter from baseline up to the study before ``day``.
    """
    crit, base = ctx.crit, ctx.baseline
    grown: list[_Growth] = []
    possible: list[_Growth] = []
    sizes: list[str] = []
    for lesion in (*ctx.known_non_targets, *tracked):
        readings = [r for r in ctx.readings_of.get(lesion, ()) if base.date <= r.when <= day]
        if not readings:
            continue
        sizes.append(f"{lesion} " + ", ".join(ctx.size_text[lesion, r.when] for r in readings))
        if readings[-1].when != day or len(readings) < 2:
            continue
        prior = readings[:-1]  # one reading a date, oldest first: those before ``day``
        now = readings[-1].diameter_mm
        smallest = min(prior, key=_DIAMETER)  # the first of equal smallest: the earliest
        if now <= smallest.diameter_mm:
            continue
        entry = (lesion, smallest.diameter_mm, now, smallest.when)
        unequivocal = (
            _at_least(now, 1, smallest.diameter_mm, crit.non_target_progression_min_ratio)
            and now - smallest.diameter_mm >= crit.non_target_progression_min_increase_mm
        )
        (grown if unequivocal and crit.non_target_progression_enabled else possible).append(entry)
    return grown, possible, sizes


def _non_target_growth_step(day: date, ctx: _Context, tracked: tuple[str, ...]) -> _Step:
    """Unequivocal growth of a non-target lesion (PD), smaller rises (to confirm), and every non-target's sizes."""
    crit, study = ctx.crit, ctx.studies[day]
    grown, possible, sizes = _non_target_growth(day, ctx, tracked)
    pd_reasons = tuple(
        wording.mrecist_non_target_unequivocal_progression(
            lesion,
            _mm(now),
            day.isoformat(),
            _mm(smallest),
            when_smallest.isoformat(),
            _mm(crit.non_target_progression_min_ratio),
            _mm(crit.non_target_progression_min_increase_mm),
        )
        for lesion, smallest, now, when_smallest in grown
    )
    reasons = [
        wording.mrecist_non_target_possible_progression(
            lesion, _mm(now), day.isoformat(), _mm(smallest), when_smallest.isoformat()
        )
        for lesion, smallest, now, when_smallest in possible
    ]
    if sizes:
        reasons.append(wording.mrecist_non_target_lesions_viable_diameters("; ".join(sizes)))
    return _Step(
        progression=("non_target_progression",) if grown else (),
        pd_reasons=pd_reasons,
        reasons=tuple(reasons),
        evidence=tuple(study[lesion].ref for lesion, *_ in (*grown, *possible)),
    )


# -- step: target sums and nadir ---------------------------------------------------------------


class _Sums(NamedTuple):
    """The sums when at least one target is measured on the date."""

    current: Fraction  # sum of the targets measured on the date
    baseline: Fraction  # baseline sum of the same targets
    nadir: SumAt  # nadir of the full target sum, dates before this one
    change_from_baseline: Fraction | None  # %; None when the baseline sum is 0
    change_from_nadir: Fraction | None  # %; None when the nadir is 0 mm


class _Targets(NamedTuple):
    """The targets on one follow-up date: which were measured, and their sums (None: none measured)."""

    measured: tuple[str, ...]
    missing: tuple[str, ...]
    sums: _Sums | None
    evidence: tuple[str, ...]

    @property
    def current_sum(self) -> Fraction | None:
        return self.sums.current if self.sums else None

    @property
    def baseline_sum(self) -> Fraction | None:
        return self.sums.baseline if self.sums else None

    @property
    def nadir(self) -> SumAt | None:
        return self.sums.nadir if self.sums else None

    @property
    def change_from_baseline_pct(self) -> float | None:
        change = self.sums.change_from_baseline if self.sums else None
        return _pct(change) if change is not None else None

    @property
    def change_from_nadir_pct(self) -> float | None:
        change = self.sums.change_from_nadir if self.sums else None
        return _pct(change) if change is not None else None

    def subset_note(self, day: date) -> str | None:
        """Said of a PD found on the sum of some of the targets."""
        if not (self.missing and self.measured):
            return None
        return wording.mrecist_sum_over_targets_measured_not(
            len(self.measured), len(self.measured) + len(self.missing), day.isoformat(), ", ".join(self.missing)
        )


def _sum_of(study: dict[str, Reading], lesions: Iterable[str]) -> Fraction:
    return _exact_sum(study[lesion].diameter_mm for lesion in lesions)


def _nadirs(baseline: Baseline, full_sums: tuple[SumAt, ...], follow_ups: tuple[date, ...]) -> dict[date, SumAt]:
    """Each follow-up's nadir: the smallest full target sum from baseline on, over the dates before it on
    which every target was measured (RECIST 1.1 practice: with a target not measured, the measured sum can
    only show PD by already being >= 20% above it); ties by the earliest date.

    One pass over the follow-ups, oldest first: a later sum replaces the nadir only when strictly smaller,
    which keeps the earliest of equal sums."""
    full = {s.date: s for s in full_sums}
    nadir = SumAt(baseline.date, baseline.sum_mm)
    nadirs: dict[date, SumAt] = {}
    for day in follow_ups:
        nadirs[day] = nadir
        candidate = full.get(day)
        if candidate is not None and candidate.sum_mm < nadir.sum_mm:
            nadir = candidate
    return nadirs


def _full_sums(studies: dict[date, dict[str, Reading]], baseline: Baseline, follow_ups: tuple[date, ...]) -> tuple[SumAt, ...]:
    """The full target sum at each follow-up on which every target was measured (the nadir's candidates)."""
    all_targets = tuple(t.lesion for t in baseline.targets)
    return tuple(
        SumAt(d, _sum_of(studies[d], all_targets))
        for d in follow_ups
        if all(lesion in studies[d] for lesion in all_targets)
    )


def _change_pct(value: Fraction, reference: Fraction) -> Fraction:
    """``(value - reference) * 100 / reference`` (``reference`` not 0), built once from integers."""
    vn, vd, rn, rd = value.numerator, value.denominator, reference.numerator, reference.denominator
    return Fraction((vn * rd - rn * vd) * 100, vd * rn)


def _target_sums(day: date, ctx: _Context) -> _Targets:
    base, study = ctx.baseline, ctx.studies[day]
    measured: tuple[str, ...]
    missing: tuple[str, ...]
    if all(t.lesion in study for t in base.targets):  # the common case: every target measured
        measured, missing = tuple(t.lesion for t in base.targets), ()
    else:
        measured = tuple(t.lesion for t in base.targets if t.lesion in study)
        missing = tuple(t.lesion for t in base.targets if t.lesion not in study)
    if not measured:
        return _Targets(measured, missing, None, ())
    if missing:
        current = _sum_of(study, measured)
        baseline = _exact_sum(t.diameter_mm for t in base.targets if t.lesion in measured)
    else:  # every target measured: the full sums, computed once per evaluation
        current, baseline = ctx.full_sum_at[day], base.sum_mm
    nadir = ctx.nadir_before[day]
    evidence = [study[lesion].ref for lesion in measured]
    if nadir.date != base.date:
        evidence.extend(ctx.studies[nadir.date][t.lesion].ref for t in base.targets)
    sums = _Sums(
        current=current,
        baseline=baseline,
        nadir=nadir,
        change_from_baseline=_change_pct(current, baseline) if baseline else None,
        change_from_nadir=_change_pct(current, nadir.sum_mm) if nadir.sum_mm > 0 else None,
    )
    return _Targets(measured, missing, sums, tuple(evidence))


# -- step: target response ----------------------------------------------------------------------


def _is_sum_progression(sums: _Sums, crit: MrecistCriteria) -> bool:
    """The sum of the targets measured is above the nadir and >= 20% above it (any sum above a nadir of 0)."""
    return sums.current > sums.nadir.sum_mm and _at_least(
        sums.current, 100, sums.nadir.sum_mm, crit.progression_factor_pct
    )


def _sum_progression_reason(sums: _Sums, crit: MrecistCriteria) -> str:
    nadir = sums.nadir
    if sums.change_from_nadir is None:
        return (
            wording.mrecist_sum_viable_target_diameters_mm(_mm(sums.current), nadir.date.isoformat())
        )
    return wording.mrecist_sum_viable_diameters_mm_above(
        _mm(sums.current),
        _pct_text(sums.change_from_nadir),
        _mm(nadir.sum_mm),
        nadir.date.isoformat(),
        _mm(crit.progression_increase_from_nadir_pct),
    )


def _missing_targets_reason(day: date, targets: _Targets, crit: MrecistCriteria) -> str:
    sums, measured = targets.sums, targets.measured
    if sums is not None and sums.change_from_nadir is not None:
        growth = wording.mrecist_measured_sum_mm_nadir_full(
            len(measured),
            _mm(sums.current),
            _pct(sums.change_from_nadir),
            _mm(sums.nadir.sum_mm),
            sums.nadir.date.isoformat(),
            _mm(crit.progression_increase_from_nadir_pct),
        )
    elif sums is not None:
        growth = wording.mrecist_measured_sum_mm_not_above(len(measured), _mm(sums.current))
    else:
        growth = wording.mrecist_no_target_measured()
    return wording.mrecist_target_s_not_measured_not(', '.join(targets.missing), day.isoformat(), growth)


def _target_response(day: date, targets: _Targets, ctx: _Context) -> tuple[str | None, _Step]:
    """PD on the sum against the nadir; else NE when a target is missing; else CR (all 0 mm), PR (>= 30% below
    baseline) or SD. None without a target."""
    crit, sums = ctx.crit, targets.sums
    if not ctx.baseline.targets:
        return None, _NOTHING
    if sums is not None and _is_sum_progression(sums, crit):
        return PD, _Step(progression=("target_sum",), pd_reasons=(_sum_progression_reason(sums, crit),))
    if sums is None or targets.missing:
        return NE, _Step(reasons=(_missing_targets_reason(day, targets, crit),))
    if sums.current == 0:
        return CR, _NOTHING
    if _at_least(sums.baseline, crit.partial_response_factor_pct, sums.current, 100):
        return PR, _NOTHING
    return SD, _NOTHING


# -- step: non-target response ------------------------------------------------------------------


class _NonTargets(NamedTuple):
    """Non-target tumour on one follow-up date and the non-target response."""

    response: str | None  # CR / non-CR/non-PD / PD / NE / None (no non-target tumour)
    viable: tuple[str, ...]  # non-target lesions viable on the date
    persisting: tuple[ConditionFact, ...]  # thrombi or metastases present at baseline and still present
    unassessed: tuple[str, ...]  # baseline non-targets not measured on the date
    evidence: tuple[str, ...]


def _present_at_baseline(conditions: tuple[ConditionFact, ...], base_day: date) -> tuple[ConditionFact, ...]:
    """Thrombi and metastases that are non-target tumour: onset by baseline (or none), present at baseline."""
    return tuple(
        c for c in conditions if (c.onset is None or c.onset <= base_day) and condition_present_at(c, base_day)
    )


def _non_target_category(
    progressed: bool, tumour_left: bool, tumour_at_baseline: bool, unassessed: tuple[str, ...]
) -> str | None:
    """PD on non-target progression; non-CR/non-PD while non-target tumour is left (or a new lesion is
    equivocal); None without non-target tumour at baseline; NE when a baseline non-target was not assessed;
    else CR."""
    if progressed:
        return PD
    if tumour_left:
        return NON_CR_NON_PD
    if not tumour_at_baseline:
        return None
    if unassessed:
        return NE
    return CR


def _non_target_response(
    day: date, ctx: _Context, tracked: tuple[str, ...], progressed: bool, equivocal: tuple[str, ...]
) -> _NonTargets:
    base, study = ctx.baseline, ctx.studies[day]
    pre_existing = ctx.present_at_baseline
    persisting = tuple(c for c in pre_existing if condition_present_at(c, day))
    viable = tuple(
        lesion for lesion in (*ctx.known_non_targets, *tracked) if lesion in study and study[lesion].diameter_mm > 0
    )
    unassessed = tuple(lesion for lesion in base.non_targets if lesion not in study)
    response = _non_target_category(
        progressed,
        tumour_left=bool(viable or persisting or equivocal),
        tumour_at_baseline=bool(base.non_targets or pre_existing),
        unassessed=unassessed,
    )
    evidence = (*(study[lesion].ref for lesion in viable), *(c.ref for c in persisting))
    return _NonTargets(response, viable, persisting, unassessed, evidence)


# -- step: explain the category -----------------------------------------------------------------


def _pd_context(day: date, targets: _Targets, progression: tuple[str, ...]) -> list[str]:
    """Beside a PD: on the sum of some targets, that it is; on something else, where the targets stand."""
    sums = targets.sums
    if "target_sum" in progression:
        note = targets.subset_note(day)
        return [note] if note else []
    if sums is None or sums.change_from_baseline is None:
        return []
    from_nadir = (
        wording.mrecist_change_from_nadir(_pct(sums.change_from_nadir), _mm(sums.nadir.sum_mm))
        if sums.change_from_nadir is not None
        else "."
    )
    return [
        wording.mrecist_targets_measured_sum_mm_baseline(
            day.isoformat(), _mm(sums.current), _pct(sums.change_from_baseline), _mm(sums.baseline)
        )
        + from_nadir
    ]


def _complete_target_response_reason(
    day: date, category: str | None, non_targets: _NonTargets, equivocal: tuple[str, ...]
) -> str:
    """Every target at 0 mm: CR, or PR while non-target tumour persists, a new lesion is equivocal, or a
    non-target was not assessed."""
    if category == CR:
        return (
            wording.mrecist_every_target_lesion_has_no(day.isoformat())
            + (wording.mrecist_no_viable_non_target_tumour() if non_targets.response == CR else "")
            + ": CR."
        )
    why = []
    if non_targets.viable:
        why.append(wording.mrecist_non_target_lesion_s_still(', '.join(non_targets.viable)))
    if non_targets.persisting:
        why.append(
            "non-target "
            + ", ".join(f"{CONDITION_LABELS[c.concept]} ({c.ref})" for c in non_targets.persisting)
            + wording.mrecist_still_present()
        )
    if equivocal:
        why.append(wording.mrecist_equivocal_new_lesion(', '.join(equivocal)))
    if non_targets.response == NE:
        why.append(wording.mrecist_non_target_lesion_s_not(', '.join(non_targets.unassessed)))
    return (
        wording.mrecist_every_target_lesion_mm_but(day.isoformat(), '; '.join(why))
    )


def _partial_response_reason(sums: _Sums, crit: MrecistCriteria) -> str:
    change = sums.change_from_baseline
    assert change is not None  # PR: the baseline sum is above 0 (a sum of 0 at a baseline of 0 is CR)
    return wording.mrecist_sum_viable_diameters_mm_below(
        _mm(sums.current), _pct_text(change), _mm(sums.baseline), _mm(crit.partial_response_decrease_from_baseline_pct)
    )


def _stable_disease_reason(sums: _Sums, crit: MrecistCriteria) -> str:
    nadir, change_from_nadir = sums.nadir, sums.change_from_nadir
    from_nadir = (
        wording.mrecist_relative_to_nadir(
            _pct_text(change_from_nadir),
            "above" if change_from_nadir >= 0 else "below",
            _mm(nadir.sum_mm),
            nadir.date.isoformat(),
        )
        if change_from_nadir is not None
        else wording.mrecist_at_nadir(_mm(nadir.sum_mm))
    )
    change = sums.change_from_baseline
    assert change is not None  # SD: the baseline sum is above 0 (else CR, or PD from a nadir of 0)
    direction = "above" if change >= 0 else "below"
    return wording.mrecist_sum_viable_diameters_mm_baseline(
        _mm(sums.current),
        _pct_text(change),
        direction,
        _mm(sums.baseline),
        from_nadir,
        _mm(crit.partial_response_decrease_from_baseline_pct),
        _mm(crit.progression_increase_from_nadir_pct),
    )


def _explanation(
    day: date,
    category: str | None,
    target_response: str | None,
    targets: _Targets,
    non_targets: _NonTargets,
    equivocal: tuple[str, ...],
    ctx: _Context,
) -> list[str]:
    """The reason for a category other than PD (PD is explained by what made it)."""
    crit, sums = ctx.crit, targets.sums
    if not ctx.baseline.targets:
        return [
            wording.mrecist_no_measurable_target_lesion_mm(
                _mm(crit.target_min_viable_diameter_mm), ctx.baseline.date.isoformat()
            )
        ]
    if category == NE or sums is None:
        return []  # said with the missing targets
    if target_response == CR:
        return [_complete_target_response_reason(day, category, non_targets, equivocal)]
    if target_response == PR:
        return [_partial_response_reason(sums, crit)]
    if target_response == SD:
        return [_stable_disease_reason(sums, crit)]
    return []


# -- one follow-up date -------------------------------------------------------------------------


def _evaluate_at(day: date, ctx: _Context) -> TimepointEvaluation:
    """mRECIST at one follow-up date, step by step in PRODUCT.md's order."""
    reference = ctx.reference_for(day)
    tracked = _tracked_lesions(reference, ctx)
    new_lesions = _new_lesions(day, reference, ctx)
    recorded = _recorded_progression_step(day, ctx)
    growth = _non_target_growth_step(day, ctx, tracked)
    targets = _target_sums(day, ctx)
    target_response, sum_step = _target_response(day, targets, ctx)
    found = _merge((
        new_lesions.step(),
        _new_conditions_step(day, reference, ctx),
        recorded,
        growth,
        _Step(evidence=targets.evidence),
        sum_step,
    ))
    counting, equivocal = new_lesions.counting, new_lesions.equivocal
    non_target_progression = bool(recorded.progression or growth.progression)
    non_targets = _non_target_response(day, ctx, tracked, non_target_progression, equivocal)
    new_lesion = bool(counting) or any(
        kind in found.progression for kind in ("new_vascular_invasion", "new_extrahepatic_spread")
    )
    category = overall_response(target_response, non_targets.response, new_lesion)
    if category == PD:
        reasons = [*found.pd_reasons, *_pd_context(day, targets, found.progression), *found.reasons]
    else:
        explained = _explanation(day, category, target_response, targets, non_targets, equivocal, ctx)
        reasons = [*found.reasons, *explained]
    return TimepointEvaluation(
        date=day,
        category=category,
        target_response=target_response,
        non_target_response=non_targets.response,
        sum_mm=targets.current_sum,
        targets_measured=targets.measured,
        targets_missing=targets.missing,
        baseline_sum_mm=targets.baseline_sum,
        nadir=targets.nadir,
        change_from_baseline_pct=targets.change_from_baseline_pct,
        change_from_nadir_pct=targets.change_from_nadir_pct,
        new_lesions=counting,
        new_lesions_below_threshold=equivocal,
        progression=found.progression,
        reasons=tuple(dict.fromkeys(reasons)),
        evidence=tuple(dict.fromkeys([*found.evidence, *non_targets.evidence])),
    )


# -- the whole evaluation -----------------------------------------------------------------------


def _relevant_conditions(conditions: Iterable[ConditionFact]) -> tuple[ConditionFact, ...]:
    """Portal-vein tumour thrombi and extrahepatic metastases that count (not refuted or entered in error)."""
    return tuple(
        sorted(
            (c for c in conditions if c.concept in MRECIST_CONDITIONS and _counts(c)),
            key=lambda c: (c.onset or date.min, c.ref),
        )
    )


def _no_baseline_reason(studies: Mapping[date, object], reference_day: date, treatment_start: date) -> str:
    later = sorted(d for d in studies if d > reference_day)
    tail = wording.mrecist_first_imaging_after(later[0].isoformat()) if later else ""
    return wording.mrecist_no_baseline_no_tumour_imaging(treatment_start.isoformat(), tail)


def _choose_baseline(
    studies: dict[date, dict[str, Reading]], base_day: date, treatment_start: date, crit: MrecistCriteria
) -> Baseline:
    """The baseline study: its targets (see :func:`_choose_targets`) and the non-targets viable at baseline."""
    base_study = studies[base_day]
    targets = _choose_targets(base_study.values(), crit)
    target_ids = {t.lesion for t in targets}
    return Baseline(
        date=base_day,
        treatment_start=treatment_start,
        targets=targets,
        sum_mm=_exact_sum(t.diameter_mm for t in targets),
        non_targets=tuple(
            sorted(lesion for lesion, r in base_study.items() if lesion not in target_ids and r.diameter_mm > 0)
        ),
        evidence=tuple(t.ref for t in targets),
    )


def _baseline_reasons(
    baseline: Baseline, crit: MrecistCriteria, as_of: date, conditions: tuple[ConditionFact, ...]
) -> list[str]:
    """The baseline and its targets; a treatment start after ``as_of``; thrombi or metastases without onset."""
    base_day, treatment_start, targets = baseline.date, baseline.treatment_start, baseline.targets
    reasons: list[str] = []
    if targets:
        listed = ", ".join(f"{t.lesion} {_mm(t.diameter_mm)} mm" for t in targets)
        reasons.append(
            wording.mrecist_baseline_with_targets(
                base_day.isoformat(), treatment_start.isoformat(), len(targets), listed, _mm(baseline.sum_mm)
            )
        )
    else:
        reasons.append(
            wording.mrecist_baseline_without_target(
                base_day.isoformat(), treatment_start.isoformat(), _mm(crit.target_min_viable_diameter_mm)
            )
        )
    if treatment_start > as_of:
        reasons.append(
            wording.mrecist_treatment_start_after_assessment_date(treatment_start.isoformat(), as_of.isoformat())
        )
    for c in conditions:
        if c.onset is None and c.recorded is not None and c.recorded > base_day:
            reasons.append(
                wording.mrecist_has_no_onset_date_only(
                    CONDITION_LABELS[c.concept].capitalize(), c.ref, c.recorded.isoformat()
                )
            )
        elif c.onset is None:
            reasons.append(
                wording.mrecist_has_no_onset_date_taken(CONDITION_LABELS[c.concept].capitalize(), c.ref)
            )
    return reasons


def _lesion_history(
    studies: dict[date, dict[str, Reading]], known: set[str]
) -> tuple[dict[str, date], dict[str, str | None], dict[str, tuple[Reading, ...]]]:
    """When each lesion not ``known`` (by baseline) was first seen, each lesion's first recorded organ, and
    each lesion's readings, oldest first."""
    first_seen: dict[str, date] = {}
    organ_of: dict[str, str | None] = {}
    readings_of: dict[str, list[Reading]] = {}
    for d in sorted(studies):
        for lesion, r in studies[d].items():
            if organ_of.get(lesion) is None:
                organ_of[lesion] = r.organ
            if lesion not in known and lesion not in first_seen:
                first_seen[lesion] = d
            readings_of.setdefault(lesion, []).append(r)
    return first_seen, organ_of, {lesion: tuple(readings) for lesion, readings in readings_of.items()}


def _context(
    crit: MrecistCriteria,
    studies: dict[date, dict[str, Reading]],
    baseline: Baseline,
    as_of: date,
    conditions: tuple[ConditionFact, ...],
    non_target_progression: Iterable[RecordedProgression],
    new_since_sessions: Iterable[date],
) -> _Context:
    """What every follow-up's evaluation reads: the follow-up dates, when each lesion was first seen after
    baseline, the non-targets known by baseline, the conditions, recorded progression and sessions."""
    known = {lesion for d, study in studies.items() if d <= baseline.date for lesion in study}
    first_seen, organ_of, readings_of = _lesion_history(studies, known)
    follow_ups = tuple(sorted(d for d in studies if baseline.date < d <= as_of))
    target_ids = {t.lesion for t in baseline.targets}
    full_sums = _full_sums(studies, baseline, follow_ups)
    size_text = {
        (lesion, r.when): f"{_mm(r.diameter_mm)} mm ({r.when.isoformat()})"
        for lesion, readings in readings_of.items()
        if lesion not in target_ids
        for r in readings
    }
    return _Context(
        crit=crit,
        studies=studies,
        baseline=baseline,
        follow_ups=follow_ups,
        first_seen_after_baseline=first_seen,
        organ_of=organ_of,
        known_non_targets=tuple(sorted(known - {t.lesion for t in baseline.targets})),
        conditions=conditions,
        non_target_progression=tuple(sorted(non_target_progression, key=operator.attrgetter("when", "ref"))),
        sessions=tuple(sorted(set(new_since_sessions))),
        first_seen_by_lesion=tuple(sorted(first_seen.items())),
        first_seen_by_date=tuple(sorted(first_seen.items(), key=lambda kv: (kv[1], kv[0]))),
        readings_of=readings_of,
        nadir_before=_nadirs(baseline, full_sums, follow_ups),
        full_sum_at={s.date: s.sum_mm for s in full_sums},
        present_at_baseline=_present_at_baseline(conditions, baseline.date),
        size_text=size_text,
    )


def _timeline(ctx: _Context, as_of: date) -> tuple[TimepointEvaluation, ...]:
    """Every follow-up's evaluation, and PD at the onset of a thrombus or metastasis after the latest sized imaging."""
    timeline = tuple(_evaluate_at(d, ctx) for d in ctx.follow_ups)
    last_imaged = ctx.follow_ups[-1] if ctx.follow_ups else ctx.baseline.date
    late = [c for c in ctx.conditions if c.onset is not None and last_imaged < c.onset <= as_of]
    if late:
        timeline = (*timeline, _clinical_progression(late, ctx))
    return timeline


def _clinical_progression(conditions: list[ConditionFact], ctx: _Context) -> TimepointEvaluation:
    """PD at the onset of the latest new thrombus or metastasis recorded after the latest sized imaging."""
    day = max(c.onset for c in conditions if c.onset is not None)
    progression: list[str] = []
    reasons: list[str] = []
    for c in sorted(conditions, key=lambda c: (c.onset or date.min, c.ref)):
        key, what = (
            ("new_vascular_invasion", wording.mrecist_new_vascular_invasion()) if c.concept == PVTT
            else ("new_extrahepatic_spread", wording.mrecist_new_extrahepatic_spread())
        )
        if key not in progression:
            progression.append(key)
        assert c.onset is not None
        reasons.append(
            wording.mrecist_onset_after_latest_sized_imaging(
                CONDITION_LABELS[c.concept].capitalize(),
                c.ref,
                c.onset.isoformat(),
                ctx.baseline.date.isoformat(),
                what,
            )
        )
    return TimepointEvaluation(
        date=day,
        category=PD,
        target_response=None,
        non_target_response=None,
        sum_mm=None,
        targets_measured=(),
        targets_missing=(),
        baseline_sum_mm=None,
        nadir=None,
        change_from_baseline_pct=None,
        change_from_nadir_pct=None,
        new_lesions=(),
        new_lesions_below_threshold=(),
        progression=tuple(progression),
        reasons=tuple(reasons),
        evidence=tuple(c.ref for c in conditions),
        imaging=False,
    )


def _no_category(
    reasons: list[str],
    notes: list[str],
    crit: MrecistCriteria,
    as_of: date,
    treatment_start: date,
    baseline: Baseline | None = None,
) -> MrecistResult:
    return MrecistResult(
        category=None,
        baseline=baseline,
        current=None,
        timeline=(),
        reasons=tuple(dict.fromkeys([*reasons, *notes])),
        evidence=baseline.evidence if baseline else (),
        citation=crit.citation,
        as_of=as_of,
        treatment_start=treatment_start,
    )


def evaluate_mrecist(
    lesions: Iterable[LesionMeasurement],
    *,
    treatment_start: date,
    as_of: date,
    criteria: Mapping[str, Any] | MrecistCriteria,
    conditions: Iterable[ConditionFact] = (),
    non_target_progression: Iterable[RecordedProgression] = (),
    new_since_sessions: Iterable[date] = (),
    prepared: LesionStudies | None = None,
) -> MrecistResult:
    """mRECIST at the latest follow-up imaging on or before ``as_of``, and at every follow-up before it.

    ``new_since_sessions``: the dates of a treatment's sessions (a TACE series). Progression after a
    session is judged on what is new since the imaging before that session: a lesion already seen
    then is tracked as a non-target, not new again. Without sessions, new means new since baseline.

    ``lesions``: viable-diameter measurements (``snapshot.lesions``); ``conditions``:
    the snapshot's conditions (portal-vein tumour thrombus and extrahepatic
    metastases are used, others ignored); ``non_target_progression``:
    radiologist-recorded unequivocal non-target progression. Imaging after
    ``as_of`` is ignored. Never raises on clinical data: a missing baseline,
    follow-up or target gives ``category`` None with reasons. ``prepared``: ``lesions`` already read by
    :func:`lesion_studies` (a call reads them once for its evaluations); read here when None.
    """
    crit = _criteria(criteria)
    notes: list[str] = []
    studies = (lesion_studies(lesions) if prepared is None else prepared).up_to(as_of, notes)
    relevant_conditions = _relevant_conditions(conditions)
    reference_day = min(treatment_start, as_of)
    before = [d for d in studies if d <= reference_day]
    if not before:
        reason = _no_baseline_reason(studies, reference_day, treatment_start)
        return _no_category([reason], notes, crit, as_of, treatment_start)
    baseline = _choose_baseline(studies, max(before), treatment_start, crit)
    reasons = _baseline_reasons(baseline, crit, as_of, relevant_conditions)
    ctx = _context(crit, studies, baseline, as_of, relevant_conditions, non_target_progression, new_since_sessions)
    timeline = _timeline(ctx, as_of)
    if not timeline:
        reasons.append(
            wording.mrecist_no_follow_up_imaging_after(baseline.date.isoformat(), as_of.isoformat())
        )
        return _no_category(reasons, notes, crit, as_of, treatment_start, baseline)
    current = timeline[-1]
    return MrecistResult(
        category=current.category,
        baseline=baseline,
        current=current,
        timeline=timeline,
        reasons=tuple(dict.fromkeys([*reasons, *current.reasons, *notes])),
        evidence=tuple(dict.fromkeys([*baseline.evidence, *current.evidence])),
        citation=crit.citation,
        as_of=as_of,
        treatment_start=treatment_start,
    )


def mrecist_timeline(
    lesions: Iterable[LesionMeasurement],
    *,
    treatment_start: date,
    as_of: date,
    criteria: Mapping[str, Any] | MrecistCriteria,
    conditions: Iterable[ConditionFact] = (),
    non_target_progression: Iterable[RecordedProgression] = (),
    new_since_sessions: Iterable[date] = (),
) -> tuple[TimepointEvaluation, ...]:
    """The evaluation at each follow-up date after baseline up to ``as_of`` (each with its own nadir)."""
    return evaluate_mrecist(
        lesions,
        treatment_start=treatment_start,
        as_of=as_of,
        criteria=criteria,
        conditions=conditions,
        non_target_progression=non_target_progression,
        new_since_sessions=new_since_sessions,
    ).timeline


def mrecist_for_snapshot(
    snapshot: Snapshot,
    *,
    treatment_start: date,
    as_of: date,
    criteria: Mapping[str, Any] | MrecistCriteria,
    non_target_progression: Iterable[RecordedProgression] = (),
    prepared: LesionStudies | None = None,
) -> MrecistResult:
    """:func:`evaluate_mrecist` over a snapshot's lesions and conditions (``prepared``: as there)."""
    return evaluate_mrecist(
        snapshot.lesions,
        treatment_start=treatment_start,
        as_of=as_of,
        criteria=criteria,
        conditions=snapshot.conditions,
        non_target_progression=non_target_progression,
        prepared=prepared,
    )
