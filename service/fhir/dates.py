"""FHIR date, dateTime and instant values, and the choice types ``effective[x]``,
``performed[x]`` and ``onset[x]``, read as calendar dates.

A date-time keeps the calendar date it was written with (its own offset). A
value less precise than a day (``2026`` or ``2026-05``) is returned with
``precise=False`` so that freshness windows do not treat it as a day.
"""

from __future__ import annotations

import functools
import re
from datetime import date
from typing import NamedTuple

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


class FhirDate(NamedTuple):
    """A named tuple rather than a frozen dataclass: the mapping builds one for every date it reads, and a
    frozen dataclass's ``__init__`` costs ~4x a tuple's. (Always truthy, as the dataclass was: two fields.)"""

    day: date
    precise: bool  # False: only a year or a month was recorded (day is its first day)


# The values read, by their text: a record's dates are few (83 read a demo or cohort record, 28 distinct) and a
# FhirDate costs ~1 µs to make. A cache of strings (never of records), bounded: emptied when full.
PARSED_DATES_MAX = 4096
PARSED_DATE_LENGTH_MAX = 64  # a longer text is read every time and not kept
_PARSED: dict[str, FhirDate | None] = {}
_UNREAD = object()


def parse_fhir_date(value: object) -> FhirDate | None:
    """Parse a FHIR date/dateTime/instant; None when absent or malformed."""
    if not isinstance(value, str):
        return None
    parsed = _PARSED.get(value, _UNREAD)  # one look-up: another thread may empty the cache meanwhile
    if parsed is not _UNREAD:
        return parsed  # type: ignore[return-value]
    parsed = _parse(value)
    if len(value) <= PARSED_DATE_LENGTH_MAX:
        if len(_PARSED) >= PARSED_DATES_MAX:
            _PARSED.clear()
        _PARSED[value] = parsed
    return parsed


def _parse(value: str) -> FhirDate | None:
    if len(value) >= 10 and value[4] == "-" and value[7] == "-":  # the usual full date: C-speed parse
        try:
            return FhirDate(date.fromisoformat(value[:10]), precise=True)
        except ValueError:
            pass  # read below, as any other value
    match = _DATE.match(value.strip())
    if not match:
        return None
    year, month, day = match.groups()
    try:
        return FhirDate(date(int(year), int(month or 1), int(day or 1)), precise=day is not None)
    except ValueError:
        return None


@functools.cache  # a handful of prefixes
def _choice_keys(prefix: str) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """The element names of ``<prefix>[x]`` that choice_date reads, in its order (made once a prefix)."""
    return (
        tuple(prefix + s for s in ("DateTime", "Instant", "Date")),
        prefix + "Period",
        tuple(prefix + s for s in ("String", "Age", "Range", "Timing", "Boolean")),
    )


def choice_date(resource: dict, prefix: str) -> tuple[FhirDate | None, str | None]:
    """The date of ``<prefix>[x]``: (date, problem). Periods use their start, else their end."""
    dated, period_key, undated = _choice_keys(prefix)
    for key in dated:
        if key in resource:
            parsed = parse_fhir_date(resource[key])
            return (parsed, None) if parsed else (None, f"{key} is not a valid date")
    period = resource.get(period_key)
    if isinstance(period, dict):
        parsed = parse_fhir_date(period.get("start")) or parse_fhir_date(period.get("end"))
        return (parsed, None) if parsed else (None, f"{period_key} has no valid start or end")
    for key in undated:
        if key in resource:
            return None, f"{key} gives no calendar date"
    return None, None


def period_end(resource: dict, prefix: str) -> FhirDate | None:
    period = resource.get(prefix + "Period")
    if isinstance(period, dict):
        return parse_fhir_date(period.get("end"))
    return None
