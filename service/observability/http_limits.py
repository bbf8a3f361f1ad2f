"""Limits the HTTP server itself enforces, before any request reaches the app (and its authentication).

uvicorn's own settings cover most of it (:func:`server_options`):

- ``h11_max_incomplete_event_size`` (``HCC_MAX_HEADER_BYTES``): a request head larger than this is
  refused with 400 and the connection closed; nothing beyond it is buffered. It needs the h11
  protocol: uvicorn's default, httptools when installed, has no such limit (eight 64 MB headers
  took the process to 731 MB).
- ``limit_concurrency`` (``HCC_MAX_CONNECTIONS``, 2048): beyond that many open connections (idle
  and slow ones count) or requests in a worker, a new request gets 503 instead of exhausting memory
  (at most 2048 x 32 KiB of request heads) or file descriptors. Set well above the legitimate load:
  a client holding more connections than this makes every caller wait for the head deadline to
  reclaim them; a per-client connection limit belongs to the proxy in front (deploy/).
- ``timeout_keep_alive``: an idle keep-alive connection is closed after 5 s.

What uvicorn lacks is a deadline for the request head: a connection that sends nothing, or one
header byte every few seconds, stayed open for ever (1 100 of them made ``/healthz`` fail for 45 s).
:class:`HeaderDeadlineH11Protocol` closes a connection whose request head is not complete
``HCC_HEADER_TIMEOUT_SECONDS`` after its first byte was awaited (a 408, then close). The body has
its own deadline in :mod:`service.body_limit` (``HCC_BODY_TIMEOUT_SECONDS``).

It also answers the :data:`REQUESTS_PER_CONNECTION`-th request of a keep-alive connection with
``Connection: close`` (as nginx's ``keepalive_requests`` does), and the client opens a new connection.
With several workers each on its own ``SO_REUSEPORT`` socket (:mod:`service.observability.server`) the
kernel places a new connection on a worker by a hash, so a few long-lived connections can all land on
one worker (4 connections: 1 time in 8) and keep it busy while the other idles; a reconnect every 100
requests draws again, so that no worker stays idle for long. On loopback, a new connection costs
about 0.1 ms per 100 requests.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.settings import Settings

PROTOCOL = "service.observability.http_limits:HeaderDeadlineH11Protocol"
KEEP_ALIVE_SECONDS = 5
REQUESTS_PER_CONNECTION = 100
_TIMEOUT_BODY = b'{"detail": "Request head not received in time"}'
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


@cache
def _configured_header_timeout() -> float:
    return Settings().header_timeout_seconds


class HeaderDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request head (see the module's doc).

    ``header_timeout``: seconds; ``None`` reads ``HCC_HEADER_TIMEOUT_SECONDS`` (each worker process
    builds its protocol from the environment, as it builds the app).
    """

    header_timeout: float | None = None
    requests_per_connection: int = REQUESTS_PER_CONNECTION

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._requests = 0
        self._head_timeout = self.header_timeout if self.header_timeout is not None else _configured_header_timeout()

    def _awaiting_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head():
            self._arm()  # a keep-alive connection's next request: its head has the same deadline
        super().data_received(data)
        if not self._awaiting_head():
            self._disarm()  # the head is complete: the request runs (its body has its own deadline)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not None and self.cycle is not cycle:  # a request has started (its app not run yet)
            self._requests += 1
            headers = self.cycle.scope["headers"]
            if self._requests >= self.requests_per_connection and CLOSE_HEADER not in headers:
                # uvicorn answers a request that asked to close with "Connection: close", then closes
                headers.append(CLOSE_HEADER)  # type: ignore[attr-defined]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive timeout for the idle connection
        if not self._awaiting_head():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or not self._awaiting_head():
            return
        if self.cycle is None:  # nothing answered on this connection yet: say why it is closed
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def server_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options of ``hcc-cds serve`` that bound what a client can hold before authentication."""
    return {
        "http": PROTOCOL,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }
