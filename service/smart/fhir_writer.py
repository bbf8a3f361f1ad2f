"""Sends the SMART app's transaction Bundle to the EHR's FHIR server with the user's token.

One ``POST [base]`` of a ``transaction`` Bundle (FHIR R4 3.1.0.11.2): the server applies every entry or
none. Success is a ``transaction-response`` Bundle with one response per entry; its ``location``s are what
was written. Every other outcome raises :class:`WriteRefused` with a ``kind`` the app's page tells apart
and a message for the clinician that always says whether anything was written:

==========================  ===============  ================================================================
answer                      kind             written
==========================  ===============  ================================================================
401                         ``expired``      nothing (the token was refused before anything ran)
403                         ``forbidden``    nothing
409 / 412                   ``conflict``     nothing (the record changed since the form was shown)
400 / 422 / other 4xx, 3xx  ``invalid``      nothing
5xx, connection refused     ``unavailable``  nothing (a transaction is atomic)
timeout mid-exchange        ``unknown``      not known: the server may have committed before the answer was lost
200 but not a usable        ``unknown``      not known: the locations it did name, if any
transaction-response
==========================  ===============  ================================================================

The token is sent only in the ``Authorization`` header of this one request (never logged; a server text
quoting it is redacted); redirects are not followed. Messages quote the OperationOutcome's diagnostics as
text: the template escapes them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal

import httpx

from service.fhir.client import BEARER_TOKEN, FHIR_JSON, MAX_RESPONSE_BYTES, REDACTED
from service.fhir.source import MalformedBundleError, outcome_texts

log = logging.getLogger("hcc_cds.smart")

WriteRefusedKind = Literal["expired", "forbidden", "conflict", "invalid", "unavailable", "unknown"]
NOTHING_WRITTEN = "Nothing was written."
NOT_KNOWN = "Whether anything was written is not known: reload the app and check the record before saving again."
MAX_DIAGNOSTICS = 500


@dataclass(frozen=True)
class WriteResult:
    # "BodyStructure/abc/_history/1", ... from the response entries, in entry order (relative to the base
    # when the server answers absolute URLs under it)
    written: tuple[str, ...]


class WriteRefused(Exception):
    """The transaction was not applied (or not known to be): ``message`` says what to do."""

    def __init__(self, kind: WriteRefusedKind, message: str, *, status: int | None = None,
                 written: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.kind: WriteRefusedKind = kind
        self.status = status
        self.message = message
        self.written = written


def _diagnostics(body: bytes, token: str) -> str:
    """``: <the OperationOutcome's diagnostics>`` (redacted, shortened), or empty."""
    try:
        outcome = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return ""
    try:
        texts = outcome_texts(outcome)
    except MalformedBundleError:
        return ""
    text = "; ".join(t for t in texts if t).replace(token, REDACTED)
    return f": {text[:MAX_DIAGNOSTICS]}" if text else ""


def _refusal(status: int, body: bytes, token: str) -> WriteRefused:
    why = _diagnostics(body, token)
    if status == 401:
        return WriteRefused("expired", "Your session has expired: open the app again from the chart. "
                            + NOTHING_WRITTEN, status=status)
    if status == 403:
        return WriteRefused("forbidden", f"The EHR refused the write ({status}){why}. " + NOTHING_WRITTEN, status=status)
    if status in (409, 412):
        return WriteRefused("conflict", f"The record changed since the form was shown ({status}){why}. "
                            "Reload the app and enter the measurements again. " + NOTHING_WRITTEN, status=status)
    if status >= 500:
        return WriteRefused("unavailable", f"The FHIR server failed ({status}){why}. A transaction is all or nothing: "
                            f"{NOTHING_WRITTEN} Try again in a moment.", status=status)
    if 300 <= status < 400:
        return WriteRefused("invalid", f"The FHIR server answered with a redirect ({status}); not followed. "
                            + NOTHING_WRITTEN, status=status)
    return WriteRefused("invalid", f"The FHIR server rejected the record ({status}){why}. " + NOTHING_WRITTEN,
                        status=status)


def relative_location(location: str, base: str) -> str:
    """``Type/id/_history/n`` of a location under ``base`` (servers answer absolute URLs); others as given."""
    prefix = base.rstrip("/") + "/"
    return location[len(prefix):] if location.startswith(prefix) else location


def _locations(response: dict, expected: int, status: int) -> tuple[str, ...]:
    """The written locations of a transaction-response; WriteRefused ``unknown`` when it is not one."""
    entries = response.get("entry") if isinstance(response, dict) else None
    if not isinstance(response, dict) or response.get("resourceType") != "Bundle" \
            or response.get("type") != "transaction-response" or not isinstance(entries, list):
        kind = response.get("type") or response.get("resourceType") if isinstance(response, dict) else type(response).__name__
        raise WriteRefused("unknown", f"The FHIR server answered {status} with a {kind}, not a transaction-response. "
                           + NOT_KNOWN, status=status)
    found = []
    for entry in entries:
        answer = entry.get("response") if isinstance(entry, dict) else None
        if isinstance(answer, dict) and isinstance(answer.get("location"), str):
            found.append(answer["location"])
    if len(entries) != expected or len(found) != expected:
        raise WriteRefused("unknown", f"The FHIR server's transaction-response has {len(entries)} entries and "
                           f"{len(found)} locations for the {expected} sent. " + NOT_KNOWN,
                           status=status, written=tuple(found))
    return tuple(found)


def _success(answer: httpx.Response, expected: int, base: str) -> WriteResult:
    if len(answer.content) > MAX_RESPONSE_BYTES:
        raise WriteRefused("unknown", "The FHIR server's answer is too large to read. " + NOT_KNOWN, status=answer.status_code)
    try:
        body = json.loads(answer.content)
    except (ValueError, RecursionError):
        raise WriteRefused("unknown", f"The FHIR server answered {answer.status_code} with a body that is not JSON. "
                           + NOT_KNOWN, status=answer.status_code) from None
    try:
        found = _locations(body, expected, answer.status_code)
    except WriteRefused as exc:
        exc.written = tuple(relative_location(w, base) for w in exc.written)
        raise
    return WriteResult(tuple(relative_location(w, base) for w in found))


async def _post(client: httpx.AsyncClient, base: str, token: str, bundle: dict, timeout: float) -> httpx.Response:
    """The one POST; transport failures become WriteRefused ``unavailable`` (nothing sent) or ``unknown``."""
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Authorization": f"Bearer {token}"}
    try:
        return await client.post(base.rstrip("/"), content=json.dumps(bundle).encode(), headers=headers,
                                 timeout=httpx.Timeout(timeout), follow_redirects=False)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise WriteRefused("unavailable", f"The FHIR server could not be reached ({type(exc).__name__}). "
                           f"{NOTHING_WRITTEN} Try again in a moment.") from None
    except httpx.TimeoutException as exc:
        raise WriteRefused("unknown", f"The FHIR server did not answer within {timeout:g} s ({type(exc).__name__}). "
                           + NOT_KNOWN) from None
    except httpx.HTTPError as exc:
        raise WriteRefused("unknown", f"The exchange with the FHIR server failed ({type(exc).__name__}). "
                           + NOT_KNOWN) from None


async def write_transaction(client: httpx.AsyncClient, base: str, token: str, bundle: dict, *,
                            timeout: float) -> WriteResult:
    """POST ``bundle`` (a transaction) to ``base`` with ``token``: what was written, or WriteRefused."""
    if not token or not BEARER_TOKEN.fullmatch(token):
        raise WriteRefused("expired", "The session holds no usable access token: open the app again from the chart. "
                           + NOTHING_WRITTEN)
    if bundle.get("type") != "transaction" or not bundle.get("entry"):
        raise ValueError("write_transaction sends a transaction Bundle with entries")
    answer = await _post(client, base, token, bundle, timeout)
    log.info("FHIR transaction of %d entries answered %s", len(bundle["entry"]), answer.status_code)
    if not 200 <= answer.status_code < 300:
        raise _refusal(answer.status_code, answer.content, token)
    return _success(answer, len(bundle["entry"]), base)
