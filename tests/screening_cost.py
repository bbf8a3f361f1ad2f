"""CPU per patient of a screening worker, step by step, on the 37 demo and cohort records.

    PYTHONPATH=. python -m tests.screening_cost [--rounds 5]

Prints ``time.process_time`` per patient of :func:`run_partition` as a whole, and of its steps: grouping the
partition's lines by patient, parsing them into a full prefetch, gather (``record_from_prefetch``),
map + assess (``Assessor``), rendering, the page's course, the worklist fields and the row's JSON. What is not
gather, map, assess or render is the screening's own overhead per patient.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import orjson

from service.gather import record_from_prefetch
from service.render.assessment_json import render_assessment
from service.render.course import page_course
from service.screening.partition import partition_files
from service.screening.runner import (
    AsOfPolicy,
    PartitionSpec,
    WorkerSettings,
    full_prefetch,
    group_by_patient,
    run_partition,
    toolkit,
)
from service.screening.summary import worklist_fields
from tests.screening_export import DAY, demo_export_bundles, write_export

STEPS = ("group", "parse", "gather", "map+assess", "render", "page", "fields", "row json")


def steps_per_patient(partition: Path, rounds: int) -> dict[str, float]:
    kit = toolkit(WorkerSettings())
    spent = dict.fromkeys(STEPS, 0.0)
    clock = time.process_time
    patients = 0
    for _ in range(rounds):
        started = clock()
        groups = group_by_patient(partition.read_bytes())
        spent["group"] += clock() - started
        for pid, lines in groups.items():
            marks = [clock()]
            prefetch = full_prefetch(pid, lines, kit)  # type: ignore[arg-type]
            marks.append(clock())
            record = record_from_prefetch(pid, kit.templates, prefetch)
            marks.append(clock())
            assessment = kit.assessor(record, DAY)
            marks.append(clock())
            rendered = render_assessment(assessment, kit.knowledge, kit.tables)
            marks.append(clock())
            page = page_course(assessment, kit.knowledge)
            marks.append(clock())
            fields = worklist_fields(rendered)
            marks.append(clock())
            orjson.dumps({"fields": fields, "assessment": rendered, "page": page})
            marks.append(clock())
            for step, (before, after) in zip(STEPS[1:], itertools.pairwise(marks), strict=True):
                spent[step] += after - before
            patients += 1
    return {step: 1000 * seconds / patients for step, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    work = Path(tempfile.mkdtemp())
    plan = partition_files(write_export(demo_export_bundles(DAY), work / "export"), work, patients_per_partition=100)
    spec = PartitionSpec(0, Path(plan.partitions[0]), work / "result.jsonl", AsOfPolicy(DAY), WorkerSettings())
    run_partition(spec)  # loads the knowledge, warms the caches
    whole = [run_partition(spec) for _ in range(rounds)]
    per_patient = sorted(1000 * r.cpu_seconds / r.patients for r in whole)
    print(f"run_partition: {per_patient[len(per_patient) // 2]:.2f} ms CPU per patient (median of {rounds}; "
          f"min {per_patient[0]:.2f})")
    steps = steps_per_patient(Path(plan.partitions[0]), rounds)
    overhead = sum(steps[s] for s in ("group", "parse", "fields", "row json"))
    print("steps, ms CPU per patient: " + ", ".join(f"{s} {v:.3f}" for s, v in steps.items()))
    print(f"overhead outside gather/map/assess/render: {overhead:.2f} ms per patient")


if __name__ == "__main__":
    main()
