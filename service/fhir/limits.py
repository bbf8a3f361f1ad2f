"""How much FHIR traffic one worker and one assessment may cause, and whether the shared pool is stuck.

Per FHIR origin and per worker (:class:`RequestSlots`)
    At most ``per_origin`` requests to one origin (scheme, host, port) and ``total`` requests to all
    origins are in flight at once; ``total`` is below the shared ``httpx`` pool's ``max_connections``,
    so httpx never queues a FHIR request for a connection. A request waits for its slot (an
    ``asyncio.Semaphore``: cancelling the wait is safe) at most as long as the request itself may
    take; otherwise :class:`FhirBusyError`, which the API answers 503 with ``Retry-After``. One slow
    FHIR server holds its own slots only: calls to other servers are not starved, and a wait for a
    slot is never reported as that server timing out.

Per assessment (:class:`AssessmentBudget`)
    The bytes of every FHIR answer and the resources of every search are counted against
    ``HCC_FHIR_MAX_BYTES`` and ``HCC_FHIR_MAX_RESOURCES``; beyond either, :class:`FhirLimitError`
    (a 502 naming the setting): an assessment from part of the record could be wrong unnoticed.

Stuck pool (:func:`stuck_connections`)
    httpcore 1.0 leaves a connection "CONNECTING" for ever when a request queued for a connection
    is cancelled from outside just as one is assigned to it; enough of them and every later request
    waits for the pool. The client never cancels a request from outside (it is bounded by httpx's
    own timeouts, and shielded from its caller's cancellation), and ``/readyz`` reports such
    connections (and requests running far past their bound) as ``fhir_pool: failed``.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

import httpx

from service.fhir.errors import FhirResponseError, FhirUnavailableError

DEFAULT_PER_ORIGIN = 40
HTTP_POOL_MAX_CONNECTIONS = 100
HTTP_POOL_LIMITS = httpx.Limits(max_connections=HTTP_POOL_MAX_CONNECTIONS, max_keepalive_connections=20)
# FHIR requests of all origins at once: below the pool's size (the rest: JWKS fetches)
DEFAULT_TOTAL = HTTP_POOL_MAX_CONNECTIONS - 10
# a request still running this long past its own bound is stuck (its timeouts did not end it)
STALL_GRACE_SECONDS = 5.0


class FhirBusyError(FhirUnavailableError):
    """Too many FHIR requests are in flight (to this origin, or in all): try again shortly."""

    def __init__(self, message: str, retry_after: float, *, outcome: str | None = None) -> None:
        super().__init__(message, outcome=outcome)
        self.retry_after = max(1, math.ceil(retry_after))


class FhirLimitError(FhirResponseError):
    """The FHIR answers of one assessment exceed a configured limit."""


@dataclass
class _InFlight:
    started: float
    bound: float


@dataclass
class RequestSlots:
    """Concurrency of FHIR requests per origin and in all, for one worker (one event loop)."""

    per_origin: int = DEFAULT_PER_ORIGIN
    total: int = DEFAULT_TOTAL
    _origins: dict[tuple[str, str, int], asyncio.Semaphore] = field(default_factory=dict)
    _users: dict[tuple[str, str, int], int] = field(default_factory=dict)
    _all: asyncio.Semaphore | None = None
    _in_flight: dict[int, _InFlight] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.per_origin < 1 or self.total < 1:
            raise ValueError("FHIR request limits must be at least 1")

    async def acquire(self, origin: tuple[str, str, int], wait: float) -> Slot:
        """A slot for one request to ``origin``, waiting at most ``wait`` seconds; else FhirBusyError."""
        if self._all is None:
            self._all = asyncio.Semaphore(self.total)
        semaphore = self._origins.get(origin)
        if semaphore is None:
            semaphore = self._origins[origin] = asyncio.Semaphore(self.per_origin)
        self._users[origin] = self._users.get(origin, 0) + 1
        started = time.monotonic()
        try:
            try:
                await _acquire_within(semaphore, wait)
            except TimeoutError:
                raise FhirBusyError(
                    f"too many requests to this FHIR server are in progress (HCC_FHIR_MAX_CONCURRENT_PER_ORIGIN="
                    f"{self.per_origin}); try again shortly",
                    retry_after=wait,
                ) from None
            try:
                await _acquire_within(self._all, wait - (time.monotonic() - started))
            except BaseException as exc:
                semaphore.release()
                if isinstance(exc, TimeoutError):
                    raise FhirBusyError(
                        f"too many FHIR requests are in progress in this worker ({self.total}); try again shortly",
                        retry_after=wait,
                    ) from None
                raise
        except BaseException:
            self._forget(origin)
            raise
        return Slot(self, origin, semaphore)

    def _forget(self, origin: tuple[str, str, int]) -> None:
        self._users[origin] -= 1
        if not self._users[origin]:  # nobody holds or waits for this origin: drop its semaphore
            del self._users[origin]
            del self._origins[origin]

    def _release(self, slot: Slot) -> None:
        self._in_flight.pop(id(slot), None)
        assert self._all is not None
        self._all.release()
        slot.semaphore.release()
        self._forget(slot.origin)

    def in_flight(self) -> int:
        return len(self._in_flight)

    def stalled(self, now: float | None = None) -> int:
        """Requests still running long after their own bound (connect, send, receive) should have ended them."""
        now = time.monotonic() if now is None else now
        return sum(1 for r in self._in_flight.values() if now - r.started > 2 * r.bound + STALL_GRACE_SECONDS)


async def _acquire_within(semaphore: asyncio.Semaphore, wait: float) -> None:
    """Acquire ``semaphore`` within ``wait`` seconds, else TimeoutError. A free semaphore is taken at once,
    without arming a timer: ``acquire`` would not suspend then, so the timer could never fire (the usual case
    of a hook call's requests, each of which otherwise paid for two timers)."""
    if not semaphore.locked():
        await semaphore.acquire()
        return
    async with asyncio.timeout(max(wait, 0.0)):
        await semaphore.acquire()


@dataclass(eq=False)
class Slot:
    slots: RequestSlots
    origin: tuple[str, str, int]
    semaphore: asyncio.Semaphore
    released: bool = False

    def running(self, bound: float) -> None:
        self.slots._in_flight[id(self)] = _InFlight(time.monotonic(), bound)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.slots._release(self)


@dataclass
class AssessmentBudget:
    """What the FHIR answers of one assessment may hold in all."""

    max_bytes: int
    max_resources: int
    bytes_read: int = 0
    resources: int = 0

    def add_bytes(self, count: int) -> None:
        self.bytes_read += count
        if self.bytes_read > self.max_bytes:
            raise FhirLimitError(
                f"the FHIR server's answers for this assessment exceed HCC_FHIR_MAX_BYTES ({self.max_bytes} bytes); "
                "the record is too large to assess"
            )

    def add_resources(self, count: int) -> None:
        self.resources += count
        if self.resources > self.max_resources:
            raise FhirLimitError(
                f"the FHIR server's answers for this assessment hold more than HCC_FHIR_MAX_RESOURCES "
                f"({self.max_resources}) resources; the record is too large to assess"
            )


def stuck_connections(client: httpx.AsyncClient | None) -> int:
    """Connections of the client's pool left "CONNECTING" with no request assigned (they never connect).

    Reads httpcore's pool (``httpx.AsyncHTTPTransport`` has no public view of it); 0 when it cannot.
    """
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    connections = getattr(pool, "connections", None)
    requests = getattr(pool, "_requests", None)
    if connections is None or requests is None:
        return 0
    assigned = {id(getattr(r, "connection", None)) for r in list(requests)}
    return sum(1 for c in connections if id(c) not in assigned and getattr(c, "info", lambda: "")() == "CONNECTING")
