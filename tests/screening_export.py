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
