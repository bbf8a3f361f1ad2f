"""What each extra Observation costs, stage by stage, on the hook's served path (issue 20: "cost per extra
Observation <= 15 µs cold").

The synthetic records of ``bench.inprocess.synthetic_case`` (cohort patient 1 with N Child-Pugh labs), each call
cold (``bench.common.fresh_versions``: every resource in a version never seen), through the route's stages: the
body's JSON, the request model, gathering the prefetch, the mapping (typed decoder included), the rules, the
cards, the stored assessment's JSON, the page's data (``page_course``), both dumped with orjson, the database
write of ``service.api.hooks._store_and_link`` (a temporary SQLite file; the two renderings handed to it ready
made, so this stage is the write alone) and the response's JSON. A stage's cost per extra Observation is
``(cost(10 000) - cost(1 000)) / 9 000``.

- default: the least CPU time (``time.process_time``) of ``--repeats`` calls, per stage (the shared machine moves
  these by 10-30 %);
- ``--callgrind``: instruction counts, deterministic. Run under callgrind with the instrumentation off; each
  stage switches it on and dumps its own counts through callgrind's client requests (a 10-line C helper built
  with ``cc`` against ``valgrind/callgrind.h``)::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg/out.%p \\
        python -m bench.per_observation --callgrind
    python -m bench.per_observation --read /tmp/cg/out      # the table, from the dumps

- ``--dump DIR``: the assessment JSON (its build stamp fixed), the page JSON, the cards (without their random
  uuid) and the snapshot of the 10 / 1 000 / 10 000 records, to compare two trees byte for byte (``cmp``).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import glob
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson

DAY = date(2026, 11, 28)
SIZES = (1_000, 10_000)
STAGES = ("json", "request_model", "gather", "map", "rules", "cards", "render_assessment", "page_course",
          "json_dumps", "db_write", "response")  # fmt: skip
_HELPER = r"""
#include <valgrind/callgrind.h>
void cg_on(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void cg_off(const char *label) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(label); }
"""


def _callgrind_helper() -> Any:
    directory = Path(tempfile.mkdtemp())
    (directory / "cg.c").write_text(_HELPER)
    subprocess.run(
        ["cc", "-O1", "-shared", "-fPIC", "-o", str(directory / "cg.so"), str(directory / "cg.c")], check=True
    )
    helper = ctypes.CDLL(str(directory / "cg.so"))
    helper.cg_off.argtypes = [ctypes.c_char_p]
    return helper


class ServedPath:
    """The route's stages, one call at a time (a temporary SQLite database for the write)."""

    def __init__(self, build: str | None = None) -> None:
        os.environ["HCC_DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/per-observation.sqlite3"
        from service.main import create_app
        from service.settings import Settings

        self.state = create_app(Settings(), demo_day=DAY).state.hcc
        self.service = self.state.services["hcc-tace-resistance"]
        self.build = build or self.state.build  # the assessment's build stamp (fixed to compare two trees)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.state.db.migrate())
        self.loop.run_until_complete(self.state.db.start())

    def run(self, body: bytes, stage: Callable[[str, Callable[[], Any]], Any]) -> tuple[Any, ...]:
        import service.api.hooks as hooks
        from rules.assessment import assess
        from service.cds.models import CardsResponse, HookRequest
        from service.gather import gather_patient_record
        from service.json_parse import parse_json
        from service.mapping import map_to_snapshot
        from service.render.assessment_json import render_assessment
        from service.render.cards import render_patient_view_cards
        from service.render.course import page_course

        state = self.state
        data = stage("json", lambda: parse_json(body))
        request = stage("request_model", lambda: HookRequest.model_validate(data))
        record = stage("gather", lambda: self.loop.run_until_complete(gather_patient_record(
            request.context.patient_id, self.service.prefetch, request.prefetch, None, deadline_seconds=10)))  # fmt: skip
        snapshot = stage("map", lambda: map_to_snapshot(record.patient, record.resources, state.knowledge,
                                                        prior_issues=record.issues))  # fmt: skip
        assessment = stage("rules", lambda: assess(snapshot, DAY, state.knowledge, build=self.build))
        cards = stage("cards", lambda: render_patient_view_cards(assessment, state.settings.public_base_url))
        rendered = stage("render_assessment", lambda: render_assessment(assessment, state.knowledge, state.benchmarks))
        page = stage("page_course", lambda: page_course(assessment, state.knowledge))
        stage("json_dumps", lambda: (orjson.dumps(rendered), orjson.dumps(page)))
        saved = hooks.render_assessment, hooks.page_course
        hooks.render_assessment, hooks.page_course = (lambda *_: rendered), (lambda *_: page)  # type: ignore[assignment]
        try:
            linked = stage("db_write", lambda: self.loop.run_until_complete(hooks._store_and_link(
                assessment, cards, "hcc-tace-resistance", request.hook_instance, state)))  # fmt: skip
        finally:
            hooks.render_assessment, hooks.page_course = saved
        stage("response", lambda: CardsResponse(cards=linked).model_dump_json(by_alias=True, exclude_none=True))
        return snapshot, cards, rendered, page


def _plain(_name: str, work: Callable[[], Any]) -> Any:
    return work()


def measure(repeats: int, helper: Any = None) -> dict[str, dict[int, float]]:
    """Per stage and record size: the least CPU ms of ``repeats`` cold calls (with ``helper``: one call, counted
    by callgrind, and the figures are 0 here)."""
    from bench.common import fresh_versions
    from bench.inprocess import synthetic_case

    path = ServedPath()
    gc.collect()
    gc.freeze()  # as the service does after start-up
    best: dict[str, dict[int, float]] = {name: {} for name in STAGES}
    version = 0
    for size in SIZES:
        base = synthetic_case(size, DAY).body
        version += 1
        path.run(fresh_versions(base, version), _plain)  # warm-up
        for _ in range(1 if helper else repeats):
            version += 1
            body = fresh_versions(base, version)
            gc.collect()

            def stage(name: str, work: Callable[[], Any], size: int = size) -> Any:
                if helper is not None:
                    helper.cg_on()
                    out = work()
                    helper.cg_off(f"{size}:{name}".encode())
                    return out
                start = time.process_time()
                out = work()
                elapsed = (time.process_time() - start) * 1000
                best[name][size] = min(best[name].get(size, elapsed), elapsed)
                return out

            path.run(body, stage)
    return best


def read_dumps(prefix: str) -> dict[str, dict[int, float]]:
    """Instruction counts per stage and size from callgrind's dumps (``<prefix>*``)."""
    counts: dict[str, dict[int, float]] = {name: {} for name in STAGES}
    for name in glob.glob(prefix + "*"):
        label = total = None
        with open(name, errors="replace") as dump:
            for line in dump:
                if line.startswith("desc: Trigger: Client Request: "):
                    label = line.split("Client Request: ", 1)[1].strip()
                elif line.startswith("totals:"):
                    total = int(line.split()[1])
        if label and total is not None and ":" in label:
            size, stage = label.split(":", 1)
            counts.setdefault(stage, {})[int(size)] = total
    return counts


def table(figures: dict[str, dict[int, float]], unit: str, scale: float, extra_unit: str) -> str:
    """Per stage: each size's figure (divided by ``scale``) and the cost per extra Observation (undivided)."""
    small, large = SIZES
    lines = [f"| stage | {small} Obs ({unit}) | {large} Obs ({unit}) | per extra Observation ({extra_unit}) |",
             "| --- | ---: | ---: | ---: |"]  # fmt: skip
    totals = [0.0, 0.0]
    for name in STAGES:
        by_size = figures.get(name, {})
        if small in by_size and large in by_size:
            a, b = by_size[small], by_size[large]
            totals[0] += a
            totals[1] += b
            lines.append(f"| {name} | {a / scale:.2f} | {b / scale:.2f} | {(b - a) / (large - small):,.0f} |")
    a, b = totals
    lines.append(f"| **total** | {a / scale:.2f} | {b / scale:.2f} | {(b - a) / (large - small):,.0f} |")
    return "\n".join(lines)


def dump(directory: Path) -> None:
    from bench.inprocess import synthetic_case

    directory.mkdir(parents=True, exist_ok=True)
    path = ServedPath(build="per-observation")
    for size in (10, *SIZES):
        snapshot, cards, rendered, page = path.run(synthetic_case(size, DAY).body, _plain)
        (directory / f"{size}-assessment.json").write_bytes(orjson.dumps(rendered))
        (directory / f"{size}-page.json").write_bytes(orjson.dumps(page))
        (directory / f"{size}-cards.json").write_bytes(
            orjson.dumps([{k: v for k, v in c.model_dump(mode="json").items() if k != "uuid"} for c in cards]))  # fmt: skip
        (directory / f"{size}-snapshot.txt").write_text(repr(snapshot))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="cold calls per size (the least CPU time is kept)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions (run under callgrind)")
    parser.add_argument("--read", metavar="PREFIX", help="print the table of callgrind dumps <PREFIX>*")
    parser.add_argument("--dump", type=Path, metavar="DIR", help="write the answers of the synthetic records")
    args = parser.parse_args(argv)
    if args.read:
        print(table(read_dumps(args.read), "M instr.", 1e6, "instructions"))
    elif args.dump:
        dump(args.dump)
    elif args.callgrind:
        measure(1, _callgrind_helper())
    else:
        print(
            table(
                {n: {k: v * 1e6 for k, v in by.items()} for n, by in measure(args.repeats).items()},
                "CPU ms",
                1e6,
                "ns",
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
