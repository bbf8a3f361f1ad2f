"""SMART Backend Services: an access token for a FHIR server's Bulk Data API, from a private_key_jwt assertion.

:class:`SmartBackendAuth` is an ``httpx.Auth``: it finds the token endpoint (``.well-known/smart-configuration``),
signs a short-lived client assertion (RS384 or ES384), trades it for an access token, caches the token until
shortly before ``expires_in`` and, when the server answers 401 anyway (an ``expired`` token), fetches a new one
once and repeats the request. Keeping all of this inside the auth flow means neither the key, the assertion nor
the token is ever a value the caller holds, logs or puts in a message.

It adds the token only to requests on the FHIR server's origin (scheme, host, port), whatever the caller passes
it to: a file URL on another host (a cloud bucket) never sees it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from service.observability.logging import redact
from service.settings import Settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 240  # servers refuse an exp more than 5 minutes ahead
TOKEN_MARGIN_SECONDS = 60.0  # a cached token is replaced this long before it expires (at most a tenth of its life)
DEFAULT_SCOPE = "system/*.read"
Alg = Literal["RS384", "ES384"]


class BackendAuthError(RuntimeError):
    """No access token could be had; the message names the endpoint and the server's reason (never a secret)."""


def origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``, default ports made explicit, to compare two URLs' origins."""
    u = httpx.URL(str(url))
    port = u.port or {"http": 80, "https": 443}.get(u.scheme)
    return u.scheme, u.host, port


def load_private_key(pem: SecretStr, alg: Alg) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """The PEM private key, checked against ``alg`` now rather than at the first request."""
    try:
        key = serialization.load_pem_private_key(pem.get_secret_value().encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise BackendAuthError("the Bulk Data private key is not an unencrypted PEM private key") from exc
    if alg == "RS384" and isinstance(key, rsa.RSAPrivateKey):
        return key
    if alg == "ES384" and isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return key
    wanted = "an RSA key" if alg == "RS384" else "an EC P-384 key"
    raise BackendAuthError(f"HCC_BULK_ALG is {alg} but the private key is not {wanted}")


class SmartBackendAuth(httpx.Auth):
    """Bearer tokens from a SMART Backend Services token endpoint, for requests to ``base_url``'s origin."""

    # Only the answers to its own discovery and token requests are read (``requires_response_body`` would make
    # httpx read every answer whole before the caller sees it: a streamed NDJSON download too).
    requires_response_body = False

    def __init__(
        self,
        base_url: str,
        client_id: str,
        private_key: SecretStr,
        *,
        alg: Alg = "RS384",
        key_id: str | None = None,
        scope: str = DEFAULT_SCOPE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.alg = alg
        self.key_id = key_id
        self.scope = scope
        self._key = load_private_key(private_key, alg)
        self._clock = clock
        self._token_endpoint: str | None = None
        self._token: str | None = None
        self._token_until = 0.0
        self.tokens_fetched = 0  # for tests and progress: how often a token was requested

    def __repr__(self) -> str:  # no key, no token
        return f"SmartBackendAuth(base_url={self.base_url!r}, client_id={self.client_id!r}, alg={self.alg!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self.auth_flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            if outgoing is not request:
                response.read()
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self.auth_flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            if outgoing is not request:
                await response.aread()
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin(request.url) != origin(self.base_url):
            yield request  # never a token to another origin
            return
        if self._token is None or self._clock() >= self._token_until:
            yield from self._fetch_token()
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            self._token = None
            yield from self._fetch_token()
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    def _fetch_token(self) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token_endpoint is None:
            self._token_endpoint = yield from self._discover()
        endpoint = self._token_endpoint
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(endpoint),
            "scope": self.scope,
        }
        asked_at = self._clock()
        response = yield httpx.Request("POST", endpoint, data=form, headers={"Accept": "application/json"})
        self.tokens_fetched += 1
        self._token, lifetime = _read_token(endpoint, response)
        self._token_until = asked_at + lifetime - min(TOKEN_MARGIN_SECONDS, lifetime / 10)

    def _discover(self) -> Generator[httpx.Request, httpx.Response, str]:
        """``token_endpoint`` from the FHIR base's smart-configuration, else the server root's."""
        parts = urlsplit(self.base_url)
        root = f"{parts.scheme}://{parts.netloc}"
        for url in (f"{self.base_url}/.well-known/smart-configuration", f"{root}/.well-known/smart-configuration"):
            response = yield httpx.Request("GET", url, headers={"Accept": "application/json"})
            if response.status_code == 200:
                try:
                    endpoint = response.json().get("token_endpoint")
                except ValueError:
                    continue
                if isinstance(endpoint, str) and endpoint.startswith(("https://", "http://")):
                    return endpoint
        raise BackendAuthError(
            f"no token_endpoint in {self.base_url}/.well-known/smart-configuration nor in the server root's: "
            "does the FHIR server support SMART Backend Services?"
        )

    def assertion(self, token_endpoint: str) -> str:
        """A fresh signed client assertion (``iss = sub = client_id``, ``aud`` = the token endpoint)."""
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_endpoint,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
        }
        headers = {"typ": "JWT", **({"kid": self.key_id} if self.key_id else {})}
        return jwt.encode(claims, self._key, algorithm=self.alg, headers=headers)


def _read_token(endpoint: str, response: httpx.Response) -> tuple[str, float]:
    """(access token, lifetime in seconds) of a token answer, or a clear error quoting the server's reason."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        reason = ""
        if isinstance(body, dict) and body.get("error"):
            reason = f": {body.get('error')}"
            if body.get("error_description"):
                reason += f" ({body['error_description']})"
        raise BackendAuthError(
            redact(f"the token endpoint {endpoint} refused the client assertion (HTTP {response.status_code}){reason}")
        )
    try:
        lifetime = float(body.get("expires_in", 300))
    except (TypeError, ValueError):
        lifetime = 300.0
    return body["access_token"], max(lifetime, 1.0)


def backend_auth_from_settings(settings: Settings, base_url: str) -> SmartBackendAuth | None:
    """The auth ``HCC_BULK_*`` configure for ``base_url``; None when no client id is set (an open server)."""
    if not settings.bulk_client_id:
        return None
    if settings.bulk_private_key_file is None:
        raise BackendAuthError("HCC_BULK_CLIENT_ID is set but HCC_BULK_PRIVATE_KEY_FILE is not")
    path = Path(settings.bulk_private_key_file)
    try:
        pem = SecretStr(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendAuthError(f"HCC_BULK_PRIVATE_KEY_FILE {path} cannot be read: {exc.__class__.__name__}") from exc
    return SmartBackendAuth(
        base_url,
        settings.bulk_client_id,
        pem,
        alg=settings.bulk_alg,
        key_id=settings.bulk_key_id,
        scope=settings.bulk_scope,
    )
