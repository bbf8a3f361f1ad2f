"""NDJSON files of an export -> partitions of whole patients on disk, in bounded memory.

A Bulk Data export is one file (or several) per resource type; an assessment needs one patient's resources
together. The partitioner reads the Patient file(s) first (the patients in scope, and so the number of
partitions ``P = ceil(n / patients_per_partition)``), then every file line by line, and appends each RAW line
to the partition of its patient (``crc32(id) % P``): a worker then reads one partition and finds every resource
of its patients there, whichever file they came from.

Only what routes a line is decoded (``resourceType``, ``id``, ``subject``/``patient``: a msgspec Struct, the
rest of the line is skipped unparsed). Lines are buffered per partition under one memory budget and appended
to their files when it is reached (one output file open at a time): memory and open files stay bounded
whatever the export's size. Nothing in the input is fatal; what is left out is counted, with the first few
examples (file:line and the problem, never a resource's content):

* ``malformed``: not a JSON object with a ``resourceType`` (or a Patient without an id);
* ``unexpected_type``: a type the mapping does not read (not in :data:`service.mapping.R4B_MODELS`, e.g. Group);
* ``no_patient``: names no patient (no ``subject``/``patient`` reference to a Patient);
* ``unknown_patient``: names a patient who is not in the Patient file(s), e.g. a system-level export's
  BodyStructures of patients outside the Group;
* ``duplicate_patient``: a Patient id seen twice (both lines are kept; the runner takes the first).

``partitions/DONE`` (the plan, JSON) is written last, atomically: with it, :func:`partition_files` just reads
it (resume); partitions without it are from an interrupted run (appends are not idempotent) and are redone.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import shutil
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import orjson

from service.mapping import R4B_MODELS

PARTITIONS_DIR = "partitions"
DONE_FILE = "DONE"
PLAN_FORMAT = 1
EXAMPLES_PER_KIND = 5
BUFFER_BUDGET_BYTES = 64 * 1024 * 1024  # buffered lines of all partitions together, before appending to files
PROBLEM_KINDS = ("malformed", "unexpected_type", "no_patient", "unknown_patient", "duplicate_patient")


class _Reference(msgspec.Struct):
    reference: Any = None


_NULL = msgspec.Raw(b"null")


class _Routing(msgspec.Struct):
    """What routes a line to its patient; msgspec skips every other field without building it."""

    resourceType: Any = None
    id: Any = None
    subject: msgspec.Raw = _NULL  # decoded only when read (most lines need one of the two)
    patient: msgspec.Raw = _NULL


_DECODER = msgspec.json.Decoder(_Routing)
_REFERENCE_DECODER = msgspec.json.Decoder(_Reference)


class RoutingError(ValueError):
    """A line that is not a FHIR resource as JSON."""


class Routed(NamedTuple):
    resource_type: str
    patient_id: str | None  # the Patient's own id, or the patient its subject/patient reference names


def patient_of_reference(reference: str) -> str | None:
    """``Patient/<id>``, absolute or versioned, -> ``<id>``; None for a reference to anything else."""
    if reference.startswith("Patient/") and reference.count("/") == 1:  # the usual, relative form
        return reference[8:] or None
    parts = reference.split("/_history/", 1)[0].rsplit("/", 2)
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return parts[-1]
    return None


def _reference(raw: msgspec.Raw) -> str | None:
    """``<field>.reference`` when the field is an object with a string reference."""
    if raw is _NULL or not raw:
        return None
    try:
        found = _REFERENCE_DECODER.decode(raw)
    except msgspec.ValidationError:  # not an object (the line itself was valid JSON)
        return None
    return found.reference if isinstance(found.reference, str) else None


def route(line: bytes) -> Routed:
    """The type of one NDJSON line's resource and the patient it belongs to (the first reference gather reads)."""
    try:
        found = _DECODER.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise RoutingError(f"not a JSON object: {exc}") from None
    if not isinstance(found.resourceType, str) or not found.resourceType:
        raise RoutingError("no resourceType")
    if found.resourceType == "Patient":
        if not isinstance(found.id, str) or not found.id:
            raise RoutingError("a Patient without an id")
        return Routed("Patient", found.id)
    for raw in (found.subject, found.patient):  # service.gather.SUBJECT_FIELDS, in its order
        reference = _reference(raw)
        if reference is not None:
            return Routed(found.resourceType, patient_of_reference(reference))
    return Routed(found.resourceType, None)


def partition_of(patient_id: str, count: int) -> int:
    """The partition of a patient: stable across runs, processes and machines (not Python's ``hash``)."""
    return zlib.crc32(patient_id.encode("utf-8")) % count


@dataclass
class PartitionPlan:
    """Where each patient's resources are, and what was left out (JSON-serialisable: it is ``DONE``)."""

    partitions: list[str]  # paths of part-NNNN.ndjson, index = partition number
    patients_per_partition: list[int]
    patients: int
    resources: dict[str, int] = field(default_factory=dict)  # routed lines by resource type
    counts: dict[str, int] = field(default_factory=dict)  # problem kind -> lines left out (or flagged)
    examples: list[dict[str, str]] = field(default_factory=list)  # {"kind", "where": "file:line", "problem"}
    format: int = PLAN_FORMAT

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes) -> PartitionPlan:
        return cls(**orjson.loads(raw))


class _Problems:
    """Counts by kind, with the first few examples of each."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(PROBLEM_KINDS, 0)
        self.examples: list[dict[str, str]] = []

    def add(self, kind: str, where: str, problem: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= EXAMPLES_PER_KIND:
            self.examples.append({"kind": kind, "where": where, "problem": problem})


class _PartitionWriters:
    """Appends lines to P partition files: buffered in memory under one budget, one file open at a time."""

    def __init__(self, paths: list[Path], budget: int) -> None:
        self.paths = paths
        self.budget = budget
        self.buffers = [bytearray() for _ in paths]
        self.buffered = 0
        for path in paths:
            path.write_bytes(b"")  # every partition exists, even one no patient hashes to

    def append(self, index: int, line: bytes) -> None:
        self.buffers[index] += line
        self.buffered += len(line)
        if self.buffered >= self.budget:
            self.flush()

    def flush(self) -> None:
        for path, buffer in zip(self.paths, self.buffers, strict=True):
            if buffer:
                with open(path, "ab") as out:
                    out.write(buffer)
                buffer.clear()
        self.buffered = 0


def _open_input(path: Path) -> gzip.GzipFile | io.BufferedReader:
    if path.name.endswith(".gz"):
        return gzip.GzipFile(path, "rb")
    return open(path, "rb")


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its end) for each non-blank line of an NDJSON file, gzipped or not."""
    with _open_input(path) as stream:
        for number, line in enumerate(stream, start=1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line


def _patient_ids(files: Sequence[tuple[str, Path]], problems: _Problems) -> set[str]:
    """The ids of the Patient file(s)' Patients: the patients in scope."""
    ids: set[str] = set()
    for rtype, path in files:
        if rtype != "Patient":
            continue
        for number, line in _lines(Path(path)):
            try:
                routed = route(line)
            except RoutingError:
                continue  # counted once, in the routing pass
            if routed.resource_type == "Patient" and routed.patient_id is not None:
                if routed.patient_id in ids:
                    problems.add("duplicate_patient", f"{path.name}:{number}", "a Patient id seen before")
                ids.add(routed.patient_id)
    return ids


def _route_file(path: Path, ids: set[str], writers: _PartitionWriters, problems: _Problems,
                resources: dict[str, int]) -> None:
    count = len(writers.paths)
    for number, line in _lines(path):
        where = f"{path.name}:{number}"
        try:
            routed = route(line)
        except RoutingError as exc:
            problems.add("malformed", where, str(exc))
            continue
        rtype, pid = routed.resource_type, routed.patient_id
        if rtype not in R4B_MODELS:
            problems.add("unexpected_type", where, f"{rtype[:64]} is not a type the assessment reads")
        elif pid is None:
            problems.add("no_patient", where, f"{rtype} names no patient")
        elif pid not in ids:
            problems.add("unknown_patient", where, f"{rtype} of a patient not in the Patient file(s)")
        else:
            writers.append(partition_of(pid, count), line + b"\n")
            resources[rtype] = resources.get(rtype, 0) + 1


def _write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def partition_files(
    files: Sequence[tuple[str, Path]],
    work_dir: Path,
    *,
    patients_per_partition: int = 250,
    buffer_budget: int = BUFFER_BUDGET_BYTES,
) -> PartitionPlan:
    """Partition ``files`` ((resource type, path) of NDJSON, ``.ndjson.gz`` too) into ``work_dir/partitions``.

    Returns the plan in ``partitions/DONE`` as is when it exists (a finished partitioning, resumed).
    """
    if patients_per_partition < 1:
        raise ValueError("patients_per_partition must be at least 1")
    folder = work_dir.resolve() / PARTITIONS_DIR  # absolute: workers need not share the driver's directory
    done = folder / DONE_FILE
    if done.exists():
        return PartitionPlan.from_json(done.read_bytes())
    if folder.exists():
        shutil.rmtree(folder)  # an interrupted partitioning: its appends cannot be resumed
    folder.mkdir(parents=True)
    problems = _Problems()
    ids = _patient_ids(files, problems)
    count = max(1, math.ceil(len(ids) / patients_per_partition))
    paths = [folder / f"part-{i:04d}.ndjson" for i in range(count)]
    writers = _PartitionWriters(paths, buffer_budget)
    resources: dict[str, int] = {}
    for _rtype, path in files:
        _route_file(Path(path), ids, writers, problems, resources)
    writers.flush()
    per_partition = [0] * count
    for pid in ids:
        per_partition[partition_of(pid, count)] += 1
    plan = PartitionPlan(
        partitions=[str(p) for p in paths],
        patients_per_partition=per_partition,
        patients=len(ids),
        resources=dict(sorted(resources.items())),
        counts=problems.counts,
        examples=problems.examples,
    )
    _write_atomically(done, plan.to_json())
    return plan
