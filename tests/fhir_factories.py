"""FHIR R4 JSON builders for tests (synthetic; no real patient data)."""

from __future__ import annotations

from itertools import count

LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CPT = "http://www.ama-assn.org/go/cpt"
_ids = count(1)


def patient(pid: str = "p1", **extra) -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "male", "birthDate": "1960-01-01", **extra}


def lab(code: str, value, unit: str | None, when: str, *, pid: str = "p1", rid: str | None = None, status: str = "final",
        ucum: bool = True) -> dict:
    q: dict = {"value": value}
    if unit is not None:
        q["unit"] = unit
        if ucum:
            q.update(system=UCUM, code=unit)
    return {
        "resourceType": "Observation",
        "id": rid or f"obs-{next(_ids)}",
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": q,
    }


def condition(code: str, onset: str, *, system: str = SCT, pid: str = "p1", rid: str | None = None,
              clinical: str = "active", verification: str = "confirmed") -> dict:
    return {
        "resourceType": "Condition",
        "id": rid or f"cond-{next(_ids)}",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]},
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": onset,
    }


def procedure(code: str, performed: dict, *, system: str = SCT, status: str = "completed", pid: str = "p1",
              rid: str | None = None) -> dict:
    return {
        "resourceType": "Procedure",
        "id": rid or f"proc-{next(_ids)}",
        "status": status,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        **performed,
    }


def bundle(*resources: dict, type_: str = "collection") -> dict:
    return {"resourceType": "Bundle", "type": type_, "entry": [{"resource": r} for r in resources]}


def searchset(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}
