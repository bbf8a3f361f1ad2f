"""The partitioner: whole patients per partition, problems counted (never fatal), resume, bounded writers."""

from __future__ import annotations

import builtins
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


def _lines_by_partition(plan: PartitionPlan) -> dict[int, list[bytes]]:
    return {i: Path(p).read_bytes().splitlines() for i, p in enumerate(plan.partitions)}


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
    assert odd in Path(plan.partitions[0]).read_bytes().splitlines()


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
    mtimes = [Path(p).stat().st_mtime_ns for p in first.partitions]

    def no_routing(*args, **kwargs):
        raise AssertionError("partitioned again")

    monkeypatch.setattr(partition_module, "_route_file", no_routing)
    again = partition_files(files, tmp_path / "work", patients_per_partition=10)
    assert again == first
    assert [Path(p).stat().st_mtime_ns for p in again.partitions] == mtimes


def test_partitions_without_done_are_discarded_and_redone(tmp_path, bundles):
    files = write_export(bundles, tmp_path / "export")
    folder = tmp_path / "work" / "partitions"
    folder.mkdir(parents=True)
    (folder / "part-0000.ndjson").write_bytes(b'{"resourceType": "Patient", "id": "half-written"}\n')
    (folder / "part-0007.ndjson").write_bytes(b"junk")
    plan = partition_files(files, tmp_path / "work", patients_per_partition=10)
    assert len(plan.partitions) == 4
    assert not (folder / "part-0007.ndjson").exists()
    assert all(b"half-written" not in Path(p).read_bytes() for p in plan.partitions)
    assert sum(len(Path(p).read_bytes().splitlines()) for p in plan.partitions) == sum(len(b["entry"]) for b in bundles)


def test_gzipped_files_give_the_same_partitions(tmp_path, bundles):
    plain = partition_files(write_export(bundles, tmp_path / "plain"), tmp_path / "w1", patients_per_partition=10)
    gz = partition_files(write_export(bundles, tmp_path / "gz", gzipped=True), tmp_path / "w2",
                         patients_per_partition=10)
    assert [Path(p).read_bytes() for p in plain.partitions] == [Path(p).read_bytes() for p in gz.partitions]


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
    assert [Path(p).read_bytes() for p in plan.partitions] == [Path(p).read_bytes() for p in reference.partitions]


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
    assert Path(plan.partitions[0]).is_absolute() and Path(plan.partitions[0]).read_bytes() == b""
