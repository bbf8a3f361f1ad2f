"""``rules.timing.days_before`` / ``days_after``: calendar arithmetic cut at the calendar's ends.

Written against mutmut's surviving mutants: the windows of every rule are built with
these, so an off-by-one or a wrong clamp moves every boundary.
"""

from __future__ import annotations

from datetime import date

import pytest

from rules.timing import days_after, days_before


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2026, 3, 1), 0, date(2026, 3, 1)),
        (date(2026, 3, 1), 1, date(2026, 2, 28)),
        (date(2026, 3, 1), 30, date(2026, 1, 30)),
        (date(2024, 3, 1), 1, date(2024, 2, 29)),
        (date(2026, 3, 1), -1, date(2026, 3, 2)),
    ],
)
def test_days_before_counts_calendar_days_back(day, n, expected):
    assert days_before(day, n) == expected


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2026, 2, 28), 0, date(2026, 2, 28)),
        (date(2026, 2, 28), 1, date(2026, 3, 1)),
        (date(2026, 3, 10), 92, date(2026, 6, 10)),
        (date(2026, 3, 10), -1, date(2026, 3, 9)),
    ],
)
def test_days_after_counts_calendar_days_forward(day, n, expected):
    assert days_after(day, n) == expected


def test_a_window_reaching_before_the_first_day_of_the_calendar_stops_there():
    assert days_before(date(1, 1, 5), 30) == date.min
    assert days_before(date.min, 1) == date.min
    assert days_after(date.min, -1) == date.min


def test_a_window_reaching_after_the_last_day_of_the_calendar_stops_there():
    assert days_after(date(9999, 12, 20), 92) == date.max
    assert days_after(date.max, 1) == date.max
    assert days_before(date.max, -1) == date.max
