"""The application's state: everything a request needs, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from rules.knowledge import Knowledge
from service.auth import CdsClientAuth
from service.benchmarks.plots import PlotFiles
from service.benchmarks.tables import BenchmarkTables
from service.cds.services import CdsService
from service.db import Database
from service.fhir.client import HttpFhirSource
from service.fhir.errors import FhirUnavailableError
from service.fhir.limits import AssessmentBudget, RequestSlots
from service.fhir.memory import InMemoryFhirSource
from service.fhir.source import FhirSource
from service.observability.metrics import ServiceMetrics
from service.settings import Settings


@dataclass
class AppState:
    """Everything a request needs, built once at start-up."""

    settings: Settings
    knowledge: Knowledge
    services: dict[str, CdsService]
    build: str
    demo_source: InMemoryFhirSource | None
    client_auth: CdsClientAuth
    benchmarks: BenchmarkTables
    plots: dict[tuple[str, str], PlotFiles]
    db: Database
    http: httpx.AsyncClient | None = None
    protected_routes: frozenset[int] = frozenset()  # ids of the routes that need a trusted client JWT
    metrics: ServiceMetrics | None = None  # set by service.observability.install_observability
    fhir_slots: RequestSlots | None = None  # FHIR requests in flight per origin and in all (this worker)

    def _fhir_observer(self):
        return self.metrics.observe_fhir_call if self.metrics is not None else None

    def _http_source(self, base_url: str, token: str | None) -> HttpFhirSource:
        """A source for one call: its deadline and its byte and resource budget start with it."""
        assert self.http is not None, "the HTTP client is opened by the app's lifespan"
        if self.fhir_slots is None:
            self.fhir_slots = RequestSlots(per_origin=self.settings.fhir_max_concurrent_per_origin)
        return HttpFhirSource(
            self.http,
            base_url,
            token=token,
            timeout_seconds=self.settings.fhir_timeout_seconds,
            deadline_seconds=self.settings.fhir_deadline_seconds,
            observe=self._fhir_observer(),
            slots=self.fhir_slots,
            budget=AssessmentBudget(self.settings.fhir_max_bytes, self.settings.fhir_max_resources),
        )

    def configured_source(self) -> FhirSource:
        """The FHIR source of the REST API: HCC_FHIR_BASE_URL, else the embedded demo data."""
        if self.settings.fhir_base_url:
            token = self.settings.fhir_token.get_secret_value() if self.settings.fhir_token else None
            return self._http_source(self.settings.fhir_base_url, token)
        if self.demo_source is None:
            raise FhirUnavailableError("no FHIR server is configured for the REST API (set HCC_FHIR_BASE_URL)")
        return self.demo_source

    def hook_source(self, fhir_server: str, access_token: str | None) -> FhirSource:
        """A source for a hook's own ``fhirServer`` (already checked against the allowlist)."""
        return self._http_source(fhir_server, access_token)
