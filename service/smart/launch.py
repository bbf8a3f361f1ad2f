"""The EHR launch's OAuth 2.0 steps (SMART App Launch 2.x, a public client with PKCE S256).

Authlib's ``AsyncOAuth2Client`` builds the authorize URL (``code_challenge`` S256, ``aud`` = the FHIR base,
``launch``, ``state``, ``nonce``) and exchanges the code (``code_verifier``, ``client_id`` in the body: no
secret). It runs on the transport of the app's shared httpx client (its pool; tests put a MockTransport
there). The id_token is verified with PyJWT against the configuration's ``jwks_uri`` (signature, ``aud`` =
our client id, ``iss`` = the configuration's issuer, ``exp``, our ``nonce``); the JWKS is fetched through the
same httpx client rather than PyJWT's ``PyJWKClient``, whose urllib fetch would block the event loop and
bypass the app's transport. Without a ``jwks_uri`` (or an id_token) the user stays unknown: the session
is read-only (no author for the Provenance).

Scopes: the narrowest the app needs. With an authorization server that advertises ``permission-v2``, SMART v2
(``.rs`` to read and search; ``.c`` to create lesions, measurements, findings and the Provenance; ``.u`` only for
Procedure, whose coding a confirmation updates: never delete); otherwise the v1 syntax (``.read``/``.write``).
The session decides what it may write from the scope *granted* (:func:`service.smart.session.scope_grants`
reads v1 and v2).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import authlib.deprecate  # noqa: F401 - first: it adds an "always" filter that would override ours
import httpx
import jwt

with warnings.catch_warnings():
    # Authlib 1.9 prefers the new ``httpx2`` package and warns when it falls back to ``httpx``: this app
    # runs on httpx (its shared transport is handed to the OAuth client), so the fallback is the point
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

from service.fhir.ids import FHIR_ID_PATTERN
from service.smart.discovery import SmartConfiguration

log = logging.getLogger("hcc_cds.smart")

READ_SCOPES = (
    "launch openid fhirUser patient/Patient.read patient/Observation.read patient/Condition.read "
    "patient/Procedure.read patient/MedicationRequest.read patient/MedicationStatement.read "
    "patient/AllergyIntolerance.read patient/BodyStructure.read"
)
WRITE_SCOPES = (
    "patient/Observation.write patient/BodyStructure.write patient/Condition.write patient/Procedure.write "
    "patient/Provenance.write"
)
SCOPES = f"{READ_SCOPES} {WRITE_SCOPES}"
SCOPES_V2 = (
    "launch openid fhirUser patient/Patient.r patient/Observation.rs patient/Condition.rs patient/Procedure.rs "
    "patient/MedicationRequest.rs patient/MedicationStatement.rs patient/AllergyIntolerance.rs "
    "patient/BodyStructure.rs patient/Observation.c patient/BodyStructure.c patient/Condition.c "
    "patient/Procedure.u patient/Provenance.c"
)


def scopes_for(config: SmartConfiguration) -> str:
    """The scopes to ask of this authorization server: v2 (narrower: no delete) when it says it grants them."""
    return SCOPES_V2 if "permission-v2" in config.capabilities else SCOPES

ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384"]
TIMEOUT_SECONDS = 10.0
MAX_TOKEN_SECONDS = 86_400.0
JWKS_CACHE_SECONDS = 300.0
MAX_JWKS_BYTES = 256 * 1024
CALLBACK_PATH = "/smart/callback"
_PATIENT_ID = re.compile(FHIR_ID_PATTERN)
_FHIR_USER = re.compile(r"^(?:https?://\S+/)?[A-Z][A-Za-z]{0,63}/" + FHIR_ID_PATTERN + "$")
MAX_FHIR_USER = 200


class SmartLaunchError(Exception):
    """The launch or the callback is refused; ``status`` (4xx, or 502 for an EHR that failed) and a message
    for the page (never a token or a code)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class AuthorizeRequest:
    """Where to send the browser, and what the callback needs back (stored encrypted, keyed by ``state``)."""

    url: str
    state: str
    code_verifier: str
    nonce: str


@dataclass(frozen=True)
class GrantedToken:
    """The token response, checked. ``expires_at`` None: the response gave no ``expires_in``."""

    access_token: str
    patient_id: str
    scope: str
    expires_at: datetime | None
    fhir_user: str | None
    app_context_assessment: str | None


def oauth_client(shared: httpx.AsyncClient, client_id: str, public_base_url: str) -> AsyncOAuth2Client:
    """A public client (no secret: ``client_id`` in the token request) on the shared client's transport.

    Never closed: closing it would close the shared transport (the app's lifespan closes that).
    """
    transport = shared._transport  # the app's pool (a MockTransport in tests); httpx has no public accessor
    return AsyncOAuth2Client(
        client_id=client_id,
        token_endpoint_auth_method="none",
        code_challenge_method="S256",
        redirect_uri=f"{public_base_url}{CALLBACK_PATH}",
        scope=SCOPES,
        transport=transport,
        timeout=TIMEOUT_SECONDS,
        follow_redirects=False,
        trust_env=False,
    )


def authorize_request(client: AsyncOAuth2Client, config: SmartConfiguration, launch: str) -> AuthorizeRequest:
    """The authorize URL with a fresh ``state``, PKCE verifier (S256 challenge) and ``nonce``."""
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 asks 43 to 128
    url, _ = client.create_authorization_url(
        config.authorization_endpoint, state=state, code_verifier=verifier, aud=config.iss, launch=launch, nonce=nonce,
        scope=scopes_for(config),
    )
    return AuthorizeRequest(url=url, state=state, code_verifier=verifier, nonce=nonce)


async def exchange_code(
    client: AsyncOAuth2Client,
    shared: httpx.AsyncClient,
    config: SmartConfiguration,
    jwks: JwksCache,
    *,
    code: str,
    code_verifier: str,
    nonce: str,
) -> GrantedToken:
    """Exchange the code, check the token response and its id_token; :class:`SmartLaunchError` otherwise."""
    try:
        token: dict[str, Any] = await client.fetch_token(
            config.token_endpoint, grant_type="authorization_code", code=code, code_verifier=code_verifier
        )
    except OAuthError as exc:
        raise SmartLaunchError(403, f"The EHR refused to issue a token ({_short(exc.error)}).") from None
    except httpx.HTTPStatusError as exc:
        raise SmartLaunchError(502, f"The EHR's token endpoint failed (HTTP {exc.response.status_code}).") from None
    except (httpx.HTTPError, ValueError) as exc:
        raise SmartLaunchError(502, f"The EHR's token endpoint did not answer usably ({type(exc).__name__}).") from None
    access_token = token.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise SmartLaunchError(403, "The EHR's token response has no access token.")
    if str(token.get("token_type", "")).lower() != "bearer":
        raise SmartLaunchError(403, "The EHR's token response is not a bearer token.")
    patient = token.get("patient")
    if not isinstance(patient, str) or not _PATIENT_ID.fullmatch(patient):
        raise SmartLaunchError(403, "The EHR's token response names no patient: open the app from a patient's chart.")
    granted_scope = token.get("scope")
    scope = granted_scope if isinstance(granted_scope, str) else scopes_for(config)  # absent: as asked (RFC 6749 5.1)
    fhir_user = await _verified_fhir_user(token.get("id_token"), shared, config, jwks, client.client_id, nonce)
    return GrantedToken(
        access_token=access_token,
        patient_id=patient,
        scope=scope,
        expires_at=_expires_at(token.get("expires_in")),
        fhir_user=fhir_user,
        app_context_assessment=app_context_assessment(token.get("appContext")),
    )


def _short(text: object) -> str:
    value = str(text or "unknown error")
    return value[:100] if value.isprintable() else "unknown error"


def _expires_at(expires_in: object) -> datetime | None:
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        return None
    # a day at most: an absurd expires_in (1e13) would overflow datetime; the session is shorter anyway
    return datetime.now(UTC) + timedelta(seconds=min(float(expires_in), MAX_TOKEN_SECONDS))


def app_context_assessment(app_context: object) -> str | None:
    """The ``assessment`` of a CDS card's ``appContext`` (a JSON string, or an object), else ``None``."""
    if isinstance(app_context, str):
        try:
            app_context = json.loads(app_context)
        except ValueError:
            return None
    value = app_context.get("assessment") if isinstance(app_context, dict) else None
    return value if isinstance(value, str) and value else None


async def _verified_fhir_user(
    id_token: object,
    shared: httpx.AsyncClient,
    config: SmartConfiguration,
    jwks: JwksCache,
    client_id: str,
    nonce: str,
) -> str | None:
    """The verified id_token's ``fhirUser`` (``None``: no id_token or no jwks_uri: the session is read-only)."""
    if id_token is None:
        log.warning("smart: the token response has no id_token; the user is unknown (read-only session)")
        return None
    if config.jwks_uri is None:
        log.warning("smart: the SMART configuration has no jwks_uri; the id_token is not used (read-only session)")
        return None
    if not isinstance(id_token, str):
        raise SmartLaunchError(403, "The EHR's identity token (id_token) is malformed.")
    try:
        key = await jwks.signing_key(shared, config.jwks_uri, id_token)
        claims = jwt.decode(
            id_token,
            key,
            algorithms=ID_TOKEN_ALGORITHMS,
            audience=client_id,
            issuer=config.issuer or config.iss,
            options={"require": ["exp", "iss", "aud"]},
            leeway=30,
        )
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise SmartLaunchError(403, f"The EHR's identity token could not be verified ({type(exc).__name__}).") from None
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"].encode(), nonce.encode()):
        raise SmartLaunchError(403, "The EHR's identity token could not be verified (nonce).")
    return normalise_fhir_user(claims.get("fhirUser") or claims.get("profile"), config.iss)


def normalise_fhir_user(value: object, iss: str) -> str | None:
    """``Type/id`` (relative to ``iss`` when the claim is an absolute URL on it), an absolute URL elsewhere;
    ``None`` for anything else (the session is then read-only)."""
    if not isinstance(value, str) or len(value) > MAX_FHIR_USER or not _FHIR_USER.fullmatch(value):
        return None
    prefix = iss.rstrip("/") + "/"
    return value[len(prefix):] if value.startswith(prefix) else value


class JwksCache:
    """The JSON Web Key Sets of id_token issuers, by URL, for :data:`JWKS_CACHE_SECONDS` (one per app)."""

    def __init__(self, cache_seconds: float = JWKS_CACHE_SECONDS) -> None:
        self.cache_seconds = cache_seconds
        self._sets: dict[str, tuple[float, jwt.PyJWKSet]] = {}

    async def signing_key(self, shared: httpx.AsyncClient, url: str, token: str) -> Any:
        """The key of ``token``'s ``kid`` (fetched again once when unknown: the EHR rotated its keys)."""
        kid = jwt.get_unverified_header(token).get("kid")
        for refresh in (False, True):
            keys = await self._keys(shared, url, refresh=refresh)
            usable = [k for k in keys.keys if k.public_key_use in (None, "sig")]
            if kid is None and len(usable) == 1:
                return usable[0].key
            for key in usable:
                if key.key_id == kid:
                    return key.key
        raise jwt.InvalidTokenError("no key of the EHR's key set matches the id_token's kid")

    async def _keys(self, shared: httpx.AsyncClient, url: str, *, refresh: bool) -> jwt.PyJWKSet:
        cached = self._sets.get(url)
        if cached is not None and not refresh and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = await shared.get(url, headers={"Accept": "application/json"}, timeout=TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            raise jwt.PyJWKClientConnectionError(f"the key set could not be read ({type(exc).__name__})") from None
        if response.status_code != 200 or len(response.content) > MAX_JWKS_BYTES:
            raise jwt.PyJWKClientError(f"the key set could not be read (HTTP {response.status_code})")
        keys = jwt.PyJWKSet.from_dict(response.json())
        self._sets[url] = (time.monotonic() + self.cache_seconds, keys)
        return keys
