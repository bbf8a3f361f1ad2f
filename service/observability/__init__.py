"""Operations: readiness, Prometheus metrics, JSON logs with request ids, graceful shutdown.

``install_observability(app, state)`` wires it all into an app built by ``create_app``::

    install_observability(app, state, log_level=settings.log_level)  # last, after every other middleware

It adds ``GET /readyz`` and ``GET /metrics``, the request-id/access-log and metrics middlewares
(pure ASGI, outermost), readiness checks for the benchmark tables and ``state.db`` (reachable,
migrations at head), puts the :class:`Observability` on ``app.state.observability`` and its metrics on
``state.metrics`` (for the hooks and the FHIR client), and, given ``log_level``, configures JSON
logging. Call it once, before the app starts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from service.observability.context import annotate_request, current_request_id
from service.observability.logging import RequestContextMiddleware, configure_logging
from service.observability.metrics import MetricsMiddleware, ServiceMetrics, metrics_router
from service.observability.readiness import (
    Check,
    Readiness,
    benchmark_tables_check,
    database_checks,
    readiness_router,
)

__all__ = [
    "Check",
    "Observability",
    "Readiness",
    "ServiceMetrics",
    "annotate_request",
    "benchmark_tables_check",
    "configure_logging",
    "current_request_id",
    "database_checks",
    "install_observability",
]


@dataclass
class Observability:
    """What :func:`install_observability` installed: the app's metrics and its readiness checks."""

    metrics: ServiceMetrics
    readiness: Readiness


def install_observability(
    app: FastAPI,
    state: Any = None,
    *,
    readiness_checks: Mapping[str, Check] | None = None,
    benchmark_check: bool = True,
    log_level: str | None = None,
    registry: CollectorRegistry | None = None,
    known_services: Callable[[], Collection[str]] | None = None,
) -> Observability:
    """Wire readiness, metrics and request logging into ``app`` (see the module docstring).

    - ``state``: the app's ``AppState`` (its ``metrics``, services for the ``service_id`` label, build
      info for ``hcc_cds_build_info``, the benchmark tables ``benchmark_tables`` checks); without
      one, a new :class:`ServiceMetrics` and the shipped tables.
    - ``readiness_checks``: the ``/readyz`` checks besides ``benchmark_tables`` (which
      ``benchmark_check=False`` leaves out). Default: ``database`` and ``migrations``
      (:func:`database_checks` of ``state.db``) when the state has a ``db``.
    - ``log_level``: if given, :func:`configure_logging` (JSON lines on stderr) is called with it.
    - ``registry``: the metrics' registry; default a new one for this app (never the global one).
    """
    if log_level is not None:
        configure_logging(log_level)
    metrics = getattr(state, "metrics", None) or ServiceMetrics(registry)
    checks: dict[str, Check] = {}
    if benchmark_check:
        tables = getattr(state, "benchmarks", None)
        checks["benchmark_tables"] = benchmark_tables_check(None if tables is None else lambda: tables)
    if readiness_checks is None and state is not None and hasattr(state, "db"):
        readiness_checks = database_checks(lambda: state.db)
    checks.update(readiness_checks or {})
    readiness = Readiness(checks, on_failure=metrics.record_readiness_failure)
    observability = Observability(metrics=metrics, readiness=readiness)

    if known_services is None and state is not None and hasattr(state, "services"):
        known_services = lambda: state.services.keys()  # noqa: E731
    if state is not None:
        settings = getattr(state, "settings", None)
        metrics.set_build_info(
            version=str(getattr(app, "version", "") or ""),
            build=str(getattr(state, "build", "") or ""),
            mode=str(getattr(settings, "mode", "") or ""),
        )
    app.state.observability = observability

    app.include_router(readiness_router())
    app.include_router(metrics_router())
    # the last added is the outermost: the request id is set before the metrics middleware runs
    app.add_middleware(MetricsMiddleware, metrics=metrics, known_services=known_services)
    app.add_middleware(RequestContextMiddleware, known_services=known_services)
    return observability
