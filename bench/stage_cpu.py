"""CPU per hook call of the decoder, the mapping and the rules, on every demo and cohort patient's record.

Made for comparing two trees on a shared machine: each stage runs on each record again and again, and the
*minimum* of ``time.process_time`` over the repeats is kept for each record (other processes can only add to
a run's time, never take from it; a run of one record is short enough that some run is undisturbed); the
stage's figure is the mean of these minima over the records (the demo and cohort records: 71 bundles, 37
patients). Wall-clock percentiles (``python -m bench``)
answer another question: what a caller waits.

- ``decode``: ``service.fhir.decode.decode_problem`` on every resource the mapping checks (part of ``map``);
- ``map``: ``service.mapping.map_to_snapshot`` (default mode: the typed decoder);
- ``rules``: ``rules.assess`` on the snapshots.

    PYTHONPATH=. python -m bench.stage_cpu [--repeats 30] [--profile rules|map|decode]   (cProfile)
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from datetime import date

from bench.common import min_cpu_ms
from rules import Snapshot, assess
from rules.knowledge import Knowledge
from service.cohort.load import cohort_bundles
from service.demo import demo_bundles
from service.fhir.decode import DECODERS, decode_problem
from service.gather import PatientRecord, gather_patient_record
from service.main import create_app
from service.mapping import map_to_snapshot
from service.settings import Settings
from tests.api.hook_requests import full_prefetch

DAY = date(2026, 11, 28)


def records(today: date = DAY) -> list[PatientRecord]:
    """Each demo and cohort patient's record, gathered from a full prefetch as a hook call gathers it."""
    state = create_app(Settings(), demo_day=today).state.hcc
    templates = state.services["hcc-tace-resistance"].prefetch
    loop = asyncio.new_event_loop()
    out = []
    for bundle in [*demo_bundles(today), *cohort_bundles(today)]:
        resources = [e["resource"] for e in bundle["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        others = [r for r in resources if r["resourceType"] != "Patient"]
        prefetch = full_prefetch(others, patient)
        out.append(loop.run_until_complete(gather_patient_record(patient["id"], templates, prefetch, None,
                                                                 deadline_seconds=10)))
    loop.close()
    return out


def per_record(work: list[Callable[[], object]], repeats: int) -> float:
    """The mean over the records of each record's least CPU time, in ms."""
    return sum(min_cpu_ms(w, repeats) for w in work) / len(work)


def _decode(resources: list[dict]) -> Callable[[], object]:
    return lambda: [decode_problem(r) for r in resources]


def _map(record: PatientRecord, knowledge: Knowledge) -> Callable[[], object]:
    return lambda: map_to_snapshot(record.patient, record.resources, knowledge, prior_issues=record.issues)


def _rules(snapshot: Snapshot, knowledge: Knowledge) -> Callable[[], object]:
    return lambda: assess(snapshot, DAY, knowledge, build="bench")


def stages() -> dict[str, list[Callable[[], object]]]:
    """Per stage, one callable per record."""
    recs = records()
    knowledge = create_app(Settings(), demo_day=DAY).state.hcc.knowledge
    checked = [[r for r in [rec.patient, *rec.resources] if r.get("resourceType") in DECODERS] for rec in recs]
    snapshots = [_map(r, knowledge)() for r in recs]
    return {
        "decode": [_decode(c) for c in checked],
        "map": [_map(r, knowledge) for r in recs],
        "rules": [_rules(s, knowledge) for s in snapshots],  # type: ignore[arg-type]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--profile", choices=("decode", "map", "rules"))
    parser.add_argument("--only", choices=("decode", "map", "rules"))
    args = parser.parse_args()
    work = stages()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.repeats):
            for w in work[args.profile]:
                w()
        profiler.disable()
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumulative").print_stats(45)
        return
    for name, runs in work.items():
        if args.only in (None, name):
            print(f"{name:7s} {per_record(runs, args.repeats):.3f} ms CPU per call (mean over {len(runs)} records "
                  f"of each one's least of {args.repeats} runs)")


if __name__ == "__main__":
    main()
