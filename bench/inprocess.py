"""In-process benchmark: the hook's work on each cohort patient's full prefetch, without HTTP or database.

Per call, as ``POST /cds-services/hcc-tace-resistance`` does it: JSON parsing of the body, the request
model, gathering the prefetch, mapping FHIR to the snapshot (with fhir.resources R4B validation of what
is used), the rules, the cards, the stored assessment's JSON and the response JSON.

- ``cold``: every validation outcome forgotten before each call (the first time a worker sees a record);
- ``warm``: the same records again (a chart opened again: outcomes kept by content);
- by resource count (the cohort's 59-100 resources), and synthetic records of 10 to 1 000 Observations;
- a pyinstrument profile of the cohort, its time split into JSON parsing, request model, gathering,
  fhir.resources validation, validation keys, mapping, rules and rendering;
- a cold run: 2 000 calls in a row, each a cohort patient's record in a version never seen before
  (``meta.versionId`` new, nothing cleared by hand), in blocks of 200, so that the validation cache
  fills (50 000 entries, after ~600 calls) and then evicts: the last blocks must cost what the first do.

Every section reports the share of the machine's CPU other processes used while it ran.

    python -m bench.inprocess [--rounds 5] [--json out.json] [--profile-html out.html]
    python -m bench.inprocess --only cold-run [--cold-calls 2000]
    python -m bench.inprocess --cprofile-cold     # where a cold call's time goes, without pyinstrument
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

from bench.common import Case, OtherLoad, cohort_cases, cohort_records, fresh_versions, hook_body, summary, write_json
from rules.assessment import assess
from service.cds.models import CardsResponse, HookRequest
from service.gather import gather_patient_record
from service.json_parse import parse_json
from service.main import create_app
from service.mapping import map_to_snapshot
from service.render.assessment_json import render_assessment
from service.render.cards import render_patient_view_cards
from service.settings import Settings

try:
    from service.mapping import VALIDATION_CACHE
except ImportError:  # a tree from before the validation cache (to compare): every call is cold
    VALIDATION_CACHE = None

OBSERVATION_COUNTS = (10, 30, 100, 300, 1_000, 3_000, 10_000)
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# (code, value, unit): the Child-Pugh labs, in turn
SYNTHETIC_LABS = (("1975-2", 1.1, "mg/dL"), ("1751-7", 3.6, "g/dL"), ("6301-6", 1.1, "{INR}"), ("777-3", 160, "10*3/uL"))


class Pipeline:
    """The hook's in-process work, stage by stage (the route's order)."""

    def __init__(self, today: date) -> None:
        self.app = create_app(Settings(), demo_day=today)
        self.state = self.app.state.hcc
        self.service = self.state.services["hcc-tace-resistance"]
        self.today = today
        self.loop = asyncio.new_event_loop()
        self.strict = False  # HCC_FHIR_STRICT_VALIDATION: whole resources through fhir.resources (outcomes cached)

    def run(self, body: bytes, stages: dict[str, list[float]] | None = None) -> float:
        clock = time.perf_counter
        t0 = clock()
        data = parse_json(body)  # as the hook route parses it (service/api/fast_json.py)
        t1 = clock()
        request = HookRequest.model_validate(data)
        t2 = clock()
        record = self.loop.run_until_complete(
            gather_patient_record(
                request.context.patient_id, self.service.prefetch, request.prefetch, None, deadline_seconds=10
            )
        )
        t3 = clock()
        snapshot = map_to_snapshot(
            record.patient, record.resources, self.state.knowledge, prior_issues=record.issues, strict=self.strict
        )
        t4 = clock()
        assessment = assess(snapshot, self.today, self.state.knowledge, build=self.state.build)
        t5 = clock()
        cards = render_patient_view_cards(assessment, self.state.settings.public_base_url)
        stored = json.dumps(render_assessment(assessment, self.state.knowledge, self.state.benchmarks))
        response = CardsResponse(cards=cards).model_dump_json(by_alias=True, exclude_none=True)
        t6 = clock()
        assert stored and response  # cards may be empty: a patient the service is not for answers no card
        if stages is not None:
            for name, start, end in (
                ("json", t0, t1),
                ("request_model", t1, t2),
                ("gather", t2, t3),
                ("map", t3, t4),
                ("rules", t4, t5),
                ("render", t5, t6),
            ):
                stages[name].append((end - start) * 1000)
        return (t6 - t0) * 1000

    def close(self) -> None:
        self.loop.close()


def _timed(pipeline: Pipeline, cases: list[Case], rounds: int, *, cold: bool) -> tuple[dict, dict, dict]:
    totals: list[float] = []
    stages: dict[str, list[float]] = defaultdict(list)
    by_case: dict[str, list[float]] = defaultdict(list)
    for case in cases:  # warm-up: imports, first-use caches
        pipeline.run(case.body)
    for _ in range(rounds):
        for case in cases:
            if cold and VALIDATION_CACHE is not None:
                VALIDATION_CACHE.clear()
            elapsed = pipeline.run(case.body, stages)
            totals.append(elapsed)
            by_case[case.patient_id].append(elapsed)
    return summary(totals), {k: summary(v) for k, v in stages.items()}, by_case


def _by_resources(cases: list[Case], by_case: dict[str, list[float]]) -> list[dict]:
    bands: dict[int, list[float]] = defaultdict(list)
    for case in cases:
        bands[(case.resources // 10) * 10].extend(by_case[case.patient_id])
    return [{"resources": f"{low}-{low + 9}", **summary(v)} for low, v in sorted(bands.items())]


def synthetic_case(observations: int, today: date) -> Case:
    """Cohort patient 1's record with its Observations replaced by ``observations`` Child-Pugh labs."""
    patient, resources = cohort_records(today)[0]
    kept = [r for r in resources if r["resourceType"] != "Observation"]
    labs = []
    for n in range(observations):
        code, value, unit = SYNTHETIC_LABS[n % len(SYNTHETIC_LABS)]
        labs.append(
            {
                "resourceType": "Observation",
                "id": f"bench-lab-{n}",
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "subject": {"reference": f"Patient/{patient['id']}"},
                "effectiveDateTime": date.fromordinal(today.toordinal() - n // len(SYNTHETIC_LABS)).isoformat(),
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            }
        )
    body = hook_body(patient, kept + labs)
    return Case(patient["id"], len(kept) + len(labs) + 1, observations, body)


def _slope(previous: dict | None, p50_ms: float, count: int, key: str) -> float | None:
    if previous is None:
        return None
    return round((p50_ms - previous[key]) * 1000 / (count - previous["observations"]), 1)


def scaling(pipeline: Pipeline, today: date, rounds: int) -> list[dict]:
    rows: list[dict] = []
    for count in OBSERVATION_COUNTS:
        case = synthetic_case(count, today)
        reps = 3 if count >= 3_000 else max(3, rounds * (20 if count <= 100 else 5))
        load = OtherLoad([]).start()
        cold, _, _ = _timed(pipeline, [case], reps, cold=True)
        warm, _, _ = _timed(pipeline, [case], reps, cold=False)
        previous = rows[-1] if rows else None
        rows.append(
            {
                "observations": count,
                "resources": case.resources,
                "body_kib": round(case.kib, 1),
                "cold_p50_ms": cold["p50"],
                "warm_p50_ms": warm["p50"],
                "cold_per_observation_us": round(cold["p50"] * 1000 / count, 1),
                "warm_per_observation_us": round(warm["p50"] * 1000 / count, 1),
                # what each Observation beyond the previous row's count added (the slope, not the average)
                "cold_per_extra_observation_us": _slope(previous, cold["p50"], count, "cold_p50_ms"),
                "warm_per_extra_observation_us": _slope(previous, warm["p50"], count, "warm_p50_ms"),
                "other_processes_cpu": load.share(),
            }
        )
    return rows


def cold_run(pipeline: Pipeline, cases: list[Case], calls: int = 2_000, block: int = 200) -> dict:
    """``calls`` cold calls in a row (every resource in a version never seen, the cache left alone), by block.

    The bodies are stamped outside the timed part; the cache is emptied once before the run.
    """
    if VALIDATION_CACHE is not None:
        VALIDATION_CACHE.clear()
    load = OtherLoad([]).start()
    blocks = []
    times: list[float] = []
    for n in range(calls):
        body = fresh_versions(cases[n % len(cases)].body, 1_000_000 + n)
        times.append(pipeline.run(body))
        if len(times) == block or n == calls - 1:
            blocks.append(
                {
                    "calls": f"{n + 2 - len(times)}-{n + 1}",
                    **summary(times),
                    "cache_entries": len(VALIDATION_CACHE) if VALIDATION_CACHE is not None else None,
                }
            )
            times = []
    first, last = blocks[0]["p50"], blocks[-1]["p50"]
    return {
        "calls": calls,
        "blocks": blocks,
        "last_over_first_p50": round(last / first, 3) if first else None,
        "cache_max_entries": getattr(VALIDATION_CACHE, "max_entries", None),
        "other_processes_cpu": load.share(),
        "cache_alone": cache_puts(),
    }


def cache_puts(puts: int = 250_000, block: int = 50_000) -> list[dict]:
    """The validation cache alone (a fresh one, its default bound): µs per get-then-put of a new key, by block of
    puts; once full, every put evicts. Constant time means the same cost in every block."""
    import hashlib

    from service.mapping import ValidationCache

    cache = ValidationCache()
    keys = [hashlib.sha256(str(n).encode()).digest() for n in range(puts)]
    rows = []
    for start in range(0, puts, block):
        t0 = time.perf_counter()
        for key in keys[start : start + block]:
            cache.get(key)
            cache.put(key, None)
        rows.append({"puts": f"{start + 1}-{start + block}", "us_per_put": round((time.perf_counter() - t0) * 1e6 / block, 2),
                     "entries": len(cache)})  # fmt: skip
    return rows


# -- the profile -----------------------------------------------------------------------------------

STICKY = frozenset({"fhir.resources validation", "validation keys and cache", "JSON parsing", "rendering"})


def _category(frame) -> str | None:
    """The part of the work a profiled frame belongs to (the innermost named part wins)."""
    path = (frame.file_path or "").replace("\\", "/")
    function = frame.function
    if "fhir_core/" in path or "fhir/resources/" in path or (path.endswith("service/mapping.py") and function == "_validate"):
        return "fhir.resources validation"
    if path.endswith("service/mapping.py") and function in ("key", "get", "put"):
        return "validation keys and cache"
    if path.endswith("service/mapping.py") and function == "map_to_snapshot":
        return "mapping"
    if "/json/" in path and function in ("loads", "decode", "raw_decode"):
        return "JSON parsing"
    if function == "model_validate" and getattr(frame, "class_name", None) == "HookRequest":
        return "request model"
    if path.endswith("service/gather.py") and function == "gather_patient_record":
        return "gathering the prefetch"
    if path.endswith("rules/assessment.py") and function == "assess":
        return "rules"
    if "service/render/" in path or path.endswith("service/cds/models.py") or function == "model_dump_json":
        return "rendering"
    if "/json/" in path and function in ("dumps", "encode", "iterencode"):
        return "rendering"
    return None


def profile_split(pipeline: Pipeline, cases: list[Case], *, cold: bool, html: Path | None = None) -> dict:
    """Where the time goes (pyinstrument, 0.1 ms sampling), as shares of the pipeline's time; empty when
    pyinstrument is not installed (``pip install -e '.[bench]'``)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return {}

    for case in cases:
        pipeline.run(case.body)
    profiler = Profiler(interval=0.0001)
    profiler.start()
    for _ in range(3):
        for case in cases:
            if cold and VALIDATION_CACHE is not None:
                VALIDATION_CACHE.clear()
            pipeline.run(case.body)
    profiler.stop()
    totals: dict[str, float] = defaultdict(float)

    def walk(frame, current: str) -> None:
        # within validation, JSON parsing or a cache key, everything belongs to it (pydantic, json, hashlib)
        category = current if current in STICKY else (_category(frame) or current)
        totals[category] += frame.time - sum(child.time for child in frame.children)
        for child in frame.children:
            walk(child, category)

    root = profiler.last_session.root_frame()
    walk(root, "other (framework, asyncio, the profiler)")
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(profiler.output_html())
    whole = sum(totals.values()) or 1.0
    calls = 3 * len(cases)
    return {
        name: {"ms_per_call": round(seconds * 1000 / calls, 3), "share": round(seconds / whole, 3)}
        for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1])
    }


def cprofile_cold(rounds: int = 2, top: int = 25) -> str:
    """cProfile of the cohort's cold calls (the validation cache emptied before each): the top functions by
    cumulative and by own time, as text. The standard library's profiler, for machines without pyinstrument;
    its own cost inflates many small calls, so read shares, not absolute times."""
    import cProfile
    import io
    import pstats

    today = date.today()
    cases = cohort_cases(today)
    pipeline = Pipeline(today)
    try:
        for case in cases:
            pipeline.run(case.body)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(rounds):
            for case in cases:
                if VALIDATION_CACHE is not None:
                    VALIDATION_CACHE.clear()
                pipeline.run(case.body)
        profiler.disable()
    finally:
        pipeline.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"{rounds * len(cases)} cold cohort calls\n")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def run(rounds: int = 5, html: Path | None = None, *, only: str | None = None, cold_calls: int = 2_000) -> dict:
    today = date.today()
    cases = cohort_cases(today)
    pipeline = Pipeline(today)
    gc.collect()
    gc.freeze()  # as the service does after start-up
    try:
        if only == "cold-run":
            return {"cold_run": cold_run(pipeline, cases, cold_calls)}
        load = OtherLoad([]).start()
        warm, warm_stages, by_case = _timed(pipeline, cases, rounds, cold=False)
        cold, cold_stages, cold_by_case = _timed(pipeline, cases, max(1, rounds // 2), cold=True)
        pipeline.strict = True  # the optional strict mode, measured beside the default
        strict_warm, _, _ = _timed(pipeline, cases, max(1, rounds // 2), cold=False)
        strict_cold, _, _ = _timed(pipeline, cases, max(1, rounds // 2), cold=True)
        pipeline.strict = False
        return {
            "cases": {
                "patients": len(cases),
                "resources": [min(c.resources for c in cases), max(c.resources for c in cases)],
                "observations": [min(c.observations for c in cases), max(c.observations for c in cases)],
                "body_kib": [round(min(c.kib for c in cases), 1), round(max(c.kib for c in cases), 1)],
            },
            "warm": warm,
            "cold": cold,
            "warm_stages": warm_stages,
            "cold_stages": cold_stages,
            "strict": {"warm": strict_warm, "cold": strict_cold},
            "warm_by_resources": _by_resources(cases, by_case),
            "cold_by_resources": _by_resources(cases, cold_by_case),
            "scaling": scaling(pipeline, today, rounds),
            "profile_warm": profile_split(pipeline, cases, cold=False, html=html),
            "profile_cold": profile_split(pipeline, cases, cold=True),
            "other_processes_cpu": load.share(),
            "cold_run": cold_run(pipeline, cases, cold_calls),
        }
    finally:
        pipeline.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds over the 34 patients")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--profile-html", type=Path, help="write pyinstrument's HTML profile (warm) here")
    parser.add_argument("--only", choices=["cold-run"], help="run only this section")
    parser.add_argument("--cprofile-cold", action="store_true",
                        help="only print a cProfile of the cohort's cold calls (no pyinstrument needed)")  # fmt: skip
    parser.add_argument("--cold-calls", type=int, default=2_000, help="calls in the cold run (default 2 000)")
    args = parser.parse_args(argv)
    if args.cprofile_cold:
        print(cprofile_cold())
        return 0
    results = run(args.rounds, args.profile_html, only=args.only, cold_calls=args.cold_calls)
    if args.json:
        write_json(args.json, results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
