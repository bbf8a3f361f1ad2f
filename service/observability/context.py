"""The request context the logs read: its id, and what the routes add (hook instance, service id).

A contextvar holds one :class:`RequestContext` per HTTP request, set by
:class:`service.observability.logging.RequestContextMiddleware`. The object is mutable and shared,
so a route annotating it (:func:`annotate_request`) is seen by the middleware's access log even
from a thread-pool endpoint (which runs in a copy of the context).

Also here: how a request is named in logs and metrics. Only the **route template**
(``/api/v1/patients/{patient_id}/assessment``) is ever used, never the raw path (it carries
patient ids) or the query string; a CDS service id is used only when it is one the app serves.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeGuard

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_LENGTH = 128
# RFC 9110 token characters: printable ASCII without spaces, quotes, separators
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
# a JWT (JWS or JWE compact form): never accepted as a request id, never logged
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){1,4}")

UNMATCHED_ROUTE = "unmatched"
UNKNOWN_SERVICE = "unknown"
HOOK_ROUTE = "/cds-services/{service_id}"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

KnownServices = Callable[[], Collection[str]]


@dataclass
class RequestContext:
    """What the log lines of one request carry besides their message."""

    request_id: str
    method: str | None = None
    route: str | None = None
    service_id: str | None = None
    hook_instance: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("hcc_cds_request_context", default=None)


def current_context() -> RequestContext | None:
    return _current.get()


def current_request_id() -> str | None:
    """The id of the request being served (``None`` outside a request), e.g. to forward downstream."""
    context = _current.get()
    return context.request_id if context else None


def set_context(context: RequestContext | None):  # -> contextvars.Token
    return _current.set(context)


def reset_context(token) -> None:
    _current.reset(token)


def is_sane_token(value: str | None) -> TypeGuard[str]:
    """A client-sent identifier usable in logs: 1-128 token characters, and not a JWT."""
    return (
        value is not None
        and 0 < len(value) <= MAX_REQUEST_ID_LENGTH
        and _TOKEN.fullmatch(value) is not None
        and JWT_PATTERN.search(value) is None
    )


def new_request_id() -> str:
    return str(uuid.uuid4())


def request_id_from(value: str | None) -> str:
    """The client's ``X-Request-ID`` if it is sane, else a new uuid4."""
    return value if is_sane_token(value) else new_request_id()


def annotate_request(*, hook_instance: str | None = None, service_id: str | None = None) -> None:
    """Add the CDS Hooks ``hookInstance`` (and/or the service id) to the current request's log lines.

    Call it from a route (e.g. the hook route, right after the body is parsed). A value that is not a
    sane token (1-128 token characters, not a JWT) is ignored; outside a request this does nothing.
    """
    context = _current.get()
    if context is None:
        return
    if hook_instance is not None and is_sane_token(hook_instance):
        context.hook_instance = hook_instance
    if service_id is not None and is_sane_token(service_id):
        context.service_id = service_id


def header_value(scope: dict[str, Any], name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes) in an ASGI scope, or None."""
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            try:
                return value.decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's template (set by Starlette's router in the scope), or ``"unmatched"``."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED_ROUTE


def method_label(scope: dict[str, Any]) -> str:
    method = str(scope.get("method", ""))
    return method if method in METHODS else "OTHER"


def service_id_of(scope: dict[str, Any], known_services: KnownServices | None) -> str | None:
    """The ``{service_id}`` path parameter when the route has one: the id if served, else ``"unknown"``.

    Bounded so that a client cannot create label values (or log fields) at will.
    """
    params = scope.get("path_params") or {}
    if "service_id" not in params:
        return None
    service_id = params["service_id"]
    known = known_services() if known_services is not None else ()
    return service_id if service_id in known else UNKNOWN_SERVICE
