"""Running the app under uvicorn the way ``hcc-cds serve`` does: JSON logs, graceful shutdown, workers.

On SIGTERM uvicorn stops accepting connections, lets in-flight requests finish (at most
``timeout_graceful_shutdown`` seconds, then cancels them), runs the lifespan's shutdown, and exits.
uvicorn re-raises the signal it caught once it is done, which would make the process die "killed by
SIGTERM" (exit 143) after a clean drain; :func:`run` exits 0 instead, as orchestrators expect of a
requested, completed shutdown.

With ``workers > 1`` uvicorn needs an import string: each worker process builds its own app with
``service.main:create_app()`` (settings from the environment); the parent checks the settings
first so a bad configuration fails before any worker starts.

Each worker listens on a socket of its own, bound to the same address with ``SO_REUSEPORT``, and the
kernel spreads new connections over them. uvicorn's own ``--workers`` shares the parent's one socket:
asyncio accepts every pending connection at each wake-up, so the worker that wakes first takes a whole
burst of keep-alive connections and keeps them (measured, 2 workers, wrk: 4 or 16 connections all on
one worker in some runs, ~310 req/s with the other worker idle, against 520-580 when both serve).
uvicorn's supervisor is kept (health checks, restarts, SIGHUP/SIGTTIN/SIGTTOU): only its worker's
start is changed, to bind that worker's socket (:class:`_WorkerWithItsOwnSocket`). The parent binds
the address first (after checking that nothing holds it, so a second instance on the same port fails
instead of sharing it), with the same option and without listening: a port in use fails there, once,
and the workers bind the port it got (``--port 0`` included).
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from service.observability.logging import configure_logging
from service.observability.metrics import prepare_multiprocess_dir, remove_multiprocess_dir

_log = logging.getLogger("uvicorn.error")  # where uvicorn's supervisor and workers log their own start
DEFAULT_GRACEFUL_SHUTDOWN_SECONDS = 20.0
APP_FACTORY = "service.main:create_app"


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _tcp_socket(host: str) -> socket.socket:
    """A TCP socket of ``host``'s address family, ``SO_REUSEADDR`` set (as uvicorn binds its own)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not listening yet)."""
    sock = _tcp_socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _free_port(host: str, port: int) -> int:
    """``port`` (or, for 0, a port the kernel picks) after checking no socket holds it: a bind without
    ``SO_REUSEPORT`` fails on any holder, so a second hcc-cds started on a port already served fails
    instead of silently sharing its connections."""
    with _tcp_socket(host) as probe:
        probe.bind((host, port))
        return int(probe.getsockname()[1])


class _WorkerWithItsOwnSocket(multiprocess.Process):
    """uvicorn's worker process, serving a socket it binds itself instead of the parent's shared one."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # runs in the worker process
        try:
            own = reuse_port_socket(self.config.host, self.config.port)
        except OSError as exc:
            _log.error("worker cannot listen on port %d: %s", self.config.port, exc)
            sys.exit(STARTUP_FAILURE)  # the supervisor stops instead of restarting it in a loop
        super().target([own])


@contextmanager
def _workers_with_their_own_sockets() -> Iterator[None]:
    """uvicorn's supervisor starts :class:`_WorkerWithItsOwnSocket` workers while this lasts (it looks the
    class up in its module each time it starts one: at start, on restarts and on SIGTTIN)."""
    original = multiprocess.Process
    multiprocess.Process = _WorkerWithItsOwnSocket  # type: ignore[misc]
    try:
        yield
    finally:
        multiprocess.Process = original  # type: ignore[misc]


def _run_workers(options: dict[str, Any], workers: int) -> None:
    """uvicorn's supervisor over ``workers`` processes serving :data:`APP_FACTORY`, each on its own socket."""
    config = uvicorn.Config(APP_FACTORY, factory=True, workers=workers, **options)
    try:
        holder = reuse_port_socket(config.host, _free_port(config.host, config.port))
    except OSError as exc:
        _log.error("cannot listen on %s:%d: %s", config.host, config.port, exc)
        sys.exit(STARTUP_FAILURE)
    with holder:
        config.port = holder.getsockname()[1]
        _log.info(
            "Uvicorn running on http://%s:%d with %d workers, each on its own socket (SO_REUSEPORT)",
            config.host, config.port, workers,
        )  # fmt: skip
        with _workers_with_their_own_sockets():
            multiprocess.Multiprocess(config, sockets=[]).run()


def run(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str = "INFO",
    workers: int = 1,
    timeout_graceful_shutdown: float = DEFAULT_GRACEFUL_SHUTDOWN_SECONDS,
    **uvicorn_options: Any,
) -> int:
    """Serve ``app`` (an ASGI app; with ``workers > 1`` the factory :data:`APP_FACTORY` is served instead).

    Returns 0 after a graceful shutdown (SIGTERM, or Ctrl-C which uvicorn handles the same way).
    """
    configure_logging(log_level)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level.lower(),
        "log_config": None,  # keep the JSON logging configured above
        "access_log": False,  # uvicorn's access log prints raw paths and query strings (patient ids)
        "proxy_headers": False,
        "timeout_graceful_shutdown": timeout_graceful_shutdown,
        **uvicorn_options,
    }
    metrics_dir = prepare_multiprocess_dir(workers) if workers > 1 else None
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        if workers > 1:
            _run_workers(options, workers)
        else:
            uvicorn.run(app, **options)
    except SystemExit as exc:  # _exit_cleanly, once uvicorn has drained and re-raised SIGTERM
        if exc.code not in (0, None):
            raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        remove_multiprocess_dir(metrics_dir)
    return 0
