"""Verification of a CDS client's JWT (CDS Hooks 2.0 "Trusting CDS Clients").

Pure: a token, the URL of the endpoint called, the trusted clients, a key
source and a jti store go in; a :class:`ClientIdentity` or an
:class:`AuthenticationError` comes out. Nothing here logs, and no error holds
the token.

Order of the checks (CDS Hooks best practices), cheapest and key-fetch-free first:

1. shape and size; header: ``alg`` asymmetric and allowed (never ``none``, never
   HMAC), ``typ`` = ``JWT``, ``kid`` present, no ``crit``;
2. ``iss`` is a trusted client; a ``jku`` header is on that client's list;
3. ``aud`` (string or array) contains the endpoint URL;
4. ``exp`` present and not past, ``iat`` present and not in the future, ``nbf``
   if present reached (all with :data:`LEEWAY_SECONDS`), and
   ``exp - iat`` <= :data:`MAX_TOKEN_LIFETIME_SECONDS`;
5. ``tenant`` on the client's list, if the client has one; ``jti`` present;
6. the signature, by the client's key ``kid`` with the header's algorithm
   (which that key must allow);
7. the ``jti`` not seen before for this ``iss`` (remembered until ``exp`` + leeway).

Claims are checked on the unverified payload before the signature so that
untrusted tokens never cause a key fetch; step 6 verifies those same bytes.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeGuard, runtime_checkable

import jwt

from service.auth.keys import ALLOWED_ALGORITHMS
from service.auth.trusted_clients import KeySource, TrustedClient, TrustedClients

LEEWAY_SECONDS = 60
MAX_TOKEN_LIFETIME_SECONDS = 3600
MAX_TOKEN_CHARS = 16_384
MAX_JTI_CHARS = 255
MAX_TENANT_CHARS = 200


class AuthenticationError(Exception):
    """The token is not accepted. ``category`` is for logs; callers answer a bare 401.

    ``iss``, ``kid`` and ``jti`` are as the token claims them (unverified), for logs.
    """

    def __init__(self, category: str, *, iss: Any = None, kid: Any = None, jti: Any = None) -> None:
        super().__init__(category)
        self.category = category
        self.iss = iss
        self.kid = kid
        self.jti = jti


@dataclass(frozen=True)
class ClientIdentity:
    """Who called: the verified claims. All ``None`` for the anonymous caller of demo mode."""

    iss: str | None
    sub: str | None = None
    tenant: str | None = None
    jti: str | None = None
    role: str | None = None  # the trusted client's role ("cds-client" or "operator"); None when anonymous

    @property
    def is_anonymous(self) -> bool:
        return self.iss is None

    @property
    def is_operator(self) -> bool:
        """Sees every tenant's audit trail and feedback and may use the configured FHIR server.

        The anonymous caller of demo mode (no authentication at all) is an operator; in production only a
        trusted client configured with ``role: operator``.
        """
        return self.is_anonymous or self.role == "operator"


ANONYMOUS_CLIENT = ClientIdentity(iss=None)


@runtime_checkable
class JtiStore(Protocol):
    """Seen token ids. ``remember`` returns False when (iss, jti) was already seen and has not expired."""

    async def remember(self, iss: str, jti: str, expires_at: datetime) -> bool: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class InMemoryJtiStore:
    """A :class:`JtiStore` for one process (tests, a single replica); expired ids are dropped as it goes."""

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._expiry: dict[tuple[str, str], datetime] = {}
        self._heap: list[tuple[datetime, str, str]] = []

    def _purge(self, now: datetime) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires_at, iss, jti = heapq.heappop(self._heap)
            if self._expiry.get((iss, jti)) == expires_at:
                del self._expiry[(iss, jti)]

    async def remember(self, iss: str, jti: str, expires_at: datetime) -> bool:
        self._purge(self._clock())
        if (iss, jti) in self._expiry:
            return False
        self._expiry[(iss, jti)] = expires_at
        heapq.heappush(self._heap, (expires_at, iss, jti))
        return True

    def __len__(self) -> int:
        return len(self._expiry)


def _is_number(value: Any) -> TypeGuard[int | float]:
    # JSON as Python reads it may hold NaN or Infinity, which compare False with everything
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _audience_matches(aud: Any, endpoint_url: str) -> bool:
    if isinstance(aud, str):
        return aud == endpoint_url
    if isinstance(aud, list):
        return all(isinstance(a, str) for a in aud) and endpoint_url in aud
    return False


class JwtVerifier:
    """Verifies CDS client JWTs against the trusted clients."""

    def __init__(
        self,
        clients: TrustedClients,
        keys: KeySource,
        jti_store: JtiStore,
        *,
        leeway_seconds: float = LEEWAY_SECONDS,
        max_lifetime_seconds: float = MAX_TOKEN_LIFETIME_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.clients = clients
        self.keys = keys
        self.jti_store = jti_store
        self.leeway = leeway_seconds
        self.max_lifetime = max_lifetime_seconds
        self.clock = clock

    async def verify(self, token: str, endpoint_url: str) -> ClientIdentity:
        """The caller's identity if ``token`` is valid for ``endpoint_url``; else :class:`AuthenticationError`.

        The checks run in this order, and the first that fails names the category: the token's shape, its
        header, its issuer (and ``jku``), its audience, its times, its tenant, ``jti`` and ``sub``, its
        signature, and last whether its ``jti`` was seen before (only a valid token is remembered).
        """
        claims = _Claims.read(token)
        header = _check_header(claims)
        client = self._check_issuer(claims, header)
        if not _audience_matches(claims.payload.get("aud"), endpoint_url):
            raise claims.fail("audience")
        exp = self._check_times(claims)
        subject = _check_subject(claims, client)
        await self._check_signature(token, claims, header, client, endpoint_url)
        await self._check_replay(claims, subject.jti, exp)
        return ClientIdentity(iss=claims.iss, sub=subject.sub, tenant=subject.tenant, jti=subject.jti, role=client.role)

    def _check_issuer(self, claims: _Claims, header: _Header) -> TrustedClient:
        """The trusted client of the token's ``iss``; a ``jku`` must be one the client lists."""
        iss = claims.iss
        client = self.clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise claims.fail("issuer")
        if header.jku is not None and header.jku not in client.jku:
            raise claims.fail("jku")
        return client

    def _check_times(self, claims: _Claims) -> int | float:
        """``exp``, ``iat`` (and ``nbf``) against the clock with the leeway, and the lifetime; returns ``exp``."""
        payload = claims.payload
        exp, iat, nbf = payload.get("exp"), payload.get("iat"), payload.get("nbf")
        if not _is_number(exp) or not _is_number(iat) or (nbf is not None and not _is_number(nbf)):
            raise claims.fail("times")
        now = self.clock().timestamp()
        if exp + self.leeway <= now:
            raise claims.fail("expired")
        if iat - self.leeway > now or (nbf is not None and nbf - self.leeway > now):
            raise claims.fail("not_yet_valid")
        if exp < iat or exp - iat > self.max_lifetime:
            raise claims.fail("lifetime")
        return exp

    async def _check_signature(
        self, token: str, claims: _Claims, header: _Header, client: TrustedClient, endpoint_url: str
    ) -> None:
        """The client's key named by ``kid`` (and ``jku``) must exist, allow ``alg`` and verify the token."""
        key = await self.keys.find_key(client, header.kid, header.jku)
        if key is None:
            raise claims.fail("unknown_key")
        if header.alg not in key.algorithms:
            raise claims.fail("key_algorithm")
        try:
            jwt.decode(
                token,
                key.key,
                algorithms=[header.alg],
                audience=endpoint_url,
                issuer=claims.iss,
                options={
                    "require": ["exp", "iat", "iss", "aud", "jti"],
                    # times were checked before (_check_times) against self.clock
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidSignatureError:
            raise claims.fail("signature") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise claims.fail("invalid") from None

    async def _check_replay(self, claims: _Claims, jti: str, exp: int | float) -> None:
        """Remember ``(iss, jti)`` until the token expires; a second use is a replay."""
        expires_at = datetime.fromtimestamp(exp + self.leeway, UTC)
        if not await self.jti_store.remember(claims.iss, jti, expires_at):
            raise claims.fail("replay")


@dataclass(frozen=True)
class _Claims:
    """The token's header and payload as it claims them, before any check (never trusted as such)."""

    header: dict[str, Any]
    payload: dict[str, Any]

    @classmethod
    def read(cls, token: str) -> _Claims:
        """Decode without verifying; a token that is not three parts of JSON objects is ``malformed``."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise AuthenticationError("malformed")
        try:
            header = jwt.get_unverified_header(token)
            payload = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthenticationError("malformed") from None
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise AuthenticationError("malformed")
        return cls(header, payload)

    @property
    def iss(self) -> Any:
        return self.payload.get("iss")

    def fail(self, category: str) -> AuthenticationError:
        """The refusal of this token, with its claimed ``iss``, ``kid`` and ``jti`` for the logs."""
        return AuthenticationError(category, iss=self.iss, kid=self.header.get("kid"), jti=self.payload.get("jti"))


@dataclass(frozen=True)
class _Header:
    alg: str
    kid: str
    jku: str | None


@dataclass(frozen=True)
class _Subject:
    tenant: str | None
    jti: str
    sub: str | None


def _check_header(claims: _Claims) -> _Header:
    """An allowed asymmetric ``alg``, ``typ`` JWT, a ``kid``, no ``crit``/``b64``, a string ``jku`` if any."""
    header = claims.header
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise claims.fail("algorithm")
    if header.get("typ") != "JWT":
        raise claims.fail("typ")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise claims.fail("kid")
    if "crit" in header or "b64" in header:
        raise claims.fail("header")
    jku = header.get("jku")
    if jku is not None and not isinstance(jku, str):
        raise claims.fail("jku")
    return _Header(alg=alg, kid=kid, jku=jku)


def _check_subject(claims: _Claims, client: TrustedClient) -> _Subject:
    """A ``tenant`` the client allows (if it lists any), a ``jti``, a string ``sub`` if any."""
    payload = claims.payload
    tenant = payload.get("tenant")
    if tenant is not None and (not isinstance(tenant, str) or not tenant or len(tenant) > MAX_TENANT_CHARS):
        raise claims.fail("tenant")
    if client.tenants is not None and tenant not in client.tenants:
        raise claims.fail("tenant")
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
        raise claims.fail("jti")
    sub = payload.get("sub")
    if sub is not None and not isinstance(sub, str):
        raise claims.fail("malformed")
    return _Subject(tenant=tenant, jti=jti, sub=sub)
