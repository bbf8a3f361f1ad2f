"""Age at a date, from the birth date."""

from __future__ import annotations

from datetime import date


def age_on(birth_date: date, day: date) -> int:
    """Completed years on ``day`` (a birthday on 29 February is reached on 1 March in other years)."""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years
