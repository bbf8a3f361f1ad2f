"""An async FHIR R4 client over a shared, pooled ``httpx.AsyncClient``.

One :class:`HttpFhirSource` is one base URL with an optional bearer token. It:

- sends the token only below the base URL: ``next`` links are followed only on
  its origin (scheme, host and port) and within its path, up to ``MAX_PAGES``
  pages, refusing a link it has already followed (a loop);
- never follows redirects (any 3xx is an unusable answer), so the token cannot
  be bounced to another host;
- bounds every request by httpx's own timeouts (connect, send, each read, pool)
  of ``timeout_seconds`` or what is left of ``deadline_seconds`` (the whole call's),
  whichever is less, and the whole body by the same bound, checked between
  chunks. Nothing cancels a request from outside: a request cancelled mid-way
  can leave httpcore's pool with a connection that never connects (see
  ``service.fhir.limits``), so the exchange runs shielded from its caller's
  cancellation and ends by its own timeouts;
- takes a slot per request from ``slots`` (per origin and in all, below the
  pool's size; ``service.fhir.limits``) and counts every answer's bytes and every
  search's resources against the assessment's ``budget``;
- decodes a large JSON body in a worker thread, not on the event loop;
- retries a GET answered 429/502/503/504 at most ``MAX_RETRIES`` times, waiting
  what ``Retry-After`` asks (seconds or an HTTP date) or an exponential backoff;
  a server asking for longer than ``MAX_RETRY_AFTER_SECONDS`` is not waited for.
  500 and other errors are not retried: they are not transient by definition;
- asks for ``page_size`` resources per page (``_count``) when the query names none.

Every failure leaves as one of ``service.fhir.errors``. No message carries the
token: server text quoted in messages and outcomes is redacted, a token that
could not be sent in a header is refused before any request, and URLs are
named by path only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import anyio.to_thread
import httpx

from service.fhir.allowlist import Origin
from service.fhir.errors import (
    FhirAuthError,
    FhirError,
    FhirNotFoundError,
    FhirResponseError,
    FhirServerNotAllowedError,
    FhirUnavailableError,
)
from service.fhir.ids import FHIR_ID
from service.fhir.limits import AssessmentBudget, FhirBusyError, RequestSlots, Slot
from service.fhir.outcomes import fhir_outcome
from service.fhir.source import MalformedBundleError, SearchResult, outcome_texts, read_search_page
from service.json_parse import parse_json

log = logging.getLogger("hcc_cds.fhir")

DEFAULT_PAGE_SIZE = 100
MAX_PAGES = 50
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRIES = 2
BACKOFF_SECONDS = 0.2
MAX_RETRY_AFTER_SECONDS = 2.0
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# a body at least this large is decoded in a worker thread (a smaller one costs less than the hand-over)
DECODE_IN_THREAD_BYTES = 256 * 1024
_EXCHANGES: set[asyncio.Task] = set()  # exchanges whose caller was cancelled, running to their own end
FHIR_JSON = "application/fhir+json"
REDACTED = "[redacted]"

RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
# what an HTTP header value can carry safely: visible ASCII, no spaces (RFC 6750 b64token is stricter)
BEARER_TOKEN = re.compile(r"^[\x21-\x7e]+$")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_delay(status: int, retry_after: str | None, attempt: int) -> float | None:
    """Seconds to wait before retrying attempt ``attempt`` (0-based), or None when the answer is final."""
    if status not in RETRY_STATUSES or attempt >= MAX_RETRIES:
        return None
    asked = parse_retry_after(retry_after)
    if asked is None:
        return BACKOFF_SECONDS * (2**attempt)
    if asked > MAX_RETRY_AFTER_SECONDS:
        return None  # the server asks for longer than one assessment may wait
    return asked


def _checked_token(token: str | None) -> str | None:
    if not token:
        return None
    if not BEARER_TOKEN.fullmatch(token):
        # the message must not quote the token
        raise FhirAuthError("the FHIR access token cannot be sent: it must be visible ASCII without spaces")
    return token


FhirCallObserver = Callable[[str, float], None]


class HttpFhirSource:
    """One FHIR server, one token; the ``httpx.AsyncClient`` is shared and pooled by the app."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        token: str | None = None,
        timeout_seconds: float = 5.0,
        deadline_seconds: float | None = None,
        page_size: int | None = DEFAULT_PAGE_SIZE,
        sleep: Sleep = asyncio.sleep,
        observe: FhirCallObserver | None = None,
        slots: RequestSlots | None = None,
        budget: AssessmentBudget | None = None,
    ) -> None:
        self._client = client
        self._observe = observe
        self._origin = Origin.parse(base_url)
        self._base = self._origin.base_url
        self._token = _checked_token(token)
        self._headers = {"Accept": FHIR_JSON}
        if self._token:
            self._headers["Authorization"] = f"Bearer {self._token}"
        self._timeout_seconds = timeout_seconds
        self._deadline_seconds = deadline_seconds
        self._deadline_at: float | None = None  # set by the first request: one source serves one call
        self._page_size = page_size
        self._sleep = sleep
        self._slots = slots
        self._budget = budget
        self._origin_key = (self._origin.scheme, self._origin.host, self._origin.port)

    def __repr__(self) -> str:
        return f"HttpFhirSource({self._base!r}, token={'set' if self._token else 'none'})"

    @property
    def base_url(self) -> str:
        return self._base

    # -- FhirSource ----------------------------------------------------------------------------------

    async def read(self, resource_type: str, resource_id: str) -> dict:
        """``GET [base]/{type}/{id}``: the resource, :class:`FhirNotFoundError` (404/410) or another FhirError."""
        _check_resource_type(resource_type)
        if not FHIR_ID.fullmatch(resource_id) or set(resource_id) == {"."}:
            raise FhirNotFoundError(f"{resource_type}/{resource_id[:64]!r} is not a valid FHIR id")
        label = f"{resource_type}/{resource_id}"
        answer = await self._get(f"{self._base}/{resource_type}/{resource_id}")
        if answer.status in (404, 410):
            raise FhirNotFoundError(f"{label} not found on the FHIR server ({answer.status})")
        body = await self._decode(answer, f"read of {label}")
        if self._budget is not None:
            self._budget.add_resources(1)
        if body.get("resourceType") != resource_type:
            raise FhirResponseError(f"read of {label} returned a {body.get('resourceType')}")
        if str(body.get("id")) != resource_id:
            raise FhirResponseError(f"read of {label} returned {resource_type}/{body.get('id')}")
        return body

    async def search(self, resource_type: str, params: list[tuple[str, str]]) -> SearchResult:
        """``GET [base]/{type}?params`` and every ``next`` page."""
        _check_resource_type(resource_type)
        if self._page_size and not any(name == "_count" for name, _ in params):
            params = [*params, ("_count", str(self._page_size))]
        # kept as an httpx.URL to the request: its text is checked and encoded once, not again by httpx
        first = httpx.URL(f"{self._base}/{resource_type}", params=params)
        return await self._collect_pages(first, f"search {resource_type}")

    def can_follow(self, url: str) -> bool:
        try:
            self._followable(url, self._base + "/")
        except FhirError:
            return False
        return True

    async def follow(self, url: str) -> SearchResult:
        return await self._collect_pages(self._followable(url, self._base + "/"), "search continued from a next link")

    # -- paging --------------------------------------------------------------------------------------

    def _followable(self, link: str, relative_to: str) -> httpx.URL:
        """``link`` made absolute; :class:`FhirResponseError` unless it is below the base URL (its origin,
        and its path or under it: the token goes nowhere the base URL does not name)."""
        absolute = urljoin(relative_to, link)
        try:
            origin = Origin.parse(absolute, allow_query=True)
        except FhirServerNotAllowedError as exc:
            raise FhirResponseError("the FHIR server sent an unusable next link; not followed") from exc
        if not origin.same_origin(self._origin):
            raise FhirResponseError("the FHIR server sent a next link to another origin; not followed")
        if not origin.within(self._origin):
            raise FhirResponseError("the FHIR server sent a next link outside its base URL's path; not followed")
        return httpx.URL(absolute)

    async def _collect_pages(self, url: httpx.URL, label: str) -> SearchResult:
        result = SearchResult()
        visited: set[str] = set()
        next_url: httpx.URL | None = url
        while next_url is not None:
            text = str(next_url)
            if text in visited:
                raise FhirResponseError(f"{label}: the FHIR server's next links loop")
            if len(visited) >= MAX_PAGES:
                raise FhirResponseError(f"{label}: more than {MAX_PAGES} pages; the result would be incomplete")
            visited.add(text)
            try:
                page = read_search_page(await self._search_page(next_url, label))
            except MalformedBundleError as exc:
                raise FhirResponseError(f"{label}: the FHIR server sent a malformed Bundle ({exc})") from exc
            if self._budget is not None:
                self._budget.add_resources(len(page.resources))
            page.outcomes = [self._redact(text) for text in page.outcomes]
            result.add(page)
            next_url = self._followable(page.next_url, text) if page.next_url else None
        return result

    async def _search_page(self, url: httpx.URL, label: str) -> dict:
        answer = await self._get(url)
        if answer.status in (404, 410):
            raise FhirResponseError(f"{label}: the FHIR server does not serve this search ({answer.status})")
        body = await self._decode(answer, label)
        if body.get("resourceType") == "OperationOutcome":
            try:
                texts = outcome_texts(body)
            except MalformedBundleError:
                texts = ["(a malformed OperationOutcome)"]
            raise FhirResponseError(
                f"{label}: the FHIR server answered with an OperationOutcome: " + "; ".join(self._redact(t) for t in texts)
            )
        if body.get("resourceType") != "Bundle":
            raise FhirResponseError(f"{label} returned a {body.get('resourceType')}, not a Bundle")
        return body

    # -- one GET -------------------------------------------------------------------------------------

    async def _get(self, url: httpx.URL | str) -> _Answer:
        """One GET with bounded retries on 429/502/503/504."""
        attempt = 0
        while True:
            answer = await self._send(url)
            delay = retry_delay(answer.status, answer.headers.get("Retry-After"), attempt)
            if delay is None or delay >= self._remaining():
                return answer
            log.info("FHIR GET %s answered %s; retry %d in %.2f s", self._resource_type_of(url), answer.status, attempt + 1, delay)
            await self._sleep(delay)
            attempt += 1

    # -- the deadline of the whole call ---------------------------------------------------------------

    def _remaining(self) -> float:
        """Seconds left of the call's deadline (infinite without one); the first request starts the clock."""
        if self._deadline_seconds is None:
            return math.inf
        now = time.monotonic()
        if self._deadline_at is None:
            self._deadline_at = now + self._deadline_seconds
        return self._deadline_at - now

    def _bound(self) -> float:
        """How long the next request may take: the timeout, or what is left of the deadline if less."""
        remaining = self._remaining()
        if remaining <= 0:
            raise FhirUnavailableError(f"the FHIR server did not answer within {self._deadline_seconds:g} s")
        return min(self._timeout_seconds, remaining)

    def _late(self, bound: float, outcome: str | None = None) -> FhirUnavailableError:
        seconds = self._deadline_seconds if bound < self._timeout_seconds else self._timeout_seconds
        return FhirUnavailableError(f"the FHIR server did not answer within {seconds:g} s", outcome=outcome)

    async def _send(self, url: httpx.URL | str) -> _Answer:
        """One GET in its own slot, timed and counted by outcome (``observe``) when the app has metrics.

        The exchange runs as its own task, shielded: if this call is cancelled (the caller's deadline,
        a client gone), the request still ends by its own timeouts and frees its connection and slot.
        """
        bound = self._bound()
        slot = await self._slots.acquire(self._origin_key, wait=bound) if self._slots is not None else None
        try:
            bound = self._bound()  # less may be left after the wait for a slot
        except BaseException:
            if slot is not None:
                slot.release()
            raise
        exchange = asyncio.get_running_loop().create_task(self._observed(url, bound, slot))
        _EXCHANGES.add(exchange)
        exchange.add_done_callback(_exchange_done)
        return await asyncio.shield(exchange)

    async def _observed(self, url: httpx.URL | str, bound: float, slot: Slot | None) -> _Answer:
        try:
            if slot is not None:
                slot.running(bound)
            if self._observe is None:
                return await self._send_once(url, bound)
            started = time.perf_counter()
            try:
                answer = await self._send_once(url, bound)
            except BaseException as exc:
                self._observe(fhir_outcome(error=exc), time.perf_counter() - started)
                raise
            self._observe(fhir_outcome(status=answer.status), time.perf_counter() - started)
            return answer
        finally:
            if slot is not None:
                slot.release()

    async def _send_once(self, url: httpx.URL | str, bound: float) -> _Answer:
        """One GET bounded by httpx's timeouts (connect, write, each read, pool) and, between the body's
        chunks, by ``bound`` in all; never cancelled from outside."""
        started = time.monotonic()
        try:
            async with self._client.stream(
                "GET", url, headers=self._headers, timeout=httpx.Timeout(bound), follow_redirects=False
            ) as response:
                body = await self._read_capped(response, started, bound)
                return _Answer(response.status_code, response.headers, body)
        except TimeoutError as exc:
            raise self._late(bound, outcome="timeout") from exc
        except httpx.PoolTimeout as exc:  # the pool was full: our side is busy, not the FHIR server slow
            raise FhirBusyError(
                "all of this worker's HTTP connections are in use; try again shortly", retry_after=bound, outcome="timeout"
            ) from exc
        except httpx.TimeoutException as exc:
            raise FhirUnavailableError(f"the FHIR server timed out ({type(exc).__name__})", outcome="timeout") from exc
        except httpx.DecodingError as exc:
            raise FhirResponseError("the FHIR server sent a body that cannot be decoded") from exc
        except httpx.TransportError as exc:
            raise FhirUnavailableError(f"the FHIR server is unreachable ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise FhirUnavailableError(f"the FHIR request failed ({type(exc).__name__})") from exc
        except httpx.InvalidURL as exc:
            raise FhirResponseError("the FHIR request URL is invalid") from exc

    async def _read_capped(self, response: httpx.Response, started: float, bound: float) -> bytes:
        """The body, at most ``MAX_RESPONSE_BYTES`` and what the assessment's budget has left, within ``bound``."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit():
            self._count_bytes(int(declared), dry_run=True)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise FhirResponseError(f"the FHIR server sent more than {MAX_RESPONSE_BYTES} bytes in one answer")
            self._count_bytes(len(chunk))
            chunks.append(chunk)
            if time.monotonic() - started > bound:
                raise self._late(bound)
        return b"".join(chunks)

    def _count_bytes(self, count: int, *, dry_run: bool = False) -> None:
        if self._budget is None:
            return
        if dry_run:
            if self._budget.bytes_read + count > self._budget.max_bytes:
                self._budget.add_bytes(count)  # raises, naming the limit
            return
        self._budget.add_bytes(count)

    async def _decode(self, answer: _Answer, label: str) -> dict:
        """The JSON resource of a 2xx answer; any other status becomes its FhirError."""
        status = answer.status
        if status in (401, 403):
            raise FhirAuthError(f"the FHIR server refused the access token ({status})")
        if 300 <= status < 400:
            raise FhirResponseError(f"{label}: the FHIR server answered with a redirect ({status}); not followed")
        if status == 429 or status >= 500:
            raise FhirUnavailableError(f"{label}: the FHIR server is unavailable ({status})")
        if status >= 400:
            raise FhirResponseError(f"{label}: the FHIR server rejected the request ({status})" + self._why(answer))
        if not 200 <= status < 300:
            raise FhirResponseError(f"{label}: unexpected status {status}")
        try:
            if len(answer.body) >= DECODE_IN_THREAD_BYTES:
                body = await anyio.to_thread.run_sync(parse_json, answer.body)
            else:
                body = parse_json(answer.body)
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
            raise FhirResponseError(f"{label}: the FHIR server sent a body that is not JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FhirResponseError(f"{label}: the FHIR server sent JSON that is not a FHIR resource")
        return body

    def _why(self, answer: _Answer) -> str:
        """``: <diagnostics>`` of an OperationOutcome error body, redacted; empty otherwise."""
        try:
            body = json.loads(answer.body)
        except (ValueError, RecursionError):
            return ""
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            try:
                texts = outcome_texts(body)
            except MalformedBundleError:
                return ""
            return ": " + "; ".join(self._redact(t) for t in texts) if texts else ""
        return ""

    def _resource_type_of(self, url: httpx.URL | str) -> str:
        """The resource type a URL asks for (never its id or query, which may name the patient), for logs."""
        path = str(url).split("?", 1)[0]
        rest = path[len(self._base):] if path.startswith(self._base) else path.rsplit("/", 2)[-2:][0]
        return rest.strip("/").split("/", 1)[0] or "(base)"

    def _redact(self, text: str) -> str:
        return text.replace(self._token, REDACTED) if self._token else text


def _exchange_done(task: asyncio.Task) -> None:
    """Forget a finished exchange; retrieve its error (its caller may have gone) so it is not logged as lost."""
    _EXCHANGES.discard(task)
    if not task.cancelled():
        task.exception()


def _check_resource_type(resource_type: str) -> None:
    if not RESOURCE_TYPE.fullmatch(resource_type):
        raise FhirResponseError(f"not a FHIR resource type: {resource_type[:64]!r}")

