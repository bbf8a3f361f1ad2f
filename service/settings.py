"""Deployment settings, from ``HCC_*`` environment variables (pydantic-settings).

Clinical values never live here: they are in ``rules/data/``, and a site changes
them only through the file ``HCC_CLINICAL_OVERRIDES`` names.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 8080
DEMO_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


# The default request-body limit, from record sizes (``python -m bench.record_sizes``): a patient-view call
# with full prefetch built like the demo FHIR endpoint's answers takes ~616 bytes an Observation in compact
# JSON: 1 000 Observations 0.62 MB, 5 000 (a long HCC history with years of labs) 3.1 MB, 10 000 6.2 MB
# (5.9 MiB). 8 MiB admits that 10 000-Observation record with a third to spare (~13 600 Observations) and
# bounds what one request can make a worker hold (the parsed body of a 6 MB record is ~40 MB of objects).
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


class SettingsError(ValueError):
    """The configuration cannot be used; the message says what to change."""


class Settings(BaseSettings):
    """Every setting, with its environment variable ``HCC_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="HCC_", extra="ignore", frozen=True)

    mode: Literal["demo", "production"] = "demo"
    fhir_base_url: str | None = Field(default=None, description="FHIR server for the REST API; unset in demo: embedded data")
    fhir_token: SecretStr | None = Field(default=None, description="bearer token sent only to HCC_FHIR_BASE_URL")
    fhir_allowlist: str = Field(
        default="",
        description="comma-separated base URLs a hook's fhirServer may name (scheme, host, port exact; path by prefix)",
    )
    fhir_timeout_seconds: float = Field(default=5.0, gt=0, description="per FHIR request")
    fhir_deadline_seconds: float = Field(default=10.0, gt=0, description="for all FHIR requests of one call")
    fhir_max_concurrent_per_origin: int = Field(
        default=40, ge=1, le=90, description="FHIR requests in flight to one origin, per worker (all origins: 90)"
    )
    fhir_max_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0, description="bytes of all FHIR answers read for one assessment"
    )
    fhir_max_resources: int = Field(
        default=20_000, gt=0, description="resources of all FHIR answers read for one assessment"
    )
    fhir_strict_validation: bool = Field(
        default=False,
        description="validate every resource the mapping uses whole, with fhir.resources (slower); "
        "default: only the elements the mapping reads (service/fhir/decode.py)",
    )
    trusted_clients: Path | None = None
    public_base_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    database_url: str | None = None
    database_timeout_seconds: float = Field(
        default=3.0, gt=0, le=60,
        description="longest wait for the database (a lock, a connection, the pool) before a call answers 503",
    )
    assessment_link_hours: float = Field(default=24.0, gt=0, description="how long a card's assessment page link works")
    expired_retention_hours: float = Field(
        default=24.0, ge=0,
        description="how long an expired assessment is kept (its page says 'expired') before the purge deletes it",
    )
    purge_interval_minutes: float = Field(
        default=60.0, ge=0,
        description="how often the service deletes expired assessments and jtis; 0: never (run `hcc-cds purge`)",
    )
    cors_origins: str = ""
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES, gt=0, description="largest request body accepted (larger: 413)"
    )
    body_timeout_seconds: float = Field(default=20.0, gt=0, description="longest time to receive a request body (408)")
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="longest time to receive a request head (408, connection closed)"
    )
    max_header_bytes: int = Field(
        default=32_768, ge=20_000, description="largest request head (request line and headers; a JWT is up to 16 KiB)"
    )
    max_connections: int = Field(
        default=2048, gt=0, description="per worker: connections (idle ones too) or requests beyond which new requests get 503"
    )
    bulk_client_id: str | None = Field(
        default=None, description="SMART Backend Services client id for Bulk Data exports; unset: no token is asked"
    )
    bulk_private_key_file: Path | None = Field(
        default=None, description="PEM private key signing the client assertion (read once, never logged)"
    )
    bulk_key_id: str | None = Field(default=None, description="`kid` header of the client assertion")
    bulk_alg: Literal["RS384", "ES384"] = Field(default="RS384", description="client assertion algorithm")
    bulk_scope: str = Field(default="system/*.read", description="scope asked of the token endpoint")
    bulk_poll_max_seconds: float = Field(
        default=6 * 3600.0, gt=0, description="longest wait for one $export to finish (status polling)"
    )
    bulk_retry_after_max_seconds: float = Field(
        default=120.0, gt=0, description="longest single wait a server's Retry-After (or a retry's backoff) may ask"
    )
    bulk_timeout_seconds: float = Field(
        default=60.0, gt=0, description="per Bulk Data request (connect, and between two chunks of a download)"
    )
    log_level: str = "INFO"
    timezone: str = "UTC"
    clinical_overrides: Path | None = None
    # hcc-cds screen (issue 22)
    screen_work_dir: Path = Field(
        default=Path("var/screening"),
        description="where a screening keeps its downloads, partitions and result files (one folder a run); "
        "on a cluster, a volume every Dask worker mounts at the same path",
    )
    screen_sources: str = Field(
        default="",
        description='the sources POST /api/v1/screenings may name, as JSON: {"name": {"fhir_base_url": ..., '
        '"level": "group"|"patient"|"system", "group_id": ...} or {"ndjson": <folder>}} (never a URL from the caller)',
    )
    screen_patients_per_partition: int = Field(
        default=250, gt=0, le=100_000, description="patients a partition holds (the unit of work a worker redoes if lost)"
    )
    screen_workers: int = Field(default=0, ge=0, description="local worker processes of a screening; 0: one a CPU core")
    screening_retention_days: float = Field(
        default=90.0, gt=0, description="how long a finished screening run and its worklist are kept before the purge"
    )

    # the SMART app (issue 23): an EHR launch from the patient's chart (service/smart, service/api/smart_launch.py)
    smart_client_id: str | None = Field(
        default=None,
        description="the app's client id at the EHR's authorization server (a public client with PKCE); "
        "unset: the /smart routes answer 404 'the SMART app is not configured'",
    )
    smart_iss_allowlist: str = Field(
        default="",
        description="comma-separated FHIR bases a launch's iss may name (as HCC_FHIR_ALLOWLIST); empty: "
        "HCC_FHIR_ALLOWLIST; demo mode also admits any loopback http(s) URL",
    )
    smart_session_keys: SecretStr | None = Field(
        default=None,
        description="comma-separated Fernet keys encrypting the app's server-side sessions (the first encrypts, "
        "all decrypt: rotation); required in production with HCC_SMART_CLIENT_ID; demo mode without it: a "
        "random key per process (sessions end when it restarts)",
    )
    smart_session_minutes: float = Field(
        default=30.0, gt=0, le=24 * 60,
        description="the longest an app session lasts (never beyond its access token's expiry)",
    )
    smart_frame_ancestors: str = Field(
        default="'self'",
        description="the CSP frame-ancestors of the app's pages: the EHR origins that may show it in a frame",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("public_base_url", "fhir_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def allowlist(self) -> tuple[str, ...]:
        return tuple(u.strip().rstrip("/") for u in self.fhir_allowlist.split(",") if u.strip())

    @property
    def smart_iss_entries(self) -> tuple[str, ...]:
        """HCC_SMART_ISS_ALLOWLIST's own entries."""
        return tuple(u.strip().rstrip("/") for u in self.smart_iss_allowlist.split(",") if u.strip())

    @property
    def smart_iss_list(self) -> tuple[str, ...]:
        """The FHIR bases a SMART launch's ``iss`` may name (HCC_SMART_ISS_ALLOWLIST, else HCC_FHIR_ALLOWLIST)."""
        return self.smart_iss_entries or self.allowlist

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())

    @property
    def is_demo(self) -> bool:
        return self.mode == "demo"

    def today(self) -> date:
        """Today's date in the configured time zone (the default ``as_of``)."""
        return datetime.now(ZoneInfo(self.timezone)).date()
