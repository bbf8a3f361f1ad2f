"""Running the app under uvicorn the way ``hcc-cds serve`` does: JSON logs, graceful shutdown, workers.

On SIGTERM uvicorn stops accepting connections, lets in-flight requests finish (at most
``timeout_graceful_shutdown`` seconds, then cancels them), runs the lifespan's shutdown, and exits.
uvicorn re-raises the signal it caught once it is done, which would make the process die "killed by
SIGTERM" (exit 143) after a clean drain; :func:`run` exits 0 instead, as orchestrators expect of a
requested, completed shutdown.

With ``workers > 1`` uvicorn needs an import string: each worker process builds its own app with
``service.main:create_app()`` (settings from the environment); the parent checks the settings
first so a bad configuration fails before any worker starts.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import uvicorn

from service.observability.logging import configure_logging
from service.observability.metrics import prepare_multiprocess_dir, remove_multiprocess_dir

DEFAULT_GRACEFUL_SHUTDOWN_SECONDS = 20.0
APP_FACTORY = "service.main:create_app"


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


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
    metrics_dir = None
    if workers > 1:
        metrics_dir = prepare_multiprocess_dir(workers)
        target: Any = APP_FACTORY
        options.update(factory=True, workers=workers)
    else:
        target = app
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(target, **options)
    except SystemExit as exc:  # _exit_cleanly, once uvicorn has drained and re-raised SIGTERM
        if exc.code not in (0, None):
            raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        remove_multiprocess_dir(metrics_dir)
    return 0
