"""What every benchmark shares: the cohort's hook bodies, percentiles, the machine, a served hcc-cds.

The bodies are the 34 synthetic cohort patients (``service.cohort.load``) as ``patient-view`` calls
with full prefetch (``tests.api.hook_requests.full_prefetch``), dated from today.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` as well as `python -m bench.x`
    sys.path.insert(0, str(ROOT))

from service.cohort.load import cohort_bundles  # noqa: E402
from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view  # noqa: E402

HOOK_PATH = f"/cds-services/{SERVICE_ID}"
PYTHON = sys.executable
READY_TIMEOUT_SECONDS = 60.0

# The targets of issue 20 (issue 13's, tightened, plus cold calls and growth), on this 2-core machine, for the
# cohort's prefetches, measured on a quiet machine from another process.
TARGETS = {
    "service_p50_over_healthz_ms": 3.0,  # warm: p50(patient-view, the same record again) - p50(/healthz)
    "cold_p50_over_healthz_ms": 4.0,  # cold: p50(patient-view, a patient never seen) - p50(/healthz)
    "patient_view_p99_ms": 15.0,  # absolute p99, warm and cold, sequential
    "cold_us_per_extra_observation": 15.0,  # slope of cold p50 from 1 000 to 10 000 Observations (HTTP)
    "cold_run_growth": 1.25,  # p50 of the last 200 of 2 000 cold calls / p50 of the first 200 (in-process)
    "peak_rps_2_workers": 400.0,  # patient-view, full prefetch, 2 uvicorn workers
    "no_prefetch_overhead_p50_ms": 5.0,  # beyond the FHIR server's own time
    "ready_seconds": 3.0,  # process start to /readyz OK
}


@dataclass(frozen=True)
class Case:
    patient_id: str
    resources: int  # resources in the prefetch, the Patient included
    observations: int
    body: bytes  # the patient-view request, JSON

    @property
    def kib(self) -> float:
        return len(self.body) / 1024


def cohort_records(today: date | None = None) -> list[tuple[dict, list[dict]]]:
    """(Patient, the other resources) of each cohort patient."""
    records = []
    for bundle in cohort_bundles(today or date.today()):
        resources = [e["resource"] for e in bundle.get("entry", [])]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        records.append((patient, [r for r in resources if r["resourceType"] != "Patient"]))
    return records


def hook_body(patient: dict, resources: list[dict], **extra: object) -> bytes:
    body = patient_view(patient["id"], prefetch=full_prefetch(resources, patient), **extra)  # type: ignore[arg-type]
    return json.dumps(body, separators=(",", ":")).encode()


def cohort_cases(today: date | None = None) -> list[Case]:
    """One patient-view body with full prefetch per cohort patient."""
    return [
        Case(
            patient_id=patient["id"],
            resources=len(resources) + 1,
            observations=sum(r["resourceType"] == "Observation" for r in resources),
            body=hook_body(patient, resources),
        )
        for patient, resources in cohort_records(today)
    ]


def fresh_versions(body: bytes, n: int | str) -> bytes:
    """The same call for a patient never seen: the patient's id, and every id and reference built from it (the
    cohort's resource ids start with it), made new (``<id>-b<n>``), and every prefetched resource given
    ``meta.versionId`` ``bench-<n>``: content never seen before, so nothing cached for it applies. (``n`` a
    text: a template, such as ``bench/wrk/cohort.lua`` fills in per request.)"""
    data = json.loads(body)
    patient_id = data["context"]["patientId"]
    data = json.loads(json.dumps(data).replace(f'"{patient_id}', f'"{patient_id}-b{n}').replace(
        f'/{patient_id}', f'/{patient_id}-b{n}'))
    data["hookInstance"] = str(uuid.uuid4())

    def stamp(resource: dict) -> None:
        resource["meta"] = {**resource.get("meta", {}), "versionId": f"bench-{n}"}

    for value in data["prefetch"].values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            for entry in value.get("entry", []):
                stamp(entry["resource"])
        elif isinstance(value, dict):
            stamp(value)
    return json.dumps(data, separators=(",", ":")).encode()


# -- statistics ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))  # ceil(q/100 * n), at least 1
    return ordered[rank - 1]


def summary(values_ms: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values_ms),
        "p50": round(percentile(values_ms, 50), 3),
        "p90": round(percentile(values_ms, 90), 3),
        "p99": round(percentile(values_ms, 99), 3),
        "max": round(max(values_ms), 3) if values_ms else float("nan"),
    }


# -- the machine -----------------------------------------------------------------------------------


def machine() -> dict[str, object]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def rss_mib(pid: int) -> float | None:
    """Resident memory of one process (VmRSS), MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes have used so far (/proc/PID/stat), seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
    return total / ticks


def machine_cpu_seconds() -> float:
    """CPU time every process of the machine has used (/proc/stat: all but idle and iowait), seconds."""
    parts = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(parts) - parts[3] - parts[4]
    return busy / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """The share of the machine's CPU that processes other than ``ours`` (and this one and its finished
    children, e.g. wrk) used between ``start()`` and ``share()``: our measurement's noise."""

    def __init__(self, ours: Sequence[int]) -> None:
        self.ours = list(ours)

    def start(self) -> OtherLoad:
        self._t0 = self._sample()
        return self

    def _sample(self) -> tuple[float, float, float, float]:
        import resource

        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        mine = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        return time.monotonic(), machine_cpu_seconds(), cpu_seconds(self.ours), mine

    def share(self) -> float:
        wall0, machine0, ours0, mine0 = self._t0
        wall1, machine1, ours1, mine1 = self._sample()
        others = (machine1 - machine0) - (ours1 - ours0) - (mine1 - mine0)
        return round(max(0.0, others) / max(1e-9, (wall1 - wall0) * (os.cpu_count() or 1)), 3)


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (uvicorn's workers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


# -- a served hcc-cds ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen
    workers: int
    ready_seconds: float
    ready_path: str  # /readyz, or /healthz where /readyz is not served
    workdir: Path
    notes: list[str] = field(default_factory=list)

    def worker_pids(self) -> list[int]:
        pids = children(self.process.pid)
        # uvicorn with --workers > 1 runs a supervisor plus one child per worker; with 1, the process serves
        return [p for p in pids if rss_mib(p) is not None] if self.workers > 1 else [self.process.pid]

    def rss_per_worker(self) -> list[float]:
        return [m for m in (rss_mib(p) for p in self.worker_pids()) if m is not None]


def _wait_ready(base_url: str, process: subprocess.Popen, started: float, log: Path) -> tuple[float, str]:
    """Seconds from ``started`` to the first 200 of /readyz (or /healthz when /readyz is 404)."""
    path = "/readyz"
    deadline = started + READY_TIMEOUT_SECONDS
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"hcc-cds exited with {process.returncode}: {log.read_text()[-3000:]}")
            try:
                r = client.get(base_url + path)
                if r.status_code == 200:
                    return time.monotonic() - started, path
                if r.status_code == 404 and path == "/readyz":
                    path = "/healthz"  # /readyz not wired (yet): the liveness probe is the nearest
                    continue
            except httpx.TransportError:
                pass
            time.sleep(0.01)
    raise RuntimeError(f"hcc-cds was not ready within {READY_TIMEOUT_SECONDS:g} s")


@contextmanager
def served(workers: int = 1, *, env: dict[str, str] | None = None, workdir: Path | None = None) -> Iterator[Server]:
    """``hcc-cds serve --workers N`` (what ships: its uvicorn options, and with N > 1 each worker on its own
    socket) on 127.0.0.1, in its own process, with a fresh SQLite database (unless ``env`` names one) and
    the default settings otherwise (demo mode, log level INFO: one JSON access-log line a request, to a
    file); stopped (SIGTERM, then SIGKILL) on leaving."""
    with tempfile.TemporaryDirectory(prefix="hcc-bench-") as tmp:
        work = workdir or Path(tmp)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("HCC_")}
        child_env |= {
            "HCC_DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
            "HCC_PUBLIC_BASE_URL": base_url,
            "PYTHONPATH": str(ROOT),
        }
        child_env |= env or {}
        command = [
            PYTHON, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers),
        ]  # fmt: skip
        log = work / "server.log"
        with open(log, "wb") as out:
            started = time.monotonic()
            process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=out, stderr=subprocess.STDOUT)
        try:
            seconds, path = _wait_ready(base_url, process, started, log)
            if workers > 1:  # the first worker answered; every worker must have started before measuring
                seconds = max(seconds, _wait_workers(log, workers, started))
            yield Server(base_url, process, workers, seconds, path, work)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_workers(log: Path, workers: int, started: float) -> float:
    """Seconds from ``started`` until every worker has logged uvicorn's "Application startup complete"."""
    deadline = started + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("Application startup complete") >= workers:
            return time.monotonic() - started
        time.sleep(0.01)
    raise RuntimeError(f"not every one of {workers} workers started within {READY_TIMEOUT_SECONDS:g} s")


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def min_cpu_ms(work: Callable[[], object], repeats: int) -> float:
    """The least CPU time of ``repeats`` runs of ``work``, in ms, after one warm-up run, the garbage collector
    kept out of the runs (other processes can only add to a run's time: the least is the least disturbed)."""
    best = float("inf")
    work()  # warm-up
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.process_time()
            work()
            best = min(best, time.process_time() - start)
    finally:
        gc.enable()
    return best * 1000
