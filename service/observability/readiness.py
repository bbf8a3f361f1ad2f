"""``GET /readyz``: may this replica take traffic? Checks are injected async callables.

200 ``{"status": "ready", "checks": {"benchmark_tables": "ok", "database": "ok", "fhir_pool": "ok", "migrations": "ok"}}``
when every check passes; 503 ``{"status": "not ready", "checks": {...}}`` naming each check's result
(``ok``, ``failed``, ``timeout`` or ``error``) otherwise. Never a 500: a check that raises is
``error``, one slower than the timeout is ``timeout``, and any other fault is a 503 too.

``GET /healthz`` (liveness) stays as it is: it says the process serves; ``/readyz`` says its
dependencies do. Point a load balancer's / Kubernetes' readiness probe at ``/readyz`` and the
liveness probe at ``/healthz`` (a database outage must not restart every replica).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, Protocol

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service.benchmarks.tables import load_benchmark_tables
from service.fhir.limits import stuck_connections

log = logging.getLogger("hcc_cds.readiness")

Check = Callable[[], Awaitable[bool]]
CheckResult = Literal["ok", "failed", "timeout", "error"]
DEFAULT_CHECK_TIMEOUT_SECONDS = 4.0  # under the probes' timeoutSeconds (5) in deploy/


class ReadinessReport(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, CheckResult]


class Readiness:
    """Named async checks, run concurrently, each bounded by ``timeout_seconds``."""

    def __init__(
        self,
        checks: Mapping[str, Check] | None = None,
        *,
        timeout_seconds: float = DEFAULT_CHECK_TIMEOUT_SECONDS,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.checks: dict[str, Check] = dict(checks or {})
        self.timeout_seconds = timeout_seconds
        self.on_failure = on_failure

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def update(self, checks: Mapping[str, Check]) -> None:
        self.checks.update(checks)

    async def _run_one(self, name: str, check: Check) -> CheckResult:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                ok = await check()
        except TimeoutError:
            result: CheckResult = "timeout"
        except Exception as exc:  # noqa: BLE001 - a failing check is "not ready", never a 500
            log.warning("readiness check %s raised %s", name, type(exc).__name__)
            result = "error"
        else:
            result = "ok" if ok is True else "failed"
        if result != "ok" and self.on_failure is not None:
            try:
                self.on_failure(name)
            except Exception:
                log.exception("recording a readiness failure failed")
        return result

    async def run(self) -> ReadinessReport:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run_one(name, self.checks[name]) for name in names))
        checks = dict(zip(names, results))
        ready = all(result == "ok" for result in results)
        return ReadinessReport(status="ready" if ready else "not ready", checks=checks)


def readiness_router(checks: Readiness | Mapping[str, Check] | None = None) -> APIRouter:
    """A router with ``GET /readyz``.

    ``checks``: a :class:`Readiness`, a mapping of name → async check, or None to use
    ``request.app.state.observability.readiness`` at request time (what :func:`install_observability` sets).
    """
    fixed = Readiness(checks) if isinstance(checks, Mapping) else checks
    router = APIRouter(tags=["operations"])

    @router.get(
        "/readyz",
        response_model=ReadinessReport,
        summary="Readiness: benchmark tables loaded, database reachable, migrations current",
        responses={503: {"model": ReadinessReport, "description": "A check failed; the body names it"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        headers = {"Cache-Control": "no-store"}
        try:
            readiness = fixed if fixed is not None else request.app.state.observability.readiness
            report = await readiness.run()
        except Exception as exc:  # noqa: BLE001
            log.warning("readiness could not be evaluated: %s", type(exc).__name__)
            report = ReadinessReport(status="not ready", checks={"readiness": "error"})
        return JSONResponse(report.model_dump(), status_code=200 if report.status == "ready" else 503, headers=headers)

    return router


# --- the service's checks ---------------------------------------------------------------------


def benchmark_tables_check(load: Callable[[], object] | None = None) -> Check:
    """Ready once the benchmark tables load and hold at least one cohort (the first call loads them).

    ``load`` defaults to :func:`~service.benchmarks.tables.load_benchmark_tables` (the shipped tables, read
    at each check); the app passes the tables its state holds.
    """
    loader = load if load is not None else load_benchmark_tables

    async def check() -> bool:
        tables = await anyio.to_thread.run_sync(loader)
        return bool(getattr(tables, "cohorts", None))

    return check


class DatabaseLike(Protocol):
    async def ping(self) -> bool: ...

    async def is_current(self) -> bool: ...


def database_checks(database: Callable[[], DatabaseLike | None]) -> dict[str, Check]:
    """``database`` (reachable: ``ping``) and ``migrations`` (at head: ``is_current``).

    ``database`` is a getter (the database may be created or started in the app's lifespan, after
    the checks are built); while it returns None both checks fail.
    """

    async def reachable() -> bool:
        db = database()
        return db is not None and await db.ping() is True

    async def current() -> bool:
        db = database()
        return db is not None and await db.is_current() is True

    return {"database": reachable, "migrations": current}


def fhir_pool_check(client: Callable[[], object], slots: Callable[[], object]) -> Check:
    """``fhir_pool``: fails while the shared HTTP pool holds a connection that will never connect (left by a
    request cancelled from outside), or a FHIR request runs far past its own timeouts
    (``service.fhir.limits``). Either would make later FHIR calls wait for the pool and fail."""

    async def check() -> bool:
        stuck = stuck_connections(client())  # type: ignore[arg-type]
        current = slots()
        stalled = current.stalled() if current is not None else 0  # type: ignore[attr-defined]
        if stuck or stalled:
            log.warning("FHIR connection pool stuck: %d connection(s) never connecting, %d request(s) stalled", stuck, stalled)
        return not stuck and not stalled

    return check
