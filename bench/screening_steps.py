"""CPU per screened patient of a screening worker, step by step, min-of-N (for comparing trees on a shared machine).

    PYTHONPATH=. python -m bench.screening_steps [--repeats 15] [--export DIR --patients 30]

Without ``--export``: the 37 demo and cohort patients; with it, the first ``--patients`` patients (by id) of a
Bulk Data export folder (e.g. ``python -m offline.screening_cohort --patients 200 --seed 1 --out DIR``).
Each step of :func:`service.screening.runner.assess_patient_lines` runs on each patient ``--repeats`` times and
the least ``time.process_time`` is kept (other processes only add to a run); a step's figure is the mean of
these minima over the patients, in ms. ``group`` is the partition's grouping (since issue 22 with the parsing; before it, ``prefetch`` parsed) divided by
its patients;
``whole`` is ``run_partition`` (as a worker runs it, the collector on), min over the repeats, per patient.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench.common import min_cpu_ms
from rules import assess
from service.gather import record_from_prefetch
from service.mapping import map_to_snapshot
from service.render.assessment_json import render_assessment
from service.render.course import page_course
from service.screening.blobs import pack
from service.screening.partition import partition_files, route
from service.screening.runner import (
    AsOfPolicy,
    PartitionSpec,
    WorkerSettings,
    full_prefetch,
    group_by_patient,
    row_bytes,
    run_partition,
    toolkit,
)
from service.screening.summary import worklist_fields
from tests.screening_export import DAY, demo_export_bundles, write_export

STEPS = ("prefetch", "gather", "map", "assess", "render", "page", "fields", "pack", "row json")


def patient_steps(pid: str, lines: list[Any], repeats: int) -> dict[str, float]:
    kit = toolkit(WorkerSettings())
    out: dict[str, float] = {}

    def parse() -> dict[str, object]:  # before issue 22's parse-once, lines were bytes parsed here
        return full_prefetch(pid, [orjson.loads(x) if isinstance(x, bytes) else x for x in lines], kit)

    out["prefetch"] = min_cpu_ms(parse, repeats)
    prefetch = parse()
    out["gather"] = min_cpu_ms(lambda: record_from_prefetch(pid, kit.templates, prefetch), repeats)
    record = record_from_prefetch(pid, kit.templates, prefetch)

    def mapped() -> object:
        return map_to_snapshot(record.patient, record.resources, kit.knowledge, prior_issues=record.issues,
                               strict=False)

    out["map"] = min_cpu_ms(mapped, repeats)
    snapshot = mapped()
    out["assess"] = min_cpu_ms(lambda: assess(snapshot, DAY, kit.knowledge, build="unknown"), repeats)  # type: ignore[arg-type]
    assessment = kit.assessor(record, DAY)
    out["render"] = min_cpu_ms(lambda: render_assessment(assessment, kit.knowledge, kit.tables), repeats)
    rendered = render_assessment(assessment, kit.knowledge, kit.tables)
    out["page"] = min_cpu_ms(lambda: page_course(assessment, kit.knowledge), repeats)
    page = page_course(assessment, kit.knowledge)
    out["fields"] = min_cpu_ms(lambda: worklist_fields(rendered), repeats)
    out["pack"] = min_cpu_ms(lambda: (pack(rendered), pack(page)), repeats)
    row = {"patient_id": pid, "as_of": DAY.isoformat(), "partition": 0, "rules_version": "x",
           "fields": worklist_fields(rendered), "assessment_z": pack(rendered), "page_z": pack(page), "error": None}
    out["row json"] = min_cpu_ms(lambda: row_bytes(row), repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--export", type=Path)
    parser.add_argument("--patients", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    if args.export is None:
        files = write_export(demo_export_bundles(DAY), work / "export")
    else:
        files = [(p.stem, p) for p in sorted(args.export.glob("*.ndjson"))]
    plan = partition_files(files, work, patients_per_partition=100_000)
    data = b"".join(Path(path).read_bytes() for path in plan.partitions[0])
    groups = group_by_patient(data)
    chosen = sorted(groups)[: args.patients] if args.export is not None else sorted(groups)
    part = work / "chosen.ndjson"
    keep = set(chosen)
    part.write_bytes(b"".join(line + b"\n" for line in data.splitlines() if route(line).patient_id in keep))
    spec = PartitionSpec(0, (part,), work / "result.jsonl", AsOfPolicy(DAY), WorkerSettings())
    run_partition(spec)
    whole = min(run_partition(spec).cpu_seconds for _ in range(max(3, args.repeats // 3)))
    group = min_cpu_ms(lambda: group_by_patient(part.read_bytes()), args.repeats)
    totals = dict.fromkeys(STEPS, 0.0)
    lines = groups
    for pid in chosen:
        for step, ms in patient_steps(pid, lines[pid], args.repeats).items():
            totals[step] += ms
    n = len(chosen)
    res = sum(len(groups[p]) for p in chosen) / n  # lines per patient
    print(f"{n} patients, {res:.1f} lines each; ms CPU per patient (mean of each patient's min of {args.repeats}):")
    row = {"group": group / n, **{s: v / n for s, v in totals.items()}}
    row["sum of steps"] = sum(row.values())
    row["whole (run_partition, min)"] = 1000 * whole / n
    print("  " + "\n  ".join(f"{k:<28}{v:8.3f}" for k, v in row.items()))


if __name__ == "__main__":
    main()
