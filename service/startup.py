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
from service.smart.crypto import KEYS_VARIABLE, parse_keys

DEMO_WARNING = (
    "DEMO MODE: embedded synthetic patients, no client authentication, FHIR servers limited to "
    "loopback. Not for clinical use or real patient data."
)


def check_fhir_urls(settings: Settings) -> None:
    """HCC_FHIR_BASE_URL and every HCC_FHIR_ALLOWLIST and HCC_SMART_ISS_ALLOWLIST entry must be usable http(s)
    base URLs."""
    named = [("HCC_FHIR_BASE_URL", settings.fhir_base_url)] if settings.fhir_base_url else []
    named += [("HCC_FHIR_ALLOWLIST", entry) for entry in settings.allowlist]
    named += [("HCC_SMART_ISS_ALLOWLIST", entry) for entry in settings.smart_iss_entries]
    for variable, url in named:
        try:
            Origin.parse(url)
        except FhirServerNotAllowedError as exc:
            raise SettingsError(f"{variable}: {url!r} is not a usable FHIR base URL ({exc})") from exc


def check_smart(settings: Settings) -> list[str]:
    """The SMART app's settings: usable session keys (required in production with a client id); its iss
    allowlist is checked with the other FHIR URLs (:func:`check_fhir_urls`). Returns the demo-mode warnings."""
    parse_keys(settings.smart_session_keys)  # SettingsError for a key that is not a Fernet key
    if settings.smart_client_id is None or settings.smart_session_keys is not None:
        return []
    if settings.mode == "production":
        raise SettingsError(
            f"HCC_MODE=production cannot start: HCC_SMART_CLIENT_ID is set but {KEYS_VARIABLE} is not (the Fernet "
            "keys encrypting the SMART app's sessions, the same on every replica)."
        )
    return [f"{KEYS_VARIABLE} is not set: the SMART app's sessions use a random key and end when this process stops."]


def check_startable(settings: Settings) -> list[str]:
    """Raise :class:`SettingsError` if the service must not start; return start-up warnings."""
    check_fhir_urls(settings)
    smart_warnings = check_smart(settings)
    if settings.mode == "production":
        production_checks(settings)
        return []
    warnings = [DEMO_WARNING, *smart_warnings]
    if settings.fhir_base_url:
        warnings.append("HCC_FHIR_BASE_URL is set: the REST API reads that server instead of the embedded demo data.")
    return warnings
