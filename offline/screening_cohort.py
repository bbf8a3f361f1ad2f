"""A synthetic hospital-sized Bulk Data export for benchmarking ``hcc-cds screen`` (issue 22).

    python -m offline.screening_cohort --patients 100000 --seed 7 --out DIR [--gzip] [--as-of-file CSV]

writes into ``DIR`` (which must be empty or absent):

* one NDJSON file per resource type present (``Patient.ndjson``, ``Observation.ndjson``, ...; ``.ndjson.gz``
  with ``--gzip``), one resource a line, as a FHIR server's ``$export`` would;
* ``manifest.json``, shaped like a Bulk Data complete-status manifest (``output[].url`` relative to ``DIR``);
* ``as_of.csv`` (or ``--as-of-file``): ``patient,as_of``, each patient's assessment date moved with its record, so a
  screening of the export can be compared with the source record's answer (``hcc-cds demo --json``);
* ``sources.csv``: ``patient,source,variant,shift_days,observations,source_observations``: what each synthetic
  patient was cloned from and what was changed (for checks; not part of the export).

Each synthetic patient is a clone of one of the 37 embedded records (``service.demo.demo_bundles`` of a fixed day):

* ids ``s{n:06d}-<old id>`` and every ``reference`` and ``identifier.value`` rewritten the same way, so references
  resolve inside the export and identifiers stay unique;
* every date moved by a per-patient number of days (0 to 10 years back; birth dates too, so ages hold);
* a mix: about 70 % ``cohort`` (as the source), 20 % ``no-tace`` (HCC never treated by TACE: the TACE Procedures
  and the sorafenib orders dropped, so the recommendation is ``not-applicable``), 10 % ``no-labs`` (the laboratory
  Observations dropped: missing data);
* the Observation series resized on a log-normal factor (median 1; a factor within [0.8, 1.25] leaves the record
  as it is): thinned by dropping non-imaging Observations at random, or lengthened by repeating the first visit's
  non-imaging Observations back in time; about 0.5 % of patients get 3 000-5 000 Observations.

Streaming: one patient is built and written at a time (only the 37 source records are held), so memory stays flat
whatever ``--patients``. Fast: each source resource is serialised once, with slots for what a clone changes (id
prefix, dates), so a clone's line is joined from bytes (10 000 patients: 1 million resources, 750 MB, in about
15 s). Deterministic: every draw comes from a ``random.Random`` seeded by the string ``"{seed}:{n}"`` (stable
across Python versions), and the manifest's ``transactionTime`` is the fixed day.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from random import Random
from typing import IO, Any

import orjson

from rules.knowledge import Knowledge
from service.cohort.demo_cli import CohortError, snapshot_of, study_dates
from service.demo import demo_bundles
from service.knowledge import load_knowledge

DAY = date(2026, 11, 28)  # the day the embedded records' relative dates are resolved against (fixed: deterministic)
VARIANTS = (("cohort", 0.70), ("no-tace", 0.20), ("no-labs", 0.10))
MAX_SHIFT_DAYS = 3650
RESIZE_SIGMA = 0.6  # log-normal sigma of the Observation count factor (median 1)
KEEP_AS_IS = (0.8, 1.25)  # a factor in this band leaves the Observations as they are
HEAVY_SHARE = 0.005
HEAVY_OBSERVATIONS = (3000, 5000)
HISTORY_SPAN_DAYS = 3650  # repeated visits go back at most this far before the record's first visit
ADULT_YEARS = 18  # and never before the patient's 18th birthday
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


class GeneratorError(ValueError):
    """Bad arguments or an output directory that cannot be used (reported, never a traceback)."""


@dataclass(frozen=True)
class Template:
    """One embedded record, read once: its resources (Patient first) and what the variants change."""

    patient_id: str
    patient: dict[str, Any]
    others: tuple[dict[str, Any], ...]
    as_of: date  # the assessment date its answer is read at (cohort: the study imaging; demo: the day)
    tace: frozenset[str]  # ids of the TACE Procedures and sorafenib orders (dropped by ``no-tace``)
    labs: frozenset[str]  # ids of the laboratory Observations
    imaging: frozenset[str]  # ids of the Observations that are never thinned (tumour sizes)
    first_visit: tuple[dict[str, Any], ...]  # the earliest non-imaging Observations, repeated back in time
    first_visit_date: date
    observations: int
    lines: dict[str, tuple[Piece, ...]]  # every resource compiled (by id)
    history_lines: dict[str, tuple[Piece, ...]]  # the first visit's Observations compiled as repeats


@dataclass(frozen=True)
class Plan:
    """What one synthetic patient is: its source, variant, date shift and Observation count."""

    index: int
    template: int
    variant: str
    shift_days: int
    observations: int  # the target count (after the variant's drops)

    @property
    def prefix(self) -> str:
        return f"s{self.index:06d}-"


def _category(resource: dict[str, Any]) -> str | None:
    for concept in resource.get("category") or ():
        for coding in concept.get("coding") or ():
            return coding.get("code")
    return None


def _in_concept(resource: dict[str, Any], concept: str, k: Knowledge) -> bool:
    """Whether the resource is coded in one of the service's value sets (read as the mapping reads it)."""
    codeable = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    for coding in codeable.get("coding") or ():
        entry = k.lookup(coding.get("system"), coding.get("code"))
        if entry is not None and entry.concept == concept:
            return True
    return False


def _as_of(bundle: dict[str, Any], patient_id: str, k: Knowledge, day: date) -> date:
    """The cohort's study assessment date (as ``hcc-cds demo`` assesses it); the day for the demo patients."""
    if not patient_id.startswith("cohort-"):
        return day
    try:
        return study_dates(snapshot_of(bundle, k), day)[1]
    except CohortError as exc:  # pragma: no cover - the embedded cohort always has its study dates
        raise GeneratorError(f"source record {patient_id}: {exc}") from exc


def _template(bundle: dict[str, Any], k: Knowledge, day: date) -> Template:
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    others = tuple(r for r in resources if r is not patient)
    observations = [r for r in others if r["resourceType"] == "Observation"]
    imaging = frozenset(r["id"] for r in observations if _category(r) == "imaging" or "focus" in r)
    visits = [r for r in observations if r["id"] not in imaging and "effectiveDateTime" in r]
    first = min((r["effectiveDateTime"][:10] for r in visits), default=day.isoformat())
    first_visit = tuple(r for r in visits if r["effectiveDateTime"][:10] == first)
    repeats = ({**r, "id": r["id"] + SUFFIX_SLOT, "effectiveDateTime": DATE_SLOT} for r in first_visit)
    return Template(
        patient_id=patient["id"],
        patient=patient,
        others=others,
        as_of=_as_of(bundle, patient["id"], k, day),
        tace=frozenset(r["id"] for r in others if _in_concept(r, "tace", k) or _in_concept(r, "sorafenib", k)),
        labs=frozenset(r["id"] for r in observations if _category(r) == "laboratory"),
        imaging=imaging,
        first_visit=first_visit,
        first_visit_date=date.fromisoformat(first),
        observations=len(observations),
        lines=_compiled(iter(resources)),
        history_lines={key[: -len(SUFFIX_SLOT)]: value for key, value in _compiled(repeats).items()},
    )


def load_templates(day: date = DAY, k: Knowledge | None = None) -> list[Template]:
    """The 37 embedded records (3 demo patients, 34 cohort patients), each once, in a stable order."""
    k = k or load_knowledge(None)
    seen: dict[str, Template] = {}
    for bundle in demo_bundles(day):
        template = _template(bundle, k, day)
        seen.setdefault(template.patient_id, template)
    return list(seen.values())


def _adult_from(patient: dict[str, Any]) -> date | None:
    """The patient's 18th birthday (a 29 February birthday counts from 28 February)."""
    birth = patient.get("birthDate")
    if not isinstance(birth, str) or not _DATE.match(birth):
        return None
    born = date.fromisoformat(birth[:10])
    return date(born.year + ADULT_YEARS, born.month, min(born.day, 28) if born.month == 2 else born.day)


def _history_span(template: Template) -> int:
    """How many days before the first visit repeated visits may go (at most 10 years, never before 18)."""
    adult = _adult_from(template.patient)
    span = HISTORY_SPAN_DAYS
    if adult is not None:
        span = min(span, (template.first_visit_date - adult).days)
    return max(span, 0)


def _repeatable(template: Template, variant: str) -> int:
    """How many Observations one repeated visit has (the first visit, less what the variant drops)."""
    dropped = template.labs if variant == "no-labs" else frozenset()
    return sum(1 for r in template.first_visit if r["id"] not in dropped)


def _target(rng: Random, template: Template, variant: str) -> int:
    """The patient's Observation count: the source's, or resized on a log-normal factor, or a heavy record."""
    base = template.observations - (len(template.labs) if variant == "no-labs" else 0)
    heavy = rng.random() < HEAVY_SHARE
    factor = rng.lognormvariate(0.0, RESIZE_SIGMA)
    heavy_size = rng.randint(*HEAVY_OBSERVATIONS)
    target = heavy_size if heavy else base if KEEP_AS_IS[0] <= factor <= KEEP_AS_IS[1] else round(base * factor)
    kept_imaging = len(template.imaging)
    per_visit = _repeatable(template, variant)
    most = base + per_visit * _history_span(template)  # one repeated visit a day at most
    return min(max(target, kept_imaging), most)


def plan_patient(seed: int, index: int, templates: list[Template]) -> Plan:
    """The draws for patient ``index``: depend only on (seed, index), so any patient can be rebuilt alone."""
    rng = Random(f"{seed}:{index}")
    template = rng.randrange(len(templates))
    draw = rng.random()
    variant = VARIANTS[-1][0]
    for name, share in VARIANTS:
        if draw < share:
            variant = name
            break
        draw -= share
    shift = -rng.randint(0, MAX_SHIFT_DAYS)
    return Plan(index, template, variant, shift, _target(rng, templates[template], variant))


# A compiled resource: its JSON with slots where a patient's own values go (``P`` the id prefix, an ``int`` a date's
# ordinal, ``H``/``E`` a repeated visit's id suffix and date), so a clone is joined from bytes, not rebuilt as dicts.
Piece = bytes | str | int
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters: in no record, written raw by orjson
_SLOT = re.compile(("(?:" + _OPEN + ")([PHE]|D[0-9]+)(?:" + _CLOSE + ")").encode())
PREFIX_SLOT, SUFFIX_SLOT, DATE_SLOT = _OPEN + "P" + _CLOSE, _OPEN + "H" + _CLOSE, _OPEN + "E" + _CLOSE


class _Compiler:
    """Marks every place of a resource a clone changes: its id, each reference and identifier, each date."""

    def resource(self, resource: dict[str, Any]) -> tuple[Piece, ...]:
        out = self.value(resource)
        out["id"] = PREFIX_SLOT + resource["id"]
        parts = _SLOT.split(orjson.dumps(out))
        pieces: list[Piece] = []
        for number, part in enumerate(parts):
            if number % 2 == 0:
                pieces.append(part)
            else:
                pieces.append(int(part[1:]) if part.startswith(b"D") else part.decode())
        return tuple(pieces)

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self._field(key, item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, str) and _DATE.match(value):
            try:
                return f"{_OPEN}D{date.fromisoformat(value[:10]).toordinal()}{_CLOSE}{value[10:]}"
            except ValueError:  # looks like a date but is not one: left as it is
                return value
        return value

    def _field(self, key: str, item: Any) -> Any:
        if key == "reference" and isinstance(item, str) and "/" in item and not item.startswith(("#", "urn:")):
            kind, _, ident = item.rpartition("/")
            return f"{kind}/{PREFIX_SLOT}{ident}"
        if key == "identifier" and isinstance(item, list):
            return [self._identifier(i) for i in item]
        return self.value(item)

    def _identifier(self, identifier: Any) -> Any:
        out = self.value(identifier)
        if isinstance(out, dict) and isinstance(out.get("value"), str):
            out["value"] = PREFIX_SLOT + out["value"]
        return out


def _compiled(template_resources: Iterator[dict[str, Any]]) -> dict[str, tuple[Piece, ...]]:
    compiler = _Compiler()
    return {r["id"]: compiler.resource(r) for r in template_resources}


class _Render:
    """One patient's values for the slots: its prefix and its dates, moved by its shift (cached per day)."""

    def __init__(self, prefix: str, shift_days: int) -> None:
        self.prefix = prefix.encode()
        self.shift = shift_days
        self._dates: dict[int, bytes] = {}

    def __call__(self, pieces: tuple[Piece, ...], suffix: bytes = b"", visit: bytes = b"") -> bytes:
        out: list[bytes] = []
        for piece in pieces:
            if isinstance(piece, bytes):
                out.append(piece)
            elif isinstance(piece, int):
                moved = self._dates.get(piece)
                if moved is None:
                    moved = self._dates[piece] = date.fromordinal(piece + self.shift).isoformat().encode()
                out.append(moved)
            else:
                out.append(self.prefix if piece == "P" else suffix if piece == "H" else visit)
        return b"".join(out)


def _kept(plan: Plan, template: Template, rng: Random) -> Iterator[dict[str, Any]]:
    """The source's resources the variant keeps, the non-imaging Observations thinned to the target."""
    dropped = template.tace if plan.variant == "no-tace" else template.labs if plan.variant == "no-labs" else set()
    kept = [r for r in template.others if r["id"] not in dropped]
    observations = [r for r in kept if r["resourceType"] == "Observation"]
    thinnable = [r["id"] for r in observations if r["id"] not in template.imaging]
    excess = len(observations) - plan.observations
    thinned = set(rng.sample(thinnable, min(excess, len(thinnable)))) if excess > 0 else set()
    return (r for r in kept if r["id"] not in thinned)


def _history(plan: Plan, template: Template, extra: int) -> Iterator[tuple[dict[str, Any], int, date]]:
    """``extra`` Observations: the first visit's non-imaging ones repeated at regular dates before it, as
    (source Observation, visit number, date)."""
    visit = [r for r in template.first_visit if not (plan.variant == "no-labs" and r["id"] in template.labs)]
    if extra <= 0 or not visit:
        return
    visits = -(-extra // len(visit))
    interval = max(_history_span(template) // visits, 1)
    for number in range(1, visits + 1):
        when = template.first_visit_date - timedelta(days=interval * number)
        for r in visit[: min(len(visit), extra - (number - 1) * len(visit))]:
            yield r, number, when


def clone(seed: int, plan: Plan, template: Template) -> Iterator[tuple[str, bytes]]:
    """The synthetic patient's resources as (resource type, NDJSON line without its newline), Patient first."""
    rng = Random(f"{seed}:{plan.index}:clone")
    render = _Render(plan.prefix, plan.shift_days)
    yield "Patient", render(template.lines[template.patient_id])
    written = 0
    for resource in _kept(plan, template, rng):
        written += resource["resourceType"] == "Observation"
        yield resource["resourceType"], render(template.lines[resource["id"]])
    shift = timedelta(days=plan.shift_days)
    for resource, number, when in _history(plan, template, plan.observations - written):
        moved = (when + shift).isoformat().encode()
        yield "Observation", render(template.history_lines[resource["id"]], f"-h{number}".encode(), moved)


class ExportWriter:
    """One NDJSON file per resource type, opened when its first resource comes; counts what it wrote."""

    def __init__(self, out: Path, compress: bool) -> None:
        self.out = out
        self.suffix = ".ndjson.gz" if compress else ".ndjson"
        self.compress = compress
        self.counts: dict[str, int] = {}
        self._files: dict[str, IO[bytes] | gzip.GzipFile] = {}

    def write(self, kind: str, line: bytes) -> None:
        if kind not in self._files:
            path = self.out / f"{kind}{self.suffix}"
            self._files[kind] = (gzip.GzipFile(path, "wb", compresslevel=6) if self.compress
                                 else open(path, "wb", buffering=1 << 20))
            self.counts[kind] = 0
        self._files[kind].write(line + b"\n")
        self.counts[kind] += 1

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()

    def manifest(self, request: str, transaction_time: str) -> dict[str, Any]:
        """A Bulk Data complete-status body (``url`` relative to the output directory), types sorted."""
        return {
            "transactionTime": transaction_time,
            "request": request,
            "requiresAccessToken": False,
            "output": [{"type": kind, "url": f"{kind}{self.suffix}", "count": self.counts[kind]}
                       for kind in sorted(self.counts)],
            "error": [],
        }


def _prepare(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GeneratorError(f"{out} exists and is not an empty directory: give a new or empty --out")
    out.mkdir(parents=True, exist_ok=True)


def generate(patients: int, seed: int, out: Path, *, compress: bool = False, as_of_file: Path | None = None,
             templates: list[Template] | None = None, day: date = DAY) -> dict[str, Any]:
    """Write the export into ``out`` patient by patient; return its manifest (also written, last)."""
    if patients < 1:
        raise GeneratorError(f"--patients must be at least 1, not {patients}")
    _prepare(out)
    templates = templates or load_templates(day)
    writer = ExportWriter(out, compress)
    as_of_path = as_of_file or out / "as_of.csv"
    with open(as_of_path, "w", newline="", encoding="utf-8") as as_of_handle, \
            open(out / "sources.csv", "w", newline="", encoding="utf-8") as sources_handle:
        as_of_rows, source_rows = csv.writer(as_of_handle), csv.writer(sources_handle)
        as_of_rows.writerow(("patient", "as_of"))
        source_rows.writerow(("patient", "source", "variant", "shift_days", "observations", "source_observations"))
        try:
            for index in range(patients):
                plan = plan_patient(seed, index, templates)
                template = templates[plan.template]
                observations = 0
                for kind, line in clone(seed, plan, template):
                    writer.write(kind, line)
                    observations += kind == "Observation"
                patient = plan.prefix + template.patient_id
                as_of_rows.writerow((patient, (template.as_of + timedelta(days=plan.shift_days)).isoformat()))
                source_rows.writerow((patient, template.patient_id, plan.variant, plan.shift_days, observations,
                                      template.observations))
        finally:
            writer.close()
    request = f"urn:hcc-cds:offline.screening_cohort?patients={patients}&seed={seed}"
    stamp = datetime.combine(day, dtime(), tzinfo=UTC).isoformat().replace("+00:00", "Z")
    manifest = writer.manifest(request, stamp)
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    return manifest


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m offline.screening_cohort",
                                     description="Write a synthetic Bulk Data export (NDJSON) cloned from the "
                                                 "embedded records, for benchmarking hcc-cds screen.")
    parser.add_argument("--patients", type=int, required=True, help="how many synthetic patients")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same bytes (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="the output directory (new or empty)")
    parser.add_argument("--gzip", action="store_true", help="write *.ndjson.gz")
    parser.add_argument("--as-of-file", type=Path, default=None,
                        help="where to write the patient,as_of CSV (default: OUT/as_of.csv)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()
    try:
        manifest = generate(args.patients, args.seed, args.out, compress=args.gzip, as_of_file=args.as_of_file)
    except (GeneratorError, OSError) as exc:
        print(f"screening_cohort: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    size = sum(args.out.joinpath(o["url"]).stat().st_size for o in manifest["output"])
    resources = sum(o["count"] for o in manifest["output"])
    print(f"screening_cohort: {args.patients} patients, {resources} resources, {size / 1e6:.1f} MB in {seconds:.1f} s "
          f"({args.patients / seconds:.0f} patients/s) -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
