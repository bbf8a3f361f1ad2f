"""Clinical records to corrupt: the demo and cohort patients, dated against a fixed day, and how to read findings."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date
from functools import cache
from typing import Any

from service.benchmarks.tables import load_benchmark_tables
from service.demo import demo_bundles
from service.knowledge import load_knowledge

AS_OF = date(2026, 6, 1)  # the demo data is dated relative to this day
BASE_PATIENTS = ("demo-eligible", "demo-ineligible", "demo-missing-data", "cohort-01", "cohort-07", "cohort-20")
# data_issues problems meaning the resource was not used at all
REJECTED_MARKERS = ("fails FHIR R4 validation", "belongs to another patient", "names no patient")


@cache
def knowledge():
    return load_knowledge()


@cache
def tables():
    return load_benchmark_tables()


@cache
def _records() -> dict[str, tuple[dict, tuple[dict, ...]]]:
    records = {}
    for bundle in demo_bundles(AS_OF):
        resources = [e["resource"] for e in bundle.get("entry", [])]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        records[patient["id"]] = (patient, tuple(r for r in resources if r is not patient))
    return records


def record(patient_id: str) -> tuple[dict, list[dict]]:
    """A fresh copy of one demo/cohort patient: (Patient, their other resources)."""
    patient, resources = _records()[patient_id]
    return copy.deepcopy(patient), copy.deepcopy(list(resources))


def assess_json(patient: dict, resources: list[dict], as_of: date = AS_OF) -> dict:
    """map -> assess -> render, exactly as POST /api/v1/assessments does after reading the Bundle."""
    from rules.assessment import assess
    from service.mapping import map_to_snapshot
    from service.render.assessment_json import render_assessment

    snapshot = map_to_snapshot(patient, resources, knowledge())
    return render_assessment(assess(snapshot, as_of, knowledge(), build="adversarial"), knowledge(), tables())


def findings(value: Any, path: str = "") -> Iterator[tuple[str, str | None, list[str]]]:
    """(where, status, evidence) of every object in an assessment that cites evidence."""
    if isinstance(value, dict):
        if isinstance(value.get("evidence"), list):
            yield path, value.get("status"), [e for e in value["evidence"] if isinstance(e, str)]
        for key, item in value.items():
            yield from findings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from findings(item, f"{path}[{i}]")


def rejected_refs(assessment: dict) -> set[str]:
    """Resources the assessment says it did not use at all (failed validation, another patient's, no patient)."""
    return {
        issue["resource"]
        for issue in assessment["data_issues"]
        if any(marker in issue["problem"] for marker in REJECTED_MARKERS)
    }


def unusable_refs(assessment: dict) -> set[str]:
    """Resources with a value the assessment could not use ("not used", no numeric value...)."""
    words = ("not used", "no numeric valueQuantity", "not a valid date")
    return {issue["resource"] for issue in assessment["data_issues"] if any(w in issue["problem"] for w in words)}


def without_issues(assessment: dict) -> dict:
    """The assessment minus what differs only in reporting: its data issues."""
    return {k: v for k, v in assessment.items() if k != "data_issues"}


def paths_of(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path (keys and list indices) inside a JSON value."""
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths_of(item, prefix + (i,))


def set_path(value: Any, path: tuple, new: Any) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


def delete_path(value: Any, path: tuple) -> None:
    for step in path[:-1]:
        value = value[step]
    del value[path[-1]]
