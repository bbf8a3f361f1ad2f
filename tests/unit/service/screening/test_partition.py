"""The partitioner: whole patients per partition, problems counted (never fatal), resume, bounded writers; the
same plan and partitions however the files are cut into chunks."""

from __future__ import annotations

import builtins
import gzip
import hashlib
import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from service.screening import partition as partition_module
from service.screening.partition import (
    PartitionPlan,
    RoutingError,
    partition_files,
    partition_of,
    patient_of_reference,
    route,
)
from tests.screening_export import demo_export_bundles, write_export


@pytest.fixture(scope="module")
def bundles() -> list[dict]:
    return demo_export_bundles()


def _data(plan: PartitionPlan, index: int) -> bytes:
    """A partition's lines as a worker reads them: its chunk files in their order."""
    return b"".join(Path(path).read_bytes() for path in plan.partitions[index])


def _all_data(plan: PartitionPlan) -> list[bytes]:
    return [_data(plan, i) for i in range(len(plan.partitions))]


def _lines_by_partition(plan: PartitionPlan) -> dict[int, list[bytes]]:
    return {i: data.splitlines() for i, data in enumerate(_all_data(plan))}


def _patient_of(line: bytes) -> str:
    routed = route(line)
    assert routed.patient_id is not None
    return routed.patient_id


def test_every_resource_of_a_patient_lands_in_its_patients_partition(tmp_path, bundles):
    files = write_export(bundles, tmp_path / "export")
    plan = partition_files(files, tmp_path / "work", patients_per_partition=5)

    assert plan.patients == 37 and len(plan.partitions) == 8  # ceil(37 / 5)
    expected = Counter()
    for bundle in bundles:
        patient = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        expected[patient] = len(bundle["entry"])
    found: Counter[str] = Counter()
    seen_in: dict[str, set[int]] = {}
    for index, lines in _lines_by_partition(plan).items():
        for line in lines:
            pid = _patient_of(line)
            assert partition_of(pid, len(plan.partitions)) == index
            found[pid] += 1
            seen_in.setdefault(pid, set()).add(index)
    assert found == expected  # every line, once, with its patient
    assert all(len(parts) == 1 for parts in seen_in.values())
    assert sum(plan.patients_per_partition) == 37
    assert plan.patients_per_partition == [
        sum(1 for pid in expected if partition_of(pid, 8) == i) for i in range(8)
    ]
    assert sum(plan.resources.values()) == sum(expected.values())
    assert not any(plan.counts.values()) and plan.examples == []


def test_lines_are_written_raw(tmp_path, bundles):
    odd = b'{ "resourceType" : "Observation", "subject": {"reference": "Patient/' + \
        next(e["resource"]["id"] for e in bundles[0]["entry"] if e["resource"]["resourceType"] == "Patient").encode() + \
        b'"}, "id": "spaced"}'
    files = write_export(bundles[:1], tmp_path / "export", extra={"Observation": [odd]})
    plan = partition_files(files, tmp_path / "work")
    assert odd in _data(plan, 0).splitlines()


def test_problems_are_counted_with_examples_and_the_rest_is_partitioned(tmp_path, bundles):
    pid = next(e["resource"]["id"] for e in bundles[0]["entry"] if e["resource"]["resourceType"] == "Patient")
    extra = {
        "Observation": [
            b'{"resourceType": "Observation", "id": "cut", "subject": {"refer',  # a truncated line
            b"[1, 2]",
            b'{"id": "typeless"}',
            b'{"resourceType": "Observation", "id": "orphan"}',
            b'{"resourceType": "Observation", "id": "group-subject", "subject": {"reference": "Group/g1"}}',
            b'{"resourceType": "Observation", "id": "stranger", "subject": {"reference": "Patient/not-in-scope"}}',
        ],
        "BodyStructure": [b'{"resourceType": "BodyStructure", "id": "b1", "patient": {"reference": "Patient/other"}}'],
        "Group": [b'{"resourceType": "Group", "id": "g1", "type": "person", "actual": true}'],
        "Patient": [
            b'{"resourceType": "Patient"}',
            b'{"resourceType": "Patient", "id": "' + pid.encode() + b'"}',  # the same patient again
        ],
    }
    files = write_export(bundles[:2], tmp_path / "export", extra=extra)
    plan = partition_files(files, tmp_path / "work", patients_per_partition=1)

    assert plan.counts == {"malformed": 4, "unexpected_type": 1, "no_patient": 2, "unknown_patient": 2,
                           "duplicate_patient": 1}
    assert plan.patients == 2
    kinds = Counter(example["kind"] for example in plan.examples)
    assert kinds == Counter(plan.counts)
    wheres = {example["where"] for example in plan.examples}
    first = _observations(bundles[:2])  # the extra lines follow the patients' Observations
    assert {f"Observation.ndjson:{first + n}" for n in range(1, 7)} <= wheres
    assert {"Patient.ndjson:3", "Patient.ndjson:4", "BodyStructure.ndjson:" + str(_count(bundles[:2], "BodyStructure") + 1)} <= wheres
    assert "Group.ndjson:1" in wheres
    assert all(set(example) == {"kind", "where", "problem"} for example in plan.examples)
    # what was left out is nowhere; both patients' own resources are all there
    written = [line for lines in _lines_by_partition(plan).values() for line in lines]
    assert len(written) == sum(len(b["entry"]) for b in bundles[:2]) + 1  # + the duplicate Patient line
    assert not any(b"not-in-scope" in line or b'"Group"' in line for line in written)


def _count(bundles: list[dict], rtype: str) -> int:
    return sum(1 for b in bundles for e in b["entry"] if e["resource"]["resourceType"] == rtype)


def _observations(bundles: list[dict]) -> int:
    return _count(bundles, "Observation")


def test_examples_name_the_file_and_line(tmp_path):
    patient = b'{"resourceType": "Patient", "id": "p1"}'
    files = [("Patient", tmp_path / "Patient.ndjson"), ("Observation", tmp_path / "Observation.ndjson")]
    files[0][1].write_bytes(patient + b"\n")
    files[1][1].write_bytes(b'{"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}\n'
                            b"\n"  # a blank line is no problem
                            b"{oops\n")
    plan = partition_files(files, tmp_path / "work")
    assert plan.counts["malformed"] == 1
    assert plan.examples == [{"kind": "malformed", "where": "Observation.ndjson:3", "problem": plan.examples[0]["problem"]}]
    assert "JSON" in plan.examples[0]["problem"] and "oops" not in plan.examples[0]["problem"]


def test_examples_are_few_counts_are_all(tmp_path):
    files = [("Patient", tmp_path / "Patient.ndjson"), ("Group", tmp_path / "Group.ndjson")]
    files[0][1].write_bytes(b'{"resourceType": "Patient", "id": "p1"}\n')
    files[1][1].write_bytes(b'{"resourceType": "Group", "id": "g"}\n' * 50)
    plan = partition_files(files, tmp_path / "work")
    assert plan.counts["unexpected_type"] == 50
    assert len(plan.examples) == partition_module.EXAMPLES_PER_KIND


def test_done_is_read_back_instead_of_partitioning_again(tmp_path, bundles, monkeypatch):
    files = write_export(bundles, tmp_path / "export")
    first = partition_files(files, tmp_path / "work", patients_per_partition=10)
    done = tmp_path / "work" / "partitions" / "DONE"
    assert orjson.loads(done.read_bytes())["patients"] == 37
    mtimes = [Path(p).stat().st_mtime_ns for paths in first.partitions for p in paths]

    def no_routing(*args, **kwargs):
        raise AssertionError("partitioned again")

    monkeypatch.setattr(partition_module, "route_chunk", no_routing)
    monkeypatch.setattr(partition_module, "_patient_ids", no_routing)
    again = partition_files(files, tmp_path / "work", patients_per_partition=10)
    assert again == first
    assert [Path(p).stat().st_mtime_ns for paths in again.partitions for p in paths] == mtimes


@pytest.mark.parametrize("done", [
    orjson.dumps({"partitions": ["/gone/part-0000.ndjson"], "patients_per_partition": [37], "patients": 37,
                  "resources": {}, "counts": {}, "examples": [], "format": 1}),  # a plan of the first format
    b"{not json",
    b"[]",
])
def test_a_done_of_another_format_is_redone_not_a_crash(tmp_path, bundles, done):
    files = write_export(bundles, tmp_path / "export")
    reference = partition_files(files, tmp_path / "w1", patients_per_partition=10)
    folder = tmp_path / "work" / "partitions"
    folder.mkdir(parents=True)
    (folder / "part-0000.ndjson").write_bytes(b"junk")
    (folder / "DONE").write_bytes(done)
    plan = partition_files(files, tmp_path / "work", patients_per_partition=10)
    assert plan.format == partition_module.PLAN_FORMAT == 2
    assert not (folder / "part-0000.ndjson").exists()
    assert _all_data(plan) == _all_data(reference)
    assert PartitionPlan.from_json((folder / "DONE").read_bytes()) == plan


def test_partitions_without_done_are_discarded_and_redone(tmp_path, bundles):
    files = write_export(bundles, tmp_path / "export")
    folder = tmp_path / "work" / "partitions"
    folder.mkdir(parents=True)
    (folder / "part-0000.ndjson").write_bytes(b'{"resourceType": "Patient", "id": "half-written"}\n')
    (folder / "part-0007.ndjson").write_bytes(b"junk")
    plan = partition_files(files, tmp_path / "work", patients_per_partition=10)
    assert len(plan.partitions) == 4
    assert not (folder / "part-0007.ndjson").exists()
    assert all(b"half-written" not in data for data in _all_data(plan))
    assert sum(len(data.splitlines()) for data in _all_data(plan)) == sum(len(b["entry"]) for b in bundles)


def test_gzipped_files_give_the_same_partitions(tmp_path, bundles):
    plain = partition_files(write_export(bundles, tmp_path / "plain"), tmp_path / "w1", patients_per_partition=10)
    gz = partition_files(write_export(bundles, tmp_path / "gz", gzipped=True), tmp_path / "w2",
                         patients_per_partition=10)
    assert _all_data(plain) == _all_data(gz)


def test_one_output_file_open_at_a_time_under_a_small_budget(tmp_path, bundles, monkeypatch):
    reference = partition_files(write_export(bundles, tmp_path / "export"), tmp_path / "w1", patients_per_partition=2)
    open_now = 0
    most = 0
    flushes = 0
    real_open = builtins.open

    class Tracked:
        def __init__(self, stream):
            self.stream = stream

        def __enter__(self):
            return self.stream.__enter__()

        def __exit__(self, *exc):
            nonlocal open_now
            open_now -= 1
            return self.stream.__exit__(*exc)

    def tracking_open(path, mode="r", *args, **kwargs):
        nonlocal open_now, most, flushes
        stream = real_open(path, mode, *args, **kwargs)
        if "a" in mode:
            open_now += 1
            flushes += 1
            most = max(most, open_now)
            return Tracked(stream)
        return stream

    monkeypatch.setattr(partition_module, "open", tracking_open, raising=False)
    plan = partition_files(write_export(bundles, tmp_path / "export2"), tmp_path / "w2", patients_per_partition=2,
                           buffer_budget=4096)
    assert len(plan.partitions) == 19
    assert flushes > len(plan.partitions)  # the budget was reached many times
    assert most == 1 and open_now == 0
    assert _all_data(plan) == _all_data(reference)


@pytest.mark.parametrize(
    ("reference", "patient"),
    [
        ("Patient/p1", "p1"),
        ("https://ehr.example/fhir/Patient/p1", "p1"),
        ("Patient/p1/_history/3", "p1"),
        ("Group/g1", None),
        ("Patient/", None),
        ("p1", None),
    ],
)
def test_patient_of_reference(reference, patient):
    assert patient_of_reference(reference) == patient


def test_route_reads_subject_before_patient_as_gather_does():
    line = b'{"resourceType": "Observation", "subject": {"reference": "Patient/a"}, "patient": {"reference": "Patient/b"}}'
    assert route(line).patient_id == "a"
    assert route(b'{"resourceType": "BodyStructure", "patient": {"reference": "Patient/b"}}').patient_id == "b"
    assert route(b'{"resourceType": "Observation", "subject": "Patient/a"}').patient_id is None
    with pytest.raises(RoutingError):
        route(b'{"resourceType": 3}')


def test_without_patients_everything_is_an_orphan_and_nothing_fails(tmp_path, monkeypatch):
    (tmp_path / "Observation.ndjson").write_bytes(
        b'{"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}\n')
    monkeypatch.chdir(tmp_path)
    plan = partition_files([("Observation", Path("Observation.ndjson"))], Path("work"))
    assert (plan.patients, plan.patients_per_partition, plan.counts["unknown_patient"]) == (0, [0], 1)
    assert plan.partitions == [[]]  # no chunk wrote to it: an empty partition


def test_partition_paths_are_absolute(tmp_path, bundles, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = write_export(bundles[:3], Path("export"))
    assert not files[0][1].is_absolute()
    plan = partition_files(files, Path("work"), chunk_bytes=500)
    assert all(Path(p).is_absolute() for paths in plan.partitions for p in paths)
    assert plan.patients == 3 and _data(plan, 0).count(b'"resourceType":"Patient"') == 3


# -- chunks: the plan and the partitions do not depend on how the files are cut --------------------------------

def _tricky_export(bundles: list[dict], folder: Path) -> list[tuple[str, Path]]:
    """Problem lines spread through the files (so chunk boundaries fall next to them), CRLF line ends, blank
    lines, a last line without its end, a gzipped file, an empty file."""
    rng = random.Random(22)
    pid = next(e["resource"]["id"] for e in bundles[0]["entry"] if e["resource"]["resourceType"] == "Patient")
    problems = [
        b'{"resourceType": "Observation", "id": "cut", "subject": {"refer',
        b"[1, 2]",
        b'{"id": "typeless"}',
        b'{"resourceType": "Observation", "id": "orphan"}',
        b'{"resourceType": "Observation", "id": "stranger", "subject": {"reference": "Patient/not-in-scope"}}',
        b'{"resourceType": "Group", "id": "g1", "type": "person", "actual": true}',
        b"",
        b"   ",
    ]
    by_type: dict[str, list[bytes]] = {"Patient": []}
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    by_type["Patient"] += [b'{"resourceType": "Patient"}', b'{"resourceType": "Patient", "id": "' + pid.encode() + b'"}']
    folder.mkdir(parents=True)
    files = []
    for number, (rtype, lines) in enumerate(by_type.items()):
        mixed = list(lines)
        for problem in problems * 3:
            mixed.insert(rng.randrange(len(mixed) + 1), problem)
        ends = [b"\r\n" if rng.random() < 0.3 else b"\n" for _ in mixed]
        data = b"".join(line + end for line, end in zip(mixed, ends, strict=True))
        if number % 2:
            data = data.rstrip(b"\r\n")  # no end after the last line
        path = folder / (f"{rtype}.ndjson.gz" if rtype == "Condition" else f"{rtype}.ndjson")
        path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
        files.append((rtype, path))
    (folder / "Empty.ndjson").write_bytes(b"")
    files.append(("Observation", folder / "Empty.ndjson"))
    return files


def _same(plan: PartitionPlan, reference: PartitionPlan) -> None:
    assert (plan.patients, plan.patients_per_partition, plan.resources, plan.counts, plan.examples) == (
        reference.patients, reference.patients_per_partition, reference.resources, reference.counts,
        reference.examples)
    assert _all_data(plan) == _all_data(reference)


@pytest.mark.parametrize("chunk_bytes", [29, 613, 4096, "crlf"])  # 29: boundaries at many kinds of place
def test_chunks_give_the_plan_and_partitions_of_one_pass(tmp_path, bundles, chunk_bytes):
    files = _tricky_export(bundles[:12], tmp_path / "export")
    if chunk_bytes == "crlf":  # the first boundary of the Observation file between a CR and its LF
        chunk_bytes = (tmp_path / "export" / "Observation.ndjson").read_bytes().index(b"\r\n") + 1
    serial = partition_files(files, tmp_path / "serial", patients_per_partition=3, chunk_bytes=1 << 40)
    assert all(len(paths) <= len(files) for paths in serial.partitions)  # one chunk a file
    n = len(files) - 1  # the files with lines, each with each problem line three times
    assert serial.counts == {"malformed": 3 * 3 * n + 1, "unexpected_type": 3 * n, "no_patient": 3 * n,
                             "unknown_patient": 3 * n, "duplicate_patient": 1}
    assert len(serial.examples) == 4 * partition_module.EXAMPLES_PER_KIND + 1
    chunked = partition_files(files, tmp_path / "chunked", patients_per_partition=3, chunk_bytes=chunk_bytes,
                              buffer_budget=1000)
    if chunk_bytes < 1000:
        assert max(len(paths) for paths in chunked.partitions) > len(files)  # the plain files were cut
    if chunk_bytes == 29:  # cuts right at a line's start and inside a blank line too
        plain = [path.read_bytes() for _, path in files if not path.name.endswith(".gz")]
        before = {data[b - 1:b + 1] for data in plain for b in range(chunk_bytes, len(data), chunk_bytes)}
        assert b"\n{" in before and before & {b"\n\n", b"\n ", b"  ", b" \n", b" \r", b"\n\r"}
    _same(chunked, serial)
    # the examples' lines are the files' own line numbers (1-based, blank lines counted)
    for example in serial.examples:
        name, _, number = example["where"].rpartition(":")
        path = tmp_path / "export" / name
        raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        line = raw.split(b"\n")[int(number) - 1].rstrip(b"\r")
        assert line.strip() and line not in (b"",)
        if example["kind"] == "unexpected_type":
            assert b'"Group"' in line


def test_two_chunks_of_one_file_give_the_partitions_of_one(tmp_path, bundles):
    files = write_export(bundles, tmp_path / "export")
    size = max(path.stat().st_size for _, path in files)
    whole = partition_files(files, tmp_path / "w1", patients_per_partition=10, chunk_bytes=size)
    halves = partition_files(files, tmp_path / "w2", patients_per_partition=10, chunk_bytes=size // 2 + 1)
    assert max(len(paths) for paths in halves.partitions) == max(len(paths) for paths in whole.partitions) + 1
    _same(halves, whole)
    assert halves.partitions != whole.partitions


def test_a_chunk_routed_again_starts_afresh(tmp_path, bundles):
    files = write_export(bundles[:3], tmp_path / "export")
    plan = partition_files(files, tmp_path / "w", chunk_bytes=1 << 40)
    folder = tmp_path / "w" / "partitions"
    ids = orjson.dumps(_ids(plan))
    (folder / "patients.json").write_bytes(ids)
    task = partition_module.ChunkTask(0, files[0][1].absolute(), 0, None, folder / "chunk-0000",
                                      folder / "patients.json", hashlib.sha256(ids).hexdigest(), 1, 1 << 20)
    (folder / "chunk-0000" / "part-0003.ndjson").write_bytes(b"junk")
    first = _data(plan, 0)
    result = partition_module.route_chunk(task)
    assert result.lines == 3 and result.written == (0,) and result.counts["malformed"] == 0
    assert sorted((folder / "chunk-0000").iterdir()) == [folder / "chunk-0000" / "part-0000.ndjson"]
    assert _data(plan, 0) == first


def _ids(plan: PartitionPlan) -> list[str]:
    return sorted(_patient_of(line) for lines in _lines_by_partition(plan).values() for line in lines
                  if line.startswith(b'{"resourceType":"Patient"'))


@pytest.mark.parametrize(("content", "chunk_bytes"), [
    (b"a\nbb\nccc\n", 1), (b"a\nbb\nccc", 2), (b"a\r\nbb\r\n\r\nccc\r\n", 3), (b"\n\na\n", 1), (b"abc", 1),
])
def test_byte_ranges_own_each_line_once(tmp_path, content, chunk_bytes):
    path = tmp_path / "f.ndjson"
    path.write_bytes(content)
    ranges = partition_module._ranges(path, chunk_bytes)
    assert b"".join(line for start, end in ranges for line in partition_module._raw_lines(path, start, end)) == content


def test_a_file_listed_twice_and_an_odd_id_give_the_plan_of_one_pass(tmp_path):
    patient = b'{"resourceType": "Patient", "id": "a\\nb"}\n'
    observation = b'{"resourceType": "Observation", "id": "o%d", "subject": {"reference": "Patient/a\\nb"}}\n'
    files = [("Patient", tmp_path / "Patient.ndjson"), ("Observation", tmp_path / "Observation.ndjson")]
    files[0][1].write_bytes(patient)
    files[1][1].write_bytes(b"".join(observation % i for i in range(20)) + b"{oops\n" + observation % 20 + b"[]\n")
    files.append(files[1])  # the same file twice: routed twice, its lines numbered from 1 each time
    serial = partition_files(files, tmp_path / "w1", chunk_bytes=1 << 40)
    chunked = partition_files(files, tmp_path / "w2", chunk_bytes=100)
    _same(chunked, serial)
    assert serial.resources == {"Observation": 42, "Patient": 1}
    assert [e["where"] for e in serial.examples] == ["Observation.ndjson:21", "Observation.ndjson:23"] * 2
