"""Errors the API answers with, and how each becomes an HTTP status.

Hooks and REST differ where PRODUCT.md says so: the FHIR server refusing the
token is a 412 for a hook (the CDS client must grant access) and a 502 for
REST (our configured credentials failed); a server down or timing out is 503
for a hook and 502 for REST. An unknown patient is a 404 with an
OperationOutcome. Never a 500 for bad input.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.auth.dependency import UNAUTHORIZED_DETAIL, endpoint_path
from service.auth.jwt_verifier import AuthenticationError
from service.fhir.errors import (
    FhirAuthError,
    FhirError,
    FhirNotFoundError,
    FhirServerNotAllowedError,
    FhirUnavailableError,
)
from service.fhir.limits import FhirBusyError
from service.gather import PatientMismatchError, PrefetchInvalidError, PrefetchMissingError

Surface = Literal["hook", "rest"]
log = logging.getLogger("hcc_cds.errors")
DATABASE_UNAVAILABLE = "The service's database is unavailable; nothing was stored. Try again shortly."
DATABASE_RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    """An answer other than 200, with the message the caller sees."""

    def __init__(
        self, status: int, message: str, *, operation_outcome: bool = False, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.operation_outcome = operation_outcome
        self.headers = headers


def operation_outcome(code: str, message: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}],
    }


def to_api_error(exc: Exception, surface: Surface) -> ApiError:
    """Translate a data-gathering failure into the answer for ``surface``.

    ===========================  ==========  ==========
    failure                      hook        REST
    ===========================  ==========  ==========
    data neither given nor       412         412
    fetchable
    Patient of another id        400         400
    prefetch malformed (a        400         400
    Bundle's entry not a list)
    fhirServer not allowed       400         400
    unknown patient (404 read)   404 (OO)    404 (OO)
    FHIR 401/403, bad token      412         502
    too many FHIR requests in    503 +       503 +
    flight (per origin, worker)  Retry-After Retry-After
    FHIR down, timeout, 5xx      503         502
    unusable FHIR answer, or     502         502
    beyond HCC_FHIR_MAX_BYTES /
    HCC_FHIR_MAX_RESOURCES
    ===========================  ==========  ==========

    An unusable answer (not JSON, a redirect, a paging loop, a next link to
    another origin, a search the server rejects) is a 502 on both surfaces:
    retrying will not help, unlike a 503.
    """
    if isinstance(exc, PrefetchMissingError):
        return ApiError(412, str(exc))
    if isinstance(exc, (PatientMismatchError, PrefetchInvalidError)):
        return ApiError(400, str(exc))
    if isinstance(exc, FhirServerNotAllowedError):
        return ApiError(400, str(exc))
    if isinstance(exc, FhirNotFoundError):
        return ApiError(404, "Patient not found on the FHIR server", operation_outcome=True)
    if isinstance(exc, FhirBusyError):  # our own limit, not the FHIR server failing: retry shortly
        return ApiError(503, str(exc), headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, FhirAuthError):
        return ApiError(412 if surface == "hook" else 502, str(exc))
    if isinstance(exc, FhirUnavailableError):
        return ApiError(503 if surface == "hook" else 502, str(exc))
    if isinstance(exc, FhirError):  # FhirResponseError, and any other FHIR failure
        return ApiError(502, str(exc))
    raise exc


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if exc.operation_outcome:
        code = "not-found" if exc.status == 404 else "processing"
        return JSONResponse(operation_outcome(code, exc.message), status_code=exc.status,
                            media_type="application/fhir+json", headers=exc.headers)
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)


async def _refusal_before_validation(request: Request) -> JSONResponse | None:
    """In production, an unauthenticated caller gets the bare 401 even when the body is malformed.

    FastAPI decodes and validates the body before it solves dependencies, so without this a
    caller without a token would learn what the route expects from a 422 (or, for a body it cannot
    decode at all, such as invalid UTF-8 or JSON nested too deep, a 400).
    """
    state = getattr(request.app.state, "hcc", None)
    auth = getattr(state, "client_auth", None)
    route = request.scope.get("route")
    if auth is None or not auth.enabled or route is None or id(route) not in getattr(state, "protected_routes", ()):
        return None
    if getattr(request.state, "client_identity", None) is not None:
        return None
    try:
        request.state.client_identity = await auth.authenticate(
            request.headers.getlist("authorization"), endpoint_path(request), route=getattr(route, "path", None)
        )
    except AuthenticationError:
        return JSONResponse({"detail": UNAUTHORIZED_DETAIL}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    except SQLAlchemyError as exc:  # the replay store is in the database
        return await _database_error(request, exc)
    return None


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    refusal = await _refusal_before_validation(request)
    if refusal is not None:
        return refusal
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse({"detail": "Invalid request: " + "; ".join(problems[:10])}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own refusals (a body it cannot decode: 400) come after the 401 for a caller without a token."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code != 401:
        refusal = await _refusal_before_validation(request)
        if refusal is not None:
            return refusal
    return await http_exception_handler(request, exc)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """The database failed (locked past HCC_DATABASE_TIMEOUT_SECONDS, unreachable, a lost connection).

    A quick 503 the caller may retry; the log names the route template and the error's class, never
    the statement's values (the engines hide them too: ``hide_parameters=True``) nor the message.
    """
    route = getattr(request.scope.get("route"), "path", None) or "(unmatched)"
    orig = getattr(exc, "orig", None)
    log.error(
        "database unavailable: %s %s answered 503 (%s%s)",
        request.method,
        route,
        type(exc).__name__,
        f" from {type(orig).__module__}.{type(orig).__name__}" if orig is not None else "",
    )
    metrics = getattr(getattr(request.app.state, "hcc", None), "metrics", None)
    if metrics is not None:
        metrics.record_database_error("request")
    return JSONResponse(
        {"detail": DATABASE_UNAVAILABLE}, status_code=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
