"""The SMART app's EHR launch: ``GET /smart/launch`` and ``GET /smart/callback`` (issue 23).

A browser in the EHR's frame comes here, not a CDS client: no client JWT. ``/smart/launch?iss&launch
[&assessment]`` checks ``iss`` against the allowlist before any request, reads the EHR's SMART
configuration, keeps the PKCE verifier and nonce server-side (encrypted, single use, 10 minutes) and sends
the browser to the authorize endpoint. ``/smart/callback?code&state`` takes that launch back by its
``state`` (once), exchanges the code, verifies the id_token, stores the session and sets its cookie, then
sends the browser to ``/smart/app`` (303): no token, code or patient in any URL. Every refusal is a short
HTML page (4xx; 502 when the EHR fails), never a 500, never a session or a cookie.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.api.page import PAGE_HEADERS
from service.audit import note_audit
from service.db.models import ISS_LENGTH
from service.db.smart import LAUNCH_LIFETIME, MAX_LAUNCH_LENGTH, digest
from service.db.types import utcnow
from service.deps import StateDep
from service.main_state import AppState
from service.render.templates import TEMPLATES
from service.settings import Settings
from service.smart.discovery import SmartConfiguration, SmartDiscoveryError, SmartIssNotAllowedError
from service.smart.launch import (
    CALLBACK_PATH,
    SmartLaunchError,
    authorize_request,
    exchange_code,
    oauth_client,
)
from service.smart.session import (
    APP_PATH,
    COOKIE_NAME,
    UNKNOWN_USER,
    SmartNotConfigured,
    SmartPageError,
    window_path,
)

log = logging.getLogger("hcc_cds.smart")
router = APIRouter(tags=["smart"])

LAUNCH_COOKIE = "hcc_smart_launch"  # binds a launch to the browser that started it (Path=/smart/callback)
# errors an EHR's authorization server returns when it (or the user) declines: 403; other errors: 400
DECLINED = frozenset({"access_denied", "invalid_scope", "unauthorized_client", "invalid_client"})
MAX_DESCRIPTION = 300
MAX_STATE_LENGTH = 200
MAX_CODE_LENGTH = 8_000
PAGE_CONTENT: dict[str, Any] = {"content": {"text/html": {}}}  # an OpenAPI answer that is one of these pages
_PAGE = PAGE_CONTENT


def smart_page_headers(settings: Settings) -> dict[str, str]:
    """The app pages' headers: :data:`PAGE_HEADERS` with the EHR origins that may frame them
    (``HCC_SMART_FRAME_ANCESTORS``; the card pages say ``frame-ancestors 'none'``)."""
    csp = PAGE_HEADERS["Content-Security-Policy"].replace(
        "frame-ancestors 'none'", f"frame-ancestors {settings.smart_frame_ancestors}; form-action 'self'"
    )
    return {**PAGE_HEADERS, "Content-Security-Policy": csp}


def set_session_cookie(response: Response, settings: Settings, value: str, max_age: int, path: str) -> None:
    """The session's cookie (see :func:`_set_cookie`) on its window's path (``/smart/app/<window>``), as long as the
    session: a second launch in the same browser (another patient, another EHR window) gets its own path and cookie
    instead of replacing the first window's session."""
    _set_cookie(response, settings, COOKIE_NAME, value, max_age, path)


def _set_cookie(response: Response, settings: Settings, name: str, value: str, max_age: int, path: str) -> None:
    """An app cookie: HttpOnly, on ``path``, for ``max_age`` seconds.

    Over https it is ``SameSite=None; Secure; Partitioned``: the EHR shows the app in an iframe of another
    site, where a ``Lax`` cookie is never sent, and browsers that block third-party cookies keep a
    partitioned one (CHIPS) for that EHR's frame only. Over http (tests, demo on loopback) ``SameSite=None``
    is refused by browsers without ``Secure``: ``Lax`` then (the test stack is same-site).
    """
    https = settings.public_base_url.startswith("https://")
    response.set_cookie(
        name,
        value,
        max_age=max(0, max_age),  # 0: deleted
        path=path,
        httponly=True,
        secure=https,
        samesite="none" if https else "lax",
    )
    if https:  # Starlette writes Partitioned only on Python >= 3.14 (http.cookies): added to the header here
        header, value_bytes = response.raw_headers[-1]
        assert header == b"set-cookie", "set_cookie appends its header last"
        response.raw_headers[-1] = (header, value_bytes + b"; Partitioned")


def page(
    settings: Settings, status: int, title: str, message: str, *, link: tuple[str, str] | None = None
) -> HTMLResponse:
    """A short message page (autoescaped: an EHR's error text is shown as text); ``link``: (href, words) onward."""
    html = TEMPLATES.get_template("message.html").render(title=title, message=message, link=link)
    return HTMLResponse(html, status_code=status, headers=smart_page_headers(settings))


async def page_error(request: Request, exc: Exception) -> Response:
    """The exception handler of :class:`SmartPageError` (the session dependency's 401, the 404 when off)."""
    assert isinstance(exc, SmartPageError)
    return page(request.app.state.hcc.settings, exc.status, exc.title, exc.message)


def _client_id(state: AppState) -> str:
    if state.settings.smart_client_id is None:
        raise SmartNotConfigured()
    return state.settings.smart_client_id


async def _configuration(state: AppState, iss: str) -> SmartConfiguration:
    assert state.fhir.client is not None, "the HTTP client is opened by the app's lifespan"
    try:
        return await state.smart_discovery.configuration(state.fhir.client, iss, state.settings)
    except SmartIssNotAllowedError as exc:
        raise SmartPageError(403, "The app cannot be launched from this EHR", str(exc)) from None
    except SmartDiscoveryError as exc:
        log.warning("smart: discovery failed: %s", exc)
        raise SmartPageError(502, "The EHR's SMART configuration is unusable", str(exc)) from None


@router.get(
    "/smart/launch",
    response_class=RedirectResponse,
    status_code=302,
    summary="SMART EHR launch: redirects the browser to the EHR's authorization endpoint",
    responses={
        302: {"description": "To the EHR's authorize endpoint (PKCE S256, aud=iss, launch, state, nonce)"},
        400: {"description": "iss or launch missing or too long", **_PAGE},
        403: {"description": "iss is not an accepted FHIR server", **_PAGE},
        404: {"description": "The SMART app is not configured (HCC_SMART_CLIENT_ID)", **_PAGE},
        502: {"description": "The EHR's SMART configuration is unusable", **_PAGE},
    },
)
async def smart_launch(
    request: Request,
    state: StateDep,
    iss: Annotated[str | None, Query(description="the EHR's FHIR base")] = None,
    launch: Annotated[str | None, Query(description="the EHR's opaque launch context")] = None,
    assessment: Annotated[str | None, Query(description="a card's stored assessment id (a hint only)")] = None,
) -> Response:
    client_id = _client_id(state)  # lengths checked here, not by FastAPI: a browser gets a page, not JSON
    if not iss or not launch or len(iss) > ISS_LENGTH or len(launch) > MAX_LAUNCH_LENGTH:
        return page(state.settings, 400, "The app was not launched by an EHR",
                    "Open the app from the patient's chart in the EHR (the launch names the EHR and its context).")
    config = await _configuration(state, iss)
    note_audit(request, issuer=config.iss)
    assert state.fhir.client is not None
    authorize = authorize_request(oauth_client(state.fhir.client, client_id, state.settings.public_base_url), config, launch)
    await state.db.smart.create_launch(
        authorize.state,
        iss=config.iss,
        launch=launch,
        assessment_hint=assessment,
        code_verifier=authorize.code_verifier,
        nonce=authorize.nonce,
        browser_binding=(binding := secrets.token_urlsafe(32)),
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    redirect = RedirectResponse(authorize.url, status_code=302, headers=headers)
    # the callback must come back to this browser: a code and state started by someone else (login CSRF: the
    # victim would work in the attacker's session, and sign the attacker's Provenance) find no such cookie
    _set_cookie(redirect, state.settings, LAUNCH_COOKIE, binding, int(LAUNCH_LIFETIME.total_seconds()), CALLBACK_PATH)
    return redirect


def _declined(settings: Settings, error: str, description: str | None) -> HTMLResponse:
    text = (description or "").strip()[:MAX_DESCRIPTION]
    error = error[:60]
    message = f"The EHR did not authorise the app: {text or error} (error: {error})."
    return page(settings, 403 if error in DECLINED else 400, "The EHR did not authorise the app", message)


@router.get(
    "/smart/callback",
    response_class=RedirectResponse,
    status_code=303,
    summary="SMART EHR launch: the authorization server's redirect (code, or error)",
    responses={
        303: {"description": f"Session stored, cookie set on its window's path; to {APP_PATH}/<window>"},
        400: {"description": "Missing, unknown, expired or replayed state; other OAuth errors", **_PAGE},
        403: {"description": "The EHR declined, or its token response or id_token is refused", **_PAGE},
        404: {"description": "The SMART app is not configured (HCC_SMART_CLIENT_ID)", **_PAGE},
        502: {"description": "The EHR's token endpoint or configuration failed", **_PAGE},
    },
)
async def smart_callback(
    request: Request,
    state: StateDep,
    code: Annotated[str | None, Query(description="the authorization code")] = None,
    state_: Annotated[str | None, Query(alias="state", description="the launch's state")] = None,
    error: Annotated[str | None, Query(description="the OAuth error, when the EHR declined")] = None,
    error_description: Annotated[str | None, Query()] = None,
) -> Response:
    answer = await _callback(request, state, code, state_, error, error_description)
    # the launch's binding cookie has served (or the launch is gone): deleted with the same attributes it was set with
    _set_cookie(answer, state.settings, LAUNCH_COOKIE, "", 0, CALLBACK_PATH)
    return answer


async def _callback(
    request: Request, state: AppState, code: str | None, state_: str | None, error: str | None,
    error_description: str | None,
) -> Response:
    client_id = _client_id(state)
    usable_state = state_ if state_ and len(state_) <= MAX_STATE_LENGTH else None
    launch = await state.db.smart.take_launch(usable_state) if usable_state else None  # used up, whatever comes next
    if launch is not None:
        note_audit(request, issuer=launch.iss)
    if error:  # the EHR's own words only for a launch of this app (else anyone could word this page)
        return _declined(state.settings, error, error_description if launch is not None else None)
    if launch is not None and launch.browser_sha256 is not None and not secrets.compare_digest(
            digest(request.cookies.get(LAUNCH_COOKIE, "")).encode(), launch.browser_sha256.encode()):
        return page(state.settings, 400, "This sign-in was started elsewhere",
                    "The app's sign-in did not start in this browser, so it is refused. Open the app again from the "
                    "patient's chart.")
    if launch is None or not code or len(code) > MAX_CODE_LENGTH:
        return page(state.settings, 400, "This sign-in has expired or was already used",
                    "The app's sign-in could not be matched to a launch (it expired, or was already used). "
                    "Open the app again from the patient's chart.")
    config = await _configuration(state, launch.iss)
    assert state.fhir.client is not None
    try:
        granted = await exchange_code(
            oauth_client(state.fhir.client, client_id, state.settings.public_base_url),
            state.fhir.client,
            config,
            state.smart_jwks,
            code=code,
            code_verifier=launch.code_verifier,
            nonce=launch.nonce,
        )
    except SmartLaunchError as exc:
        log.warning("smart: callback refused: %s", exc.message)
        return page(state.settings, exc.status, "The app could not sign in", exc.message)
    now = utcnow()
    longest = now + timedelta(minutes=state.settings.smart_session_minutes)
    expires = min(granted.expires_at, longest) if granted.expires_at else longest
    cookie, session = await state.db.smart.create_session(
        iss=config.iss,
        patient_id=granted.patient_id,
        fhir_user=granted.fhir_user,
        client_id=client_id,
        scope=granted.scope,
        access_token=granted.access_token,
        expires_at=expires,
        assessment_hint=granted.app_context_assessment or launch.assessment_hint,
        now=now,
    )
    note_audit(request, actor=session.fhir_user or UNKNOWN_USER, patient_ref=f"Patient/{session.patient_id}")
    window = window_path(secrets.token_urlsafe(12))
    response = RedirectResponse(window, status_code=303, headers={"Cache-Control": "no-store"})
    set_session_cookie(response, state.settings, cookie, int((expires - now).total_seconds()), window)
    return response
