"""The embedded demo data: synthetic patients dated relative to the day they are loaded.

The three named demo patients (``data/*.json``) and the 34 patients of the synthetic study
cohort (``data/cohort/``, written by ``offline.cohort.generate``). Each file is a FHIR R4
collection Bundle whose dates are
written ``@day-N`` (N days before the load day) or ``@day+N``; loading replaces
them with ISO dates. No real patient data.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from importlib import resources
from typing import Any

DEMO_PATIENT_IDS = ("demo-eligible", "demo-ineligible", "demo-missing-data")
_RELATIVE_DAY = re.compile(r"@day([+-]\d+)")


def _resolve(value: Any, today: date) -> Any:
    if isinstance(value, str):
        return _RELATIVE_DAY.sub(lambda m: (today + timedelta(days=int(m.group(1)))).isoformat(), value)
    if isinstance(value, list):
        return [_resolve(v, today) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, today) for k, v in value.items()}
    return value


def demo_bundles(today: date) -> list[dict]:
    """Every demo Bundle with its dates resolved against ``today``."""
    folder = resources.files("service.demo").joinpath("data")
    bundles = []
    for sub in (folder, folder.joinpath("cohort")):  # the named demo patients, then the study cohort
        if not sub.is_dir():
            continue
        for item in sorted(sub.iterdir(), key=lambda p: p.name):
            if item.name.endswith(".json"):
                bundles.append(_resolve(json.loads(item.read_text(encoding="utf-8")), today))
    return bundles


def demo_resources(today: date) -> list[dict]:
    return [e["resource"] for b in demo_bundles(today) for e in b.get("entry", [])]


def as_transaction(bundles: list[dict]) -> dict:
    """One transaction Bundle (PUT by id) loading every demo resource into a FHIR server."""
    entries = []
    for bundle in bundles:
        for entry in bundle.get("entry", []):
            r = entry["resource"]
            entries.append({"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
