"""Prometheus metrics: one registry per app, an ASGI middleware for requests, ``GET /metrics``.

Metrics (prefix ``hcc_cds_``):

==========================================  =========================  ==================================
name                                        labels                     what
==========================================  =========================  ==================================
``http_requests_total``                     method, route, status      every HTTP request
``http_request_duration_seconds``           method, route              latency until the app returned
``hook_requests_total``                     service_id, status         ``POST /cds-services/{service_id}``
``hook_request_duration_seconds``           service_id                 hook latency
``cards_total``                             service_id, indicator      cards returned (info/warning/critical)
``fhir_requests_total``                     outcome                    each FHIR GET (one per attempt)
``fhir_request_duration_seconds``           outcome                    its latency
``database_errors_total``                   operation                  database errors
``readiness_check_failures_total``          check                      failed ``/readyz`` checks
``build_info``                              version, build, mode       constant 1
==========================================  =========================  ==================================

``route`` is the route **template** (``/api/v1/patients/{patient_id}/assessment``), never the raw
path; requests no route matched are ``route="unmatched"``. ``service_id`` is a served service's id
or ``unknown``; ``indicator`` and ``outcome`` come from fixed sets (else ``other``): no label can
take a value a client chooses, so the series stay bounded.

Several workers (``uvicorn --workers N``): without more, each worker process keeps its own
counters and ``/metrics`` answers with the counters of whichever worker the connection landed on.
Set ``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable directory (the same for all the workers of
one server, emptied before it starts; ``hcc-cds serve --workers N`` makes one if unset, see
:func:`prepare_multiprocess_dir`) and prometheus-client writes every worker's values there and
``/metrics`` sums them over the workers. The variable must be set before the worker processes start
(prometheus-client reads it at import). Several replicas (pods, containers) are separate targets:
Prometheus scrapes each and sums.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

from service.fhir.outcomes import FHIR_OUTCOMES
from service.observability.context import (
    HOOK_ROUTE,
    KnownServices,
    method_label,
    route_template,
    service_id_of,
)

log = logging.getLogger("hcc_cds.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
INDICATORS = frozenset({"info", "warning", "critical"})
_LABEL = re.compile(r"[^A-Za-z0-9_.-]")


def multiprocess_dir() -> str | None:
    """The multiprocess directory prometheus-client uses, if any."""
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


def prepare_multiprocess_dir(workers: int) -> Path | None:
    """Before starting ``workers`` uvicorn workers: an empty ``PROMETHEUS_MULTIPROC_DIR`` for them.

    With one worker nothing is needed (None). Otherwise the directory the variable names is emptied
    (created if missing), or a new temporary one is made and the variable set, for the workers to
    inherit. Call it in the parent process, before the workers are spawned.
    """
    if workers <= 1:
        return None
    named = multiprocess_dir()
    if named:
        path = Path(named)
        path.mkdir(parents=True, exist_ok=True)
        for entry in path.glob("*.db"):
            entry.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="hcc-cds-metrics-"))
        os.environ[MULTIPROC_ENV] = str(path)
    return path


def remove_multiprocess_dir(path: Path | None) -> None:
    """Remove a directory :func:`prepare_multiprocess_dir` created (not one the operator named)."""
    if path is not None and path.name.startswith("hcc-cds-metrics-"):
        shutil.rmtree(path, ignore_errors=True)


def _label(value: str, allowed: frozenset[str] | None = None, *, fallback: str = "other") -> str:
    if allowed is not None:
        return value if value in allowed else fallback
    cleaned = _LABEL.sub("_", value)[:64]
    return cleaned or fallback


class ServiceMetrics:
    """The service's metrics on their own :class:`CollectorRegistry` (never the global one)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, namespace: str = "hcc_cds") -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "http_requests", "HTTP requests by route template", ["method", "route", "status"], namespace=namespace, registry=r
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            namespace=namespace,
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.hook_requests = Counter(
            "hook_requests", "CDS Hooks service calls", ["service_id", "status"], namespace=namespace, registry=r
        )
        self.hook_duration = Histogram(
            "hook_request_duration_seconds",
            "CDS Hooks service call latency",
            ["service_id"],
            namespace=namespace,
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.cards = Counter(
            "cards", "CDS Hooks cards returned, by indicator", ["service_id", "indicator"], namespace=namespace, registry=r
        )
        self.fhir_requests = Counter(
            "fhir_requests", "FHIR requests (each attempt) by outcome", ["outcome"], namespace=namespace, registry=r
        )
        self.fhir_duration = Histogram(
            "fhir_request_duration_seconds",
            "FHIR request latency by outcome",
            ["outcome"],
            namespace=namespace,
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.database_errors = Counter(
            "database_errors", "Database errors by operation", ["operation"], namespace=namespace, registry=r
        )
        self.readiness_failures = Counter(
            "readiness_check_failures", "Failed readiness checks", ["check"], namespace=namespace, registry=r
        )
        self.build_info = Gauge(
            "build_info",
            "Version, build and mode of the running service (always 1)",
            ["version", "build", "mode"],
            namespace=namespace,
            registry=r,
            multiprocess_mode="max",
        )

    # -- the API the rest of the service calls ------------------------------------------------------

    def set_build_info(self, *, version: str, build: str, mode: str) -> None:
        self.build_info.labels(version=version, build=build, mode=mode).set(1)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_duration.labels(method=method, route=route).observe(seconds)

    def observe_hook(self, service_id: str, status: int, seconds: float) -> None:
        self.hook_requests.labels(service_id=service_id, status=str(status)).inc()
        self.hook_duration.labels(service_id=service_id).observe(seconds)

    def observe_cards(self, service_id: str, cards: Iterable[Any]) -> None:
        """Count the cards a hook returned by indicator (``Card`` models, dicts or indicator strings)."""
        for card in cards:
            if isinstance(card, str):
                indicator = card
            elif isinstance(card, dict):
                indicator = str(card.get("indicator"))
            else:
                indicator = str(getattr(card, "indicator", None))
            self.cards.labels(service_id=_label(service_id), indicator=_label(indicator, INDICATORS)).inc()

    def observe_fhir_call(self, outcome: str, seconds: float) -> None:
        """One FHIR request: its outcome (:data:`~service.fhir.outcomes.FHIR_OUTCOMES`) and latency."""
        outcome = _label(outcome, FHIR_OUTCOMES)
        self.fhir_requests.labels(outcome=outcome).inc()
        self.fhir_duration.labels(outcome=outcome).observe(max(0.0, seconds))

    def record_database_error(self, operation: str = "query") -> None:
        """One database error; ``operation`` is a constant of the caller's (``ping``, ``save_assessment``...)."""
        self.database_errors.labels(operation=_label(operation)).inc()

    def record_readiness_failure(self, check: str) -> None:
        self.readiness_failures.labels(check=_label(check)).inc()

    # -- exposition ----------------------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its content type: this app's registry, or every worker's values in
        multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``)."""
        if multiprocess_dir():
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI: counts and times every HTTP request by route template (and hook calls by service id).

    The route is read from the scope after the app has routed the request, so the raw path is never
    used. Lifespan and websocket scopes pass through untouched; the response is not buffered.
    """

    def __init__(self, app, *, metrics: ServiceMetrics, known_services: KnownServices | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.known_services = known_services

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None
        started = time.perf_counter()

        async def send_and_record(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except BaseException:
            if status is None:
                status = 500
            raise
        finally:
            self._record(scope, status if status is not None else 500, time.perf_counter() - started)

    def _record(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        try:
            route = route_template(scope)
            method = method_label(scope)
            self.metrics.observe_request(method, route, status, seconds)
            if route == HOOK_ROUTE and method == "POST":
                service_id = service_id_of(scope, self.known_services) or "unknown"
                self.metrics.observe_hook(service_id, status, seconds)
        except Exception:  # metrics must never fail a request
            log.exception("recording request metrics failed")


def metrics_router() -> APIRouter:
    """``GET /metrics`` (Prometheus text format) from ``request.app.state.observability.metrics``.

    Not behind client authentication (Prometheus does not sign JWTs) and not in the OpenAPI
    document: it carries no patient data, only counts by route template; keep it off the public
    listener (the deploy examples do).
    """
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        body, content_type = request.app.state.observability.metrics.exposition()
        return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})

    return router
