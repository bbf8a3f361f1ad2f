"""HTTP benchmarks: hcc-cds under uvicorn in its own process, load from this one (and from wrk).

- light load: sequential ``patient-view`` calls with full prefetch, cycling the 34 cohort patients,
  with ``GET /healthz`` interleaved in the same run as the floor (keep-alive, one connection);
  ``warm`` repeats bodies the workers have seen (a chart opened again), ``cold`` sends every resource
  in a version never seen before (``meta.versionId``), so nothing cached for it applies;
- peak throughput: ``wrk`` (Debian's ``wrk``) with ``bench/wrk/cohort.lua`` cycling the cohort's bodies made
  cold on every request (each a patient never seen: new ids, references and versions), and ``/healthz``, at
  several connection counts; 1 and 2 uvicorn workers;
- start-up: process start to ``/readyz`` OK (every worker started), resident memory per worker.

    python -m bench.http_load [--workers 1 2] [--rounds 10] [--duration 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

from bench.common import (
    HOOK_PATH,
    ROOT,
    Case,
    OtherLoad,
    Server,
    cohort_cases,
    cpu_seconds,
    fresh_versions,
    served,
    summary,
    write_json,
)

WRK_SCRIPT = ROOT / "bench" / "wrk" / "cohort.lua"
WRK_RUN_SERIALS = 10_000_000  # each wrk run's cold patients are numbered from its own multiple of this
HEADERS = {"Content-Type": "application/json"}


def _post(client: httpx.Client, body: bytes) -> float:
    start = time.perf_counter()
    r = client.post(HOOK_PATH, content=body, headers=HEADERS)
    elapsed = (time.perf_counter() - start) * 1000
    if r.status_code != 200 or not isinstance(r.json().get("cards"), list):  # a patient it is not for gets none
        raise RuntimeError(f"patient-view answered {r.status_code}: {r.text[:300]}")
    return elapsed


def _get(client: httpx.Client, path: str) -> float:
    start = time.perf_counter()
    r = client.get(path)
    elapsed = (time.perf_counter() - start) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"{path} answered {r.status_code}")
    return elapsed


def sequential(server: Server, cases: list[Case], rounds: int) -> dict:
    """Light load: one call at a time; each patient-view call is followed by one /healthz call."""
    hook_ms: list[float] = []
    health_ms: list[float] = []
    by_case: dict[str, list[float]] = {c.patient_id: [] for c in cases}
    with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
        for _ in range(2):  # warm-up: connections, imports on first use, each worker's caches
            for case in cases:
                _post(client, case.body)
                _get(client, "/healthz")
        pids = server.worker_pids()
        load = OtherLoad(pids).start()
        cpu0 = cpu_seconds(pids)
        for _ in range(rounds):
            for case in cases:
                elapsed = _post(client, case.body)
                hook_ms.append(elapsed)
                by_case[case.patient_id].append(elapsed)
                health_ms.append(_get(client, "/healthz"))
        cpu1, busy = cpu_seconds(pids), load.share()
        for _ in range(rounds * len(cases)):
            _get(client, "/healthz")
        cpu2 = cpu_seconds(pids)
        # cold: a patient never seen (ids and versions new), /healthz interleaved as for warm
        cold_bodies = [fresh_versions(case.body, n) for n in range(max(1, rounds // 3)) for case in cases]
        cold_ms, cold_health_ms = [], []
        cold_load = OtherLoad(pids).start()
        for body in cold_bodies:
            cold_ms.append(_post(client, body))
            cold_health_ms.append(_get(client, "/healthz"))
        cold_busy = cold_load.share()
    hook = summary(hook_ms)
    health = summary(health_ms)
    cold = summary(cold_ms)
    cold_health = summary(cold_health_ms)
    calls = rounds * len(cases)
    health_cpu_ms = (cpu2 - cpu1) * 1000 / calls
    return {
        "server_cpu_ms_per_patient_view": round((cpu1 - cpu0) * 1000 / calls - health_cpu_ms, 2),
        "server_cpu_ms_per_healthz": round(health_cpu_ms, 2),
        "other_processes_cpu_share": busy,
        "patient_view_warm": hook,
        "patient_view_cold": cold,
        "healthz": health,
        "service_p50_over_healthz_ms": round(hook["p50"] - health["p50"], 3),
        "healthz_during_cold": cold_health,
        "cold_service_p50_over_healthz_ms": round(cold["p50"] - cold_health["p50"], 3),
        "cold_other_processes_cpu_share": cold_busy,
        "by_resources": _by_resources(cases, by_case),
    }


def scaling(server: Server, rounds: int) -> list[dict]:
    """Sequential patient-view calls on synthetic records of 10 to 10 000 Observations (warm and cold)."""
    from bench.inprocess import OBSERVATION_COUNTS, synthetic_case

    rows = []
    with httpx.Client(base_url=server.base_url, timeout=120.0) as client:
        for count in OBSERVATION_COUNTS:
            case = synthetic_case(count, date.today())
            # at least 7 calls of each (a 10 000-Observation call takes ~0.15 s): with 3, one slow call moved the
            # per-Observation slope by 2-3 µs between runs of the same tree
            reps = max(7, rounds * (10 if count <= 100 else 3))
            for _ in range(2):
                _post(client, case.body)
            cold_bodies = [fresh_versions(case.body, 10_000 + n) for n in range(reps)]
            load = OtherLoad(server.worker_pids()).start()
            warm, cold = [], []
            for body in cold_bodies:  # alternated: whatever drifts during the run affects warm and cold alike
                warm.append(_post(client, case.body))
                cold.append(_post(client, body))
            rows.append(
                {
                    "observations": count,
                    "resources": case.resources,
                    "body_kib": round(case.kib, 1),
                    "warm": summary(warm),
                    "cold": summary(cold),
                    "other_processes_cpu_share": load.share(),
                }
            )
    return rows


def _by_resources(cases: list[Case], by_case: dict[str, list[float]]) -> list[dict]:
    """p50 per resource-count band (the cohort's prefetches hold 59 to 100 resources)."""
    bands: dict[str, list[float]] = {}
    for case in cases:
        low = (case.resources // 10) * 10
        bands.setdefault(f"{low}-{low + 9}", []).extend(by_case[case.patient_id])
    return [{"resources": band, **summary(values)} for band, values in sorted(bands.items())]


def _backend(database_url: str | None) -> str:
    if not database_url:
        return "sqlite (a fresh file)"
    return "postgresql" if database_url.startswith("postgres") else database_url.split(":", 1)[0]


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    url: str, *, connections: int, duration: int, bodies: Path | None = None, threads: int = 1, first: int = 0
) -> dict:
    """One bounded wrk run against 127.0.0.1; requests/s, latency percentiles, errors. ``first``: where the
    numbers put into template bodies start (cohort.lua)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("load is only sent to 127.0.0.1")
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if bodies is not None:
        command += ["-s", str(WRK_SCRIPT), url, "--", str(bodies), str(first)]
    else:
        command += [url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    latency = {f"p{m[0]}": round(float(m[1]) * _UNITS[m[2]], 3) for m in _LATENCY.findall(out)}
    return {
        "connections": connections,
        "requests_per_second": round(rps, 1),
        "latency_ms": latency,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(0) if errors else None,
    }


def throughput(server: Server, cases: list[Case], duration: int, connections: list[int]) -> dict:
    with tempfile.TemporaryDirectory(prefix="hcc-bench-wrk-") as tmp:
        bodies = Path(tmp) / "bodies.jsonl"
        # templates: every request a patient never seen (cold), as issue 20's throughput target asks
        bodies.write_bytes(b"\n".join(fresh_versions(c.body, "@@") for c in cases) + b"\n")
        # warm every worker's code paths (not these patients: there are none twice) before measuring
        run_wrk(server.base_url + HOOK_PATH, connections=max(connections), duration=3, bodies=bodies)
        pids = server.worker_pids()
        load = OtherLoad(pids).start()
        hook = []
        for run, c in enumerate(connections, start=1):
            cpu0, wall0 = cpu_seconds(pids), time.monotonic()
            result = run_wrk(server.base_url + HOOK_PATH, connections=c, duration=duration, bodies=bodies,
                             first=run * WRK_RUN_SERIALS)
            # the workers' CPU use over the run, in cores (2.0: both cores busy serving)
            result["server_cores_busy"] = round((cpu_seconds(pids) - cpu0) / (time.monotonic() - wall0), 2)
            hook.append(result)
        busy = load.share()
        health = [run_wrk(server.base_url + "/healthz", connections=c, duration=duration) for c in connections]
    return {
        "patient_view": hook,
        "healthz": health,
        "peak_rps": max(r["requests_per_second"] for r in hook if not r["non_2xx"]) if hook else None,
        # issue 20's target holds at every count from 4 to 16 connections, not only at the best one
        "lowest_rps_4_to_16_connections": min(
            (r["requests_per_second"] if not r["non_2xx"] else 0.0 for r in hook if 4 <= r["connections"] <= 16),
            default=None,
        ),
        "errors": sum(r["non_2xx"] for r in hook + health),
        "other_processes_cpu_share": busy,
    }


def run(
    workers: list[int], rounds: int, duration: int, connections: list[int], database_url: str | None = None
) -> dict:
    cases = cohort_cases()
    env = {"HCC_DATABASE_URL": database_url} if database_url else None
    results: dict = {
        "database": _backend(database_url),
        "cases": {
            "patients": len(cases),
            "resources": [min(c.resources for c in cases), max(c.resources for c in cases)],
            "observations": [min(c.observations for c in cases), max(c.observations for c in cases)],
            "body_kib": [round(min(c.kib for c in cases), 1), round(max(c.kib for c in cases), 1)],
        },
        "workers": {},
    }
    for n in workers:
        with served(n, env=env) as server:
            entry: dict = {"ready_seconds": round(server.ready_seconds, 3), "ready_path": server.ready_path}
            entry["rss_mib_after_start"] = server.rss_per_worker()
            entry["sequential"] = sequential(server, cases, rounds)
            if n == min(workers):
                entry["scaling"] = scaling(server, rounds)
            if wrk_available():
                entry["throughput"] = throughput(server, cases, duration, connections)
            else:
                entry["throughput"] = None
                entry["note"] = "wrk is not installed (apt-get install wrk): no throughput run"
            entry["rss_mib_after_load"] = server.rss_per_worker()
            results["workers"][str(n)] = entry
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=10, help="sequential rounds over the 34 patients")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (bounded)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--database", help="HCC_DATABASE_URL for the server (default: a fresh SQLite file)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    results = run(args.workers, args.rounds, min(args.duration, 60), args.connections, args.database)
    if args.json:
        write_json(args.json, results)
    import json

    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
