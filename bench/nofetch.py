"""No prefetch: hcc-cds fetches each cohort patient's record from a real FHIR server (sekmet-fhir).

The FHIR test server of the integration tests (``.venv-fhir``, ``make fhir-server``) is loaded with the
cohort; hcc-cds runs under uvicorn in its own process; this process sends ``patient-view`` calls with
``fhirServer`` and no prefetch, one at a time, and measures them end to end.

The FHIR server's own time is measured by sending the very same searches straight to it, as the service
sends them (the record's searches at once, then the lesions by ``_id``), recorded from the service's own
FHIR client, with nothing parsed but what finds the lesions. Our share = p50(end to end) - p50(the
server's time for the same searches).

    python -m bench.nofetch [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import httpx

from bench.common import HOOK_PATH, OtherLoad, cohort_records, cpu_seconds, served, summary, write_json
from service.cds.services import patient_record_templates
from service.fhir.client import HttpFhirSource
from service.gather import gather_patient_record
from service.knowledge import load_knowledge
from tests.integration.fhir_server import load_resources, start_fhir_server


def hook_body(patient_id: str, fhir_server: str) -> bytes:
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_server,
        "context": {"userId": "Practitioner/example", "patientId": patient_id},
    }
    return json.dumps(body).encode()


async def recorded_searches(base_url: str, patient_ids: list[str]) -> dict[str, list[list[str]]]:
    """Each patient's GETs, as the service's own FHIR client sends them, in phases (what runs at once)."""
    templates = patient_record_templates(load_knowledge())
    searches: dict[str, list[list[str]]] = {}
    for pid in patient_ids:
        urls: list[str] = []

        async def record(request: httpx.Request, urls: list[str] = urls) -> None:
            urls.append(str(request.url))

        async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
            source = HttpFhirSource(client, base_url)
            await gather_patient_record(pid, templates, None, source, deadline_seconds=30)
        lesions = [u for u in urls if "/BodyStructure" in u]
        searches[pid] = [[u for u in urls if u not in lesions], lesions]
    return searches


async def server_time(client: httpx.AsyncClient, phases: list[list[str]]) -> float:
    """Wall time (ms) of the same GETs, phase after phase, the GETs of a phase at once."""
    headers = {"Accept": "application/fhir+json"}
    start = time.perf_counter()
    for phase in phases:
        if phase:
            answers = await asyncio.gather(*(client.get(u, headers=headers) for u in phase))
            for answer in answers:
                answer.raise_for_status()
    return (time.perf_counter() - start) * 1000


async def direct(searches: dict[str, list[list[str]]], rounds: int) -> tuple[list[float], list[float]]:
    totals, per_get = [], []
    async with httpx.AsyncClient(timeout=30) as client:
        for phases in searches.values():  # warm-up
            await server_time(client, phases)
        for _ in range(rounds):
            for phases in searches.values():
                elapsed = await server_time(client, phases)
                totals.append(elapsed)
                per_get.append(elapsed / max(1, sum(len(p) for p in phases)))
    return totals, per_get


def run(rounds: int = 5) -> dict:
    today = date.today()
    records = cohort_records(today)
    with tempfile.TemporaryDirectory(prefix="hcc-bench-fhir-") as tmp:
        fhir = start_fhir_server(Path(tmp) / "fhir")
        try:
            started = time.perf_counter()
            load_resources(fhir, [r for patient, resources in records for r in (patient, *resources)])
            load_seconds = time.perf_counter() - started
            ids = [patient["id"] for patient, _ in records]
            searches = asyncio.run(recorded_searches(fhir.base_url, ids))
            with served(1) as server, httpx.Client(base_url=server.base_url, timeout=60) as client:
                load = OtherLoad([*server.worker_pids(), fhir.process.pid])
                end_to_end: list[float] = []
                health: list[float] = []
                for pid in ids:  # warm-up
                    r = client.post(HOOK_PATH, content=hook_body(pid, fhir.base_url), headers={"Content-Type": "application/json"})
                    if r.status_code != 200 or not isinstance(r.json().get("cards"), list):  # no card: not for this patient
                        raise RuntimeError(f"patient-view without prefetch answered {r.status_code}: {r.text[:300]}")
                load.start()
                ours0, theirs0 = cpu_seconds(server.worker_pids()), cpu_seconds([fhir.process.pid])
                for _ in range(rounds):
                    for pid in ids:
                        body = hook_body(pid, fhir.base_url)
                        start = time.perf_counter()
                        r = client.post(HOOK_PATH, content=body, headers={"Content-Type": "application/json"})
                        end_to_end.append((time.perf_counter() - start) * 1000)
                        if r.status_code != 200:
                            raise RuntimeError(f"patient-view answered {r.status_code}")
                        start = time.perf_counter()
                        client.get("/healthz")
                        health.append((time.perf_counter() - start) * 1000)
                calls = rounds * len(ids)
                ours_ms = (cpu_seconds(server.worker_pids()) - ours0) * 1000 / calls
                theirs_ms = (cpu_seconds([fhir.process.pid]) - theirs0) * 1000 / calls
                direct_ms, per_get_ms = asyncio.run(direct(searches, rounds))
                busy = load.share()
        finally:
            fhir.stop()
    e2e, srv = summary(end_to_end), summary(direct_ms)
    return {
        "fhir_server": "sekmet-fhir 0.1.1 (the integration tests' server), 127.0.0.1",
        "load_seconds": round(load_seconds, 2),
        "gets_per_call": sorted({sum(len(p) for p in phases) for phases in searches.values()}),
        "end_to_end": e2e,
        "fhir_server_direct": srv,
        "fhir_server_per_get": summary(per_get_ms),
        "healthz": summary(health),
        "overhead_p50_ms": round(e2e["p50"] - srv["p50"], 3),
        "overhead_p99_ms": round(e2e["p99"] - srv["p99"], 3),
        "hcc_cds_cpu_ms_per_call": round(ours_ms, 2),  # the /healthz calls between included (~0.2 ms each)
        "fhir_server_cpu_ms_per_call": round(theirs_ms, 2),
        "other_processes_cpu_share": busy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args.rounds)
    if args.json:
        write_json(args.json, results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
