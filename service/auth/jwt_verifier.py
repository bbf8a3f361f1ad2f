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
from typing import Any, Protocol, runtime_checkable

import jwt

from service.auth.keys import ALLOWED_ALGORITHMS
from service.auth.trusted_clients import KeySource, TrustedClients

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


def _is_number(value: Any) -> bool:
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
        """The caller's identity if ``token`` is valid for ``endpoint_url``; else :class:`AuthenticationError`."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise AuthenticationError("malformed")
        try:
            header = jwt.get_unverified_header(token)
            payload = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthenticationError("malformed") from None
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise AuthenticationError("malformed")

        kid = header.get("kid")
        iss = payload.get("iss")
        jti = payload.get("jti")

        def fail(category: str) -> AuthenticationError:
            return AuthenticationError(category, iss=iss, kid=kid, jti=jti)

        # 1. header
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise fail("algorithm")
        if header.get("typ") != "JWT":
            raise fail("typ")
        if not isinstance(kid, str) or not kid:
            raise fail("kid")
        if "crit" in header or "b64" in header:
            raise fail("header")
        jku = header.get("jku")
        if jku is not None and not isinstance(jku, str):
            raise fail("jku")

        # 2. issuer, jku
        client = self.clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise fail("issuer")
        if jku is not None and jku not in client.jku:
            raise fail("jku")

        # 3. audience
        if not _audience_matches(payload.get("aud"), endpoint_url):
            raise fail("audience")

        # 4. times
        exp, iat, nbf = payload.get("exp"), payload.get("iat"), payload.get("nbf")
        if not _is_number(exp) or not _is_number(iat) or (nbf is not None and not _is_number(nbf)):
            raise fail("times")
        now = self.clock().timestamp()
        if exp + self.leeway <= now:
            raise fail("expired")
        if iat - self.leeway > now or (nbf is not None and nbf - self.leeway > now):
            raise fail("not_yet_valid")
        if exp < iat or exp - iat > self.max_lifetime:
            raise fail("lifetime")

        # 5. tenant, jti, sub
        tenant = payload.get("tenant")
        if tenant is not None and (not isinstance(tenant, str) or not tenant or len(tenant) > MAX_TENANT_CHARS):
            raise fail("tenant")
        if client.tenants is not None and tenant not in client.tenants:
            raise fail("tenant")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise fail("jti")
        sub = payload.get("sub")
        if sub is not None and not isinstance(sub, str):
            raise fail("malformed")

        # 6. signature
        key = await self.keys.find_key(client, kid, jku)
        if key is None:
            raise fail("unknown_key")
        if alg not in key.algorithms:
            raise fail("key_algorithm")
        try:
            jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=endpoint_url,
                issuer=iss,
                options={
                    "require": ["exp", "iat", "iss", "aud", "jti"],
                    # times were checked above against self.clock
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidSignatureError:
            raise fail("signature") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise fail("invalid") from None

        # 7. replay
        expires_at = datetime.fromtimestamp(exp + self.leeway, UTC)
        if not await self.jti_store.remember(iss, jti, expires_at):
            raise fail("replay")
        return ClientIdentity(iss=iss, sub=sub, tenant=tenant, jti=jti, role=client.role)
