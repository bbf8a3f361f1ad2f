"""``hcc-cds screen``: screen every patient of an export, print where the worklist is.

    hcc-cds screen --fhir https://ehr.example/fhir --group hcc-tace [--since auto]
    hcc-cds screen --ndjson /exports/2026-12-01/ --as-of 2026-12-01 --csv worklist.csv
    hcc-cds screen --run-id <id>          # run a queued run (the job API) or resume a killed one

Progress goes to stderr (a bar with patients/s and ETA on a terminal, a JSON line every few seconds
otherwise); the last line on stdout is a JSON summary. Exit 0: complete; 1: failed or cancelled;
2: the command or the configuration is wrong. The bulk client's key comes from the settings
(``HCC_BULK_*``) and is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.settings import Settings, SettingsError

PROGRESS_EVERY_SECONDS = 5.0


class BarProgress:
    """tqdm on a terminal; elsewhere a JSON progress line on stderr every few seconds."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.bar: Any = None
        self.last = 0.0
        self.done = self.total = self.errors = self.initial = 0
        self.started = time.monotonic()

    def phase(self, text: str) -> None:
        if self.enabled:
            print(json.dumps({"phase": text}), file=sys.stderr, flush=True)

    def start(self, total: int, done: int) -> None:
        self.total, self.done, self.initial, self.started = total, done, done, time.monotonic()
        if self.enabled and self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="patient", file=sys.stderr, dynamic_ncols=True)

    def advance(self, patients: int, errors: int) -> None:
        self.done += patients
        self.errors += errors
        if self.bar is not None:
            self.bar.update(patients)
            self.bar.set_postfix(errors=self.errors)
        elif self.enabled and time.monotonic() - self.last >= PROGRESS_EVERY_SECONDS:
            from service.screening.job import throughput

            self.last = time.monotonic()
            rate, eta = throughput(self.done - self.initial, self.total - self.done, self.last - self.started)
            line = {"done": self.done, "total": self.total, "errors": self.errors, "patients_per_second": rate}
            print(json.dumps({**line, "eta_seconds": eta}), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _as_of(text: str) -> date | None:
    """``today`` (the day the run starts, in HCC_TIMEZONE) or an ISO date."""
    if text == "today":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD or 'today', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hcc-cds screen", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--fhir", metavar="BASE_URL", help="a FHIR server's base URL: screen its Bulk Data export")
    source.add_argument("--ndjson", metavar="DIR_OR_URL", help="NDJSON files already exported (a folder or a URL)")
    source.add_argument("--run-id", help="run a queued run (job API) or resume an interrupted one")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("--group", metavar="ID", help="Group/{id}/$export (the default level; names the group)")
    level.add_argument("--patient-level", action="store_true", help="Patient/$export: every patient")
    level.add_argument("--system", action="store_true", help="[base]/$export: the whole server")
    parser.add_argument("--since", default=None, help="'auto' (the previous run's transactionTime) or an instant")
    parser.add_argument("--as-of", type=_as_of, help="screen as of this date, YYYY-MM-DD or 'today' (the default)")
    parser.add_argument("--as-of-file", type=Path, help="CSV patient,as_of: a date per patient (others: --as-of)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default HCC_SCREEN_WORKERS)")
    parser.add_argument(
        "--scheduler", help="a Dask scheduler (tcp://host:8786), or 'local-cluster' for a Dask LocalCluster"
    )
    parser.add_argument("--patients-per-partition", type=int, default=None)
    parser.add_argument("--csv", type=Path, help="also write the worklist to this CSV file")
    parser.add_argument("--jsonl", type=Path, help="also write the worklist to this JSON lines file")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    return parser


def _source(args: argparse.Namespace) -> Any:
    from service.screening.source_spec import Level, SourceSpec

    if args.ndjson:
        return SourceSpec("ndjson", location=args.ndjson)
    level: Level = "system" if args.system else "patient" if args.patient_level else "group"
    since = None if args.since in (None, "none") else args.since
    return SourceSpec("fhir", fhir_base_url=args.fhir.rstrip("/"), level=level, group_id=args.group, since=since)


async def _write_files(db: Any, run_id: str, args: argparse.Namespace) -> None:
    from service.screening.worklist_files import csv_lines, json_lines

    if args.csv:
        with args.csv.open("w", encoding="utf-8", newline="") as out:
            async for line in csv_lines(db, run_id):
                out.write(line)
    if args.jsonl:
        with args.jsonl.open("wb") as out_bytes:
            async for chunk in json_lines(db, run_id):
                out_bytes.write(chunk)


async def _run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from service.db import Database
    from service.screening.job import ExecutionOptions, execute_run, run_folder
    from service.screening.source_spec import AsOfSpec

    db = Database.from_url(settings.database_url, timeout=settings.database_timeout_seconds)
    await db.migrate()
    started = time.monotonic()
    async with db:
        run_id = args.run_id
        if run_id is None:
            spec = _source(args)
            as_of = AsOfSpec(
                default=args.as_of.isoformat() if args.as_of else None,
                per_patient_file=str(args.as_of_file.resolve()) if args.as_of_file else None,
            )
            as_of.per_patient()  # a malformed file is refused before anything starts
            run = await db.screenings.create_run(
                source_key=spec.key, source=spec.as_json(), as_of=as_of.as_json(), started_by="cli"
            )
            run_id = run.id
            await db.screenings.update_run(run_id, work_dir=str(run_folder(settings, run_id).resolve()))
        options = ExecutionOptions(
            workers=args.workers if args.workers is not None else settings.screen_workers,
            scheduler=args.scheduler,
            patients_per_partition=args.patients_per_partition or settings.screen_patients_per_partition,
        )
        run = await execute_run(
            db, settings, run_id, options=options, progress=BarProgress(not args.no_progress)
        )
        if run.status == "complete":
            await _write_files(db, run.id, args)
    seconds = time.monotonic() - started
    return {
        "run_id": run.id,
        "status": run.status,
        "patients": run.patients_done,
        "errors": run.patient_errors,
        "seconds": round(seconds, 2),
        "patients_per_second": round(run.patients_done / seconds, 1) if seconds else None,
        "worklist": f"{settings.public_base_url}/worklists/{run.page_token}",
        "message": run.message,
        "counts": run.counts,
    }


def main(argv: list[str]) -> int:
    from service.screening.source_spec import SourceError

    args = build_parser().parse_args(argv)
    if (args.group or args.patient_level or args.system or args.since) and not args.fhir:
        print("hcc-cds screen: --group, --patient-level, --system and --since go with --fhir", file=sys.stderr)
        return 2
    try:
        settings = Settings()
        summary = asyncio.run(_run(args, settings))
    except (SettingsError, ValidationError, SourceError, LookupError) as exc:
        print(f"hcc-cds screen: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0 if summary["status"] == "complete" else 1
