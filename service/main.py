"""The composition root: ``create_app(settings)`` wires every dependency once."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.api import (
    assessments,
    benchmarks,
    demo_fhir,
    discovery,
    feedback,
    health,
    hooks,
    page,
    references,
    screenings,
    smart_app,
    smart_launch,
    worklist_page,
)
from service.api.docs import install_docs
from service.api.schemas import ErrorMessage
from service.audit import AuditMiddleware
from service.auth import CdsClientAuth, httpx_jwks_fetcher, require_cds_client
from service.benchmarks.plots import load_plots
from service.benchmarks.tables import load_benchmark_tables
from service.body_limit import BodyLimitMiddleware
from service.build_info import build_id, package_version
from service.cds.services import build_services
from service.db import Database
from service.demo import demo_resources
from service.errors import install_error_handlers
from service.fhir.memory import InMemoryFhirSource
from service.knowledge import load_knowledge
from service.main_state import AppState, FhirConnections
from service.observability import ServiceMetrics, install_observability
from service.observability.readiness import fhir_pool_check
from service.settings import Settings
from service.smart.crypto import session_cipher
from service.smart.session import SmartPageError
from service.startup import check_startable

log = logging.getLogger("hcc_cds")

# the routers whose routes need a trusted client JWT in production (AppState.protected_routes)
PROTECTED_ROUTERS = (
    discovery.router,
    feedback.router,
    hooks.router,
    assessments.router,
    benchmarks.router,
    screenings.router,
)

_startup_frozen = False


def freeze_startup_objects() -> None:
    """Once a process: move everything built at start-up (the models, the value sets, the demo data)
    out of the garbage collector's reach. A full collection then walks only what requests allocate:
    without this, one every few hundred calls walked every start-up object too (tens of ms, the p99)."""
    global _startup_frozen
    if not _startup_frozen:
        _startup_frozen = True
        gc.collect()
        gc.freeze()


def create_app(settings: Settings | None = None, *, demo_day: date | None = None) -> FastAPI:
    """Build the application. ``demo_day`` fixes the day the demo data is dated from (tests)."""
    settings = settings or Settings()
    warnings = check_startable(settings)
    knowledge = load_knowledge(settings.clinical_overrides)
    demo_source = None
    if settings.is_demo:
        demo_source = InMemoryFhirSource(demo_resources(demo_day or settings.today()))
    tables = load_benchmark_tables()
    db = Database.from_url(
        settings.database_url,
        assessment_lifetime=timedelta(hours=settings.assessment_link_hours),
        timeout=settings.database_timeout_seconds,
        smart_cipher=session_cipher(settings.smart_session_keys),
    )
    fhir = FhirConnections(max_concurrent_per_origin=settings.fhir_max_concurrent_per_origin)
    state = AppState(
        settings=settings,
        knowledge=knowledge,
        services=build_services(knowledge),
        build=build_id(),
        demo_source=demo_source,
        client_auth=CdsClientAuth.from_settings(
            settings,
            fetcher=httpx_jwks_fetcher(lambda: fhir.client),
            jti_store=db.jti,
        ),
        benchmarks=tables,
        plots=load_plots(tables),
        db=db,
        fhir=fhir,
        metrics=ServiceMetrics(),
        protected_routes=frozenset(id(route) for router in PROTECTED_ROUTERS for route in router.routes),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for warning in warnings:
            log.warning(warning)
        await db.migrate()  # Alembic to head (replicas take turns)
        await db.start()
        purge = None
        if settings.purge_interval_minutes > 0:  # expired assessments and jtis (hcc-cds purge does it once)
            purge = asyncio.get_running_loop().create_task(
                db.purge_periodically(
                    timedelta(minutes=settings.purge_interval_minutes),
                    keep_expired=timedelta(hours=settings.expired_retention_hours),
                    screening_retention=timedelta(days=settings.screening_retention_days),
                ),
                name="hcc-cds purge",
            )
        try:
            async with fhir.opened():
                freeze_startup_objects()
                yield
        finally:
            for job in list(state.screening_jobs):  # a run left unfinished is resumed by hcc-cds screen --run-id
                job.cancel()
            if state.screening_jobs:
                await asyncio.gather(*state.screening_jobs, return_exceptions=True)
            if purge is not None:
                purge.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purge
            await db.stop()

    app = FastAPI(
        title="hcc-cds",
        version=package_version(),
        description=(
            "Clinical decision support for hepatocellular carcinoma after TACE failure: CDS Hooks 2.0 services "
            "and a REST API assessing Child-Pugh, performance status and sorafenib eligibility by the source "
            "study's criteria, with reasons, evidence and citations."
        ),
        lifespan=lifespan,
        docs_url=None,  # install_docs: the same pages with their assets served by the app (no CDN)
        redoc_url=None,
    )
    app.state.hcc = state
    if settings.cors_origin_list:
        # browser CDS clients (e.g. the CDS Hooks sandbox) send Authorization from another origin
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origin_list),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, read_timeout=settings.body_timeout_seconds)
    app.add_middleware(AuditMiddleware)
    install_error_handlers(app)
    app.add_exception_handler(SmartPageError, smart_launch.page_error)
    # CDS Hooks and REST routes need a trusted client JWT in production (a no-op in demo mode)
    trusted = [Depends(require_cds_client)]
    refused: dict[int | str, dict[str, Any]] = {401: {"model": ErrorMessage, "description": "Production mode: no valid client JWT (a bare 401)"}}
    too_large: dict[int | str, dict[str, Any]] = {
        408: {"model": ErrorMessage, "description": "Request body not received within HCC_BODY_TIMEOUT_SECONDS"},
        413: {"model": ErrorMessage, "description": "Request body larger than HCC_MAX_BODY_BYTES"},
    }
    # the database (and, in production, the JWT replay store in it) failing: a quick 503 (service.errors)
    db_down: dict[int | str, dict[str, Any]] = {503: {"model": ErrorMessage, "description": "The service's database is unavailable; retry later"}}
    app.include_router(health.router)
    app.include_router(discovery.router, dependencies=trusted, responses={**refused, **db_down})
    app.include_router(feedback.router, dependencies=trusted, responses={**refused, **too_large, **db_down})  # before hooks: /cds-services/{id}/feedback
    app.include_router(hooks.router, dependencies=trusted, responses={**refused, **too_large, **db_down})
    app.include_router(assessments.router, dependencies=trusted, responses={**refused, **too_large, **db_down})
    app.include_router(benchmarks.router, dependencies=trusted, responses={**refused, **db_down})
    app.include_router(screenings.router, dependencies=trusted, responses={**refused, **too_large, **db_down})
    install_docs(app)
    app.include_router(page.router, responses=db_down)  # authorised by its unguessable, expiring id (a browser sends no JWT)
    app.include_router(worklist_page.router, responses=db_down)  # the same: the run's unguessable page token
    # the SMART app: a browser launched by the EHR (no client JWT); its session cookie is its authorisation
    app.include_router(smart_launch.router, responses=db_down)
    app.include_router(smart_app.router, responses=db_down)  # the launched app's pages: the session's cookie
    app.include_router(references.router)  # the sources every citation names; no patient data, no JWT (as /about)
    # The benchmark routes read the tables and plots from the state (service.api.benchmarks). No
    # dependency_overrides here: while any is set, FastAPI re-inspects every dependency of every request
    # (~0.3 ms a call on the hook's hot path).
    if settings.is_demo:
        app.include_router(demo_fhir.router)
    # last: its middleware must be the outermost (request id, access log, metrics)
    install_observability(app, state, log_level=settings.log_level)
    app.state.observability.readiness.add("fhir_pool", fhir_pool_check(lambda: fhir.client, lambda: fhir.slots))
    return app
