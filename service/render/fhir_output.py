"""Assessment -> FHIR R4 (for ``Accept: application/fhir+json``).

A collection Bundle holding:
- one Observation per finding (code from the local CodeSystem ``urn:hcc-cds:finding``;
  the status token, class or category as valueCodeableConcept; evidence as
  ``derivedFrom``; reasons and citation as notes);
- a GuidanceResponse carrying the recommendation (status ``success``, or
  ``data-required`` for ``insufficient-data``), its reasons and the context sentence,
  with the findings as its ``outputParameters``-free ``note`` and the data issues in
  a contained OperationOutcome (``evaluationMessage``);
- a RiskAssessment for the survival benchmark when there is one (death within 6/12/24
  months = 1 - the arm's survival, labelled a cohort benchmark, not a prediction).
Every resource validates against fhir.resources' R4B models (a test checks).
"""

from __future__ import annotations

import uuid
from typing import Any

FINDING_SYSTEM = "urn:hcc-cds:finding"
VALUE_SYSTEM = "urn:hcc-cds:finding-value"
RECOMMENDATION_SYSTEM = "urn:hcc-cds:recommendation"
SNOMED = "http://snomed.info/sct"
DEATH = {"system": SNOMED, "code": "419620001", "display": "Death"}


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _value(token: Any) -> dict:
    text = "null" if token is None else str(token)
    return {"coding": [{"system": VALUE_SYSTEM, "code": text}], "text": text}


def _observation(patient_ref: str, issued: str, code: str, display: str, value: Any, reasons: list[str],
                 evidence: list[str], citation: str | None) -> dict:
    notes = [{"text": r} for r in reasons if r]
    if citation:
        notes.append({"text": f"Source: {citation}"})
    obs: dict = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "survey"}]}],
        "code": {"coding": [{"system": FINDING_SYSTEM, "code": code, "display": display}], "text": display},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": issued,
        "valueCodeableConcept": _value(value),
    }
    if evidence:
        obs["derivedFrom"] = [{"reference": ref} for ref in evidence]
    if notes:
        obs["note"] = notes
    return obs


def _findings(a: dict, patient_ref: str) -> list[dict]:
    as_of = a["as_of"]
    out = []
    for key, display in (("hcc_diagnosis", "Active confirmed HCC diagnosis"), ("tace_candidacy", "TACE candidacy")):
        f = a[key]
        out.append(_observation(patient_ref, as_of, key.replace("_", "-"), display, f["status"], f["reasons"],
                                f["evidence"], f["citation"]))
    tr = a["tace_resistance"]
    out.append(_observation(patient_ref, as_of, "tace-resistance-jsh-2010", "TACE resistance (JSH 2010)", tr["status"],
                            tr["reasons"], tr["evidence"], tr["citation"]))
    j = tr["jsh_2014"]
    out.append(_observation(patient_ref, as_of, "tace-refractoriness-jsh-2014", "TACE refractoriness (JSH-LCSGJ 2014)",
                            j["status"], j["reasons"], j["evidence"], j["citation"]))
    cp = a["child_pugh"]
    out.append(_observation(patient_ref, as_of, "child-pugh-class", "Child-Pugh class", cp["class"], cp["reasons"],
                            cp["evidence"], cp["citation"]))
    m = a["mrecist"]
    out.append(_observation(patient_ref, as_of, "mrecist-category", "mRECIST category", m["category"], m["reasons"],
                            m.get("evidence", []), m.get("citation")))
    b = a["bclc"]
    out.append(_observation(patient_ref, as_of, "bclc-2010-stage", "BCLC 2010 stage (now)", b["current"], b["reasons"],
                            b.get("evidence", []), b.get("citation")))
    e = a["sorafenib_eligibility"]
    out.append(_observation(patient_ref, as_of, "sorafenib-eligibility", "Sorafenib eligibility (study criteria)",
                            e["status"], [f"{c['id']}: {c['status']}" for c in e["criteria"]],
                            sorted({r for c in e["criteria"] for r in c["evidence"]}), None))
    return out


def _guidance(a: dict, patient_ref: str, finding_urns: list[str]) -> dict:
    rec = a["recommendation"]
    issues = [
        {"severity": "warning", "code": "invalid", "diagnostics": f"{i['resource']}: {i['problem']}"}
        for i in a["data_issues"]
    ]
    guidance: dict = {
        "resourceType": "GuidanceResponse",
        "identifier": [{"system": "urn:hcc-cds:assessment", "value": str(uuid.uuid4())}],
        "moduleUri": f"urn:hcc-cds:rules:{a['versions']['rules']}",
        "status": "data-required" if rec["code"] == "insufficient-data" else "success",
        "subject": {"reference": patient_ref},
        "occurrenceDateTime": a["as_of"],
        "reasonCode": [{"coding": [{"system": RECOMMENDATION_SYSTEM, "code": rec["code"]}], "text": rec["summary"]}],
        "note": [{"text": rec["summary"]}, *({"text": r} for r in rec["reasons"] if r), {"text": rec["context"]}],
        "reasonReference": [{"reference": urn} for urn in finding_urns],
    }
    if issues:
        guidance["contained"] = [{"resourceType": "OperationOutcome", "id": "data-issues", "issue": issues}]
        guidance["evaluationMessage"] = [{"reference": "#data-issues"}]
    return guidance


def _risk(a: dict, patient_ref: str, basis: list[str]) -> dict | None:
    b = a.get("benchmark")
    if not b:
        return None
    predictions = [
        {
            "outcome": {"coding": [DEATH], "text": "Death"},
            "probabilityDecimal": round(1 - p["estimate"], 4),
            "whenRange": {"high": {"value": p["month"], "unit": "months", "system": "http://unitsofmeasure.org", "code": "mo"}},
            "rationale": f"1 - overall survival at {p['month']} months in the {b['label']} arm "
                         f"(95% CI of survival {p['ci_lower']}-{p['ci_upper']})",
        }
        for p in b["survival"]
    ]
    return {
        "resourceType": "RiskAssessment",
        "status": "final",
        "method": {"text": f"Cohort benchmark: {b['cohort']} / {b['arm']} (n={b['n']}), constraint-matched pseudo-IPD"},
        "code": {"text": "Survival benchmark from the source study (not an individual prediction)"},
        "subject": {"reference": patient_ref},
        "occurrenceDateTime": a["as_of"],
        "basis": [{"reference": ref} for ref in basis],
        "prediction": predictions,
        "note": [{"text": c} for c in b["caveats"]],
    }


def render_fhir_bundle(assessment_json: dict) -> dict:
    """The FHIR R4 collection Bundle for one assessment (see the module docstring)."""
    patient_ref = f"Patient/{assessment_json['patient_id']}"
    findings = _findings(assessment_json, patient_ref)
    finding_urns = [_urn() for _ in findings]
    entries = [{"fullUrl": urn, "resource": obs} for urn, obs in zip(finding_urns, findings)]
    entries.insert(0, {"fullUrl": _urn(), "resource": _guidance(assessment_json, patient_ref, finding_urns)})
    risk = _risk(assessment_json, patient_ref, finding_urns)
    if risk:
        entries.append({"fullUrl": _urn(), "resource": risk})
    return {"resourceType": "Bundle", "type": "collection", "timestamp": f"{assessment_json['as_of']}T00:00:00Z", "entry": entries}
