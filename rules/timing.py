"""Date windows shared by the rules: freshness and "present at a date".

Windows compare calendar dates, inclusively; nothing here reads the clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import date, timedelta
from operator import attrgetter
from typing import TypeVar

from rules.snapshot import ConditionFact, DatedSeries, Measurement, MedicationFact

M = TypeVar("M", bound=Measurement)
_BY_DATE_AND_REF = attrgetter("when", "ref")  # the latest result, ties by reference
_WHEN = attrgetter("when")


def days_before(day: date, days: int) -> date:
    """``day`` minus ``days`` calendar days; the calendar's first day when that would be earlier.

    A record may carry any date FHIR allows (0001-01-01 to 9999-12-31): a window reaching past the
    calendar's ends is cut there instead of raising ``OverflowError``.
    """
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return date.min if days > 0 else date.max


def days_after(day: date, days: int) -> date:
    """``day`` plus ``days`` calendar days; the calendar's last day when that would be later."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def latest_within(series: Sequence[M], anchor: date, max_age_days: int) -> M | None:
    """The most recent result taken on or before ``anchor`` and at most ``max_age_days`` before it."""
    earliest = days_before(anchor, max_age_days)
    if type(series) is DatedSeries:
        latest = _latest_sorted(series, anchor)
        return latest if latest is not None and earliest <= latest.when else None
    usable = [m for m in series if earliest <= m.when <= anchor]
    return max(usable, key=_BY_DATE_AND_REF) if usable else None


def latest_before(series: Sequence[M], anchor: date) -> M | None:
    """The most recent result on or before ``anchor``, however old (to say why it was not used)."""
    if type(series) is DatedSeries:
        return _latest_sorted(series, anchor)
    usable = [m for m in series if m.when <= anchor]
    return max(usable, key=_BY_DATE_AND_REF) if usable else None


def taken_within(series: Sequence[M], earliest: date, anchor: date) -> list[M]:
    """The results taken from ``earliest`` to ``anchor`` (both included), in the series' order."""
    if type(series) is DatedSeries:  # sorted by date: the results in the window are one slice
        return list(series[bisect_left(series, earliest, key=_WHEN) : bisect_right(series, anchor, key=_WHEN)])
    return [m for m in series if earliest <= m.when <= anchor]


def _latest_sorted(series: Sequence[M], anchor: date) -> M | None:
    """:func:`latest_before` of a series sorted by ``(when, ref)``: the last result on or before ``anchor``, bisected;
    of results with the same date and reference, the first (as ``max`` over the series finds it)."""
    end = bisect_right(series, anchor, key=_WHEN)
    if end == 0:
        return None
    key = _BY_DATE_AND_REF(series[end - 1])
    while end > 1 and _BY_DATE_AND_REF(series[end - 2]) == key:
        end -= 1
    return series[end - 1]


def condition_presence(condition: ConditionFact, day: date, as_of: date) -> bool | None:
    """Whether a condition held on ``day`` (an assessment at ``as_of``): True, False or None (unknown).

    * abated on or before ``day``, or not active: False; onset after ``day``: False;
    * onset on or before ``day``: True;
    * dated only by recordedDate: True from that date on; before it, unknown;
    * undated (neither): present at ``as_of`` and after (it is in the record), unknown at an
      earlier date (PRODUCT.md: its date is unknown, so findings at a past date that it would
      change are unknown).
    """
    if condition.abatement is not None and condition.abatement <= day:
        return False
    if condition.abatement is None and not condition.is_active:
        return False
    if condition.onset is not None:
        return condition.onset <= day
    if condition.recorded is not None:
        return True if condition.recorded <= day else None
    return True if day >= as_of else None


def condition_present_at(condition: ConditionFact, day: date) -> bool:
    """Whether a condition held on ``day``: begun (or undated), not abated, and active or abated later."""
    if condition.onset is not None and condition.onset > day:
        return False
    if condition.abatement is not None:
        return condition.abatement > day
    return condition.is_active


def medication_active_at(med: MedicationFact, day: date) -> bool:
    """Whether a medication was being taken on ``day`` as far as the record shows."""
    if med.status in ("entered-in-error", "cancelled", "not-taken", "draft"):
        return False
    if med.start is not None and med.start > day:
        return False
    if med.end is not None:
        return med.end >= day
    # no end date: a completed or stopped course has ended at some unrecorded time
    return med.status in ("active", "on-hold", "intended", "unknown", "recorded")
