"""Performance status (ECOG or Karnofsky) at an anchor date.

PRODUCT.md (Freshness): an ECOG or Karnofsky score counts when it was taken on
or before the anchor date and at most ``max_age_days`` (thresholds.json,
``freshness.performance_status_max_age_days``: 90) before it; windows compare
calendar dates inclusively, so a score 90 days old counts and one 91 days old
does not. The most recent of the two scales decides, and only the deciding
scale is reported: a Karnofsky score is never turned into an ECOG grade or the
reverse. On the same day both are reported, and Karnofsky (the study's own
criterion) is named the source.

The approximate ECOG <-> Karnofsky correspondence (dossier §3.2: ECOG 0 = KPS
90-100, 1 = 70-80, 2 = 50-60, 3 = 30-40, 4 = 10-20, 5 = 0) is offered for
warnings only (:func:`karnofsky_range_for_ecog`, :func:`ecog_range_for_karnofsky`,
:func:`approximate_equivalent`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from rules import wording
from rules.criteria import PerformanceStatusCriteria
from rules.snapshot import Measurement, Snapshot
from rules.timing import days_before

ECOG = "ecog"
KARNOFSKY = "karnofsky"
SCALE_LABELS = {ECOG: "ECOG", KARNOFSKY: "Karnofsky"}


def _criteria(criteria: Mapping[str, Any] | PerformanceStatusCriteria) -> PerformanceStatusCriteria:
    if isinstance(criteria, PerformanceStatusCriteria):
        return criteria
    return PerformanceStatusCriteria.from_dict(criteria)


@dataclass(frozen=True)
class PerformanceStatus:
    """The performance status that counts at ``anchor``, or why there is none.

    ``source`` names the scale that decided (``"ecog"`` / ``"karnofsky"``), None
    when no score counts; ``date`` is that score's date.
    """

    anchor: date
    ecog: int | None
    karnofsky: int | None
    date: date | None
    source: str | None
    evidence: tuple[str, ...]
    reasons: tuple[str, ...]
    citation: str
    max_age_days: int

    @property
    def known(self) -> bool:
        return self.source is not None


def _as_score(m: Measurement, low: int, high: int) -> int | None:
    """The score as an integer within the scale's range, or None."""
    value = m.value
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if float(value) != int(value):
        return None
    score = int(value)
    return score if low <= score <= high else None


def _valid_series(
    snapshot: Snapshot, concept: str, low: int, high: int, reasons: list[str]
) -> list[tuple[Measurement, int]]:
    label = SCALE_LABELS[concept]
    valid: list[tuple[Measurement, int]] = []
    for m in snapshot.series(concept):
        score = _as_score(m, low, high)
        if score is None:
            reasons.append(
                wording.performance_status_not_whole_number_not_used(
                    label, m.recorded or m.value, m.when.isoformat(), m.ref, low, high
                )
            )
            continue
        valid.append((m, score))
    for u in snapshot.unusable_of(concept):
        when = u.when.isoformat() if u.when else wording.performance_status_unknown_date()
        reasons.append(wording.performance_status_could_not_used(label, when, u.ref, u.problem))
    return valid


def _latest_within(
    series: list[tuple[Measurement, int]], anchor: date, max_age_days: int
) -> tuple[Measurement, int] | None:
    earliest = days_before(anchor, max_age_days)
    usable = [item for item in series if earliest <= item[0].when <= anchor]
    return max(usable, key=lambda item: (item[0].when, item[0].ref)) if usable else None


def _latest_before(series: list[tuple[Measurement, int]], anchor: date) -> tuple[Measurement, int] | None:
    usable = [item for item in series if item[0].when <= anchor]
    return max(usable, key=lambda item: (item[0].when, item[0].ref)) if usable else None


Scored = tuple[Measurement, int]


@dataclass(frozen=True)
class _Found:
    """What counts at ``anchor``: the latest valid ECOG and Karnofsky in the window, and how to word it."""

    anchor: date
    ecog: Scored | None
    kps: Scored | None
    window: str  # "within 90 days before 2026-11-28"
    notes: tuple[str, ...]  # unusable values, reported after the deciding reason
    citation: str
    max_age_days: int

    def status(self, *, ecog: int | None, karnofsky: int | None, when: date | None, source: str | None,
               evidence: tuple[str, ...], reasons: list[str]) -> PerformanceStatus:
        return PerformanceStatus(
            anchor=self.anchor, ecog=ecog, karnofsky=karnofsky, date=when, source=source, evidence=evidence,
            reasons=(*reasons, *self.notes), citation=self.citation, max_age_days=self.max_age_days,
        )


def _none_counts(found: _Found, ecogs: list[Scored], kpss: list[Scored]) -> PerformanceStatus:
    """No score in the window: say which older ones there are."""
    latest = []
    for concept, series in ((ECOG, ecogs), (KARNOFSKY, kpss)):
        old = _latest_before(series, found.anchor)
        if old is not None:
            latest.append(f"latest {SCALE_LABELS[concept]} {old[0].when.isoformat()}")
    if latest:
        reason = wording.performance_status_no_ecog_karnofsky(found.window, ', '.join(latest))
    else:
        reason = wording.performance_status_no_ecog_karnofsky_recorded_before(found.anchor.isoformat())
    return found.status(ecog=None, karnofsky=None, when=None, source=None, evidence=(), reasons=[reason])


def _same_day(found: _Found, ecog: Scored, kps: Scored) -> PerformanceStatus:
    """Both on the same day: both reported, Karnofsky (the study's criterion) named the source."""
    reason = wording.performance_status_ecog_karnofsky_both_recorded_same(
        ecog[1], kps[1], ecog[0].when.isoformat(), found.window
    )
    return found.status(ecog=ecog[1], karnofsky=kps[1], when=ecog[0].when, source=KARNOFSKY,
                        evidence=(kps[0].ref, ecog[0].ref), reasons=[reason])


def _ecog_decides(found: _Found, ecog: Scored, kps: Scored | None) -> PerformanceStatus:
    m, score = ecog
    reasons = [f"ECOG {score} on {m.when.isoformat()} ({found.window})."]
    if kps is not None:
        reasons.append(
            wording.performance_status_older_karnofsky_superseded_karnofsky_not(kps[1], kps[0].when.isoformat())
        )
    else:
        reasons.append(wording.performance_status_no_karnofsky_window_none_inferred())
    return found.status(ecog=score, karnofsky=None, when=m.when, source=ECOG, evidence=(m.ref,), reasons=reasons)


def _karnofsky_decides(found: _Found, kps: Scored, ecog: Scored | None) -> PerformanceStatus:
    m, score = kps
    reasons = [f"Karnofsky {score} on {m.when.isoformat()} ({found.window})."]
    if ecog is not None:
        reasons.append(wording.performance_status_older_ecog_superseded_ecog_not(ecog[1], ecog[0].when.isoformat()))
    else:
        reasons.append(wording.performance_status_no_ecog_window_none_inferred())
    return found.status(ecog=None, karnofsky=score, when=m.when, source=KARNOFSKY, evidence=(m.ref,), reasons=reasons)


@dataclass(frozen=True)
class ValidScores:
    """A record's valid ECOG and Karnofsky scores and the notes on the unusable ones (none depends on the anchor
    date): read once a call (``rules.registry``'s ``performance_scores``) for the three anchors it is judged at."""

    ecogs: list[Scored]
    kpss: list[Scored]
    notes: tuple[str, ...]


def valid_scores(snapshot: Snapshot, criteria: Mapping[str, Any] | PerformanceStatusCriteria) -> ValidScores:
    """Every ECOG and Karnofsky score a record gives, the unusable ones as notes (ECOG's first, as reported)."""
    crit = _criteria(criteria)
    notes: list[str] = []
    ecogs = _valid_series(snapshot, ECOG, crit.ecog_min, crit.ecog_max, notes)
    kpss = _valid_series(snapshot, KARNOFSKY, crit.karnofsky_min, crit.karnofsky_max, notes)
    return ValidScores(ecogs, kpss, tuple(notes))


def performance_status_at(
    snapshot: Snapshot,
    anchor: date,
    *,
    max_age_days: int,
    criteria: Mapping[str, Any] | PerformanceStatusCriteria,
    scores: ValidScores | None = None,
) -> PerformanceStatus:
    """ECOG / Karnofsky that counts at ``anchor``: within ``max_age_days`` on or before it, the most recent deciding.

    ``scores``: the record's scores already read by :func:`valid_scores` with the same criteria (read here
    without them). Never raises on clinical data: no score, stale scores and unusable values give
    a status with ``source`` None and reasons saying what was found.
    """
    crit = _criteria(criteria)
    if scores is None:
        scores = valid_scores(snapshot, crit)
    ecogs, kpss = scores.ecogs, scores.kpss
    ecog = _latest_within(ecogs, anchor, max_age_days)
    kps = _latest_within(kpss, anchor, max_age_days)
    window = wording.performance_status_within_days_before(max_age_days, anchor.isoformat())
    found = _Found(anchor, ecog, kps, window, scores.notes, crit.citation, max_age_days)
    if ecog is None and kps is None:
        return _none_counts(found, ecogs, kpss)
    if ecog is not None and kps is not None and ecog[0].when == kps[0].when:
        return _same_day(found, ecog, kps)
    if ecog is not None and (kps is None or ecog[0].when > kps[0].when):
        return _ecog_decides(found, ecog, kps)
    assert kps is not None  # neither is None here, or only ecog is
    return _karnofsky_decides(found, kps, ecog)


def karnofsky_range_for_ecog(
    ecog: int, criteria: Mapping[str, Any] | PerformanceStatusCriteria
) -> tuple[int, int] | None:
    """Approximate Karnofsky range ``(min, max)`` for an ECOG grade (dossier §3.2), None if out of table."""
    for grade, low, high in _criteria(criteria).karnofsky_range_by_ecog:
        if grade == ecog:
            return (low, high)
    return None


def ecog_range_for_karnofsky(
    karnofsky: int, criteria: Mapping[str, Any] | PerformanceStatusCriteria
) -> tuple[int, int] | None:
    """Approximate ECOG grades ``(lowest, highest)`` for a Karnofsky score (dossier §3.2).

    A score inside one band gives that grade twice (``80 -> (1, 1)``); a score
    between bands gives both neighbours (``85 -> (0, 1)``); out of range, None.
    """
    crit = _criteria(criteria)
    if not crit.karnofsky_min <= karnofsky <= crit.karnofsky_max:
        return None
    grades = [g for g, low, high in crit.karnofsky_range_by_ecog if low <= karnofsky <= high]
    if grades:
        return (min(grades), max(grades))
    above = [(low, g) for g, low, high in crit.karnofsky_range_by_ecog if low > karnofsky]
    below = [(high, g) for g, low, high in crit.karnofsky_range_by_ecog if high < karnofsky]
    neighbours = []
    if above:
        neighbours.append(min(above)[1])
    if below:
        neighbours.append(max(below)[1])
    return (min(neighbours), max(neighbours)) if neighbours else None


def approximate_equivalent(
    status: PerformanceStatus, criteria: Mapping[str, Any] | PerformanceStatusCriteria
) -> str | None:
    """A warning-ready sentence giving the other scale's approximate value, or None.

    Only for warnings and explanations: rules decide on the recorded scale.
    """
    if status.source == ECOG and status.ecog is not None:
        band = karnofsky_range_for_ecog(status.ecog, criteria)
        if band is None:
            return None
        text = f"{band[0]}" if band[0] == band[1] else f"{band[0]}-{band[1]}"
        return wording.performance_status_ecog_corresponds_approximately_karnofsky_prasad(status.ecog, text)
    if status.source == KARNOFSKY and status.karnofsky is not None:
        grades = ecog_range_for_karnofsky(status.karnofsky, criteria)
        if grades is None:
            return None
        text = f"{grades[0]}" if grades[0] == grades[1] else f"{grades[0]}-{grades[1]}"
        return wording.performance_status_karnofsky_corresponds_approximately_ecog_prasad(status.karnofsky, text)
    return None
