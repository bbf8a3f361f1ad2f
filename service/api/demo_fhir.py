"""Demo mode only: the embedded demo data as a read-only FHIR endpoint at ``/demo-fhir``.

It lets a CDS Hooks call name ``fhirServer: http://127.0.0.1:8080/demo-fhir`` and
have the service fetch the record itself, as it would from an EHR. It answers FHIR
clients as a small FHIR R4 server does: ``GET metadata`` is a CapabilityStatement
(what browser clients such as the CDS Hooks sandbox read first), a search is
``GET [type]?params`` or ``POST [type]/_search`` with a form-encoded body, and a
read is ``GET [type]/[id]``. Not in the OpenAPI document and not mounted in production.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.build_info import package_version
from service.deps import StateDep
from service.errors import operation_outcome
from service.fhir.errors import FhirNotFoundError
from service.main_state import AppState

router = APIRouter(prefix="/demo-fhir", include_in_schema=False)
FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
FORM = "application/x-www-form-urlencoded"
MAX_SEARCH_PARAMS = 100

# The search parameters service.fhir.memory.InMemoryFhirSource implements, with R4's definitions.
# `patient` and `subject` are both accepted on every type but Patient (the source matches either element).
_SEARCH_PARAMS = {
    "_id": ("token", "Logical id of the resource (comma = OR)"),
    "patient": ("reference", "The patient (Patient/id or id): the resource's subject or patient element"),
    "subject": ("reference", "Same as patient"),
    "code": ("token", "system|code or code, comma = OR (component codes match too)"),
}


def _fhir(body: dict, status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, media_type=FHIR_JSON)


def capability_statement(resource_types: list[str], base_url: str) -> dict:
    """The demo endpoint's CapabilityStatement: read and search-type on each type it holds."""
    resources = []
    for resource_type in resource_types:
        names = ["_id"] if resource_type == "Patient" else ["_id", "patient", "subject", "code"]
        resources.append({
            "type": resource_type,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": n, "type": _SEARCH_PARAMS[n][0], "documentation": _SEARCH_PARAMS[n][1]}
                for n in names
            ],
        })
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).date().isoformat(),
        "publisher": "hcc-cds",
        "kind": "instance",
        "software": {"name": "hcc-cds embedded demo FHIR endpoint", "version": package_version()},
        "implementation": {
            "description": "Synthetic demo patients only, read-only; never real patient data",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Search by GET [type]?params or POST [type]/_search (application/x-www-form-urlencoded); "
            "_count and _sort are accepted and ignored (one page); any other parameter is reported as ignored.",
            "resource": resources,
        }],
    }


@router.get("/metadata")
async def metadata(state: StateDep) -> JSONResponse:
    assert state.demo_source is not None
    return _fhir(capability_statement(state.demo_source.resource_types(), f"{state.settings.public_base_url}/demo-fhir"))


async def _search_bundle(state: AppState, resource_type: str, params: list[tuple[str, str]]) -> JSONResponse:
    assert state.demo_source is not None
    result = await state.demo_source.search(resource_type, params)
    entries = [{"resource": r, "search": {"mode": "match"}} for r in result.resources]
    if result.outcomes:
        outcome = operation_outcome("not-supported", "; ".join(result.outcomes))
        outcome["issue"][0]["severity"] = "warning"
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    return _fhir({"resourceType": "Bundle", "type": "searchset", "total": len(result.resources), "entry": entries})


@router.post("/{resource_type}/_search")
async def search_by_post(resource_type: str, request: Request, state: StateDep) -> JSONResponse:
    """FHIR's ``POST [type]/_search``: the parameters in a form-encoded body (and any in the query), as a GET."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and media_type != FORM:
        return _fhir(operation_outcome("not-supported", f"POST _search takes a {FORM} body"), 415)
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body),
                         max_num_fields=MAX_SEARCH_PARAMS)
    except (UnicodeDecodeError, ValueError):
        return _fhir(operation_outcome("invalid", "the _search body is not form-encoded parameters"), 400)
    return await _search_bundle(state, resource_type, [*request.query_params.multi_items(), *form])


@router.get("/{resource_type}/{resource_id}")
async def read(resource_type: str, resource_id: str, state: StateDep) -> JSONResponse:
    assert state.demo_source is not None
    try:
        return _fhir(await state.demo_source.read(resource_type, resource_id))
    except FhirNotFoundError as exc:
        return _fhir(operation_outcome("not-found", str(exc)), 404)


@router.get("/{resource_type}")
async def search(resource_type: str, request: Request, state: StateDep) -> JSONResponse:
    return await _search_bundle(state, resource_type, list(request.query_params.multi_items()))
