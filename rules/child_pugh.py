"""Child-Pugh score and class at a given date.

Pugh's cut-offs (``rules/data/thresholds.json``, group ``child_pugh``):
bilirubin <2 / 2-3 / >3 mg/dL; albumin >3.5 / 2.8-3.5 / <2.8 g/dL; INR <1.7 /
1.7-2.3 / >2.3; ascites none / mild / moderate-severe; encephalopathy none /
mild-moderate (West Haven 1-2) / severe (West Haven 3-4).
Class A 5-6, B 7-9, C 10-15. Labs count only within the freshness window
before the anchor date. An incomplete score has ``score`` and ``class`` null
unless every possible value of the missing items gives the same class.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules import wording
from rules.findings import Notes
from rules.knowledge import Knowledge
from rules.snapshot import ConditionFact, Snapshot
from rules.timing import condition_presence, latest_before, latest_within, medication_active_at

LAB_ITEMS = ("bilirubin", "albumin", "inr")
CONDITION_ITEMS = ("ascites", "encephalopathy")
ITEM_LABELS = {
    "bilirubin": "bilirubin",
    "albumin": "albumin",
    "inr": "INR",
    "ascites": "ascites",
    "encephalopathy": wording.child_pugh_hepatic_encephalopathy(),
}
# Pugh's grading per item (PRODUCT.md, Clinical logic): ascites none 1 / mild 2 / moderate or severe 3;
# encephalopathy none 1 / mild or moderate (West Haven 1-2) 2 / severe (West Haven 3-4) 3
SEVERITY_POINTS = {
    "ascites": {"mild": 2, "moderate": 3, "severe": 3},
    "encephalopathy": {"mild": 2, "moderate": 2, "severe": 3},
}
MISSING_SEVERITY_POINTS = 2


@dataclass(frozen=True)
class ItemScore:
    points: int | None
    value: str | None
    evidence: str | None = None
    date: date | None = None


@dataclass(frozen=True)
class ChildPugh:
    anchor: date
    score: int | None
    klass: str | None
    points: dict[str, ItemScore]
    reasons: tuple[str, ...]
    cautions: tuple[str, ...]
    citation: str

    @property
    def evidence(self) -> tuple[str, ...]:
        return tuple(i.evidence for i in self.points.values() if i.evidence)


def class_for_score(score: int, k: Knowledge) -> str:
    if score <= k.criteria.child_pugh.class_a_max_score:
        return "A"
    if score <= k.criteria.child_pugh.class_b_max_score:
        return "B"
    return "C"


def bilirubin_points(mg_dl: float, k: Knowledge) -> int:
    if mg_dl < k.criteria.child_pugh.bilirubin_mg_dl_two_points_from:
        return 1
    if mg_dl <= k.criteria.child_pugh.bilirubin_mg_dl_three_points_above:
        return 2
    return 3


def albumin_points(g_dl: float, k: Knowledge) -> int:
    if g_dl > k.criteria.child_pugh.albumin_g_dl_one_point_above:
        return 1
    if g_dl >= k.criteria.child_pugh.albumin_g_dl_three_points_below:
        return 2
    return 3


def inr_points(inr: float, k: Knowledge) -> int:
    if inr < k.criteria.child_pugh.inr_two_points_from:
        return 1
    if inr <= k.criteria.child_pugh.inr_three_points_above:
        return 2
    return 3


LAB_POINTS = {"bilirubin": bilirubin_points, "albumin": albumin_points, "inr": inr_points}


def _fmt(value: float) -> str:
    return f"{value:g}"


def _score_lab(snapshot: Snapshot, item: str, anchor: date, k: Knowledge, reasons: list[str]) -> ItemScore:
    max_age = k.criteria.freshness.lab_max_age_days
    series = snapshot.series(item)
    used = latest_within(series, anchor, max_age)
    label = ITEM_LABELS[item]
    if used is None:
        older = latest_before(series, anchor)
        if older is not None:
            reasons.append(
                wording.child_pugh_no_within_days_before_latest(
                    label, max_age, anchor.isoformat(), older.when.isoformat(), older.recorded
                )
            )
        else:
            reasons.append(wording.child_pugh_no_usable_result_before(label, anchor.isoformat()))
        for bad in snapshot.unusable_of(item):
            if bad.when is None or bad.when <= anchor:
                reasons.append(wording.child_pugh_not_used(bad.ref, label, bad.problem))
        return ItemScore(points=None, value=None)
    points = LAB_POINTS[item](used.value, k)
    shown = f"{_fmt(used.value)} {used.unit}" if used.unit != "1" else _fmt(used.value)
    if used.recorded and used.recorded != shown:
        shown = f"{shown} (recorded {used.recorded})"
    return ItemScore(points=points, value=shown, evidence=used.ref, date=used.when)


def _condition_points(c: ConditionFact, item: str) -> int:
    return SEVERITY_POINTS[item].get(c.severity or "", MISSING_SEVERITY_POINTS)


def _score_condition(
    snapshot: Snapshot, item: str, anchor: date, as_of: date, notes: Notes, reasons: list[str]
) -> ItemScore:
    """Points of a finding recorded only when present (``rules.timing.condition_presence``): absent when no
    record says otherwise; a record that may or may not have held on ``anchor`` (dated only by a later
    recordedDate, or undated at a past date) makes the item unknown when it could score higher."""
    label = ITEM_LABELS[item]
    conditions = snapshot.conditions_of(item)
    presence = [(c, condition_presence(c, anchor, as_of)) for c in conditions]
    present = [c for c, held in presence if held is True]
    maybe = [c for c, held in presence if held is None]
    known_points = max((_condition_points(c, item) for c in present), default=1)
    higher = [c for c in maybe if _condition_points(c, item) > known_points]
    if higher:
        chosen = sorted(higher, key=lambda c: c.ref)[0]
        dated = f"recorded {chosen.recorded.isoformat()}" if chosen.recorded else "undated"
        reasons.append(
            wording.child_pugh_not_known_have_been_present(chosen.ref, label, dated, anchor.isoformat())
        )
        return ItemScore(points=None, value=None, evidence=chosen.ref)
    if not present:
        notes.assume(wording.child_pugh_no_recorded_scored_none(label))
        return ItemScore(points=1, value=wording.child_pugh_none_assumed())
    points_of = SEVERITY_POINTS[item]
    graded = [c for c in present if c.severity in points_of]
    if graded:
        worst = max(graded, key=lambda c: (points_of[c.severity or ""], c.ref))
        return ItemScore(points=points_of[worst.severity or ""], value=worst.severity, evidence=worst.ref)
    chosen = sorted(present, key=lambda c: c.ref)[0]
    reasons.append(wording.child_pugh_recorded_without_severity_scored_mild(chosen.ref, label, MISSING_SEVERITY_POINTS))
    return ItemScore(
        points=MISSING_SEVERITY_POINTS, value=wording.child_pugh_present_severity_not_recorded(), evidence=chosen.ref
    )


def _cautions(snapshot: Snapshot, anchor: date, points: dict[str, ItemScore]) -> list[str]:
    cautions: list[str] = []
    inr = points["inr"]
    if inr.date is not None:
        vka = [m for m in snapshot.medications_of("vitamin_k_antagonist") if medication_active_at(m, inr.date)]
        if vka:
            cautions.append(
                wording.child_pugh_inr_was_taken_vitamin_k(inr.value, vka[0].ref)
            )
    if points["encephalopathy"].evidence is None:
        meds = [
            m
            for concept in ("lactulose", "rifaximin")
            for m in snapshot.medications_of(concept)
            if medication_active_at(m, anchor)
        ]
        if meds:
            cautions.append(
                wording.child_pugh_without_recorded_encephalopathy_encephalopathy_controlled(
                    meds[0].concept.capitalize(), meds[0].ref
                )
            )
    if points["ascites"].evidence is None:
        diuretics = [m for m in snapshot.medications_of("diuretic") if medication_active_at(m, anchor)]
        if diuretics:
            cautions.append(
                wording.child_pugh_diuretic_without_recorded_ascites_ascites(diuretics[0].ref)
            )
    return cautions


def evaluate_child_pugh(
    snapshot: Snapshot, anchor: date, k: Knowledge, notes: Notes, as_of: date | None = None
) -> ChildPugh:
    """Child-Pugh at ``anchor`` (labs within the freshness window before it), in an assessment at ``as_of``
    (default: ``anchor``). An undated ascites or encephalopathy is present at ``as_of``, unknown earlier."""
    as_of = anchor if as_of is None else as_of
    reasons: list[str] = []
    points: dict[str, ItemScore] = {}
    for item in LAB_ITEMS:
        points[item] = _score_lab(snapshot, item, anchor, k, reasons)
    for item in CONDITION_ITEMS:
        points[item] = _score_condition(snapshot, item, anchor, as_of, notes, reasons)

    known = [p.points for p in points.values() if p.points is not None]
    missing = [name for name, p in points.items() if p.points is None]
    score: int | None
    klass: str | None
    if not missing:
        score = sum(known)
        klass = class_for_score(score, k)
        reasons.insert(0, f"Score {score} ({klass}): " + ", ".join(
            f"{ITEM_LABELS[n]} {p.points}" for n, p in points.items()
        ) + ".")
    else:
        base = sum(known)
        # each missing item scores 1, 2 or 3, so together they score every whole number from len(missing)
        # to 3 * len(missing): the classes of those totals are the classes every combination could give
        totals = range(base + len(missing), base + 3 * len(missing) + 1)
        classes = {class_for_score(total, k) for total in totals}
        missing_text = ", ".join(ITEM_LABELS[m] for m in missing)
        score = None
        if len(classes) == 1:
            klass = classes.pop()
            reasons.insert(
                0,
                wording.child_pugh_class_whatever_missing_known_items(klass, missing_text, base),
            )
        else:
            klass = None
            reasons.insert(
                0,
                wording.child_pugh_incomplete_missing_class_could_any(missing_text, ', '.join(sorted(classes))),
            )
    return ChildPugh(
        anchor=anchor,
        score=score,
        klass=klass,
        points=points,
        reasons=tuple(reasons),
        cautions=tuple(_cautions(snapshot, anchor, points)),
        citation=k.criteria.child_pugh.citation,
    )
