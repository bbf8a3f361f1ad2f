"""A run's worklist as CSV (for a coordinator's spreadsheet) and as JSON lines (for programs).

Both stream from the database a row at a time. CSV cells a spreadsheet would read as a formula
(starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) are prefixed with ``'``: a FHIR id
or an error message never runs as a formula in the coordinator's spreadsheet (CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import orjson

from service.db import Database
from service.screening.changes import change_label
from service.screening.summary import missing_label

CSV_COLUMNS = (
    "patient_id",
    "as_of",
    "recommendation",
    "tace_resistance",
    "mrecist",
    "sorafenib_eligibility",
    "tace_candidacy",
    "child_pugh",
    "bclc",
    "ecog",
    "missing_data",
    "changes_since_previous_run",
    "data_issues",
    "error",
    "rules_version",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_record(row: dict[str, Any]) -> list[str]:
    error = f"{row['error_kind']}: {row['error_message']}" if row.get("error_kind") else ""
    values = {
        **row,
        "missing_data": "; ".join(missing_label(t) for t in row.get("missing") or ()),
        "changes_since_previous_run": "; ".join(change_label(t) for t in row.get("changes") or ()),
        "error": error,
    }
    return [_cell(values.get(column)) for column in CSV_COLUMNS]


def _csv_line(record: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(record)
    return out.getvalue()


async def csv_lines(db: Database, run_id: str, **filters: Any) -> AsyncIterator[str]:
    yield _csv_line(list(CSV_COLUMNS))
    async for row in db.screenings.iter_results(run_id, **filters):
        yield _csv_line(csv_record(row))


async def json_lines(db: Database, run_id: str, **filters: Any) -> AsyncIterator[bytes]:
    async for row in db.screenings.iter_results(run_id, **filters):
        yield orjson.dumps(row) + b"\n"
