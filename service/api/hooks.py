"""CDS Hooks service calls: ``POST /cds-services/{service_id}``."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.schemas import ERROR_RESPONSES, ErrorMessage
from service.cds.models import CardsResponse, HookRequest
from service.deps import StateDep
from service.errors import ApiError, to_api_error
from service.fhir.allowlist import check_fhir_server
from service.fhir.errors import FhirError
from service.gather import PatientMismatchError, PrefetchMissingError
from service.pipeline import assess_patient
from service.render.cards import render_patient_view_cards

router = APIRouter(tags=["cds-hooks"])

HOOK_ERRORS = {
    **ERROR_RESPONSES,
    404: {"model": ErrorMessage, "description": "No CDS service with this id"},
    412: {"model": ErrorMessage, "description": "Data needed is neither prefetched nor fetchable"},
    503: {"model": ErrorMessage, "description": "The FHIR server is down or too slow"},
}


@router.post(
    "/cds-services/{service_id}",
    response_model=CardsResponse,
    response_model_exclude_none=True,
    response_model_by_alias=True,
    responses=HOOK_ERRORS,
    summary="Call a CDS service",
)
async def call_service(service_id: str, request: HookRequest, state: StateDep) -> CardsResponse:
    service = state.services.get(service_id)
    if service is None:
        raise ApiError(404, f"no CDS service '{service_id}'; see GET /cds-services")
    if request.hook != service.hook:
        raise ApiError(400, f"service '{service_id}' answers the '{service.hook}' hook, not '{request.hook}'")
    source = None
    try:
        if request.fhir_server:
            base = check_fhir_server(
                request.fhir_server,
                state.settings.allowlist,
                allow_any_loopback=state.settings.is_demo,
            )
            token = request.fhir_authorization.access_token if request.fhir_authorization else None
            source = state.hook_source(base, token)
        assessment = await assess_patient(
            state,
            request.context.patient_id,
            templates=service.prefetch,
            prefetch=request.prefetch,
            source=source,
            as_of=state.settings.today(),
        )
    except (FhirError, PrefetchMissingError, PatientMismatchError) as exc:
        raise to_api_error(exc, "hook") from exc
    return CardsResponse(cards=render_patient_view_cards(assessment, state.settings.public_base_url))
