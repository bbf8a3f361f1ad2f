"""NDJSON files of an export -> partitions of whole patients on disk, in bounded memory, routed in parallel.

A Bulk Data export is one file (or several) per resource type; an assessment needs one patient's resources
together. The driver reads the Patient file(s) first (the patients in scope, duplicates counted, and so the
number of partitions ``P = ceil(n / patients_per_partition)``); then the routing of every file is cut into
chunks (a plain file into byte ranges of ``chunk_bytes``: a chunk ``[start, end)`` owns each line whose first
byte lies in it; a gzipped file whole) and each chunk is routed by :func:`route_chunk`, on the executor's
workers (the processes that then assess) or in the calling process without one. A chunk appends each RAW line
to its own file of the line's patient's partition (``crc32(id) % P``):
``partitions/chunk-NNNN/part-PPPP.ndjson``. A partition is the list of its chunk files in chunk order (file
order, then byte order): a worker reads them in that order and finds every resource of its patients there, in
the order of the export, whichever file they came from and however the files were cut.

Only what routes a line is decoded (``resourceType``, ``id``, ``subject``/``patient``: a msgspec Struct, the
rest of the line is skipped unparsed). Lines are buffered per partition under one memory budget per chunk (so
per process) and appended to their files when it is reached (one output file open at a time): memory and open
files stay bounded whatever the export's size. Nothing in the input is fatal; what is left out is counted,
with the first few examples (file:line and the problem, never a resource's content; each chunk counts its
lines, and the driver makes the line numbers of the file's later chunks global, so the plan does not depend on
the chunks):

* ``malformed``: not a JSON object with a ``resourceType`` (or a Patient without an id);
* ``unexpected_type``: a type the mapping does not read (not in :data:`service.mapping.R4B_MODELS`, e.g. Group);
* ``no_patient``: names no patient (no ``subject``/``patient`` reference to a Patient);
* ``unknown_patient``: names a patient who is not in the Patient file(s), e.g. a system-level export's
  BodyStructures of patients outside the Group;
* ``duplicate_patient``: a Patient id seen twice (both lines are kept; the runner takes the first).

``partitions/DONE`` (the plan, JSON) is written last, atomically: with it, :func:`partition_files` just reads
it (resume: nothing is routed); partitions without it (or with a plan of another ``PLAN_FORMAT``) are from an
interrupted or older run (appends are not idempotent) and are redone. A chunk routed again (a retried task)
starts from an empty folder of its own.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import math
import os
import shutil
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

import msgspec
import orjson

from service.mapping import R4B_MODELS

PARTITIONS_DIR = "partitions"
DONE_FILE = "DONE"
PLAN_FORMAT = 2  # 2: a partition is the list of its chunk files (1: one file)
PATIENT_IDS_FILE = "patients.json"
CHUNK_BYTES = 64 * 1024 * 1024  # a plain file is routed in byte ranges of this size (at most)
MIN_CHUNK_BYTES = 4 * 1024 * 1024
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

    partitions: list[list[str]]  # index = partition number: its chunk files' paths, in chunk order
    patients_per_partition: list[int]
    patients: int
    resources: dict[str, int] = field(default_factory=dict)  # routed lines by resource type
    counts: dict[str, int] = field(default_factory=dict)  # problem kind -> lines left out (or flagged)
    examples: list[dict[str, str]] = field(default_factory=list)  # {"kind", "where": "file:line", "problem"}
    format: int = PLAN_FORMAT

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes) -> PartitionPlan | None:
        """The plan; None for a plan of another format (or not a plan): the partitioning is redone."""
        try:
            found = orjson.loads(raw)
            if not isinstance(found, dict) or found.get("format") != PLAN_FORMAT:
                return None
            return cls(**found)
        except (orjson.JSONDecodeError, TypeError):
            return None


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
    """Appends lines to P partition files: buffered in memory under one budget, one file open at a time.

    A file is created by its first append: a partition none of the lines went to has no file (``written``)."""

    def __init__(self, paths: list[Path], budget: int) -> None:
        self.paths = paths
        self.budget = budget
        self.buffers = [bytearray() for _ in paths]
        self.buffered = 0
        self.written: set[int] = set()

    def append(self, index: int, line: bytes) -> None:
        self.buffers[index] += line
        self.buffered += len(line)
        if self.buffered >= self.budget:
            self.flush()

    def flush(self) -> None:
        for index, (path, buffer) in enumerate(zip(self.paths, self.buffers, strict=True)):
            if buffer:
                with open(path, "ab") as out:
                    out.write(buffer)
                buffer.clear()
                self.written.add(index)
        self.buffered = 0


def _open_input(path: Path) -> gzip.GzipFile | io.BufferedReader:
    if path.name.endswith(".gz"):
        return gzip.GzipFile(path, "rb")
    return open(path, "rb")


def _raw_lines(path: Path, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """The lines (with their ends) whose first byte lies in ``[start, end)`` of a plain file; every line of the
    file when ``end`` is None (a gzipped file: read whole)."""
    with _open_input(path) as stream:
        if end is None:
            yield from stream
            return
        if start > 0:
            stream.seek(start - 1)
            stream.readline()  # the end of the line before, or of the line that began before start
        position = stream.tell()
        while position < end:
            line = stream.readline()
            if not line:
                return
            position += len(line)
            yield line


def _lines(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number within the range, line without its end) for each non-blank line of a range of an NDJSON
    file (see :func:`_raw_lines`), gzipped or not; blank lines count in the numbering."""
    for number, line in enumerate(_raw_lines(path, start, end), start=1):
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
                    problems.add("duplicate_patient", f"{Path(path).name}:{number}", "a Patient id seen before")
                ids.add(routed.patient_id)
    return ids


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of one file to route (picklable: it runs in a worker process, local or on a Dask cluster)."""

    index: int  # chunk number, over all files: the order of the partitions' chunk files
    path: Path  # the NDJSON file (absolute)
    start: int
    end: int | None  # None: the whole file (a gzipped one)
    folder: Path  # partitions/chunk-NNNN: this chunk's partition files
    patient_ids: Path  # the ids in scope, a JSON array (written by the driver)
    ids_digest: str  # sha256 of that file: what a worker's cached copy is checked against
    partitions: int  # P
    buffer_budget: int


@dataclass(frozen=True)
class ChunkResult:
    index: int
    lines: int  # physical lines the chunk owns (blank ones too): the next chunk of the file numbers after them
    written: tuple[int, ...]  # the partitions this chunk has a file of
    resources: dict[str, int]
    counts: dict[str, int]
    examples: list[dict[str, str]]  # "where" numbers lines within the chunk; the driver makes them global


@functools.lru_cache(maxsize=2)
def _read_ids(path: Path, digest: str) -> frozenset[str]:
    """The ids file, read once per process and partitioning (a redone partitioning rewrites it)."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise RuntimeError(f"{path} is not the one this partitioning wrote (another run in the same folder?)")
    return frozenset(orjson.loads(data))


def release_routing_state() -> None:
    """Forget the ids a worker read for routing (a worker that now assesses needs them no more)."""
    _read_ids.cache_clear()


def route_chunk(task: ChunkTask) -> ChunkResult:
    """Route one chunk's lines into ``task.folder/part-PPPP.ndjson`` (runs again from an empty folder)."""
    ids = _read_ids(task.patient_ids, task.ids_digest)
    if task.folder.exists():
        shutil.rmtree(task.folder)  # a retried chunk: its earlier appends go
    task.folder.mkdir(parents=True)
    paths = [task.folder / f"part-{i:04d}.ndjson" for i in range(task.partitions)]
    writers = _PartitionWriters(paths, task.buffer_budget)
    problems = _Problems()
    resources: dict[str, int] = {}
    count = task.partitions
    name = task.path.name
    lines = 0
    for number, line in enumerate(_raw_lines(task.path, task.start, task.end), start=1):
        lines = number
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            routed = route(line)
        except RoutingError as exc:
            problems.add("malformed", f"{name}:{number}", str(exc))
            continue
        rtype, pid = routed.resource_type, routed.patient_id
        if rtype not in R4B_MODELS:
            problems.add("unexpected_type", f"{name}:{number}", f"{rtype[:64]} is not a type the assessment reads")
        elif pid is None:
            problems.add("no_patient", f"{name}:{number}", f"{rtype} names no patient")
        elif pid not in ids:
            problems.add("unknown_patient", f"{name}:{number}", f"{rtype} of a patient not in the Patient file(s)")
        else:
            writers.append(partition_of(pid, count), line + b"\n")
            resources[rtype] = resources.get(rtype, 0) + 1
    writers.flush()
    return ChunkResult(task.index, lines, tuple(sorted(writers.written)), resources, problems.counts,
                       problems.examples)


def chunk_size(files: Sequence[tuple[str, Path]], workers: int) -> int:
    """Chunks of at most :data:`CHUNK_BYTES`, and at least four a worker (of at least :data:`MIN_CHUNK_BYTES`) so
    that a small export keeps every worker busy too."""
    total = sum(Path(path).stat().st_size for _rtype, path in files)
    return min(CHUNK_BYTES, max(MIN_CHUNK_BYTES, math.ceil(total / (4 * max(1, workers)))))


def _ranges(path: Path, chunk_bytes: int) -> list[tuple[int, int | None]]:
    """A plain file's byte ranges of ``chunk_bytes``; a gzipped (or empty) file whole."""
    if path.name.endswith(".gz"):
        return [(0, None)]
    size = path.stat().st_size
    if size == 0:
        return [(0, None)]
    return [(start, min(start + chunk_bytes, size)) for start in range(0, size, chunk_bytes)]


T = TypeVar("T")
R = TypeVar("R")


class TaskRunner(Protocol):
    """What runs the chunks (an :class:`service.screening.executors.Executor`): results in the tasks' order."""

    @property
    def workers(self) -> int: ...

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


def _write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def _with_line(where: str, offset: int) -> str:
    name, _, number = where.rpartition(":")
    return f"{name}:{int(number) + offset}"


def _merge(
    tasks: Sequence[ChunkTask], results: Sequence[ChunkResult], problems: _Problems, count: int
) -> tuple[list[list[str]], dict[str, int]]:
    """The chunks' partition files, by partition in chunk order; resources and problems summed (examples in
    chunk order, the first few of each kind, their lines numbered within the whole file)."""
    partitions: list[list[str]] = [[] for _ in range(count)]
    resources: dict[str, int] = {}
    offset = lines = 0
    for task, result in zip(tasks, results, strict=True):
        assert task.index == result.index
        offset = 0 if task.start == 0 else offset + lines  # the lines of the file's earlier chunks
        lines = result.lines
        for index in result.written:
            partitions[index].append(str(task.folder / f"part-{index:04d}.ndjson"))
        for rtype, n in result.resources.items():
            resources[rtype] = resources.get(rtype, 0) + n
        shown = {kind: problems.counts[kind] for kind in PROBLEM_KINDS}  # examples kept so far, at most
        for example in result.examples:
            kind = example["kind"]
            if shown[kind] < EXAMPLES_PER_KIND:
                shown[kind] += 1
                problems.examples.append(example | {"where": _with_line(example["where"], offset)})
        for kind, n in result.counts.items():
            problems.counts[kind] += n
    return partitions, resources


def partition_files(
    files: Sequence[tuple[str, Path]],
    work_dir: Path,
    *,
    patients_per_partition: int = 250,
    buffer_budget: int = BUFFER_BUDGET_BYTES,
    executor: TaskRunner | None = None,
    chunk_bytes: int | None = None,
) -> PartitionPlan:
    """Partition ``files`` ((resource type, path) of NDJSON, ``.ndjson.gz`` too) into ``work_dir/partitions``.

    The chunks are routed by ``executor`` (its workers must see ``work_dir`` at the same path), or in this
    process without one; ``chunk_bytes`` (default: :func:`chunk_size`) is the byte range of a plain file's
    chunk. Returns the plan in ``partitions/DONE`` as is when it exists (a finished partitioning, resumed).
    """
    if patients_per_partition < 1:
        raise ValueError("patients_per_partition must be at least 1")
    if chunk_bytes is not None and chunk_bytes < 1:
        raise ValueError("chunk_bytes must be at least 1")
    folder = work_dir.resolve() / PARTITIONS_DIR  # absolute: workers need not share the driver's directory
    done = folder / DONE_FILE
    if done.exists():
        plan = PartitionPlan.from_json(done.read_bytes())
        if plan is not None:
            return plan
    if folder.exists():
        shutil.rmtree(folder)  # an interrupted partitioning: its appends cannot be resumed
    folder.mkdir(parents=True)
    problems = _Problems()
    ids = _patient_ids(files, problems)
    count = max(1, math.ceil(len(ids) / patients_per_partition))
    ids_file = folder / PATIENT_IDS_FILE
    ids_json = orjson.dumps(sorted(ids))
    _write_atomically(ids_file, ids_json)
    digest = hashlib.sha256(ids_json).hexdigest()
    size = chunk_bytes or chunk_size(files, executor.workers if executor is not None else 1)
    tasks: list[ChunkTask] = []
    for _rtype, name in files:
        path = Path(name).absolute()  # not resolved: a linked file keeps its name in the examples
        for start, end in _ranges(path, size):
            index = len(tasks)
            tasks.append(ChunkTask(index, path, start, end, folder / f"chunk-{index:04d}", ids_file, digest, count,
                                   buffer_budget))
    results = executor.map(route_chunk, tasks) if executor is not None else [route_chunk(t) for t in tasks]
    partitions, resources = _merge(tasks, results, problems, count)
    ids_file.unlink()
    per_partition = [0] * count
    for pid in ids:
        per_partition[partition_of(pid, count)] += 1
    plan = PartitionPlan(
        partitions=partitions,
        patients_per_partition=per_partition,
        patients=len(ids),
        resources=dict(sorted(resources.items())),
        counts=problems.counts,
        examples=problems.examples,
    )
    _write_atomically(done, plan.to_json())
    return plan
