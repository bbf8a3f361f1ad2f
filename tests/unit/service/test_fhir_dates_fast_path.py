"""``parse_fhir_date``'s fast path (``date.fromisoformat`` for a full date) reads every value as the pattern does."""

from __future__ import annotations

import re
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from service.fhir.dates import FhirDate, parse_fhir_date

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def by_pattern(value: object) -> FhirDate | None:
    """The reading before the fast path: the pattern alone."""
    if not isinstance(value, str):
        return None
    match = _DATE.match(value.strip())
    if not match:
        return None
    year, month, day = match.groups()
    try:
        return FhirDate(date(int(year), int(month or 1), int(day or 1)), precise=day is not None)
    except ValueError:
        return None


DATE_LIKE = st.builds(
    lambda y, m, d, tail: f"{y}-{m}-{d}{tail}",
    st.sampled_from(["2026", "0001", "9999", "１９９９", "2024", "20x6"]),
    st.sampled_from(["01", "02", "12", "13", "00", "1", "0x"]),
    st.sampled_from(["01", "28", "29", "30", "31", "32", "00", "3", "1x"]),
    st.sampled_from(["", "T10:00:00Z", "T25:00:00+14:00", " ", "\n", "x"]),
)


@settings(max_examples=600, derandomize=True, database=None)
@given(st.one_of(DATE_LIKE, st.text(max_size=14), st.from_regex(r"\s*\d{4}(-\d{2}(-\d{2})?)?.{0,4}", fullmatch=True)))
def test_the_fast_path_reads_every_value_as_the_pattern_does(value):
    assert parse_fhir_date(value) == by_pattern(value)


def test_the_usual_values():
    assert parse_fhir_date("2026-02-28T23:59:59-05:00") == FhirDate(date(2026, 2, 28), precise=True)
    assert parse_fhir_date("2024-02-29") == FhirDate(date(2024, 2, 29), precise=True)
    assert parse_fhir_date("2026-02-29") is None
    assert parse_fhir_date("2026-05") == FhirDate(date(2026, 5, 1), precise=False)


def test_the_values_read_are_kept_bounded_and_read_the_same_again(monkeypatch):
    from service.fhir import dates

    monkeypatch.setattr(dates, "PARSED_DATES_MAX", 3)
    dates._PARSED.clear()
    values = ["2026-01-02", "2026-02-30", "2026", "2026-05", "x" * 70, "2026-01-02T10:00:00Z"]
    first = [parse_fhir_date(v) for v in values]
    assert len(dates._PARSED) <= 3 and "x" * 70 not in dates._PARSED
    assert [parse_fhir_date(v) for v in values] == first == [by_pattern(v) for v in values]
