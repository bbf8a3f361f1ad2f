"""A SMART app session: what the EHR granted one browser, kept server-side, named by a cookie.

The cookie (``hcc_smart``) holds only a random 256-bit id; the database keeps its SHA-256 and, encrypted
with the session keys (:mod:`service.smart.crypto`), the access token and the CSRF token. The token never
reaches the browser, a URL or a log. The patient is the token response's ``patient``: the only source
of the patient the app reads and writes.

The dependency also notes the route's audit record: actor = the user's ``fhirUser``, issuer = the EHR's FHIR
base, patient = ``Patient/<patient_id>`` (``service.audit.note_audit``); a route may add more.

:data:`SmartSessionDep` is the FastAPI dependency of the app's routes: no cookie, an unknown or an expired
session raise :class:`SmartSessionEnded`, which the app answers with a 401 page (``service.api.smart_launch``).

This module imports nothing of the service (``service.db.smart`` builds :class:`SmartSession`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import SecretStr

COOKIE_NAME = "hcc_smart"
APP_PATH = "/smart/app"  # a session's pages are APP_PATH/<window>: its cookie is scoped to that path


def window_path(window: str) -> str:
    """The path of one launch's pages, and of its cookie: each launch (each EHR window) keeps its own session."""
    return f"{APP_PATH}/{window}"
UNKNOWN_USER = "smart-user-unknown"  # the audit's actor when the EHR gave no verifiable fhirUser

# what capture writes (service.smart.capture): create lesions, measurements, findings and the provenance;
# update a TACE Procedure's coding. (resource type, SMART v2 action letter)
CAPTURE_WRITES: tuple[tuple[str, str], ...] = (
    ("Observation", "c"),
    ("BodyStructure", "c"),
    ("Condition", "c"),
    ("Procedure", "u"),
    ("Provenance", "c"),
)
_SCOPE = re.compile(r"^(patient|user)/(\*|[A-Za-z]+)\.(\*|read|write|[cruds]+)(\?.*)?$")
_CLINICIAN = re.compile(r"(^|/)(Practitioner|PractitionerRole)/[^/]+$")
_V1_ACTIONS = {"read": "rs", "write": "cud", "*": "cruds"}


def scope_grants(scope: str, resource: str, action: str) -> bool:
    """Whether the granted ``scope`` (space-separated, SMART v1 ``.read/.write/.*`` or v2 ``.cruds``) allows
    ``action`` (a v2 letter: c, r, u, d, s) on ``resource`` in the patient's compartment. A v2 scope with a
    query (``patient/Observation.rs?category=...``) is a narrower grant: it never counts for a write."""
    for granted in scope.split():
        match = _SCOPE.match(granted)
        if match is None or match.group(4):
            continue
        _, kind, actions = match.group(1, 2, 3)
        letters = _V1_ACTIONS.get(actions, actions)
        if kind in ("*", resource) and action in letters:
            return True
    return False


@dataclass(frozen=True)
class SmartSession:
    """One browser's session with the app (see the module's doc). Built only from the database row."""

    key: str  # the session's DB key (sha256 of the cookie value), for consume_form_id/end_session
    iss: str  # the FHIR base the token is for
    patient_id: str  # from the token response's `patient` (the ONLY source of the patient)
    fhir_user: str | None  # from the verified id_token, e.g. "Practitioner/example"
    scope: str  # as granted
    access_token: SecretStr
    expires_at: datetime  # aware UTC
    assessment_hint: str | None  # the card's stored assessment id (appContext, else the launch URL's ?assessment=)
    csrf_token: str  # random, per session, for the form's hidden field

    @property
    def can_write(self) -> bool:
        """The granted scope covers every write capture needs, and the user is known (the Provenance's author) and a
        clinician: a patient or relative launching from a portal reads, but never records tumour measurements."""
        return self.is_clinician and all(scope_grants(self.scope, r, a) for r, a in CAPTURE_WRITES)

    @property
    def is_clinician(self) -> bool:
        """The user is a Practitioner or PractitionerRole (the id_token's fhirUser)."""
        return self.fhir_user is not None and _CLINICIAN.search(self.fhir_user) is not None

    def __repr__(self) -> str:  # never the tokens, should a session end up in a log or a traceback
        return f"SmartSession(key={self.key[:8]}…, iss={self.iss!r}, fhir_user={self.fhir_user!r}, scope={self.scope!r})"


class SmartPageError(Exception):
    """A SMART route answers a short HTML page instead (``service.api.smart_launch.page_error``)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class SmartSessionEnded(SmartPageError):
    """No cookie, or a session that is unknown, expired or ended: the user must launch the app again."""

    def __init__(self) -> None:
        super().__init__(
            401,
            "Your session with the app has ended",
            "Your session with the app has ended — open it again from the patient's chart.",
        )


async def require_smart_session(request: Request) -> SmartSession:
    """The request's session (its cookie), else :class:`SmartSessionEnded`. 404 page if the app is off."""
    state: Any = request.app.state.hcc
    if state.settings.smart_client_id is None:
        raise SmartNotConfigured()
    cookie = request.cookies.get(COOKIE_NAME)
    session = await state.db.smart.get_session(cookie) if cookie else None
    if session is None:
        raise SmartSessionEnded()
    from service.audit import note_audit  # here: service.audit imports service.db, which imports this module

    # every route of the app is audited as the EHR's user, for the session's patient and EHR
    note_audit(request, actor=session.fhir_user or UNKNOWN_USER, issuer=session.iss,
               patient_ref=f"Patient/{session.patient_id}")
    return session


class SmartNotConfigured(SmartPageError):
    """``HCC_SMART_CLIENT_ID`` is unset: the /smart routes do not exist for this deployment."""

    def __init__(self) -> None:
        super().__init__(404, "The SMART app is not configured", "The SMART app is not configured on this service.")


SmartSessionDep = Annotated[SmartSession, Depends(require_smart_session)]
