"""Audit trail: every hook call, REST call, feedback and page view leaves a record.

A pure ASGI middleware records, after the response and off its path (a batch written in the
background, and at shutdown: :mod:`service.db.audit`), who called (the client's
``iss``/``sub``, ``demo`` in demo mode, ``unauthenticated`` for a refused call; for the SMART app's
routes the user's ``fhirUser`` from the EHR's verified id_token, with the EHR's FHIR base as issuer),
when, which route (its template, never the path: a page id is the page's only
authorisation), which patient by reference, which service and hook instance, the
rules version, the HTTP status and the request id. Never clinical data. Handlers
add the patient reference and service through :func:`note_audit`. A failed write
is logged (without patient data) and never fails the call.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db import AuditEvent
from service.db.models import ISS_LENGTH
from service.fhir.ids import FHIR_ID_PATTERN

log = logging.getLogger("hcc_cds.audit")
REFERENCE = re.compile(rf"^[A-Za-z]+/{FHIR_ID_PATTERN}$")


def audit_kind(path: str, method: str = "GET") -> str | None:
    """The audit kind of a request, or ``None`` for one that is not audited (probes, documents, assets)."""
    if path.startswith("/smart/"):
        if path in ("/smart/launch", "/smart/callback"):
            return "smart-launch"
        if path == "/smart/app" or path.startswith("/smart/app/"):
            return "smart-write" if method == "POST" else "smart-view"
        return None
    if path.startswith("/cds-services/"):
        return "feedback" if path.endswith("/feedback") else "hook-call"
    if path == "/cds-services" or path.startswith("/api/"):
        return "rest-call"
    if path.startswith("/assessments/"):
        return "page-view"
    return None


def note_audit(request: Request, **fields: Any) -> None:
    """Add what the route knows (patient_ref, service_id, hook_instance, rules_version) to its audit record.

    The SMART app's routes, which no client JWT authenticates, name the user themselves: ``actor`` (the
    id_token's ``fhirUser``, e.g. ``Practitioner/example``) and ``issuer`` (the EHR's FHIR base). Never a token.
    """
    current = getattr(request.state, "audit", None) or {}
    current.update({k: v for k, v in fields.items() if v is not None})
    request.state.audit = current


def _actor(state: dict, fields: dict, demo: bool) -> str:
    if isinstance(fields.get("actor"), str) and fields["actor"]:
        return fields["actor"]
    identity = state.get("client_identity")
    if identity is not None and getattr(identity, "iss", None):
        sub = getattr(identity, "sub", None)
        return f"{identity.iss} {sub}" if sub else identity.iss
    return "demo" if demo else "unauthenticated"


def _identity_field(state: dict, name: str) -> str | None:
    value = getattr(state.get("client_identity"), name, None)
    return value if isinstance(value, str) else None


def _text(fields: dict, name: str, maximum: int) -> str | None:
    value = fields.get(name)
    return value if isinstance(value, str) and 0 < len(value) <= maximum else None


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = audit_kind(scope.get("path", ""), scope.get("method", "GET")) if scope["type"] == "http" else None
        if kind is None or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await self._record(scope, kind, status)

    async def _record(self, scope: Scope, kind: str, status: int) -> None:
        app_state = scope["app"].state.hcc
        state = scope.get("state") or {}
        fields = dict(state.get("audit") or {})
        route = scope.get("route")
        template = getattr(route, "path", None) or "(unmatched)"
        patient_ref = fields.get("patient_ref")
        if patient_ref is not None and not REFERENCE.match(patient_ref):
            patient_ref = None
        request_id = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), None)
        try:
            app_state.db.audit.enqueue(
                AuditEvent(
                    kind=kind,  # type: ignore[arg-type]
                    actor=_actor(state, fields, app_state.settings.is_demo)[:200],
                    route=template,
                    outcome=status,
                    service_id=fields.get("service_id"),
                    patient_ref=patient_ref,
                    hook_instance=(fields.get("hook_instance") or "")[:100] or None,
                    rules_version=fields.get("rules_version"),
                    request_id=(request_id or "")[:128] or None,
                    issuer=_text(fields, "issuer", ISS_LENGTH) or _identity_field(state, "iss"),
                    tenant=_identity_field(state, "tenant"),
                )
            )
        except Exception:  # the audit never fails the call; the failure is logged for operators
            log.exception("audit record not written (kind=%s route=%s status=%s)", kind, template, status)
