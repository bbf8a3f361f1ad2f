"""A Bulk Data export as a FHIR server writes it (one NDJSON file per resource type), from test Bundles."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import orjson

DAY = date(2026, 11, 28)


def demo_export_bundles(day: date = DAY) -> list[dict]:
    """The 37 demo and cohort patients' Bundles (``demo_bundles`` holds the cohort too)."""
    from service.demo import demo_bundles

    return demo_bundles(day)


def write_export(bundles: list[dict], folder: Path, *, gzipped: bool = False,
                 extra: dict[str, list[bytes]] | None = None) -> list[tuple[str, Path]]:
    """``<Type>.ndjson`` (or ``.ndjson.gz``) per resource type, Patient first; ``extra`` appends raw lines."""
    lines: dict[str, list[bytes]] = {"Patient": []}
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            lines.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for rtype, raw in (extra or {}).items():
        lines.setdefault(rtype, []).extend(raw)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for rtype, raw in lines.items():
        data = b"\n".join(raw) + b"\n"
        path = folder / (f"{rtype}.ndjson.gz" if gzipped else f"{rtype}.ndjson")
        path.write_bytes(gzip.compress(data) if gzipped else data)
        files.append((rtype, path))
    return files


def demo_json_rows(day: date = DAY) -> dict[str, dict]:
    """``hcc-cds demo --json --today DAY``: each cohort patient at its study assessment date."""
    import contextlib
    import io
    import json

    from service.cohort.demo_cli import main as demo_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert demo_main(["--json", "--today", day.isoformat()]) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    return {row["patient"]: row for row in rows}


def write_as_of_file(path: Path, rows: dict[str, dict]) -> Path:
    """``patient,as_of``: each cohort patient's study assessment date (what ``hcc-cds demo`` assesses at)."""
    path.write_text("patient,as_of\n" + "".join(f"{pid},{row['assessment_date']}\n" for pid, row in rows.items()))
    return path
