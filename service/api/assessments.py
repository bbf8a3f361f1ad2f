"""REST: assess a patient from the configured FHIR source or from a posted Bundle."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from service.api.fast_json import FastJsonRoute
from service.api.schemas import ERROR_RESPONSES, ErrorMessage, OperationOutcome
from service.audit import note_audit
from service.auth.dependency import require_operator
from service.cds.services import patient_record_templates
from service.deps import StateDep
from service.errors import ApiError, to_api_error
from service.fhir.errors import FhirError
from service.fhir.ids import FHIR_ID_PATTERN
from service.gather import PatientMismatchError, PatientRecord, PrefetchMissingError, restrict_to_patient
from service.main_state import AppState
from service.pipeline import assess_patient, assess_record
from service.render.assessment_json import render_assessment
from service.render.fhir_output import render_fhir_bundle

router = APIRouter(prefix="/api/v1", tags=["assessments"], route_class=FastJsonRoute)

AsOf = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="Assessment date (YYYY-MM-DD); default: today in HCC_TIMEZONE. Rules never read the clock.",
    ),
]


def assessment_date(as_of: str | None, state: AppState) -> date:
    """The ``as_of`` query parameter as a calendar date (a number is not read as a Unix time)."""
    if as_of is None:
        return state.settings.today()
    try:
        return date.fromisoformat(as_of)
    except ValueError as exc:
        raise ApiError(422, f"Invalid request: query.as_of: {as_of!r} is not a calendar date (YYYY-MM-DD)") from exc
FHIR_JSON = "application/fhir+json"
REST_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The assessment (assessment.schema.json), or with `Accept: application/fhir+json` a FHIR R4 "
        "collection Bundle: a GuidanceResponse, one Observation per finding and a RiskAssessment for the benchmark",
        "content": {FHIR_JSON: {"schema": {"type": "object", "description": "FHIR R4 Bundle (type collection)"}}},
    },
    **ERROR_RESPONSES,
    502: {"model": ErrorMessage, "description": "The configured FHIR server failed or refused our credentials"},
    503: {
        "model": ErrorMessage,
        "description": "Too many FHIR requests in flight (HCC_FHIR_MAX_CONCURRENT_PER_ORIGIN); retry after Retry-After",
    },
}


def negotiated(request: Request, assessment_json: dict[str, Any]) -> dict[str, Any] | JSONResponse:
    """The assessment JSON, or its FHIR form when the caller asks for application/fhir+json."""
    if FHIR_JSON in request.headers.get("accept", ""):
        return JSONResponse(render_fhir_bundle(assessment_json), media_type=FHIR_JSON)
    return assessment_json


@router.get(
    "/patients/{patient_id}/assessment",
    responses={
        **REST_ERRORS,
        403: {"model": ErrorMessage, "description": "Production mode: the client's role is not operator"},
        404: {
            "model": OperationOutcome,
            "description": "Unknown patient",
            "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}},
        },
    },
    summary="Assess a patient from the configured FHIR source (operator-role clients only)",
    dependencies=[Depends(require_operator)],
)
async def patient_assessment(
    patient_id: Annotated[str, Path(pattern=rf"^{FHIR_ID_PATTERN}$", description="FHIR Patient id")],
    state: StateDep,
    request: Request,
    as_of: AsOf = None,
) -> Any:
    note_audit(request, patient_ref=f"Patient/{patient_id}")
    try:
        assessment = await assess_patient(
            state,
            patient_id,
            templates=patient_record_templates(state.knowledge),
            prefetch=None,
            source=state.configured_source(),
            as_of=assessment_date(as_of, state),
        )
    except (FhirError, PrefetchMissingError, PatientMismatchError) as exc:
        raise to_api_error(exc, "rest") from exc
    return negotiated(request, render_assessment(assessment, state.knowledge, state.benchmarks))


def record_from_bundle(bundle: dict[str, Any]) -> PatientRecord:
    """The one patient of a posted Bundle and the resources that are theirs."""
    if bundle.get("resourceType") != "Bundle":
        raise ApiError(422, "body must be a FHIR Bundle (resourceType 'Bundle')")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise ApiError(422, "the Bundle has no entries")
    resources = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise ApiError(422, f"Bundle.entry[{i}] has no resource")
        if not isinstance(resource.get("id"), str) or not resource["id"]:
            raise ApiError(422, f"Bundle.entry[{i}] ({resource['resourceType']}) has no id")
        resources.append(resource)
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    if len(patients) != 1:
        raise ApiError(422, f"the Bundle must hold exactly one Patient, not {len(patients)}")
    patient = patients[0]
    others = [r for r in resources if r is not patient]
    kept, issues = restrict_to_patient(others, patient["id"])
    return PatientRecord(patient=patient, resources=kept, issues=issues)


@router.post(
    "/assessments",
    responses=REST_ERRORS,
    summary="Assess the one patient of a posted FHIR Bundle",
)
async def assess_bundle(
    state: StateDep,
    request: Request,
    bundle: Annotated[dict[str, Any], Body(description="A FHIR R4 Bundle holding one Patient and their resources")],
    as_of: AsOf = None,
) -> Any:
    record = record_from_bundle(bundle)
    note_audit(request, patient_ref=f"Patient/{record.patient['id']}")
    assessment = assess_record(state, record, assessment_date(as_of, state))
    note_audit(request, rules_version=assessment.versions["rules"])
    return negotiated(request, render_assessment(assessment, state.knowledge, state.benchmarks))
