"""An async FHIR R4 client over a shared ``httpx.AsyncClient``.

Reads and searches one base URL with an optional bearer token; follows ``next``
links on the base URL's origin only (page cap, loop detection); retries GETs on
429/502/503/504 a bounded number of times, honouring ``Retry-After``; never
follows redirects. Every failure leaves as one of ``service.fhir.errors``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from service.fhir.allowlist import Origin
from service.fhir.errors import (
    FhirAuthError,
    FhirNotFoundError,
    FhirResponseError,
    FhirServerNotAllowedError,
    FhirUnavailableError,
)
from service.fhir.source import SearchResult

MAX_PAGES = 50
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRIES = 2
BACKOFF_SECONDS = 0.2
MAX_RETRY_AFTER_SECONDS = 2.0
FHIR_JSON = "application/fhir+json"


def _retry_after_seconds(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("Retry-After")
    delay = BACKOFF_SECONDS * (2**attempt)
    if header:
        try:
            delay = float(header)
        except ValueError:
            try:
                delay = (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                pass
    return max(0.0, min(delay, MAX_RETRY_AFTER_SECONDS))


class HttpFhirSource:
    """One FHIR server, one token; the ``httpx.AsyncClient`` is shared and pooled."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        token: str | None = None,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._origin = Origin.parse(self._base)
        self._headers = {"Accept": FHIR_JSON}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout = httpx.Timeout(timeout_seconds)

    async def _get(self, url: str, params: list[tuple[str, str]] | None = None) -> dict:
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = await self._client.get(
                    url, params=params, headers=self._headers, timeout=self._timeout, follow_redirects=False
                )
            except httpx.TimeoutException as exc:
                raise FhirUnavailableError(f"FHIR server timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise FhirUnavailableError(f"FHIR server unreachable ({type(exc).__name__})") from exc
            if response.status_code in RETRY_STATUSES and attempt < MAX_RETRIES:
                await asyncio.sleep(_retry_after_seconds(response, attempt))
                continue
            return self._decode(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _decode(self, response: httpx.Response) -> dict:
        status = response.status_code
        if status in (401, 403):
            raise FhirAuthError(f"FHIR server refused the access token ({status})")
        if status in (404, 410):
            raise FhirNotFoundError(f"FHIR server: not found ({status})")
        if 300 <= status < 400:
            raise FhirResponseError(f"FHIR server answered with a redirect ({status}); redirects are not followed")
        if status >= 500 or status == 429:
            raise FhirUnavailableError(f"FHIR server error ({status})")
        if status >= 400:
            raise FhirResponseError(f"FHIR server rejected the request ({status})")
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            raise FhirResponseError("FHIR server sent a body that is not JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FhirResponseError("FHIR server sent JSON that is not a FHIR resource")
        return body

    async def read(self, resource_type: str, resource_id: str) -> dict:
        body = await self._get(f"{self._base}/{resource_type}/{resource_id}")
        if body.get("resourceType") != resource_type:
            raise FhirResponseError(f"read of {resource_type} returned a {body.get('resourceType')}")
        return body

    async def search(self, resource_type: str, params: list[tuple[str, str]]) -> SearchResult:
        result = SearchResult()
        seen: set[str] = set()
        url: str | None = f"{self._base}/{resource_type}"
        page_params: list[tuple[str, str]] | None = params
        pages = 0
        while url is not None:
            pages += 1
            if pages > MAX_PAGES:
                raise FhirResponseError(f"search {resource_type} exceeded {MAX_PAGES} pages")
            body = await self._get(url, page_params)
            if body.get("resourceType") != "Bundle":
                raise FhirResponseError(f"search {resource_type} returned a {body.get('resourceType')}, not a Bundle")
            for entry in body.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if not isinstance(resource, dict):
                    continue
                mode = (entry.get("search") or {}).get("mode")
                if resource.get("resourceType") == "OperationOutcome":
                    for issue in resource.get("issue") or []:
                        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
                        result.outcomes.append(str(text))
                        if issue.get("code") == "not-supported" or "unknown search parameter" in str(text).lower():
                            result.unfiltered = True
                    continue
                if mode in (None, "match", "include"):
                    result.resources.append(resource)
            url = self._next_link(body, seen)
            page_params = None
        return result

    def _next_link(self, bundle: dict, seen: set[str]) -> str | None:
        for link in bundle.get("link") or []:
            if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
                nxt = str(link["url"])
                try:
                    origin = Origin.parse(nxt, allow_query=True)
                except FhirServerNotAllowedError as exc:
                    raise FhirResponseError("FHIR server sent an unusable next link") from exc
                if not origin.same_origin(self._origin):
                    raise FhirResponseError("FHIR server sent a next link to another origin; not followed")
                if nxt in seen:
                    raise FhirResponseError("FHIR server's next links loop")
                seen.add(nxt)
                return nxt
        return None
