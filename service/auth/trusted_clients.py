"""The trusted CDS clients: the file ``HCC_TRUSTED_CLIENTS`` names (JSON or YAML).

The file is a list of clients (or a mapping with a ``clients`` list); see
``tests/data/trusted_clients.example.yaml``. Each client has:

``iss``
    the issuer its JWTs carry (exact string match).
``jwks_url``
    where its JWK Set is published (https; plain http only for loopback).
``jwks``
    its JWK Set inline (``{"keys": [...]}``): public asymmetric keys, each with a ``kid``.
``jku``
    the JWK Set URLs its tokens may name in the ``jku`` header. A token with a
    ``jku`` not in this list is refused; with one in it, the keys come from that
    URL only. ``jwks_url`` is not implicitly allowed: list it here if tokens name it.
``jku_keys``
    optional: keys pinned for listed ``jku`` URLs (``{url: {"keys": [...]}}``, each URL also in
    ``jku``). A token naming that ``jku`` whose ``kid`` is a pinned key is verified with the pinned
    key, without fetching the URL (a site that cannot reach the client's key URL can still trust it);
    any other ``kid`` is fetched from the URL as usual.
``tenants``
    optional: if set, a token must carry a ``tenant`` claim from this list.
``role``
    ``cds-client`` (the default) or ``operator``. A CDS client calls the hooks, posts feedback,
    assesses posted Bundles and reads the audit trail and feedback rates of its own issuer and
    tenant only. An operator also reads every issuer's and tenant's, and may assess a patient
    by id from the configured FHIR server (``HCC_FHIR_BASE_URL``, with ``HCC_FHIR_TOKEN``).
``name``
    optional, for people.

A client needs at least one of ``jwks_url``, ``jwks`` or ``jku``. A bad file
stops start-up with a :class:`~service.settings.SettingsError` saying what to fix.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from service.auth.keys import JwkError, JwksCache, VerificationKey, parse_jwk_set
from service.settings import Settings, SettingsError

ENV_NAME = "HCC_TRUSTED_CLIENTS"
EXAMPLE_FILE = "tests/data/trusted_clients.example.yaml"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_key_url(url: str) -> str:
    """A JWKS URL: absolute https (http only for loopback), no credentials, no fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(f"{url!r} must use https (plain http is allowed only for loopback)")
    if parts.username or parts.password:
        raise ValueError(f"{url!r} must not contain credentials")
    if parts.fragment:
        raise ValueError(f"{url!r} must not have a fragment")
    return url


class TrustedClient(BaseModel):
    """One trusted CDS client (issuer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    name: str | None = None
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    jku: tuple[str, ...] = ()
    jku_keys: dict[str, dict[str, Any]] = Field(default_factory=dict)
    tenants: tuple[str, ...] | None = None
    role: Literal["cds-client", "operator"] = "cds-client"

    _inline_keys: dict[str, VerificationKey] = PrivateAttr(default_factory=dict)
    _pinned_keys: dict[str, dict[str, VerificationKey]] = PrivateAttr(default_factory=dict)

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        return check_key_url(value) if value is not None else None

    @field_validator("jku")
    @classmethod
    def _jku(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            check_key_url(url)
        if len(set(value)) != len(value):
            raise ValueError("a jku URL is listed twice")
        return value

    @field_validator("tenants")
    @classmethod
    def _tenants(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or any(not t for t in value)):
            raise ValueError("tenants, when given, must be a non-empty list of non-empty strings")
        return value

    @model_validator(mode="after")
    def _keys(self) -> TrustedClient:
        if self.jwks_url is None and self.jwks is None and not self.jku:
            raise ValueError("needs a key source: 'jwks_url', inline 'jwks', or allowed 'jku' URLs")
        if self.jwks is not None:
            try:
                self._inline_keys = parse_jwk_set(self.jwks, strict=True)
            except JwkError as exc:
                raise ValueError(f"jwks: {exc}") from None
            if not self._inline_keys:
                raise ValueError('jwks: the "keys" array is empty')
        self._pinned_keys = self._parse_jku_keys()
        return self

    def _parse_jku_keys(self) -> dict[str, dict[str, VerificationKey]]:
        pinned: dict[str, dict[str, VerificationKey]] = {}
        for url, jwks in self.jku_keys.items():
            if url not in self.jku:
                raise ValueError(f"jku_keys: {url!r} is not one of this client's jku URLs (list it under 'jku')")
            try:
                pinned[url] = parse_jwk_set(jwks, strict=True)
            except JwkError as exc:
                raise ValueError(f"jku_keys[{url!r}]: {exc}") from None
            if not pinned[url]:
                raise ValueError(f'jku_keys[{url!r}]: the "keys" array is empty')
        return pinned

    def pinned_key(self, jku: str, kid: str) -> VerificationKey | None:
        """The key pinned for ``jku`` (a listed URL) under ``kid``, if any."""
        return self._pinned_keys.get(jku, {}).get(kid) if jku in self.jku else None

    @property
    def inline_keys(self) -> dict[str, VerificationKey]:
        return self._inline_keys


class TrustedClients(BaseModel):
    """All trusted clients, by ``iss``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clients: tuple[TrustedClient, ...] = Field(min_length=1)

    _by_iss: dict[str, TrustedClient] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_iss(self) -> TrustedClients:
        seen: dict[str, TrustedClient] = {}
        for client in self.clients:
            if client.iss in seen:
                raise ValueError(f"iss {client.iss!r} is listed twice")
            seen[client.iss] = client
        self._by_iss = seen
        return self

    def get(self, iss: str) -> TrustedClient | None:
        return self._by_iss.get(iss)

    def __len__(self) -> int:
        return len(self.clients)


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:20]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
        message = err.get("msg", "invalid").removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse_trusted_clients(document: Any, source: str = "trusted clients") -> TrustedClients:
    """A parsed document (a list of clients, or ``{"clients": [...]}``) -> :class:`TrustedClients`."""
    if isinstance(document, list):
        document = {"clients": document}
    if not isinstance(document, dict):
        raise SettingsError(f"{source}: expected a list of clients (or a mapping with a 'clients' list)")
    try:
        return TrustedClients.model_validate(document)
    except ValidationError as exc:
        raise SettingsError(f"{source} is not valid:\n{_format_errors(exc)}\nSee {EXAMPLE_FILE}.") from None


def load_trusted_clients(path: Path | str) -> TrustedClients:
    """Read and validate the trusted-clients file (``.json``; anything else is read as YAML)."""
    path = Path(path)
    source = f"{ENV_NAME} file {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{source} cannot be read: {exc.strerror or exc}") from None
    try:
        document = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SettingsError(
            f"{source} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}"
        ) from None
    return parse_trusted_clients(document, source)


def production_checks(settings: Settings) -> None:
    """Raise :class:`SettingsError` unless production can authenticate clients and limit FHIR servers."""
    problems: list[str] = []
    if settings.trusted_clients is None:
        problems.append(
            f"{ENV_NAME} is not set: production authenticates every CDS client by its signed JWT and needs "
            f"the file of trusted clients (issuers and their keys; see {EXAMPLE_FILE})."
        )
    else:
        try:
            load_trusted_clients(settings.trusted_clients)
        except SettingsError as exc:
            problems.append(str(exc))
    if not settings.allowlist:
        problems.append(
            "HCC_FHIR_ALLOWLIST is empty: production needs the comma-separated base URLs a hook's fhirServer may name."
        )
    base = urlsplit(settings.public_base_url)
    if base.hostname and _is_loopback(base.hostname):
        problems.append(
            f"HCC_PUBLIC_BASE_URL is {settings.public_base_url!r}: a loopback address is not a URL clients can call "
            "from another machine; production needs the https URL (host name) clients call (each JWT's aud must "
            "equal it plus the endpoint path)."
        )
    elif base.scheme != "https" or not base.hostname:
        problems.append(
            f"HCC_PUBLIC_BASE_URL is {settings.public_base_url!r}: production needs the https URL clients call "
            "(each JWT's aud must equal it plus the endpoint path)."
        )
    if problems:
        raise SettingsError("HCC_MODE=production cannot start:\n- " + "\n- ".join(problems))


class KeySource(Protocol):
    """Where the verifier finds a client's key."""

    async def find_key(self, client: TrustedClient, kid: str, jku: str | None) -> VerificationKey | None: ...


class TrustedClientKeys:
    """A client's keys: from its token's ``jku`` (if allowlisted; a key pinned for that URL first), else its
    inline JWKS, else its ``jwks_url``."""

    def __init__(self, cache: JwksCache) -> None:
        self.cache = cache

    async def find_key(self, client: TrustedClient, kid: str, jku: str | None) -> VerificationKey | None:
        if jku is not None:
            if jku not in client.jku:  # checked by the verifier too; never fetch an unlisted URL
                return None
            pinned = client.pinned_key(jku, kid)  # the operator's copy of that URL's key: no fetch
            if pinned is not None:
                return pinned
            return await self.cache.get(jku, kid)
        key = client.inline_keys.get(kid)
        if key is not None:
            return key
        if client.jwks_url:
            return await self.cache.get(client.jwks_url, kid)
        return None
