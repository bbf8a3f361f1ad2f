"""JSON logs, one object per line, with the request id; a request-id and access-log ASGI middleware.

Every line: ``time`` (UTC, ISO 8601, ms), ``level``, ``logger``, ``message``, ``request_id``
(``null`` outside a request) and, inside a request, ``hook_instance`` / ``service_id`` when known.
The access log (logger ``hcc_cds.access``, one line per request) adds ``method``, ``route`` (the
route **template**), ``status`` and ``duration_ms``.

What is never logged: query strings, bodies, headers other than ``X-Request-ID`` (so no
``Authorization``), raw paths (they carry patient ids). uvicorn's own access log (which prints the
raw path and query) is switched off by :func:`configure_logging`, and the lines of libraries that print
URLs or SQL parameters (httpx, aiosqlite, SQLAlchemy's engine: :data:`QUIET_LIBRARIES`) are kept to
WARNING and above, whatever ``HCC_LOG_LEVEL`` says. As defence in depth the handler
redacts anything in a message or traceback that looks like a bearer token, a JWT, a
``password=``/``access_token=``-style value or a URL's password (:func:`redact`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from service.observability.context import (
    JWT_PATTERN,
    KnownServices,
    RequestContext,
    current_context,
    header_value,
    is_sane_token,
    method_label,
    request_id_from,
    reset_context,
    route_template,
    service_id_of,
    set_context,
)

ACCESS_LOGGER = "hcc_cds.access"
REDACTED = "[redacted]"
# routes probed every few seconds: their access lines are DEBUG, not INFO
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# libraries whose INFO/DEBUG lines carry data: httpx/httpcore print full URLs (FHIR searches name the
# patient), aiosqlite and SQLAlchemy's engine print SQL parameters (stored assessments, audit rows)
QUIET_LIBRARIES = ("httpx", "httpcore", "aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "psycopg")
# the only record attributes (besides the standard ones) that reach the JSON line
EXTRA_FIELDS = ("method", "route", "status", "duration_ms", "hook_instance", "service_id", "check", "outcome")

_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]+=*")
_SECRET_PAIR = re.compile(
    r"(?i)\b(access_token|id_token|refresh_token|client_secret|client_assertion|password|passwd|secret|token|apikey|api_key)"
    r"(\"?'?\s*[:=]\s*\"?'?)([^\s\"'&,;}]+)"
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@/\s]+)(@)")

_OWN_HANDLER = "_hcc_cds_json_handler"


def redact(text: str) -> str:
    """``text`` with bearer/basic credentials, JWTs, secret-looking ``key=value`` pairs and URL passwords replaced."""
    text = JWT_PATTERN.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)


class RedactSecretsFilter(logging.Filter):
    """Renders each record's message once and redacts it (:func:`redact`); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg = redact(message)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        context = current_context()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or (context.request_id if context else None),
        }
        if context is not None:
            if context.hook_instance:
                line["hook_instance"] = context.hook_instance
            if context.service_id:
                line["service_id"] = context.service_id
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            line["exc"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def json_handler(stream=None) -> logging.Handler:
    """A handler writing JSON lines (to ``stream``, default the current ``sys.stderr``), redacting secrets."""
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecretsFilter())
    setattr(handler, _OWN_HANDLER, True)
    return handler


def configure_logging(level: str = "INFO", *, stream=None) -> logging.Handler:
    """JSON lines on stderr for every logger; idempotent (a second call replaces the first's handler).

    Replaces the root logger's plain ``StreamHandler``\\s (``logging.basicConfig``'s) and earlier
    calls' handlers; leaves other handlers (a test runner's capture) alone. uvicorn's loggers are
    routed to the root (JSON) and its access log (raw paths and query strings) is switched off:
    ``hcc_cds.access`` replaces it.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OWN_HANDLER, False) or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    handler = json_handler(stream)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # libraries that log request URLs or SQL parameters (patient data) below WARNING, even at DEBUG
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    return handler


class RequestContextMiddleware:
    """Pure ASGI: the request id (``X-Request-ID`` in and out) in a contextvar, and one access-log line.

    The client's ``X-Request-ID`` is kept if sane (1-128 token characters, not a JWT), else replaced
    by a new uuid4; either way it is returned in the response's ``X-Request-ID``. Lifespan and other
    scopes pass through untouched; the response is streamed as the app sends it.
    """

    def __init__(
        self,
        app,
        *,
        known_services: KnownServices | None = None,
        logger: logging.Logger | None = None,
        quiet_routes: frozenset[str] = QUIET_ROUTES,
    ) -> None:
        self.app = app
        self.known_services = known_services
        self.log = logger or logging.getLogger(ACCESS_LOGGER)
        self.quiet_routes = quiet_routes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(header_value(scope, b"x-request-id"))
        # what the app (and an audit record) reads as X-Request-ID is the id in force, sane or new
        scope["headers"] = [(k, v) for k, v in scope.get("headers", ()) if k.lower() != b"x-request-id"]
        scope["headers"].append((b"x-request-id", request_id.encode("ascii")))
        context = RequestContext(request_id=request_id, method=method_label(scope))
        token = set_context(context)
        status: int | None = None
        started = time.perf_counter()
        header = request_id.encode("ascii")

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", header))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            if status is None:
                status = 500
            raise
        finally:
            try:
                self._access_log(scope, context, status, time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - the access log must never fail (or mask the error of) a request
                pass
            finally:
                reset_context(token)

    def _access_log(self, scope, context: RequestContext, status: int | None, seconds: float) -> None:
        context.route = route_template(scope)
        if context.service_id is None:
            context.service_id = service_id_of(scope, self.known_services)
        if context.hook_instance is None:
            # what the hook route noted for its audit record (service.audit.note_audit), if anything
            noted = ((scope.get("state") or {}).get("audit") or {}).get("hook_instance")
            if isinstance(noted, str) and is_sane_token(noted):
                context.hook_instance = noted
        level = logging.DEBUG if context.route in self.quiet_routes else logging.INFO
        if status is not None and status >= 500:
            level = logging.WARNING
        if not self.log.isEnabledFor(level):
            return
        self.log.log(
            level,
            "%s %s %s",
            context.method,
            context.route,
            status if status is not None else "-",
            extra={
                "method": context.method,
                "route": context.route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
