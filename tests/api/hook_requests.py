"""CDS Hooks request bodies for tests."""

from __future__ import annotations

import uuid

SERVICE_ID = "hcc-tace-resistance"


def patient_view(patient_id: str, *, prefetch: dict | None = None, fhir_server: str | None = None,
                 token: str | None = None) -> dict:
    body: dict = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": patient_id},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server:
        body["fhirServer"] = fhir_server
    if token:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/Observation.read",
            "subject": "hcc-cds",
        }
    return body


def full_prefetch(resources: list[dict], patient: dict) -> dict:
    """Prefetch every template's key from a list of the patient's resources."""
    by_type: dict[str, list[dict]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)

    def searchset(rtype: str) -> dict:
        return {"resourceType": "Bundle", "type": "searchset",
                "entry": [{"resource": r} for r in by_type.get(rtype, [])]}

    return {
        "patient": patient,
        "conditions": searchset("Condition"),
        "procedures": searchset("Procedure"),
        "observations": searchset("Observation"),
        "medicationRequests": searchset("MedicationRequest"),
        "medicationStatements": searchset("MedicationStatement"),
        "bodyStructures": searchset("BodyStructure"),
        "allergies": searchset("AllergyIntolerance"),
    }


PER_CALL_FIELDS = ("uuid", "links")  # a new uuid and a new stored-assessment link on every call


def comparable_cards(cards: list[dict]) -> list[dict]:
    """Cards without what differs from call to call, to compare two answers for the same record."""
    return [{k: v for k, v in card.items() if k not in PER_CALL_FIELDS} for card in cards]
