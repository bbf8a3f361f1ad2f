"""Whether the service may start with these settings: the checks ``create_app`` and ``hcc-cds serve`` run first.

:class:`~service.settings.Settings` only reads and validates each variable; the checks that need other
modules (the FHIR URL parser, the trusted-clients file) are here, so that ``service.settings`` imports
nothing of the service and every module may import it.
"""

from __future__ import annotations

from service.auth.trusted_clients import production_checks
from service.fhir.allowlist import Origin
from service.fhir.errors import FhirServerNotAllowedError
from service.settings import Settings, SettingsError

DEMO_WARNING = (
    "DEMO MODE: embedded synthetic patients, no client authentication, FHIR servers limited to "
    "loopback. Not for clinical use or real patient data."
)


def check_fhir_urls(settings: Settings) -> None:
    """HCC_FHIR_BASE_URL and every HCC_FHIR_ALLOWLIST entry must be usable http(s) base URLs."""
    named = [("HCC_FHIR_BASE_URL", settings.fhir_base_url)] if settings.fhir_base_url else []
    named += [("HCC_FHIR_ALLOWLIST", entry) for entry in settings.allowlist]
    for variable, url in named:
        try:
            Origin.parse(url)
        except FhirServerNotAllowedError as exc:
            raise SettingsError(f"{variable}: {url!r} is not a usable FHIR base URL ({exc})") from exc


def check_startable(settings: Settings) -> list[str]:
    """Raise :class:`SettingsError` if the service must not start; return start-up warnings."""
    check_fhir_urls(settings)
    if settings.mode == "production":
        production_checks(settings)
        return []
    warnings = [DEMO_WARNING]
    if settings.fhir_base_url:
        warnings.append("HCC_FHIR_BASE_URL is set: the REST API reads that server instead of the embedded demo data.")
    return warnings
