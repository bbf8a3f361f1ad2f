"""The outcome of one FHIR request, as the metrics label it (``hcc_cds_fhir_requests_total{outcome}``).

Transport errors are classified once, where the client translates them (``service.fhir.client``):
each :class:`~service.fhir.errors.FhirError` carries its ``outcome``. This module only reads it, or
classifies the HTTP status of an answer; it knows nothing of httpx.
"""

from __future__ import annotations

import asyncio

from service.fhir.errors import FhirError

FHIR_OUTCOMES = frozenset(
    {
        "ok",  # 2xx
        "not_found",  # 404/410
        "auth",  # 401/403
        "throttled",  # 429
        "redirect",  # 3xx (never followed)
        "client_error",  # other 4xx
        "server_error",  # 5xx
        "timeout",  # no (complete) answer in time
        "unreachable",  # connection refused, DNS, TLS, reset
        "bad_response",  # undecodable or oversized body
        "cancelled",  # the assessment's overall deadline ran out, or the client went away
        "error",  # anything else
    }
)


def fhir_outcome(*, status: int | None = None, error: BaseException | None = None) -> str:
    """The ``outcome`` label of one FHIR request: from the error it raised, else from its HTTP status."""
    if error is not None:
        return _error_outcome(error)
    if status is None:
        return "error"
    return _status_outcome(status)


def _error_outcome(error: BaseException) -> str:
    if isinstance(error, asyncio.CancelledError) or isinstance(error.__cause__, asyncio.CancelledError):
        return "cancelled"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, FhirError):
        return error.outcome
    return "error"


def _status_outcome(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    if status in (404, 410):
        return "not_found"
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "throttled"
    if 300 <= status < 400:
        return "redirect"
    if 400 <= status < 500:
        return "client_error"
    if status >= 500:
        return "server_error"
    return "error"
