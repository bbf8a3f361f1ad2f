"""One screening run from start to end: source -> partitions -> assessed partitions -> the database.

The same function serves ``hcc-cds screen`` and the job API (which runs it as a task of the replica that
took the request; the partitions go to worker processes either way). One executor serves the run: made when the
partitioning starts (its workers start while the driver reads the Patient file), it routes the partitioning's
chunks and then assesses the partitions. Each phase leaves its work on disk
under the run's folder, so a killed run started again with ``hcc-cds screen --run-id`` skips what is
finished: complete downloads are kept, a finished partitioning is read back, a partition whose result file
exists is only stored again (idempotent), and only the others are assessed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.to_thread
import httpx
import orjson

from rules import RULES_VERSION
from service.db import Database
from service.db.screenings import ScreeningRun
from service.db.types import utcnow
from service.screening.backend_auth import backend_auth_from_settings
from service.screening.bulk_client import RetryPolicy
from service.screening.executors import DaskExecutor, Executor, LocalExecutor
from service.screening.incremental import merge_delta, read_snapshot, write_snapshot
from service.screening.partition import partition_files
from service.screening.runner import AsOfPolicy, PartitionResult, PartitionSpec, WorkerSettings
from service.screening.source_spec import AsOfSpec, SourceSpec
from service.screening.sources import ExportedFiles, export_from_fhir, files_from_ndjson
from service.settings import Settings

log = logging.getLogger("hcc_cds.screening")
INTERRUPTED = "interrupted (the service stopped); resume it with: hcc-cds screen --run-id {run_id}"


class Progress(Protocol):
    """What a run tells its watcher (the CLI's bar; the job status is in the database)."""

    def phase(self, text: str) -> None: ...
    def start(self, total: int, done: int) -> None: ...
    def advance(self, patients: int, errors: int) -> None: ...
    def close(self) -> None: ...


class QuietProgress:
    def phase(self, text: str) -> None:
        log.info("screening: %s", text)

    def start(self, total: int, done: int) -> None:
        pass

    def advance(self, patients: int, errors: int) -> None:
        pass

    def close(self) -> None:
        pass


class RunCancelled(Exception):
    """An operator cancelled the run (``DELETE /api/v1/screenings/{id}``)."""


@dataclass(frozen=True)
class ExecutionOptions:
    workers: int = 0  # 0: one per CPU core
    scheduler: str | None = None  # tcp://... of a Dask scheduler; "local-cluster": a Dask LocalCluster
    patients_per_partition: int = 250


@dataclass
class _Tally:
    total: int = 0
    done: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)
    assessed_since_start: int = 0

    def rate_and_eta(self) -> dict[str, float | None]:
        rate, eta = throughput(self.assessed_since_start, self.total - self.done, time.monotonic() - self.started)
        return {"patients_per_second": rate, "eta_seconds": eta}


def throughput(assessed: int, remaining: int, elapsed: float) -> tuple[float | None, float | None]:
    """Patients/s of what this attempt assessed (partitions reused from a killed attempt left out) and the
    seconds left at that rate, rounded for display; None before there is a rate."""
    rate = assessed / elapsed if elapsed > 0 and assessed else None
    eta = remaining / rate if rate else None
    return (round(rate, 1) if rate else None), (round(eta) if eta else None)


def run_folder(settings: Settings, run_id: str) -> Path:
    return settings.screen_work_dir / run_id


async def _source_files(
    db: Database, settings: Settings, run: ScreeningRun, work: Path, auth: httpx.Auth | None
) -> ExportedFiles:
    source = SourceSpec.from_json(run.source)
    downloads = work / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    policy = RetryPolicy.from_settings(settings)
    if source.kind == "ndjson":
        assert source.location is not None
        return await files_from_ndjson(
            source.location, downloads, policy=policy, timeout_seconds=settings.bulk_timeout_seconds
        )
    assert source.fhir_base_url is not None
    since, base, notes = await _incremental_base(db, run, source.since)

    def progress(text: str) -> None:
        log.info("screening %s: export %s", run.id, text)

    exported = await export_from_fhir(
        source.fhir_base_url,
        downloads,
        level=source.level,
        group_id=source.group_id,
        since=since,
        auth=auth if auth is not None else backend_auth_from_settings(settings, source.fhir_base_url),
        on_progress=progress,
        policy=policy,
        timeout_seconds=settings.bulk_timeout_seconds,
    )
    if base is not None:
        changed = len(exported.files)
        merged = await anyio.to_thread.run_sync(merge_delta, base, list(exported.files), work / "merged")
        notes.append(f"incremental: the export since {since} ({changed} file(s)) laid over the previous run's files")
        exported = ExportedFiles(tuple(merged), exported.transaction_time, exported.notes, exported.errors)
    return ExportedFiles(exported.files, exported.transaction_time, (*notes, *exported.notes), exported.errors)


async def _incremental_base(
    db: Database, run: ScreeningRun, since: str | None
) -> tuple[str | None, list[tuple[str, Path]] | None, list[str]]:
    """``_since`` and the previous run's files to lay it over; a full export when there are none."""
    if since is None:
        return None, None, []
    previous = await db.screenings.get_run(run.previous_run_id) if run.previous_run_id else None
    if since == "auto":
        since = previous.transaction_time if previous else None
        if since is None:
            return None, None, ["no previous complete run of this source: a full export"]
    base = read_snapshot(Path(previous.work_dir)) if previous and previous.work_dir else None
    if base is None:
        return None, None, [f"_since {since} asked, but the previous run's files are gone: a full export instead"]
    return since, base, []


def _executor(options: ExecutionOptions) -> Executor:
    if options.scheduler:
        scheduler = None if options.scheduler == "local-cluster" else options.scheduler
        return DaskExecutor(scheduler, options.workers or None)
    return LocalExecutor(options.workers or None)


def _read_results(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as lines:
        return [orjson.loads(line) for line in lines if line.strip()]


async def _store_partition(db: Database, run: ScreeningRun, index: int, path: Path, tally: _Tally) -> None:
    items = await anyio.to_thread.run_sync(_read_results, path)
    errors = await db.screenings.ingest_partition(run, index, items)
    tally.done += len(items)
    tally.errors += errors


async def _check_not_cancelled(db: Database, run_id: str) -> None:
    current = await db.screenings.get_run(run_id)
    if current is not None and current.status == "cancelled":
        raise RunCancelled


def _next(iterator: Iterator[PartitionResult]) -> PartitionResult | None:
    return next(iterator, None)


async def _assess(
    db: Database,
    run: ScreeningRun,
    specs: list[PartitionSpec],
    executor: Executor,
    progress: Progress,
    tally: _Tally,
    counts: dict[str, Any],
) -> None:
    """Store the partitions an earlier attempt finished, assess the others; ``counts`` (the run's) gains
    ``partitions_reused`` and, with each partition stored, the progress."""
    pending = [s for s in specs if not s.result.exists()]  # a result file exists only once complete
    counts["partitions_reused"] = len(specs) - len(pending)
    for spec in specs:  # finished by an earlier attempt: stored again (idempotent), not recomputed
        if spec not in pending:
            await _store_partition(db, run, spec.index, spec.result, tally)
    progress.start(tally.total, tally.done)
    await db.screenings.update_run(run.id, patients_done=tally.done, patient_errors=tally.errors)
    if not pending:
        return
    results = executor.run(pending)
    while (result := await anyio.to_thread.run_sync(_next, results)) is not None:
        before = tally.done
        await _store_partition(db, run, result.index, result.result, tally)
        tally.assessed_since_start += tally.done - before
        progress.advance(tally.done - before, result.errors)
        counts["progress"] = tally.rate_and_eta()
        await db.screenings.update_run(run.id, patients_done=tally.done, patient_errors=tally.errors, counts=counts)
        await _check_not_cancelled(db, run.id)


async def execute_run(
    db: Database,
    settings: Settings,
    run_id: str,
    *,
    options: ExecutionOptions,
    progress: Progress | None = None,
    auth: httpx.Auth | None = None,
    today: date | None = None,
) -> ScreeningRun:
    """Run (or resume) the run ``run_id`` to its end; return it as stored. Never raises for a patient."""
    progress = progress or QuietProgress()
    run = await db.screenings.get_run(run_id)
    if run is None:
        raise LookupError(f"no screening run {run_id!r}")
    if run.status in ("complete", "cancelled"):
        return run
    work = Path(run.work_dir) if run.work_dir else run_folder(settings, run.id)
    try:
        await _phases(db, settings, run, work, options, progress, auth, today)
    except asyncio.CancelledError:  # the service is stopping: the run is left to be resumed
        with anyio.CancelScope(shield=True):
            await db.screenings.update_run(run.id, status="failed", message=INTERRUPTED.format(run_id=run.id))
        raise
    except RunCancelled:
        progress.phase("cancelled")
        await db.screenings.update_run(run.id, status="cancelled", finished_at=utcnow())
    except Exception as exc:  # noqa: BLE001 - any failure ends the run as failed, with its reason
        log.warning("screening %s failed: %s", run.id, type(exc).__name__)
        await db.screenings.update_run(run.id, status="failed", message=_message(exc), finished_at=utcnow())
    finally:
        progress.close()
    stored = await db.screenings.get_run(run.id)
    assert stored is not None
    return stored


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:2000]


async def _phases(
    db: Database,
    settings: Settings,
    run: ScreeningRun,
    work: Path,
    options: ExecutionOptions,
    progress: Progress,
    auth: httpx.Auth | None,
    today: date | None,
) -> None:
    await db.screenings.update_run(run.id, status="exporting", work_dir=str(work), message=None, finished_at=None)
    progress.phase("exporting")
    exported = await _source_files(db, settings, run, work, auth)
    await anyio.to_thread.run_sync(write_snapshot, work, list(exported.files))
    files = dict(Counter(kind for kind, _ in exported.files))
    counts: dict[str, Any] = {
        "export": {"notes": list(exported.notes), "errors": list(exported.errors), "files": files}
    }
    await _check_not_cancelled(db, run.id)
    await db.screenings.update_run(
        run.id, status="partitioning", transaction_time=exported.transaction_time, counts=counts
    )
    progress.phase("partitioning")
    executor = await anyio.to_thread.run_sync(_executor, options)
    try:
        tally = await _partition_and_assess(db, settings, run, work, exported, options, executor, progress, today,
                                            counts)
    finally:
        await anyio.to_thread.run_sync(executor.close)
    departed = await db.screenings.departed(run)
    counts["departed"] = {"count": len(departed), "patients": departed[:100]}
    counts["progress"] = tally.rate_and_eta()
    await db.screenings.update_run(
        run.id,
        status="complete",
        patients_done=tally.done,
        patient_errors=tally.errors,
        counts=counts,
        rules_version=RULES_VERSION,
        finished_at=utcnow(),
    )
    progress.phase("complete")
    previous = await db.screenings.get_run(run.previous_run_id) if run.previous_run_id else None
    await anyio.to_thread.run_sync(_tidy, work, Path(previous.work_dir) if previous and previous.work_dir else None)


async def _partition_and_assess(
    db: Database,
    settings: Settings,
    run: ScreeningRun,
    work: Path,
    exported: ExportedFiles,
    options: ExecutionOptions,
    executor: Executor,
    progress: Progress,
    today: date | None,
    counts: dict[str, Any],
) -> _Tally:
    """The partitioning (chunks routed on ``executor``) and the assessment of its partitions (on it too)."""
    plan = await anyio.to_thread.run_sync(
        lambda: partition_files(
            list(exported.files), work, patients_per_partition=options.patients_per_partition, executor=executor
        )
    )
    counts["partitioning"] = {
        "partitions": len(plan.partitions),
        "resources": plan.resources,
        "problems": plan.counts,
        "examples": plan.examples,
    }
    as_of = AsOfSpec(**run.as_of)
    policy = AsOfPolicy(default=as_of.default_date(today or settings.today()), per_patient=as_of.per_patient())
    worker = WorkerSettings.from_settings(settings)
    results = work / "results"
    results.mkdir(parents=True, exist_ok=True)
    count = len(plan.partitions)
    specs = [
        PartitionSpec(
            index=index,
            partitions=tuple(Path(path) for path in paths),
            result=results / f"part-{index:04d}.jsonl",
            as_of=policy.for_partition(index, count),
            worker=worker,
        )
        for index, paths in enumerate(plan.partitions)
    ]
    tally = _Tally(total=plan.patients)
    await db.screenings.update_run(run.id, status="assessing", patients_total=plan.patients, counts=counts)
    progress.phase("assessing")
    await _assess(db, run, specs, executor, progress, tally, counts)
    return tally


def _tidy(work: Path, previous: Path | None) -> None:
    """Patient data on disk, once the run is stored: the partitions and result files go (the database holds the
    results); this run's files stay as the next incremental run's base, and the previous run's folder goes."""
    for folder in ("partitions", "results"):
        shutil.rmtree(work / folder, ignore_errors=True)
    if previous is not None and previous.resolve() != work.resolve() and previous.is_dir():
        shutil.rmtree(previous, ignore_errors=True)
