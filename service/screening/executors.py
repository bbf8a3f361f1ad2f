"""Partitions (and the partitioning's chunks) on local processes or a Dask cluster, behind one interface.

:class:`Executor` runs :func:`service.screening.runner.run_partition` on each spec and yields each
:class:`~service.screening.runner.PartitionResult` as its partition completes (in completion order), so the
driver can ingest results and move its progress bar while others run. :meth:`Executor.map` runs any picklable
function on a list of tasks on the same workers and returns the results in the tasks' order: the partitioner's
chunks (:func:`service.screening.partition.route_chunk`) are routed so, by the processes that then assess.

* :class:`LocalExecutor`: a ``ProcessPoolExecutor`` (spawn: no forked copy of the driver's state, threads or
  connections) of ``workers`` processes, one CPU each. They are started when the executor is made (while the
  driver reads the Patient file), not by the first task.
* :class:`DaskExecutor`: a ``distributed.Client`` to a scheduler (``tcp://...``, e.g. the one the Dask Kubernetes
  operator names in ``DASK_SCHEDULER_ADDRESS``), or a ``LocalCluster`` of single-threaded worker processes.
  Partitions and tasks are submitted with ``pure=False, retries=2``: a worker lost mid-partition only costs that
  partition, run again on another worker (the result file is written atomically, and a chunk routed again
  starts from an empty folder, so a rerun is harmless).

Every worker must read the export's files and the partition paths and write the partitions' chunk files and the
result paths the specs name: the same local disk, or on Kubernetes a ReadWriteMany volume mounted at the same path
in the driver (job) pod and every worker pod.
Each worker process loads the knowledge once (``runner.toolkit`` is cached per process), not per partition.
A patient's failure is a row of its partition's result; a partition that fails as a whole (its file
unreadable, a worker lost more often than retried) raises from ``run`` and the partitions not yet started are
cancelled; so does a task of ``map``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from types import TracebackType
from typing import Any, TypeVar

from service.screening.runner import PartitionResult, PartitionSpec, run_partition


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


T = TypeVar("T")
R = TypeVar("R")


def _ready() -> None:
    """A task that only makes a worker process start (and import this module and the runner)."""


class Executor(ABC):
    """Runs partitions somewhere; yields their results as they complete. A context manager (closes on exit)."""

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many tasks run at once."""

    @abstractmethod
    def run(self, specs: Sequence[PartitionSpec]) -> Iterator[PartitionResult]: ...

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` (picklable, module-level) of each item on the workers; the results in the items' order."""

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
        self._workers = workers or default_workers()
        self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"))
        for _ in range(self._workers):  # each submit finding no idle worker starts a process: all start now
            self._pool.submit(_ready)

    @property
    def workers(self) -> int:
        return self._workers

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        futures = [self._pool.submit(fn, item) for item in items]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()  # one failed: the rest are not started

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

    @property
    def workers(self) -> int:
        return max(1, sum(self.client.nthreads().values()))  # threads of the workers connected now

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        futures = self.client.map(fn, list(items), pure=False, retries=2)
        try:
            return list(self.client.gather(futures))
        finally:
            self.client.cancel([f for f in futures if not f.done()])

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
