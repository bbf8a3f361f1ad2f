"""The screening benchmark (issue 22): ``hcc-cds screen`` end to end from NDJSON files, side by side.

    python -m bench.screening --patients 2000 20000 --runs local:2 dask:1 dask:2

For each size, a synthetic export (``offline.screening_cohort``: clones of the 37 embedded records with
realistic record sizes, cached under ``--cache``) is screened by ``hcc-cds screen --ndjson`` in a process
of its own, with a fresh SQLite database. Reported per run: patients/s end to end (wall clock from the
command's start to its summary: partitioning, assessing, storing), the peak resident memory of the driver
and of the largest worker process (sampled every 0.2 s over the process tree with psutil), the database's
size, and the CPU share other processes used meanwhile (a busy machine makes the numbers pessimistic).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import ROOT, machine

SAMPLE_SECONDS = 0.2


def export_of(patients: int, cache: Path, seed: int = 22) -> Path:
    folder = cache / f"screening-{patients}-{seed}"
    if not (folder / "manifest.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "offline.screening_cohort", "--patients", str(patients), "--seed", str(seed),
             "--out", str(folder)],
            check=True, cwd=ROOT,
        )
        print(f"generated {patients} patients in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return folder


def _others_cpu(ours: set[int]) -> float:
    total = 0.0
    for proc in psutil.process_iter(["pid"]):
        if proc.pid in ours:
            continue
        try:
            total += proc.cpu_percent(None)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def screen_once(folder: Path, executor: str, workers: int, work: Path) -> dict:
    env = {
        **os.environ,
        "HCC_DATABASE_URL": f"sqlite:///{work}/bench.sqlite3",
        "HCC_SCREEN_WORK_DIR": str(work / "runs"),
        "HCC_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "service.cli", "screen", "--no-progress", "--ndjson", str(folder),
               "--as-of-file", str(folder / "as_of.csv"), "--workers", str(workers)]
    if executor == "dask":
        command += ["--scheduler", "local-cluster"]
    for proc in psutil.process_iter():  # prime cpu_percent
        try:
            proc.cpu_percent(None)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    driver = psutil.Process(process.pid)
    peaks: dict[int, int] = {}
    cpu: dict[int, float] = {}
    others: list[float] = []
    while process.poll() is None:
        try:
            tree = [driver, *driver.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for proc in tree:
            try:
                peaks[proc.pid] = max(peaks.get(proc.pid, 0), proc.memory_info().rss)
                times = proc.cpu_times()
                cpu[proc.pid] = times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        others.append(_others_cpu({p.pid for p in tree} | {os.getpid()}))
        time.sleep(SAMPLE_SECONDS)
    out, _ = process.communicate()
    seconds = time.monotonic() - started
    summary = json.loads(out.decode().strip().splitlines()[-1])
    driver_peak = peaks.pop(process.pid, 0)
    driver_cpu = cpu.pop(process.pid, 0.0)
    cpus = psutil.cpu_count() or 1
    return {
        "executor": executor,
        "workers": workers,
        "status": summary["status"],
        "patients": summary["patients"],
        "errors": summary["errors"],
        "seconds": round(seconds, 1),
        "patients_per_second": round(summary["patients"] / seconds, 1),
        "driver_peak_rss_mb": round(driver_peak / 2**20),
        "worker_peak_rss_mb": round(max(peaks.values(), default=0) / 2**20),
        "processes": len(peaks) + 1,
        # CPU seconds (sampled: a process's last 0.2 s may be missing) per patient, driver and workers
        "driver_cpu_ms_per_patient": round(1000 * driver_cpu / max(summary["patients"], 1), 2),
        "workers_cpu_ms_per_patient": round(1000 * sum(cpu.values()) / max(summary["patients"], 1), 2),
        "database_mb": round((work / "bench.sqlite3").stat().st_size / 2**20, 1),
        "others_cpu_share": round(sum(others) / max(len(others), 1) / (100 * cpus), 3),
    }


def markdown(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}",
        "",
        "| patients | executor | workers | s | patients/s | driver CPU ms/patient | workers' CPU ms/patient | "
        "driver peak RSS MB | largest worker RSS MB | DB MB | others' CPU |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, runs in results["sizes"].items():
        for r in runs:
            lines.append(
                f"| {size} | {r['executor']} | {r['workers']} | {r['seconds']} | {r['patients_per_second']} | "
                f"{r['driver_cpu_ms_per_patient']} | {r['workers_cpu_ms_per_patient']} | "
                f"{r['driver_peak_rss_mb']} | {r['worker_peak_rss_mb']} | {r['database_mb']} | "
                f"{r['others_cpu_share']:.0%} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screening", description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[2000])
    parser.add_argument("--runs", nargs="+", default=["local:2", "dask:1", "dask:2"],
                        help="executor:workers, executor local or dask")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hcc-bench-exports")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "screening.json")
    args = parser.parse_args(argv)
    results: dict = {"machine": machine(), "sizes": {}}
    for size in args.patients:
        folder = export_of(size, args.cache)
        results["sizes"][size] = []
        for run in args.runs:
            executor, _, workers = run.partition(":")
            with tempfile.TemporaryDirectory(prefix="hcc-bench-screen-") as work:
                result = screen_once(folder, executor, int(workers or 2), Path(work))
            print(json.dumps({"patients": size, **result}), file=sys.stderr)
            results["sizes"][size].append(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    sys.stdout.write(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
