"""The FastAPI side of client authentication: ``CdsClientDep`` on a route requires a valid client JWT.

The endpoint URL a token's ``aud`` must name is ``HCC_PUBLIC_BASE_URL`` plus
the matched route's path template filled with the request's path parameters:
never the Host header, never the query string. If the service is published
under a path prefix, that prefix belongs in ``HCC_PUBLIC_BASE_URL``.

Every failure is the same bare ``401 {"detail": "Unauthorized"}`` with
``WWW-Authenticate: Bearer``; the reason is logged at INFO with the claimed
``iss``, ``kid`` and ``jti`` and the route's template (never the token, never the
filled path: it can carry a patient id). In demo mode authentication is off and
the dependency returns :data:`ANONYMOUS_CLIENT`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request

from service.auth.jwt_verifier import ANONYMOUS_CLIENT, AuthenticationError, ClientIdentity, JtiStore, JwtVerifier
from service.auth.keys import JwksCache, JwksFetcher
from service.auth.trusted_clients import TrustedClientKeys, TrustedClients, load_trusted_clients
from service.settings import Settings

log = logging.getLogger("hcc_cds.auth")

UNAUTHORIZED_DETAIL = "Unauthorized"
_LOG_VALUE_CHARS = 120
_PATH_SAFE = "/!$&'()*+,;=:@"  # RFC 3986 pchar (besides unreserved) and "/"


def _for_log(value: Any) -> str:
    """A claimed (untrusted) value, made safe for one log line."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _LOG_VALUE_CHARS:
        text = text[:_LOG_VALUE_CHARS] + "..."
    return repr(text)


def bearer_token(authorization: list[str]) -> str | None:
    """The token of the single ``Authorization: Bearer <token>`` header, else ``None``."""
    if len(authorization) != 1:
        return None
    scheme, _, token = authorization[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


class CdsClientAuth:
    """Client authentication as configured: a verifier and the public base URL, or off (demo)."""

    def __init__(self, verifier: JwtVerifier | None, public_base_url: str) -> None:
        self.verifier = verifier
        self.public_base_url = public_base_url.rstrip("/")

    @classmethod
    def disabled(cls) -> CdsClientAuth:
        """Authentication off: every caller is :data:`ANONYMOUS_CLIENT` (demo mode only)."""
        return cls(None, "")

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        fetcher: JwksFetcher,
        jti_store: JtiStore,
        clients: TrustedClients | None = None,
        jwks_cache: JwksCache | None = None,
    ) -> CdsClientAuth:
        """Off in demo mode; otherwise verify against ``HCC_TRUSTED_CLIENTS`` (``clients`` overrides the file)."""
        if settings.is_demo:
            return cls.disabled()
        if clients is None:
            if settings.trusted_clients is None:  # prevented by production_checks
                raise RuntimeError("HCC_TRUSTED_CLIENTS is not set")
            clients = load_trusted_clients(settings.trusted_clients)
        keys = TrustedClientKeys(jwks_cache or JwksCache(fetcher))
        return cls(JwtVerifier(clients, keys, jti_store), settings.public_base_url)

    @property
    def enabled(self) -> bool:
        return self.verifier is not None

    def endpoint_url(self, path: str) -> str:
        return self.public_base_url + path

    async def authenticate(self, authorization: list[str], path: str, *, route: str | None = None) -> ClientIdentity:
        """The caller of ``path`` (``Authorization`` header values as sent); :class:`AuthenticationError` if refused.

        ``route`` is what a refusal's log line names (the route's template); without it, ``path``.
        """
        if self.verifier is None:
            return ANONYMOUS_CLIENT
        try:
            token = bearer_token(authorization)
            if token is None:
                raise AuthenticationError("no_bearer_token")
            identity = await self.verifier.verify(token, self.endpoint_url(path))
        except AuthenticationError as exc:
            log.info(
                "CDS client refused: %s (iss=%s kid=%s jti=%s path=%s)",
                exc.category,
                _for_log(exc.iss),
                _for_log(exc.kid),
                _for_log(exc.jti),
                _for_log(route if route is not None else path),
            )
            raise
        log.debug("CDS client accepted: iss=%r tenant=%r jti=%r", identity.iss, identity.tenant, identity.jti)
        return identity


async def get_client_auth(request: Request) -> CdsClientAuth:  # async: no thread-pool hop per request
    """The app's :class:`CdsClientAuth`: ``app.state.hcc.client_auth`` (fails closed if unwired)."""
    auth = getattr(getattr(request.app.state, "hcc", None), "client_auth", None)
    if not isinstance(auth, CdsClientAuth):
        raise RuntimeError("client authentication is not configured: set AppState.client_auth")
    return auth


def endpoint_path(request: Request) -> str:
    """The path of the matched route, from its template and the path parameters (no query string, no Host)."""
    route = request.scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        raise RuntimeError("endpoint_path needs a matched route")
    params = {name: quote(str(value), safe=_PATH_SAFE) for name, value in request.path_params.items()}
    return template.format_map(params)


def _route_template(request: Request) -> str | None:
    """The matched route's template (``/api/v1/patients/{patient_id}/assessment``): what logs may name."""
    template = getattr(request.scope.get("route"), "path_format", None)
    return template if isinstance(template, str) else None


async def require_cds_client(
    request: Request, auth: Annotated[CdsClientAuth, Depends(get_client_auth)]
) -> ClientIdentity:
    """FastAPI dependency: the verified caller, or a bare 401."""
    try:
        identity = await auth.authenticate(
            request.headers.getlist("authorization"), endpoint_path(request), route=_route_template(request)
        )
        request.state.client_identity = identity  # for the audit record
        return identity
    except AuthenticationError:
        raise HTTPException(401, UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"}) from None


def caller(request: Request) -> ClientIdentity:
    """The authenticated caller of this request (:data:`ANONYMOUS_CLIENT` in demo mode)."""
    identity = getattr(request.state, "client_identity", None)
    return identity if isinstance(identity, ClientIdentity) else ANONYMOUS_CLIENT


def writer_scope(request: Request) -> tuple[str, str | None] | None:
    """Who the rows a call writes (feedback, issued cards) belong to: (iss, tenant); ``None`` in demo mode."""
    identity = caller(request)
    return None if identity.iss is None else (identity.iss, identity.tenant)


def reader_scope(request: Request) -> tuple[str, str | None] | None:
    """Whose audit events and feedback a call may read: its own (iss, tenant); ``None`` (all) for an operator."""
    identity = caller(request)
    return None if identity.is_operator or identity.iss is None else (identity.iss, identity.tenant)


OPERATOR_ONLY = "This route is for operator-role clients (role: operator in HCC_TRUSTED_CLIENTS)"


def require_operator(request: Request) -> None:
    """403 unless the caller is an operator (or demo mode's anonymous caller)."""
    if not caller(request).is_operator:
        raise HTTPException(403, OPERATOR_ONLY)


CdsClientDep = Annotated[ClientIdentity, Depends(require_cds_client)]
"""A route parameter ``client: CdsClientDep`` requires an authenticated CDS client (anonymous in demo mode)."""
