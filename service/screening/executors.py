"""Partitions on local processes or a Dask cluster, behind one interface.

:class:`Executor` runs :func:`service.screening.runner.run_partition` on each spec and yields each
:class:`~service.screening.runner.PartitionResult` as its partition completes (in completion order), so the
driver can ingest results and move its progress bar while others run.

* :class:`LocalExecutor`: a ``ProcessPoolExecutor`` (spawn: no forked copy of the driver's state, threads or
  connections) of ``workers`` processes, one CPU each.
* :class:`DaskExecutor`: a ``distributed.Client`` to a scheduler (``tcp://...``, e.g. the one the Dask Kubernetes
  operator names in ``DASK_SCHEDULER_ADDRESS``), or a ``LocalCluster`` of single-threaded worker processes.
  Partitions are submitted with ``pure=False, retries=2``: a worker lost mid-partition only costs that
  partition, run again on another worker (the result file is written atomically, so a rerun is harmless).

Every worker must read the partition paths and write the result paths the specs name: the same local disk, or
on Kubernetes a ReadWriteMany volume mounted at the same path in the driver (job) pod and every worker pod.
Each worker process loads the knowledge once (``runner.toolkit`` is cached per process), not per partition.
A patient's failure is a row of its partition's result; a partition that fails as a whole (its file
unreadable, a worker lost more often than retried) raises from ``run`` and the partitions not yet started are
cancelled.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from types import TracebackType
from typing import Any

from service.screening.runner import PartitionResult, PartitionSpec, run_partition


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Executor(ABC):
    """Runs partitions somewhere; yields their results as they complete. A context manager (closes on exit)."""

    @abstractmethod
    def run(self, specs: Sequence[PartitionSpec]) -> Iterator[PartitionResult]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class LocalExecutor(Executor):
    """``workers`` local processes (default: one per CPU)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))

    def run(self, specs: Sequence[PartitionSpec]) -> Iterator[PartitionResult]:
        futures: list[Future[PartitionResult]] = [self._pool.submit(run_partition, spec) for spec in specs]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()  # the driver stopped early (or a partition failed): do not start the rest

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """A Dask cluster: the scheduler at ``scheduler``, or a local cluster of ``workers`` processes."""

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int | None = None,
        *,
        silence_logs: int = logging.WARNING,
    ) -> None:
        from distributed import Client, LocalCluster  # imported here: a local run needs no Dask

        self._cluster: Any = None
        if scheduler is None:
            self._cluster = LocalCluster(
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=silence_logs,
            )
            self.client = Client(self._cluster)
        else:
            self.client = Client(scheduler)

    def run(self, specs: Sequence[PartitionSpec]) -> Iterator[PartitionResult]:
        from distributed import as_completed as dask_completed

        futures = self.client.map(run_partition, list(specs), pure=False, retries=2)
        try:
            for future in dask_completed(futures):
                yield future.result()
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
