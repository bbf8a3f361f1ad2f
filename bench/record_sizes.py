"""How large a ``patient-view`` request with full prefetch gets as the record grows: the basis of the
default ``HCC_MAX_BODY_BYTES``.

The bodies are built as an EHR would send them from the demo FHIR endpoint: the demo patient's own
record (``demo-eligible``), each search a ``searchset`` Bundle whose entries carry ``search.mode``, with
the patient's Observations (labs, ECOG, tumour sizes, disease status, blood pressure: as the demo
records them) repeated under new ids until there are N; compact JSON, as clients send it (indented
JSON is ~1.5x larger).

    python -m bench.record_sizes [--observations 100 1000 5000 10000 20000]
"""

from __future__ import annotations

import argparse
import copy
import json
from datetime import date

from bench.common import ROOT  # noqa: F401  (puts the tree on sys.path)
from service.demo import demo_bundles
from tests.api.hook_requests import patient_view

OBSERVATION_COUNTS = (100, 1_000, 5_000, 10_000, 20_000)
DEMO_PATIENT = "demo-eligible"
TEMPLATES = {
    "conditions": "Condition",
    "procedures": "Procedure",
    "observations": "Observation",
    "medicationRequests": "MedicationRequest",
    "medicationStatements": "MedicationStatement",
    "bodyStructures": "BodyStructure",
    "allergies": "AllergyIntolerance",
}


def demo_record(today: date | None = None) -> tuple[dict, list[dict]]:
    for bundle in demo_bundles(today or date.today()):
        resources = [e["resource"] for e in bundle.get("entry", [])]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        if patient["id"] == DEMO_PATIENT:
            return patient, [r for r in resources if r["resourceType"] != "Patient"]
    raise LookupError(DEMO_PATIENT)


def searchset(resources: list[dict]) -> dict:
    """As the demo FHIR endpoint answers a search."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def body_with_observations(observations: int, today: date | None = None) -> bytes:
    """The demo patient's patient-view call with ``observations`` Observations (its own, repeated under new ids)."""
    patient, resources = demo_record(today)
    own = [r for r in resources if r["resourceType"] == "Observation"]
    others = [r for r in resources if r["resourceType"] != "Observation"]
    grown = []
    for n in range(observations):
        obs = copy.deepcopy(own[n % len(own)])
        obs["id"] = f"{obs['id']}-r{n // len(own)}"
        grown.append(obs)
    record = others + grown
    prefetch = {"patient": patient} | {
        key: searchset([r for r in record if r["resourceType"] == rtype]) for key, rtype in TEMPLATES.items()
    }
    body = patient_view(patient["id"], prefetch=prefetch)
    return json.dumps(body, separators=(",", ":")).encode()


def sizes(counts: tuple[int, ...] = OBSERVATION_COUNTS) -> list[dict]:
    patient, resources = demo_record()
    own = sum(r["resourceType"] == "Observation" for r in resources)
    rows = []
    for count in counts:
        size = len(body_with_observations(count))
        rows.append({"observations": count, "bytes": size, "mb": round(size / 1e6, 2), "mib": round(size / 2**20, 2)})
    per_obs = (rows[-1]["bytes"] - rows[0]["bytes"]) / (rows[-1]["observations"] - rows[0]["observations"])
    return [{"demo_patient": DEMO_PATIENT, "its_observations": own, "bytes_per_observation": round(per_obs)}, *rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--observations", type=int, nargs="+", default=list(OBSERVATION_COUNTS))
    args = parser.parse_args(argv)
    print(json.dumps(sizes(tuple(args.observations)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
