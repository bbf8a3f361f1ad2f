"""service.fhir.limits: slots per FHIR origin and per worker, the per-assessment budget, a stuck pool."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from service.errors import to_api_error
from service.fhir.client import HttpFhirSource
from service.fhir.limits import AssessmentBudget, FhirBusyError, FhirLimitError, RequestSlots, stuck_connections

A = ("https", "a.org", 443)
B = ("https", "b.org", 443)


def test_a_full_origin_is_busy_after_the_wait_and_other_origins_are_not_held_up():
    async def main():
        slots = RequestSlots(per_origin=2, total=10)
        held = [await slots.acquire(A, wait=1) for _ in range(2)]
        with pytest.raises(FhirBusyError) as busy:
            await slots.acquire(A, wait=0.05)
        other = await slots.acquire(B, wait=0.05)  # another origin has its own slots
        other.release()
        held[0].release()
        again = await slots.acquire(A, wait=0.05)  # a released slot is taken at once
        for slot in (again, held[1]):
            slot.release()
        return busy.value, slots

    error, slots = asyncio.run(main())
    assert "HCC_FHIR_MAX_CONCURRENT_PER_ORIGIN=2" in str(error) and error.retry_after >= 1
    assert not slots._origins and not slots._users
    api = to_api_error(error, "hook")
    assert api.status == 503 and api.headers == {"Retry-After": "1"}
    assert to_api_error(error, "rest").status == 503


def test_the_worker_total_is_a_limit_too():
    async def main():
        slots = RequestSlots(per_origin=5, total=1)
        held = await slots.acquire(A, wait=1)
        with pytest.raises(FhirBusyError) as busy:
            await slots.acquire(B, wait=0.05)
        held.release()
        return busy.value

    assert "in this worker (1)" in str(asyncio.run(main()))


def test_a_cancelled_wait_gives_its_place_back():
    async def main():
        slots = RequestSlots(per_origin=1, total=5)
        held = await slots.acquire(A, wait=1)
        waiter = asyncio.create_task(slots.acquire(A, wait=5))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        held.release()
        slot = await slots.acquire(A, wait=0.05)
        slot.release()
        return slots

    slots = asyncio.run(main())
    assert not slots._origins


def test_a_full_httpx_pool_is_reported_as_busy_not_as_the_fhir_server_timing_out():
    def handler(request):
        raise httpx.PoolTimeout("no connection available", request=request)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await HttpFhirSource(client, "https://ehr.org/fhir").read("Patient", "p1")

    with pytest.raises(FhirBusyError) as busy:
        asyncio.run(main())
    assert "connections are in use" in str(busy.value) and "did not answer" not in str(busy.value)


def test_the_budget_names_the_setting():
    budget = AssessmentBudget(max_bytes=10, max_resources=2)
    budget.add_bytes(10)
    with pytest.raises(FhirLimitError, match="HCC_FHIR_MAX_BYTES"):
        budget.add_bytes(1)
    budget.add_resources(2)
    with pytest.raises(FhirLimitError, match="HCC_FHIR_MAX_RESOURCES"):
        budget.add_resources(1)
    assert to_api_error(FhirLimitError("x"), "hook").status == 502


def test_a_declared_length_beyond_the_budget_is_refused_before_reading():
    def handler(request):
        return httpx.Response(200, headers={"Content-Length": "5000"}, content=b"{" + b" " * 4998 + b"}")

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            source = HttpFhirSource(client, "https://ehr.org/fhir", budget=AssessmentBudget(1000, 10))
            return await source.read("Patient", "p1")

    with pytest.raises(FhirLimitError, match="HCC_FHIR_MAX_BYTES"):
        asyncio.run(main())


def test_no_stuck_connection_without_a_pool_to_inspect():
    assert stuck_connections(None) == 0
