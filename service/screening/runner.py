"""One partition -> one result file: each patient through the hook call's own gather -> map -> assess -> render.

A partition is the list of its chunk files (see :mod:`service.screening.partition`); they are read in their
order, so each patient's lines come in the export's order whichever way the export was cut into chunks.

:func:`run_partition` is a pure function of its :class:`PartitionSpec` (picklable: it runs in a worker process,
local or on a Dask cluster). A screened patient is treated exactly as a ``patient-view`` hook call with a full
prefetch: the prefetch an EHR would send (one searchset Bundle per template key) goes through
:func:`service.gather.gather_patient_record` with no FHIR source (so no I/O: identity checks,
``restrict_to_patient`` and its data issues as for a hook), then :class:`service.pipeline.Assessor`, then the REST
rendering and the page's course. The worklist columns are :func:`service.screening.summary.worklist_fields` of
that rendering, so the worklist says what the patient's page says.

A patient whose resources fail (a mapping error, a refused prefetch, anything) gets an error row: a partition
never fails for one patient. The result file is written through a temporary file and ``os.replace``: it exists
only complete, and running a partition again rewrites it with the same rows.
"""

from __future__ import annotations

import functools
import gc
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from rules import RULES_VERSION
from rules.knowledge import Knowledge
from service.benchmarks.tables import BenchmarkTables, load_benchmark_tables
from service.build_info import build_id
from service.cds.services import patient_record_templates
from service.gather import PATIENT_KEY, SUBJECT_FIELDS, record_from_prefetch
from service.knowledge import load_knowledge
from service.pipeline import Assessor
from service.render.assessment_json import render_assessment
from service.render.course import page_course
from service.screening.blobs import pack
from service.screening.partition import (
    RoutingError,
    partition_of,
    patient_of_reference,
    release_routing_state,
    route,
)
from service.screening.summary import worklist_fields
from service.settings import Settings

ERROR_MESSAGE_CHARS = 500
ParsedLine = dict[str, Any] | orjson.JSONDecodeError  # a line as orjson read it, or why it could not


@dataclass(frozen=True)
class AsOfPolicy:
    """The date each patient is assessed at: their own date if given, else ``default``, else today.

    "Today" is read when a partition starts (in the settings' time zone); a driver that wants one date for the
    whole run, even across midnight, fixes ``default`` when the run starts.
    """

    default: date | None = None
    per_patient: Mapping[str, date] = field(default_factory=dict)

    def for_patient(self, patient_id: str, today: date) -> date:
        return self.per_patient.get(patient_id) or self.default or today

    def for_partition(self, index: int, count: int) -> AsOfPolicy:
        """Only the dates of one partition's patients: what a spec carries to its worker."""
        mine = {pid: d for pid, d in self.per_patient.items() if partition_of(pid, count) == index}
        return AsOfPolicy(self.default, mine)


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs to assess as the app does (the app's settings, read once by the driver)."""

    clinical_overrides: Path | None = None
    strict: bool = False
    build: str = "unknown"
    timezone: str = "UTC"  # of "today", when the as-of policy gives no date

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerSettings:
        return cls(
            clinical_overrides=settings.clinical_overrides,
            strict=settings.fhir_strict_validation,
            build=build_id(),
            timezone=settings.timezone,
        )


@dataclass(frozen=True)
class PartitionSpec:
    index: int
    partitions: tuple[Path, ...]  # the partition's chunk files, in chunk order (paths every worker can read)
    result: Path  # where the rows go (JSON lines)
    as_of: AsOfPolicy
    worker: WorkerSettings


@dataclass(frozen=True)
class PartitionResult:
    index: int
    result: Path
    patients: int
    errors: int
    seconds: float  # wall clock
    cpu_seconds: float  # of the worker process (time.process_time)


@dataclass(frozen=True)
class Toolkit:
    """What every patient of a worker process shares: built once per process, not per partition."""

    assessor: Assessor
    knowledge: Knowledge
    templates: dict[str, str]
    key_of_type: dict[str, str]  # resource type -> the template key whose search returns it
    tables: BenchmarkTables


@functools.lru_cache(maxsize=4)
def toolkit(settings: WorkerSettings) -> Toolkit:
    """Knowledge, templates and benchmark tables as create_app builds them (cached per process)."""
    knowledge = load_knowledge(settings.clinical_overrides)
    templates = patient_record_templates(knowledge)
    key_of_type = {template.split("?", 1)[0].split("/", 1)[0]: key for key, template in templates.items()}
    kit = Toolkit(
        assessor=Assessor(knowledge, settings.strict, settings.build),
        knowledge=knowledge,
        templates=templates,
        key_of_type=key_of_type,
        tables=load_benchmark_tables(),
    )
    # As the app does after start-up: what lives as long as the process leaves the collector's scans (the
    # oldest generation's collections otherwise walk the knowledge and the modules: ~0.4 ms a patient).
    gc.collect()
    gc.freeze()
    return kit


def full_prefetch(patient_id: str, resources: Iterable[dict[str, Any]], kit: Toolkit) -> dict[str, object]:
    """The prefetch an EHR sends for every template key: the Patient, and one searchset Bundle per search."""
    entries: dict[str, list[dict[str, Any]]] = {key: [] for key in kit.templates if key != PATIENT_KEY}
    patient: dict[str, Any] | None = None
    for resource in resources:
        rtype = resource.get("resourceType")
        if rtype == "Patient":
            if patient is None and resource.get("id") == patient_id:
                patient = resource  # a duplicate Patient line (counted by the partitioner) is left out
            continue
        key = kit.key_of_type.get(rtype) if isinstance(rtype, str) else None
        if key is not None:
            entries[key].append({"resource": resource})
    prefetch: dict[str, object] = {
        key: {"resourceType": "Bundle", "type": "searchset", "total": len(found), "entry": found}
        for key, found in entries.items()
    }
    prefetch[PATIENT_KEY] = patient  # None: "no data", and gather refuses a record without its Patient
    return prefetch


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:ERROR_MESSAGE_CHARS]


def error_row(row: dict[str, Any], kind: str, message: str) -> dict[str, Any]:
    return row | {"rules_version": RULES_VERSION, "fields": None, "assessment_z": None, "page_z": None,
                  "error": {"kind": kind, "message": message}}


def row_bytes(row: dict[str, Any]) -> tuple[bytes, bool]:
    """One JSON line and whether it is an error row; a row that cannot be serialised becomes one."""
    try:
        return orjson.dumps(row) + b"\n", row["error"] is not None
    except orjson.JSONEncodeError as exc:
        base = {k: row[k] for k in ("patient_id", "as_of", "partition")}
        return orjson.dumps(error_row(base, "SerializationError", _error_text(exc))) + b"\n", True


def _resources(parsed: list[ParsedLine]) -> Iterator[dict[str, Any]]:
    """A patient's parsed lines; the first that JSON refused fails the patient (its error row says why)."""
    for item in parsed:
        if isinstance(item, Exception):
            raise item
        yield item


def assess_patient_lines(
    patient_id: str,
    lines: list[ParsedLine],
    as_of: date,
    kit: Toolkit,
    *,
    partition: int,
) -> dict[str, Any]:
    """One patient's row: the hook path on a full prefetch of their parsed lines, or an error row."""
    row: dict[str, Any] = {"patient_id": patient_id, "as_of": as_of.isoformat(), "partition": partition}
    try:
        prefetch = full_prefetch(patient_id, _resources(lines), kit)
        record = record_from_prefetch(patient_id, kit.templates, prefetch)
        assessment = kit.assessor(record, as_of)
        rendered = render_assessment(assessment, kit.knowledge, kit.tables)
        page = page_course(assessment, kit.knowledge)
    except Exception as exc:  # noqa: BLE001 (one patient's failure is their error row, never the partition's)
        return error_row(row, type(exc).__name__, _error_text(exc))
    return row | {"rules_version": assessment.versions["rules"], "fields": worklist_fields(rendered),
                  "assessment_z": pack(rendered), "page_z": pack(page), "error": None}


def _reference_of(value: object) -> str | None:
    """``<field>.reference`` when the field is an object with a string reference (as the partitioner reads it)."""
    if isinstance(value, dict):
        reference = value.get("reference")
        return reference if isinstance(reference, str) else None
    return None


def routed_patient(resource: object) -> str | None:
    """The patient of a parsed line, exactly as :func:`service.screening.partition.route` reads the raw line:
    none without a non-empty ``resourceType``; a Patient's own non-empty id; else the patient of the first of
    ``subject``/``patient`` that holds a string reference."""
    if not isinstance(resource, dict):
        return None
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return None
    if rtype == "Patient":
        pid = resource.get("id")
        return pid if isinstance(pid, str) and pid else None
    for name in SUBJECT_FIELDS:
        reference = _reference_of(resource.get(name))
        if reference is not None:
            return patient_of_reference(reference)
    return None


def group_by_patient(data: bytes, groups: dict[str, list[ParsedLine]] | None = None) -> dict[str, list[ParsedLine]]:
    """A partition's lines, parsed once, by patient (lines the partitioner would not have written are skipped);
    added to ``groups`` when given (the partition's next chunk file), in their order.

    Each line is parsed by orjson once and routed from the parsed object (the routing decoder and then orjson
    on every line cost ~1 ms a patient). A line orjson refuses but the routing decoder reads stays in its
    patient's group as the error, so that patient gets the error row they got when lines were parsed later.
    The price is memory: a partition's parsed objects are ~5x its bytes (a 14 MB partition of 200 patients:
    peak RSS 76 -> 147 MB), bounded by ``patients_per_partition``.
    """
    groups = {} if groups is None else groups
    loads = orjson.loads
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            item: ParsedLine = loads(line)
            patient_id = routed_patient(item)
        except orjson.JSONDecodeError as exc:
            item, patient_id = exc, _routed_raw(line)
        if patient_id is not None:
            groups.setdefault(patient_id, []).append(item)
    return groups


def _routed_raw(line: bytes) -> str | None:
    try:
        return route(line).patient_id
    except RoutingError:
        return None


def run_partition(spec: PartitionSpec) -> PartitionResult:
    """Assess every patient of one partition into ``spec.result`` (JSON lines, sorted by patient id)."""
    started, cpu_started = time.monotonic(), time.process_time()
    release_routing_state()  # before toolkit's gc.freeze: the routing's ids are not kept for the process's life
    kit = toolkit(spec.worker)
    today = datetime.now(ZoneInfo(spec.worker.timezone)).date()
    groups: dict[str, list[ParsedLine]] = {}
    for path in spec.partitions:  # in chunk order: each patient's lines in the export's order
        group_by_patient(path.read_bytes(), groups)
    spec.result.parent.mkdir(parents=True, exist_ok=True)
    temp = spec.result.with_name(f"{spec.result.name}.{os.getpid()}.tmp")
    errors = 0
    with open(temp, "wb") as out:
        for patient_id in sorted(groups):
            as_of = spec.as_of.for_patient(patient_id, today)
            row = assess_patient_lines(patient_id, groups[patient_id], as_of, kit, partition=spec.index)
            line, failed = row_bytes(row)
            errors += failed
            out.write(line)
    os.replace(temp, spec.result)
    return PartitionResult(
        index=spec.index,
        result=spec.result,
        patients=len(groups),
        errors=errors,
        seconds=time.monotonic() - started,
        cpu_seconds=time.process_time() - cpu_started,
    )
