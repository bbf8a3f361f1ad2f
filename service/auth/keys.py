"""Client public keys: JWK parsing, the JWKS cache and the key source the verifier asks.

Only asymmetric signature keys are accepted (RSA of at least 2048 bits, EC on
P-256/P-384/P-521, OKP Ed25519/Ed448); a JWK with private material, a symmetric
(``oct``) key or a key not meant for signatures is refused. Each key records the
algorithms it may verify: its own ``alg`` if the JWK names one, else every
allowed algorithm of its type (RSA: RS*/PS*, EC: the one ES* of its curve).

Fetched JWK Sets are cached per URL for :data:`JWKS_TTL_SECONDS`. A ``kid`` the
cache does not know triggers a refresh, but at most one fetch per URL per
:data:`JWKS_MIN_REFRESH_SECONDS`, so a caller cannot make the service fetch on
every request; concurrent requests share one fetch. When a refresh fails, the
last good keys stay usable up to :data:`JWKS_MAX_STALE_SECONDS` after they were
fetched. The cache only ever fetches URLs from the trusted-clients file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger("hcc_cds.auth")

JWKS_TTL_SECONDS = 300.0
JWKS_MIN_REFRESH_SECONDS = 60.0
JWKS_MAX_STALE_SECONDS = 3600.0
JWKS_FETCH_TIMEOUT_SECONDS = 3.0
JWKS_MAX_BYTES = 256 * 1024
MIN_RSA_BITS = 2048

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHM_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
OKP_CURVES = frozenset({"Ed25519", "Ed448"})
#: Every algorithm a token may use: asymmetric only; never ``none``, never HMAC.
ALLOWED_ALGORITHMS = RSA_ALGORITHMS | frozenset(EC_ALGORITHM_BY_CURVE.values()) | {"EdDSA"}

# JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2)
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")

JwksFetcher = Callable[[str], Awaitable[Mapping[str, Any]]]
"""Fetches a JWK Set: URL -> the parsed JSON document; raises on any failure."""


class JwkError(ValueError):
    """A JWK or JWK Set that cannot be used; the message says why."""


class JwksFetchError(Exception):
    """A JWK Set could not be fetched (the message never holds the body)."""


@dataclass(frozen=True)
class VerificationKey:
    """A public key, its ``kid``, and the algorithms it may verify."""

    kid: str
    key: Any  # a cryptography public key object
    algorithms: frozenset[str]


def _compatible_algorithms(jwk: Mapping[str, Any]) -> frozenset[str]:
    kty = jwk.get("kty")
    if kty == "RSA":
        return RSA_ALGORITHMS
    if kty == "EC":
        crv = jwk.get("crv")
        if crv not in EC_ALGORITHM_BY_CURVE:
            raise JwkError(f"EC curve {crv!r} is not allowed (P-256, P-384, P-521)")
        return frozenset({EC_ALGORITHM_BY_CURVE[crv]})
    if kty == "OKP":
        crv = jwk.get("crv")
        if crv not in OKP_CURVES:
            raise JwkError(f"OKP curve {crv!r} is not allowed (Ed25519, Ed448)")
        return frozenset({"EdDSA"})
    if kty == "oct":
        raise JwkError("symmetric keys (kty 'oct') are refused: CDS Hooks forbids HMAC")
    raise JwkError(f"key type {kty!r} is not allowed (RSA, EC, OKP)")


def parse_jwk(jwk: Any) -> VerificationKey:
    """One public signature JWK -> :class:`VerificationKey`; :class:`JwkError` if unusable."""
    if not isinstance(jwk, Mapping):
        raise JwkError("a JWK must be a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise JwkError("a JWK needs a non-empty string 'kid'")
    try:
        algorithms = _compatible_algorithms(jwk)
        private = [m for m in _PRIVATE_MEMBERS if m in jwk]
        if private:
            raise JwkError(f"contains private key material ({', '.join(private)}); publish public keys only")
        use = jwk.get("use")
        if use is not None and use != "sig":
            raise JwkError(f"'use' is {use!r}, not 'sig'")
        key_ops = jwk.get("key_ops")
        if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
            raise JwkError("'key_ops' does not include 'verify'")
        alg = jwk.get("alg")
        if alg is not None:
            if alg not in algorithms:
                raise JwkError(f"'alg' {alg!r} is not allowed for this key (allowed: {', '.join(sorted(algorithms))})")
            algorithms = frozenset({alg})
        try:
            key = jwt.PyJWK(dict(jwk), algorithm=sorted(algorithms)[0]).key
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise JwkError(f"not a valid key: {exc}") from exc
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
            raise JwkError(f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} are required")
    except JwkError as exc:
        raise JwkError(f"key {kid!r}: {exc}") from None
    return VerificationKey(kid=kid, key=key, algorithms=algorithms)


def parse_jwk_set(document: Any, *, strict: bool, source: str = "JWK Set") -> dict[str, VerificationKey]:
    """A JWK Set (``{"keys": [...]}``) -> keys by ``kid``.

    ``strict`` (a configuration file): any unusable key or repeated ``kid`` is a
    :class:`JwkError`. Otherwise (a fetched set): such keys are skipped with a
    warning, and a ``kid`` that appears twice is dropped, as ambiguous.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JwkError('a JWK Set must be a JSON object with a "keys" array')
    keys: dict[str, VerificationKey] = {}
    duplicated: set[str] = set()
    for position, jwk in enumerate(document["keys"]):
        try:
            key = parse_jwk(jwk)
        except JwkError as exc:
            if strict:
                raise JwkError(f"keys[{position}]: {exc}") from None
            log.warning("%s: skipping keys[%d]: %s", source, position, exc)
            continue
        if key.kid in keys or key.kid in duplicated:
            if strict:
                raise JwkError(f"keys[{position}]: kid {key.kid!r} appears more than once")
            log.warning("%s: kid %r appears more than once; not using it", source, key.kid)
            keys.pop(key.kid, None)
            duplicated.add(key.kid)
            continue
        keys[key.kid] = key
    return keys


def httpx_jwks_fetcher(
    client_provider: Callable[[], httpx.AsyncClient | None],
    *,
    timeout_seconds: float = JWKS_FETCH_TIMEOUT_SECONDS,
    max_bytes: int = JWKS_MAX_BYTES,
) -> JwksFetcher:
    """The production fetcher: a GET through the app's shared client, no redirects, a short timeout.

    ``client_provider`` is called at each fetch (the client is opened by the
    app's lifespan, after the fetcher is built), e.g. ``lambda: state.fhir.client``.
    """

    async def fetch(url: str) -> Mapping[str, Any]:
        client = client_provider()
        if client is None:
            raise JwksFetchError("no HTTP client (the app is not started)")
        body = bytearray()
        try:
            async with client.stream(
                "GET",
                url,
                timeout=timeout_seconds,
                follow_redirects=False,
                headers={"Accept": "application/jwk-set+json, application/json"},
            ) as response:
                if response.status_code != 200:
                    raise JwksFetchError(f"HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        raise JwksFetchError(f"larger than {max_bytes} bytes")
        except httpx.HTTPError as exc:
            raise JwksFetchError(type(exc).__name__) from exc
        try:
            document = json.loads(bytes(body))
        except ValueError as exc:
            raise JwksFetchError("not JSON") from exc
        if not isinstance(document, dict):
            raise JwksFetchError("not a JSON object")
        return document

    return fetch


@dataclass
class _CacheEntry:
    keys: dict[str, VerificationKey] = field(default_factory=dict)
    fetched_at: float | None = None  # last successful fetch
    last_attempt: float | None = None  # last fetch, successful or not
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JwksCache:
    """Fetched JWK Sets by URL, with a TTL, refresh on an unknown ``kid``, and a refresh rate limit."""

    def __init__(
        self,
        fetcher: JwksFetcher,
        *,
        ttl_seconds: float = JWKS_TTL_SECONDS,
        min_refresh_interval_seconds: float = JWKS_MIN_REFRESH_SECONDS,
        max_stale_seconds: float = JWKS_MAX_STALE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._ttl = ttl_seconds
        self._min_interval = min_refresh_interval_seconds
        self._max_stale = max(max_stale_seconds, ttl_seconds)
        self._clock = clock
        self._entries: dict[str, _CacheEntry] = {}

    def _fresh(self, entry: _CacheEntry, now: float) -> bool:
        return entry.fetched_at is not None and now - entry.fetched_at < self._ttl

    def _usable(self, entry: _CacheEntry, kid: str, now: float) -> VerificationKey | None:
        if entry.fetched_at is None or now - entry.fetched_at >= self._max_stale:
            return None
        return entry.keys.get(kid)

    def _may_fetch(self, entry: _CacheEntry, now: float) -> bool:
        return entry.last_attempt is None or now - entry.last_attempt >= self._min_interval

    async def get(self, url: str, kid: str) -> VerificationKey | None:
        """The key ``kid`` of the JWK Set at ``url``, fetching or refreshing it if allowed; else ``None``."""
        entry = self._entries.setdefault(url, _CacheEntry())
        now = self._clock()
        if self._fresh(entry, now) and kid in entry.keys:
            return entry.keys[kid]
        # a miss waits for a fetch under way rather than answering from the old keys
        async with entry.lock:
            now = self._clock()
            # another request may have fetched while this one waited
            if self._fresh(entry, now) and kid in entry.keys:
                return entry.keys[kid]
            if not self._may_fetch(entry, now):
                return self._usable(entry, kid, now)
            entry.last_attempt = now
            try:
                document = await self._fetcher(url)
                keys = parse_jwk_set(document, strict=False, source=f"JWKS {url}")
            except Exception as exc:  # noqa: BLE001 - any fetch failure keeps the last good keys
                log.warning("JWKS fetch from %s failed: %s: %s", url, type(exc).__name__, exc)
            else:
                entry.keys = keys
                entry.fetched_at = self._clock()
            return self._usable(entry, kid, self._clock())
