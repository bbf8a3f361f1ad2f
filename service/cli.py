"""The ``hcc-cds`` command: ``hcc-cds serve`` and the maintenance sub-commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import timedelta

from pydantic import ValidationError

from service.settings import DEFAULT_PORT, Settings, SettingsError

# The sub-commands import what they use inside their functions: `hcc-cds serve --workers N` must not load
# the app in the parent (see _serve), and `openapi`, `purge`, `demo` and `benchmarks` each need only a part
# of the service. None of these imports dodges a cycle.


def _serve(args: argparse.Namespace) -> int:
    """Serve. With one worker this process builds the app and serves it; with ``--workers N`` it only
    checks the configuration (settings, start-up checks, the clinical overrides file) so a bad one fails
    here, once, before any worker starts, and uvicorn's workers each build the app from the environment
    (``service.main:create_app``, ``factory=True``): the parent never imports the app, its models or its
    data (measured: the parent holds 53 MiB resident instead of 113 MiB)."""
    from service.observability.http_limits import server_options
    from service.observability.server import run

    try:
        settings = Settings()
        if args.workers > 1:
            from service.knowledge import load_knowledge
            from service.startup import check_startable

            check_startable(settings)
            load_knowledge(settings.clinical_overrides)
            app = None
        else:
            from service.main import create_app

            app = create_app(settings)
    except (SettingsError, ValidationError) as exc:
        print(f"hcc-cds: cannot start: {exc}", file=sys.stderr)
        return 2
    return run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        workers=args.workers,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        **server_options(settings),
    )


def _openapi(args: argparse.Namespace) -> int:
    from service.openapi import openapi_yaml

    sys.stdout.write(openapi_yaml())
    return 0


def _purge(args: argparse.Namespace) -> int:
    """Delete expired assessments and jtis once (what the service does every HCC_PURGE_INTERVAL_MINUTES)."""
    from sqlalchemy.exc import SQLAlchemyError

    from service.db import Database

    try:
        settings = Settings()
        db = Database.from_url(settings.database_url, timeout=settings.database_timeout_seconds)
    except (SettingsError, ValidationError) as exc:
        print(f"hcc-cds purge: {exc}", file=sys.stderr)
        return 2

    async def purge() -> dict[str, int]:
        async with db:
            counts = await db.purge_expired(
                keep_expired=timedelta(hours=settings.expired_retention_hours),
                screening_retention=timedelta(days=settings.screening_retention_days),
            )
        return {
            "assessments": counts.assessments,
            "jtis": counts.jtis,
            "screening_runs": counts.screening_runs,
            "smart": counts.smart,
        }

    try:
        counts = asyncio.run(purge())
    except (SQLAlchemyError, OSError) as exc:
        print(f"hcc-cds purge: the database failed ({type(exc).__name__}); nothing or part was deleted", file=sys.stderr)
        return 1
    print(json.dumps({"deleted": counts}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hcc-cds", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service (demo mode unless HCC_MODE says otherwise)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("HCC_WORKERS") or 1),
        help="worker processes (default HCC_WORKERS, else 1); each builds the app from the environment",
    )
    serve.add_argument(
        "--timeout-graceful-shutdown",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests may still take (default 20)",
    )
    serve.set_defaults(func=_serve)
    openapi = commands.add_parser("openapi", help="print the OpenAPI document the app serves (YAML)")
    openapi.set_defaults(func=_openapi)
    purge = commands.add_parser(
        "purge",
        help="delete expired assessments (after HCC_EXPIRED_RETENTION_HOURS) and expired jtis once, then exit",
    )
    purge.set_defaults(func=_purge)
    commands.add_parser(
        "demo", help="assess the synthetic study cohort as the service sees it (Table 1); --json: one object a patient"
    )
    commands.add_parser(
        "screen",
        help="screen every patient of a FHIR Bulk Data export (or NDJSON files) into a worklist; see screen --help",
    )
    commands.add_parser(
        "benchmarks",
        help="print the published vs reconstructed survival figures (--report; the tables are built offline)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["demo"]:
        from service.cohort.demo_cli import main as demo_main

        return demo_main(argv[1:])
    if argv[:1] == ["screen"]:
        from service.screening.cli import main as screen_main

        return screen_main(argv[1:])
    if argv[:1] == ["benchmarks"]:
        from service.benchmarks.cli import main as benchmarks_main

        return benchmarks_main(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
