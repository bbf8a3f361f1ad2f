"""Demo mode only: the embedded demo data as a read-only FHIR endpoint at ``/demo-fhir``.

It lets a CDS Hooks call name ``fhirServer: http://127.0.0.1:8080/demo-fhir`` and
have the service fetch the record itself, as it would from an EHR. Not in the
OpenAPI document and not mounted in production.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.deps import StateDep
from service.errors import operation_outcome
from service.fhir.errors import FhirNotFoundError

router = APIRouter(prefix="/demo-fhir", include_in_schema=False)
FHIR_JSON = "application/fhir+json"


@router.get("/{resource_type}/{resource_id}")
async def read(resource_type: str, resource_id: str, state: StateDep) -> JSONResponse:
    assert state.demo_source is not None
    try:
        return JSONResponse(await state.demo_source.read(resource_type, resource_id), media_type=FHIR_JSON)
    except FhirNotFoundError as exc:
        return JSONResponse(operation_outcome("not-found", str(exc)), status_code=404, media_type=FHIR_JSON)


@router.get("/{resource_type}")
async def search(resource_type: str, request: Request, state: StateDep) -> JSONResponse:
    assert state.demo_source is not None
    result = await state.demo_source.search(resource_type, list(request.query_params.multi_items()))
    entries = [{"resource": r, "search": {"mode": "match"}} for r in result.resources]
    if result.outcomes:
        outcome = operation_outcome("not-supported", "; ".join(result.outcomes))
        outcome["issue"][0]["severity"] = "warning"
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(result.resources), "entry": entries}
    return JSONResponse(bundle, media_type=FHIR_JSON)
