"""The EHR's SMART configuration: ``GET {iss}/.well-known/smart-configuration`` (SMART App Launch 2.x).

A launch names its FHIR server in ``iss``: the browser (anyone) chooses it. It is checked against
``HCC_SMART_ISS_ALLOWLIST`` (default ``HCC_FHIR_ALLOWLIST``; demo mode: any loopback URL too) **before any
request**, with the same strict parser as a hook's ``fhirServer`` (:func:`service.fhir.allowlist.check_fhir_server`):
otherwise a crafted link would make the service fetch any URL (SSRF) and send the browser to any
"authorization endpoint" (open redirect). The configuration must name both endpoints and support PKCE
with S256; it is cached 5 minutes per ``iss`` (a launch is interactive: one fetch a launch at most).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from service.fhir.allowlist import Origin, check_fhir_server
from service.fhir.errors import FhirServerNotAllowedError
from service.settings import Settings

CACHE_SECONDS = 300.0
MAX_CONFIGURATION_BYTES = 256 * 1024
TIMEOUT_SECONDS = 5.0


class SmartDiscoveryError(Exception):
    """The launch cannot go on; the message (shown on the error page) says why, without secrets."""


class SmartIssNotAllowedError(SmartDiscoveryError):
    """``iss`` is not a FHIR server this service may be launched from."""


@dataclass(frozen=True)
class SmartConfiguration:
    """What the launch needs of an EHR's configuration."""

    iss: str  # the normalised FHIR base the launch named
    issuer: str | None  # the OpenID issuer of its id_tokens (None: the FHIR base)
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str | None
    capabilities: frozenset[str] = field(default_factory=frozenset)


def allowed_iss(iss: str, settings: Settings) -> str:
    """The normalised ``iss`` if a launch may name it; :class:`SmartIssNotAllowedError` otherwise."""
    try:
        return check_fhir_server(iss, settings.smart_iss_list, allow_any_loopback=settings.is_demo)
    except FhirServerNotAllowedError as exc:
        raise SmartIssNotAllowedError(
            "The launch names a FHIR server (iss) this service does not accept (HCC_SMART_ISS_ALLOWLIST)."
        ) from exc


def _endpoint(document: dict, name: str, *, required: bool, demo: bool) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise SmartDiscoveryError(f"The EHR's SMART configuration has no {name}.")
    try:
        origin = Origin.parse(value, allow_query=True)
    except FhirServerNotAllowedError as exc:
        raise SmartDiscoveryError(f"The EHR's SMART configuration has an unusable {name}.") from exc
    if origin.scheme != "https" and not (demo and origin.is_loopback):
        raise SmartDiscoveryError(f"The EHR's SMART configuration's {name} is not https.")
    return value


def parse_configuration(iss: str, document: object, *, demo: bool) -> SmartConfiguration:
    """Check a configuration document; :class:`SmartDiscoveryError` when the app cannot launch with it."""
    if not isinstance(document, dict):
        raise SmartDiscoveryError("The EHR's SMART configuration is not a JSON object.")
    methods = document.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        raise SmartDiscoveryError(
            "The EHR's SMART configuration does not offer PKCE with S256 (code_challenge_methods_supported), "
            "which this app requires."
        )
    capabilities = document.get("capabilities")
    issuer = document.get("issuer")
    return SmartConfiguration(
        iss=iss,
        issuer=issuer if isinstance(issuer, str) and issuer else None,
        authorization_endpoint=_endpoint(document, "authorization_endpoint", required=True, demo=demo) or "",
        token_endpoint=_endpoint(document, "token_endpoint", required=True, demo=demo) or "",
        jwks_uri=_endpoint(document, "jwks_uri", required=False, demo=demo),
        capabilities=frozenset(c for c in capabilities if isinstance(c, str)) if isinstance(capabilities, list) else frozenset(),
    )


class SmartDiscovery:
    """Configurations by ``iss``, cached :data:`CACHE_SECONDS` (one per app: ``AppState.smart_discovery``)."""

    def __init__(self, cache_seconds: float = CACHE_SECONDS) -> None:
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, SmartConfiguration]] = {}

    async def configuration(self, client: httpx.AsyncClient, iss: str, settings: Settings) -> SmartConfiguration:
        """The configuration of ``iss`` (checked against the allowlist first); :class:`SmartDiscoveryError`."""
        base = allowed_iss(iss, settings)
        cached = self._cache.get(base)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        document = await self._fetch(client, base)
        config = parse_configuration(base, document, demo=settings.is_demo)
        self._cache[base] = (time.monotonic() + self.cache_seconds, config)
        return config

    @staticmethod
    async def _fetch(client: httpx.AsyncClient, base: str) -> object:
        url = f"{base}/.well-known/smart-configuration"
        try:
            response = await client.get(url, headers={"Accept": "application/json"}, timeout=TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            raise SmartDiscoveryError(
                f"The EHR's SMART configuration could not be read ({type(exc).__name__})."
            ) from exc
        if response.status_code != 200:
            raise SmartDiscoveryError(f"The EHR's SMART configuration could not be read (HTTP {response.status_code}).")
        if len(response.content) > MAX_CONFIGURATION_BYTES:
            raise SmartDiscoveryError("The EHR's SMART configuration is too large.")
        try:
            return response.json()
        except ValueError as exc:
            raise SmartDiscoveryError("The EHR's SMART configuration is not JSON.") from exc
