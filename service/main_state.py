"""The application's state: everything a request needs, built once at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from rules.knowledge import Knowledge
from service.auth import CdsClientAuth
from service.benchmarks.plots import PlotFiles
from service.benchmarks.tables import BenchmarkTables
from service.cds.services import CdsService
from service.db import Database
from service.fhir.client import HttpFhirSource
from service.fhir.errors import FhirUnavailableError
from service.fhir.limits import HTTP_POOL_LIMITS, AssessmentBudget, RequestSlots
from service.fhir.memory import InMemoryFhirSource
from service.fhir.source import FhirSource
from service.observability.metrics import ServiceMetrics
from service.settings import Settings
from service.smart.discovery import SmartDiscovery
from service.smart.launch import JwksCache


@dataclass
class FhirConnections:
    """This worker's HTTP pool to FHIR servers (and JWKS URLs) and its FHIR request slots.

    Built with the app; the pool is open only while the app's lifespan runs (:meth:`opened`), and the
    slots are made anew for each run (they belong to its event loop).
    """

    max_concurrent_per_origin: int
    client: httpx.AsyncClient | None = None
    slots: RequestSlots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = RequestSlots(per_origin=self.max_concurrent_per_origin)

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(limits=HTTP_POOL_LIMITS, follow_redirects=False, trust_env=False) as client:
            self.client = client
            self.slots = RequestSlots(per_origin=self.max_concurrent_per_origin)
            yield client
            self.client = None


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
    fhir: FhirConnections
    metrics: ServiceMetrics
    protected_routes: frozenset[int]  # ids of the routes that need a trusted client JWT
    # screening runs started by the job API in this worker (service.api.screenings); cancelled at shutdown
    screening_jobs: set[asyncio.Task[None]] = field(default_factory=set)
    # the SMART app's EHR configurations and id_token keys, cached a few minutes (service.api.smart_launch)
    smart_discovery: SmartDiscovery = field(default_factory=SmartDiscovery)
    smart_jwks: JwksCache = field(default_factory=JwksCache)

    def _http_source(self, base_url: str, token: str | None) -> HttpFhirSource:
        """A source for one call: its deadline and its byte and resource budget start with it."""
        assert self.fhir.client is not None, "the HTTP client is opened by the app's lifespan"
        return HttpFhirSource(
            self.fhir.client,
            base_url,
            token=token,
            timeout_seconds=self.settings.fhir_timeout_seconds,
            deadline_seconds=self.settings.fhir_deadline_seconds,
            observe=self.metrics.observe_fhir_call,
            slots=self.fhir.slots,
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
