"""Partitions on local processes and on a Dask cluster give the same rows, even when a Dask worker dies mid-run;
the partitioning's chunks routed on either give the plan and partitions of routing them in the driver.

Real worker processes (spawned), real Dask ``LocalCluster``s of two single-threaded workers; small partitions
(37 patients in 4) keep it quick. ``-m dask`` selects the Dask tests.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from distributed import WorkerPlugin

from service.screening.executors import DaskExecutor, Executor, LocalExecutor
from service.screening.partition import PartitionPlan, partition_files
from service.screening.runner import AsOfPolicy, PartitionResult, PartitionSpec, WorkerSettings
from tests.screening_export import DAY, demo_export_bundles, write_export


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> PartitionPlan:
    work = tmp_path_factory.mktemp("screening")
    return partition_files(write_export(demo_export_bundles(DAY), work / "export"), work, patients_per_partition=10)


def _specs(plan: PartitionPlan, results: Path) -> list[PartitionSpec]:
    return [PartitionSpec(i, tuple(Path(p) for p in paths), results / f"part-{i:04d}.jsonl", AsOfPolicy(DAY),
                          WorkerSettings(build="test"))
            for i, paths in enumerate(plan.partitions)]


def _partition_data(plan: PartitionPlan) -> list[bytes]:
    return [b"".join(Path(p).read_bytes() for p in paths) for paths in plan.partitions]


def _check_chunks_routed_by(executor: Executor, plan: PartitionPlan, work: Path) -> None:
    """The same export cut in small chunks, routed by the executor's workers: the driver's plan and partitions."""
    files = write_export(demo_export_bundles(DAY), work / "export")
    routed = partition_files(files, work, patients_per_partition=10, executor=executor, chunk_bytes=20_000)
    assert max(len(paths) for paths in routed.partitions) > len(files)
    assert (routed.patients_per_partition, routed.resources, routed.counts, routed.examples) == (
        plan.patients_per_partition, plan.resources, plan.counts, plan.examples)
    assert _partition_data(routed) == _partition_data(plan)


def _run(executor: Executor, plan: PartitionPlan, results: Path) -> dict[int, bytes]:
    done = list(executor.run(_specs(plan, results)))
    assert sorted(r.index for r in done) == list(range(len(plan.partitions)))
    assert all(isinstance(r, PartitionResult) and r.errors == 0 for r in done)
    assert [r.patients for r in sorted(done, key=lambda r: r.index)] == plan.patients_per_partition
    return {r.index: r.result.read_bytes() for r in done}


@pytest.fixture(scope="module")
def local_rows(plan, tmp_path_factory) -> dict[int, bytes]:
    with LocalExecutor(workers=2) as executor:
        return _run(executor, plan, tmp_path_factory.mktemp("local"))


def test_local_processes_assess_every_patient(local_rows):
    assert sum(len(rows.splitlines()) for rows in local_rows.values()) == 37
    assert all(b'"error":null' in line for rows in local_rows.values() for line in rows.splitlines())


def test_local_processes_route_the_chunks_then_assess(plan, local_rows, tmp_path):
    with LocalExecutor(workers=2) as executor:
        assert executor.workers == 2
        assert executor.map(abs, [-3, 2, -1]) == [3, 2, 1]  # in the items' order
        _check_chunks_routed_by(executor, plan, tmp_path)
        routed = partition_files([], tmp_path)  # DONE is there: read back, nothing routed
        assert _run(executor, routed, tmp_path / "results") == local_rows


@pytest.fixture(scope="module")
def dask_executor():
    """One LocalCluster of two worker processes for the module (starting one takes seconds)."""
    with DaskExecutor(None, 2, silence_logs=logging.CRITICAL) as executor:
        yield executor


@pytest.mark.dask
def test_a_dask_cluster_gives_the_same_rows(plan, local_rows, dask_executor, tmp_path):
    assert _run(dask_executor, plan, tmp_path) == local_rows


@pytest.mark.dask
def test_a_dask_cluster_routes_the_chunks(plan, dask_executor, tmp_path):
    assert dask_executor.workers == 2
    assert dask_executor.map(abs, [-3, 2, -1]) == [3, 2, 1]
    _check_chunks_routed_by(dask_executor, plan, tmp_path)


class KillOnce(WorkerPlugin):
    """Ends its worker's process (no cleanup, as a lost node would) when it starts its ``nth`` task; once a run."""

    def __init__(self, marker: str, nth: int) -> None:
        self.marker = marker
        self.nth = nth
        self.started = 0

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish != "executing":
            return
        self.started += 1
        if self.started < self.nth:
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # another worker was killed already
        os._exit(1)


@pytest.mark.dask
def test_a_worker_killed_mid_run_costs_only_its_partition(plan, local_rows, dask_executor, tmp_path):
    marker = tmp_path / "killed"
    dask_executor.client.register_plugin(KillOnce(str(marker), nth=2))  # stays: the marker makes it kill once
    workers_before = set(dask_executor.client.scheduler_info()["workers"])
    assert _run(dask_executor, plan, tmp_path / "results") == local_rows
    assert marker.exists()  # a worker did die: its partition was run again elsewhere
    assert set(dask_executor.client.scheduler_info()["workers"]) != workers_before


def test_a_partition_that_cannot_be_read_fails_the_run_clearly(tmp_path):
    spec = PartitionSpec(0, (tmp_path / "missing.ndjson",), tmp_path / "r.jsonl", AsOfPolicy(DAY), WorkerSettings())
    with LocalExecutor(workers=1) as executor, pytest.raises(FileNotFoundError, match="missing.ndjson"):
        list(executor.run([spec]))


def test_a_chunk_that_cannot_be_read_fails_the_partitioning_clearly(tmp_path):
    files = write_export(demo_export_bundles(DAY)[:2], tmp_path / "export")
    files.append(("Observation", tmp_path / "export" / "gone.ndjson.gz"))
    (tmp_path / "export" / "gone.ndjson.gz").write_bytes(b"not gzip")
    with LocalExecutor(workers=1) as executor, pytest.raises(OSError, match="gzip"):
        partition_files(files, tmp_path / "work", executor=executor)
    assert not (tmp_path / "work" / "partitions" / "DONE").exists()
