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
  (``new_extrahepatic_lesion_min_viable_diameter_mm``, 0: any viable size).
  A new lesion below 10 mm is equivocal: not PD, but it rules out CR.
* **Targets** = lesions viable >= 10 mm at baseline, at most 2 per organ and 5
  in total, largest first, ties by lesion identifier; an unrecorded organ is
  its own group ``"unknown"``.
* **Order of evaluation at a follow-up date**: PD when a new lesion counts,
  vascular invasion is new (a portal-vein tumour thrombus with onset after
  baseline), extrahepatic spread is new (a metastasis with onset after
  baseline, or a new lesion outside the liver), unequivocal non-target
  progression is *recorded* (only through ``non_target_progression``: this
  module never infers it from sizes, to stay conservative), or the sum of the
  targets measured is >= 20% above the nadir; else NE when a target lacks a
  measurement on that date; else CR when every target is 0 mm; PR when the sum
  is >= 30% below baseline; SD otherwise.
* **Nadir** = the smallest sum from baseline on, over the dates before the one
  evaluated (baseline included). When a target is missing, the sum of the
  targets measured is compared with the nadir of the *same* targets (dates on
  which one of them was not measured are skipped), so growth of the measured
  targets is still PD, and otherwise the result is NE. A nadir of 0 mm makes any
  reappearance PD. There is no 5 mm absolute minimum (dossier §3.3: mRECIST
  gives none).
* **Overall response** by the dossier's table (:func:`overall_response`):
  target CR with non-target tumour persisting (or an equivocal new lesion, or a
  non-target not assessed) is PR. Non-target tumour = non-target lesions viable
  at baseline and a portal-vein thrombus or metastasis present at baseline.
* ``category`` is None without a baseline, without follow-up imaging, or
  without a measurable target at baseline (unless PD by a new lesion, new
  invasion or spread, or recorded non-target progression).

Thresholds compare exact rationals (a diameter is read as the decimal it
prints as), so exactly +20% from the nadir is PD and exactly -30% from baseline
is PR. Percentages in the output are rounded to one decimal, half away from zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any

from rules.knowledge import KnowledgeError
from rules.snapshot import ConditionFact, LesionMeasurement, Snapshot
from rules.timing import condition_present_at

CRITERIA_GROUP = "mrecist"
PVTT = "portal_vein_tumour_thrombus"
METASTASIS = "extrahepatic_metastasis"
CONDITION_LABELS = {PVTT: "portal-vein tumour thrombus", METASTASIS: "extrahepatic metastasis"}
NOT_COUNTED_VERIFICATION = ("refuted", "entered-in-error")
UNKNOWN_ORGAN = "unknown"

CR, PR, SD, PD, NE = "CR", "PR", "SD", "PD", "NE"
NON_CR_NON_PD = "non-CR/non-PD"


# -- criteria -------------------------------------------------------------------


def _exact(value: float | int | Fraction) -> Fraction:
    """A number as an exact rational: a float is read as the decimal it prints as (12.3 -> 123/10)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(repr(float(value)))


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


def _mm_number(value: Fraction) -> int | float:
    """A length for JSON: an integer when whole, else the float."""
    return value.numerator if value.denominator == 1 else float(value)


def _mm(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


_PCT_LIMIT = Decimal("1e300")  # a finite float, whatever absurd diameter a record holds


def _pct(change: Fraction) -> float:
    """A percentage rounded to one decimal, half away from zero.

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
    description: str = "unequivocal progression of non-target lesions"


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

    def as_dict(self) -> dict:
        return {"lesion": self.lesion, "diameter_mm": _mm_number(self.diameter_mm), "organ": self.organ}


@dataclass(frozen=True)
class SumAt:
    """A sum of viable target diameters on one date."""

    date: date
    sum_mm: Fraction

    def as_dict(self) -> dict:
        return {"date": self.date.isoformat(), "sum_mm": _mm_number(self.sum_mm)}


@dataclass(frozen=True)
class Baseline:
    """The baseline study: its date, the targets chosen and their sum."""

    date: date
    treatment_start: date
    targets: tuple[Target, ...]
    sum_mm: Fraction
    non_targets: tuple[str, ...]  # lesions viable at baseline that are not targets
    evidence: tuple[str, ...]

    def as_dict(self) -> dict:
        return {
            "date": self.date.isoformat(),
            "sum_mm": _mm_number(self.sum_mm),
            "targets": [t.as_dict() for t in self.targets],
            "non_targets": list(self.non_targets),
        }


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

    def as_dict(self) -> dict:
        return {
            "date": self.date.isoformat(),
            "sum_mm": _mm_number(self.sum_mm) if self.sum_mm is not None else None,
            "category": self.category,
            "target_response": self.target_response,
            "non_target_response": self.non_target_response,
            "nadir": self.nadir.as_dict() if self.nadir else None,
            "change_from_baseline_pct": self.change_from_baseline_pct,
            "change_from_nadir_pct": self.change_from_nadir_pct,
            "targets_missing": list(self.targets_missing),
            "new_lesions": list(self.new_lesions),
            "new_lesions_below_threshold": list(self.new_lesions_below_threshold),
            "progression": list(self.progression),
            "reasons": list(self.reasons),
            "evidence": list(self.evidence),
        }


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

    def as_dict(self) -> dict:
        """The schema's ``mrecist`` object, plus responses by component, evidence, timeline and citation."""
        cur = self.current
        return {
            "category": self.category,
            "baseline": self.baseline.as_dict() if self.baseline else None,
            "nadir": cur.nadir.as_dict() if cur and cur.nadir else None,
            "current": (
                {"date": cur.date.isoformat(), "sum_mm": _mm_number(cur.sum_mm) if cur.sum_mm is not None else None}
                if cur
                else None
            ),
            "change_from_baseline_pct": cur.change_from_baseline_pct if cur else None,
            "change_from_nadir_pct": cur.change_from_nadir_pct if cur else None,
            "new_lesions": list(cur.new_lesions) if cur else [],
            "new_lesions_below_threshold": list(cur.new_lesions_below_threshold) if cur else [],
            "target_response": cur.target_response if cur else None,
            "non_target_response": cur.non_target_response if cur else None,
            "reasons": list(self.reasons),
            "evidence": list(self.evidence),
            "timeline": [t.as_dict() for t in self.timeline],
            "citation": self.citation,
        }


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


def _valid_readings(
    lesions: Iterable[LesionMeasurement], as_of: date | None, notes: list[str]
) -> dict[date, dict[str, Reading]]:
    """Readings on or before ``as_of`` grouped by date and lesion; one per lesion and date (the largest)."""
    grouped: dict[tuple[date, str], list[Reading]] = {}
    for m in sorted(lesions, key=lambda m: (m.when, m.lesion, m.ref)):
        if as_of is not None and m.when > as_of:
            continue
        value = m.viable_diameter_mm
        if value is None or not math.isfinite(value) or value < 0:
            notes.append(f"Lesion measurement {m.ref} ({m.lesion}, {m.when.isoformat()}) has no usable diameter; not used.")
            continue
        grouped.setdefault((m.when, m.lesion), []).append(
            Reading(lesion=m.lesion, organ=m.organ, when=m.when, diameter_mm=_exact(value), ref=m.ref)
        )
    studies: dict[date, dict[str, Reading]] = {}
    for (when, lesion), readings in sorted(grouped.items()):
        chosen = max(readings, key=lambda r: (r.diameter_mm, r.ref))
        if len({r.diameter_mm for r in readings}) > 1:
            notes.append(
                f"{lesion} has {len(readings)} measurements on {when.isoformat()}; the largest "
                f"({_mm(chosen.diameter_mm)} mm, {chosen.ref}) is used."
            )
        studies.setdefault(when, {})[lesion] = chosen
    return studies


def _organ_group(organ: str | None) -> str:
    return organ if organ is not None else UNKNOWN_ORGAN


def _choose_targets(readings: Iterable[Reading], crit: MrecistCriteria) -> tuple[Target, ...]:
    measurable = sorted(
        (r for r in readings if r.diameter_mm >= crit.target_min_viable_diameter_mm),
        key=lambda r: (-r.diameter_mm, r.lesion),
    )
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
    studies = _valid_readings(baseline_lesions, None, [])
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

    def reference_for(self, day: date) -> date:
        """The imaging against which lesions are new at ``day``: the baseline, or with sessions, the latest
        imaging on or before the latest session before ``day`` (a lesion seen by then is tracked, not new)."""
        before = [s for s in self.sessions if s < day]
        if not before:
            return self.baseline.date
        imaging = [d for d in self.studies if self.baseline.date <= d <= before[-1]]
        return max(imaging, default=self.baseline.date)


def _sum_of(study: dict[str, Reading], lesions: Iterable[str]) -> Fraction:
    return sum((study[lesion].diameter_mm for lesion in lesions), Fraction(0))


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
        readings = [ctx.studies[d][lesion] for d in sorted(ctx.studies) if base.date <= d <= day and lesion in ctx.studies[d]]
        if not readings:
            continue
        sizes.append(f"{lesion} " + ", ".join(f"{_mm(r.diameter_mm)} mm ({r.when.isoformat()})" for r in readings))
        prior = [r for r in readings if r.when < day]
        if readings[-1].when != day or not prior:
            continue
        now = readings[-1].diameter_mm
        smallest = min(prior, key=lambda r: (r.diameter_mm, r.when))
        if now <= smallest.diameter_mm:
            continue
        entry = (lesion, smallest.diameter_mm, now, smallest.when)
        unequivocal = (
            now * 1 >= smallest.diameter_mm * crit.non_target_progression_min_ratio
            and now - smallest.diameter_mm >= crit.non_target_progression_min_increase_mm
        )
        (grown if unequivocal and crit.non_target_progression_enabled else possible).append(entry)
    return grown, possible, sizes


def _evaluate_at(day: date, ctx: _Context) -> TimepointEvaluation:
    crit, base = ctx.crit, ctx.baseline
    study = ctx.studies[day]
    reasons: list[str] = []
    evidence: list[str] = []
    progression: list[str] = []
    pd_reasons: list[str] = []

    # new lesions: first seen after the reference imaging (the baseline, or the imaging before the latest
    # session), up to this date; those seen after baseline but by the reference are tracked as non-targets
    reference = ctx.reference_for(day)
    tracked = tuple(
        lesion for lesion, first_seen in sorted(ctx.first_seen_after_baseline.items()) if first_seen <= reference
    )
    counting: list[str] = []
    equivocal: list[str] = []
    new_extrahepatic = False
    new_intrahepatic = False
    since = "" if reference == base.date else f" (new since the imaging of {reference.isoformat()}, before the latest session)"
    for lesion, first_seen in sorted(ctx.first_seen_after_baseline.items(), key=lambda kv: (kv[1], kv[0])):
        if first_seen > day or first_seen <= reference:
            continue
        readings = [ctx.studies[d][lesion] for d in ctx.follow_ups if d <= day and lesion in ctx.studies[d]]
        largest = max(r.diameter_mm for r in readings)
        latest = readings[-1]
        organ = ctx.organ_of.get(lesion)
        outside_liver = organ is not None and organ != crit.liver_organ
        if outside_liver and largest > 0 and largest >= crit.new_extrahepatic_lesion_min_viable_diameter_mm:
            counting.append(lesion)
            new_extrahepatic = True
            evidence.extend(r.ref for r in readings)
            pd_reasons.append(
                f"New lesion {lesion} outside the liver ({organ}), first seen {first_seen.isoformat()}{since}, "
                f"viable {_mm(largest)} mm: new extrahepatic spread (PD)."
            )
        elif largest >= crit.new_lesion_min_viable_diameter_mm and largest > 0:
            counting.append(lesion)
            new_intrahepatic = True
            evidence.extend(r.ref for r in readings)
            where = "" if organ == crit.liver_organ else (f" ({organ})" if organ else " (organ unknown)")
            pd_reasons.append(
                f"New lesion {lesion}{where} first seen {first_seen.isoformat()}{since}, viable {_mm(largest)} mm "
                f"(>= {_mm(crit.new_lesion_min_viable_diameter_mm)} mm): PD."
            )
        elif latest.diameter_mm > 0:
            equivocal.append(lesion)
            evidence.append(latest.ref)
            where = f" outside the liver ({organ})" if outside_liver else ""
            limit = crit.new_extrahepatic_lesion_min_viable_diameter_mm if outside_liver else crit.new_lesion_min_viable_diameter_mm
            reasons.append(
                f"New lesion {lesion}{where} first seen {first_seen.isoformat()}, viable {_mm(latest.diameter_mm)} mm "
                f"(< {_mm(limit)} mm): equivocal, not PD; it rules out CR."
            )
    if new_intrahepatic:
        progression.append("new_lesion")
    if new_extrahepatic:
        progression.append("new_extrahepatic_spread")

    # new vascular invasion / extrahepatic spread recorded as Conditions
    for concept, key, what in (
        (PVTT, "new_vascular_invasion", "new vascular invasion"),
        (METASTASIS, "new_extrahepatic_spread", "new extrahepatic spread"),
    ):
        new = [
            c for c in ctx.conditions
            if c.concept == concept and c.onset is not None and reference < c.onset <= day
        ]
        for c in new:
            evidence.append(c.ref)
            pd_reasons.append(
                f"{CONDITION_LABELS[concept].capitalize()} {c.ref} with onset {c.onset.isoformat()}, "
                f"after {'baseline' if reference == base.date else 'the imaging of'} {reference.isoformat()}: {what} (PD)."
            )
        if new and key not in progression:
            progression.append(key)

    # recorded unequivocal non-target progression
    recorded = [p for p in ctx.non_target_progression if base.date < p.when <= day]
    for p in recorded:
        evidence.append(p.ref)
        pd_reasons.append(f"Recorded on {p.when.isoformat()} ({p.ref}): {p.description} (PD).")
    grown, possible, sizes = _non_target_growth(day, ctx, tracked)
    for lesion, smallest, now, when_smallest in grown:
        evidence.append(study[lesion].ref)
        pd_reasons.append(
            f"Non-target lesion {lesion} viable {_mm(now)} mm on {day.isoformat()}, up from its smallest "
            f"{_mm(smallest)} mm ({when_smallest.isoformat()}): unequivocal non-target progression (PD; "
            f">= {_mm(crit.non_target_progression_min_ratio)}x and >= {_mm(crit.non_target_progression_min_increase_mm)} mm larger, "
            "or regrowth to >= 10 mm after 0)."
        )
    for lesion, smallest, now, when_smallest in possible:
        evidence.append(study[lesion].ref)
        reasons.append(
            f"Non-target lesion {lesion} viable {_mm(now)} mm on {day.isoformat()}, up from {_mm(smallest)} mm "
            f"({when_smallest.isoformat()}): possible progression to confirm (below the unequivocal rule; "
            "the category is not changed)."
        )
    if sizes:
        reasons.append("Non-target lesions (viable diameters since baseline): " + "; ".join(sizes) + ".")
    if recorded or grown:
        progression.append("non_target_progression")

    # targets
    targets = base.targets
    measured = tuple(t.lesion for t in targets if t.lesion in study)
    missing = tuple(t.lesion for t in targets if t.lesion not in study)
    current_sum: Fraction | None = _sum_of(study, measured) if measured else None
    baseline_sum: Fraction | None = (
        sum((t.diameter_mm for t in targets if t.lesion in measured), Fraction(0)) if measured else None
    )
    nadir: SumAt | None = None
    if measured:
        # the nadir is always of the full target sum (RECIST 1.1 practice): with a target not measured,
        # the measured sum can only show PD by already being >= 20% above it
        all_targets = tuple(t.lesion for t in targets)
        evidence.extend(study[lesion].ref for lesion in measured)
        candidates = [SumAt(base.date, base.sum_mm)]
        for d in ctx.follow_ups:
            if d >= day:
                break
            earlier = ctx.studies[d]
            if all(lesion in earlier for lesion in all_targets):
                candidates.append(SumAt(d, _sum_of(earlier, all_targets)))
        nadir = min(candidates, key=lambda s: (s.sum_mm, s.date))
        if nadir.date != base.date:
            evidence.extend(ctx.studies[nadir.date][lesion].ref for lesion in all_targets)
    subset_note = (
        f"Sum over the {len(measured)} of {len(targets)} targets measured on {day.isoformat()} "
        f"({', '.join(missing)} not measured), against the nadir of the full target sum."
        if missing and measured
        else None
    )

    change_from_baseline: Fraction | None = None
    change_from_nadir: Fraction | None = None
    if current_sum is not None and baseline_sum:
        change_from_baseline = (current_sum - baseline_sum) * 100 / baseline_sum
    if current_sum is not None and nadir is not None and nadir.sum_mm > 0:
        change_from_nadir = (current_sum - nadir.sum_mm) * 100 / nadir.sum_mm

    increase = crit.progression_increase_from_nadir_pct
    decrease = crit.partial_response_decrease_from_baseline_pct
    sum_progression = (
        current_sum is not None
        and nadir is not None
        and current_sum > nadir.sum_mm
        and current_sum * 100 >= nadir.sum_mm * (100 + increase)
    )
    target_response: str | None
    if not targets:
        target_response = None
    elif sum_progression:
        target_response = PD
        progression.append("target_sum")
        if nadir.sum_mm == 0:
            pd_reasons.append(
                f"Sum of viable target diameters {_mm(current_sum)} mm after a nadir of 0 mm "
                f"({nadir.date.isoformat()}): viable tumour reappeared (PD)."
            )
        else:
            pd_reasons.append(
                f"Sum of viable diameters {_mm(current_sum)} mm is {_pct_text(change_from_nadir)} above the nadir "
                f"of {_mm(nadir.sum_mm)} mm ({nadir.date.isoformat()}) (PD at >={_mm(increase)}%)."
            )
    elif missing:
        target_response = NE
        if measured and change_from_nadir is not None:
            growth = (
                f"; the {len(measured)} measured sum to {_mm(current_sum)} mm, {_pct(change_from_nadir):+.1f}% from "
                f"the nadir of the full sum, {_mm(nadir.sum_mm)} mm ({nadir.date.isoformat()}), short of PD (>=+{_mm(increase)}%)"
            )
        elif measured:
            growth = f"; the {len(measured)} measured sum to {_mm(current_sum)} mm, not above the nadir of 0 mm"
        else:
            growth = "; no target measured"
        reasons.append(
            f"Target(s) {', '.join(missing)} not measured on {day.isoformat()}: not evaluable (NE){growth}."
        )
    elif current_sum == 0:
        target_response = CR
    elif current_sum * 100 <= baseline_sum * (100 - decrease):
        target_response = PR
    else:
        target_response = SD

    # non-target tumour
    pre_existing = [
        c for c in ctx.conditions
        if (c.onset is None or c.onset <= base.date) and condition_present_at(c, base.date)
    ]
    persisting_conditions = [c for c in pre_existing if condition_present_at(c, day)]
    viable_known = [
        lesion for lesion in (*ctx.known_non_targets, *tracked) if lesion in study and study[lesion].diameter_mm > 0
    ]
    unassessed = [lesion for lesion in base.non_targets if lesion not in study]
    non_target_response: str | None
    if recorded or grown:
        non_target_response = PD
    elif viable_known or persisting_conditions or equivocal:
        non_target_response = NON_CR_NON_PD
    elif not base.non_targets and not pre_existing:
        non_target_response = None
    elif unassessed:
        non_target_response = NE
    else:
        non_target_response = CR
    evidence.extend(study[lesion].ref for lesion in viable_known)
    evidence.extend(c.ref for c in persisting_conditions)

    new_lesion = bool(counting) or any(
        key in progression for key in ("new_vascular_invasion", "new_extrahepatic_spread")
    )
    category = overall_response(target_response, non_target_response, new_lesion)

    # explain the category
    if category == PD:
        context: list[str] = []
        if "target_sum" in progression and subset_note:
            context.append(subset_note)
        elif "target_sum" not in progression and current_sum is not None and baseline_sum:
            context.append(
                f"Targets measured on {day.isoformat()}: sum {_mm(current_sum)} mm, "
                f"{_pct(change_from_baseline):+.1f}% from baseline {_mm(baseline_sum)} mm"
                + (
                    f", {_pct(change_from_nadir):+.1f}% from the nadir of {_mm(nadir.sum_mm)} mm."
                    if change_from_nadir is not None
                    else "."
                )
            )
        reasons = pd_reasons + context + reasons
    elif not targets:
        reasons.append(
            f"No measurable target lesion (>= {_mm(crit.target_min_viable_diameter_mm)} mm viable) at baseline "
            f"{base.date.isoformat()}, and no progression: no mRECIST category."
        )
    elif category == NE:
        pass  # said above
    elif target_response == CR:
        if category == CR:
            reasons.append(
                f"Every target lesion has no viable tumour (0 mm) on {day.isoformat()}, no new lesion"
                + (" and no viable non-target tumour" if non_target_response == CR else "")
                + ": CR."
            )
        else:
            why = []
            if viable_known:
                why.append(f"non-target lesion(s) still viable ({', '.join(viable_known)})")
            if persisting_conditions:
                why.append(
                    "non-target " + ", ".join(f"{CONDITION_LABELS[c.concept]} ({c.ref})" for c in persisting_conditions)
                    + " still present"
                )
            if equivocal:
                why.append(f"an equivocal new lesion ({', '.join(equivocal)})")
            if non_target_response == NE:
                why.append(f"non-target lesion(s) not assessed ({', '.join(unassessed)})")
            reasons.append(
                f"Every target lesion is at 0 mm on {day.isoformat()}, but {'; '.join(why)}: "
                "PR by the overall-response table (CR needs all of them gone)."
            )
    elif target_response == PR:
        reasons.append(
            f"Sum of viable diameters {_mm(current_sum)} mm is {_pct_text(change_from_baseline)} below baseline "
            f"{_mm(baseline_sum)} mm (PR at >={_mm(decrease)}% decrease)."
        )
    elif target_response == SD:
        from_nadir = (
            f"{_pct_text(change_from_nadir)} {'above' if change_from_nadir >= 0 else 'below'} the nadir "
            f"of {_mm(nadir.sum_mm)} mm ({nadir.date.isoformat()})"
            if change_from_nadir is not None
            else f"at the nadir of {_mm(nadir.sum_mm)} mm"
        )
        direction = "above" if change_from_baseline >= 0 else "below"
        reasons.append(
            f"Sum of viable diameters {_mm(current_sum)} mm is {_pct_text(change_from_baseline)} {direction} "
            f"baseline {_mm(baseline_sum)} mm and {from_nadir}: neither PR (>={_mm(decrease)}% decrease) "
            f"nor PD (>={_mm(increase)}% increase), SD."
        )

    return TimepointEvaluation(
        date=day,
        category=category,
        target_response=target_response,
        non_target_response=non_target_response,
        sum_mm=current_sum,
        targets_measured=measured,
        targets_missing=missing,
        baseline_sum_mm=baseline_sum,
        nadir=nadir,
        change_from_baseline_pct=_pct(change_from_baseline) if change_from_baseline is not None else None,
        change_from_nadir_pct=_pct(change_from_nadir) if change_from_nadir is not None else None,
        new_lesions=tuple(counting),
        new_lesions_below_threshold=tuple(equivocal),
        progression=tuple(progression),
        reasons=tuple(dict.fromkeys(reasons)),
        evidence=tuple(dict.fromkeys(evidence)),
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
    follow-up or target gives ``category`` None with reasons.
    """
    crit = _criteria(criteria)
    notes: list[str] = []
    lesions = tuple(lesions)
    studies = _valid_readings(lesions, as_of, notes)
    relevant_conditions = tuple(
        sorted(
            (c for c in conditions if c.concept in (PVTT, METASTASIS) and _counts(c)),
            key=lambda c: (c.onset or date.min, c.ref),
        )
    )
    progression_records = tuple(sorted(non_target_progression, key=lambda p: (p.when, p.ref)))

    def empty(reasons: list[str], baseline: Baseline | None = None, evidence: tuple[str, ...] = ()) -> MrecistResult:
        return MrecistResult(
            category=None,
            baseline=baseline,
            current=None,
            timeline=(),
            reasons=tuple(dict.fromkeys([*reasons, *notes])),
            evidence=evidence,
            citation=crit.citation,
            as_of=as_of,
            treatment_start=treatment_start,
        )

    reference_day = min(treatment_start, as_of)
    before = [d for d in studies if d <= reference_day]
    if not before:
        later = sorted(d for d in studies if d > reference_day)
        tail = f" (first imaging {later[0].isoformat()}, after it)" if later else ""
        return empty([f"No baseline: no tumour imaging on or before the treatment start {treatment_start.isoformat()}{tail}."])

    base_day = max(before)
    base_study = studies[base_day]
    targets = _choose_targets(base_study.values(), crit)
    target_ids = {t.lesion for t in targets}
    non_targets = tuple(
        sorted(lesion for lesion, r in base_study.items() if lesion not in target_ids and r.diameter_mm > 0)
    )
    known = {lesion for d, study in studies.items() if d <= base_day for lesion in study}
    baseline = Baseline(
        date=base_day,
        treatment_start=treatment_start,
        targets=targets,
        sum_mm=sum((t.diameter_mm for t in targets), Fraction(0)),
        non_targets=non_targets,
        evidence=tuple(t.ref for t in targets),
    )
    reasons: list[str] = []
    if targets:
        listed = ", ".join(f"{t.lesion} {_mm(t.diameter_mm)} mm" for t in targets)
        reasons.append(
            f"Baseline: imaging of {base_day.isoformat()} (latest on or before the treatment start "
            f"{treatment_start.isoformat()}); {len(targets)} target(s): {listed}; sum {_mm(baseline.sum_mm)} mm."
        )
    else:
        reasons.append(
            f"Baseline: imaging of {base_day.isoformat()} (latest on or before the treatment start "
            f"{treatment_start.isoformat()}) has no measurable target lesion "
            f"(>= {_mm(crit.target_min_viable_diameter_mm)} mm viable)."
        )
    if treatment_start > as_of:
        reasons.append(f"The treatment start {treatment_start.isoformat()} is after the assessment date {as_of.isoformat()}.")
    for c in relevant_conditions:
        if c.onset is None and c.recorded is not None and c.recorded > base_day:
            reasons.append(
                f"{CONDITION_LABELS[c.concept].capitalize()} {c.ref} has no onset date, only a recordedDate "
                f"({c.recorded.isoformat()}, after baseline): it cannot be dated as new; counted as non-target tumour."
            )
        elif c.onset is None:
            reasons.append(
                f"{CONDITION_LABELS[c.concept].capitalize()} {c.ref} has no onset date: taken as present before "
                "baseline (non-target), not as new."
            )

    follow_ups = tuple(sorted(d for d in studies if base_day < d <= as_of))

    first_seen: dict[str, date] = {}
    organ_of: dict[str, str | None] = {}
    for d in sorted(studies):
        for lesion, r in studies[d].items():
            if organ_of.get(lesion) is None:
                organ_of[lesion] = r.organ
            if lesion not in known and lesion not in first_seen:
                first_seen[lesion] = d
    ctx = _Context(
        crit=crit,
        studies=studies,
        baseline=baseline,
        follow_ups=follow_ups,
        first_seen_after_baseline=first_seen,
        organ_of=organ_of,
        known_non_targets=tuple(sorted(known - target_ids)),
        conditions=relevant_conditions,
        non_target_progression=progression_records,
        sessions=tuple(sorted(set(new_since_sessions))),
    )
    timeline = tuple(_evaluate_at(d, ctx) for d in follow_ups)
    # a thrombus or metastasis with onset after the latest sized imaging: PD from its onset
    last_imaged = follow_ups[-1] if follow_ups else base_day
    late = [c for c in relevant_conditions if c.onset is not None and last_imaged < c.onset <= as_of]
    if late:
        timeline = (*timeline, _clinical_progression(late, ctx))
    if not timeline:
        reasons.append(
            f"No follow-up imaging after baseline {base_day.isoformat()} up to {as_of.isoformat()}: no mRECIST category."
        )
        return empty(reasons, baseline, baseline.evidence)
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


def _clinical_progression(conditions: list[ConditionFact], ctx: _Context) -> TimepointEvaluation:
    """PD at the onset of the latest new thrombus or metastasis recorded after the latest sized imaging."""
    day = max(c.onset for c in conditions if c.onset is not None)
    progression: list[str] = []
    reasons: list[str] = []
    for c in sorted(conditions, key=lambda c: (c.onset or date.min, c.ref)):
        key, what = (
            ("new_vascular_invasion", "new vascular invasion") if c.concept == PVTT
            else ("new_extrahepatic_spread", "new extrahepatic spread")
        )
        if key not in progression:
            progression.append(key)
        assert c.onset is not None
        reasons.append(
            f"{CONDITION_LABELS[c.concept].capitalize()} {c.ref} with onset {c.onset.isoformat()}, after the latest "
            f"sized imaging and after baseline {ctx.baseline.date.isoformat()}: {what} (PD from that date)."
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
) -> MrecistResult:
    """:func:`evaluate_mrecist` over a snapshot's lesions and conditions."""
    return evaluate_mrecist(
        snapshot.lesions,
        treatment_start=treatment_start,
        as_of=as_of,
        criteria=criteria,
        conditions=snapshot.conditions,
        non_target_progression=non_target_progression,
    )
