"""The cohort bundles of ``service/demo/data/cohort/``, with their ``@day-N`` dates resolved.

``service.demo.demo_bundles`` reads ``data/*.json`` only (not recursively); these
functions read the cohort folder the same way, so the demo loader can add them.
"""

from __future__ import annotations

import json
from datetime import date
from importlib import resources

from service.demo import _resolve

COHORT_SIZE = 34
COHORT_PATIENT_IDS = tuple(f"cohort-{i:02d}" for i in range(1, COHORT_SIZE + 1))


def cohort_bundles(today: date) -> list[dict]:
    """Every cohort Bundle (one per patient, by file name) with its dates resolved against ``today``."""
    folder = resources.files("service.demo").joinpath("data", "cohort")
    if not folder.is_dir():
        return []
    bundles = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            bundles.append(_resolve(json.loads(item.read_text(encoding="utf-8")), today))
    return bundles


def cohort_resources(today: date) -> list[dict]:
    return [e["resource"] for b in cohort_bundles(today) for e in b.get("entry", [])]
