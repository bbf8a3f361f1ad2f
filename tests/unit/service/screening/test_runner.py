"""The partition runner: each patient as a hook call with full prefetch would assess them; failures are rows."""

from __future__ import annotations

import pickle
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.screening.blobs import unpack
from service.screening.partition import partition_files, partition_of
from service.screening.runner import (
    AsOfPolicy,
    PartitionResult,
    PartitionSpec,
    WorkerSettings,
    run_partition,
)
from service.screening.summary import worklist_fields
from service.settings import Settings
from tests.screening_export import DAY, demo_export_bundles, write_export

VOLATILE = frozenset({"assessment_id", "links", "build"})  # per stored assessment, and the commit


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@pytest.fixture(scope="module")
def bundles() -> list[dict]:
    return demo_export_bundles(DAY)


@pytest.fixture(scope="module")
def rest_answers(bundles) -> dict[str, dict]:
    """What ``POST /api/v1/assessments`` answers for each patient's Bundle at DAY (as tools/compare_assessments)."""
    settings = Settings(mode="demo", fhir_base_url=None, fhir_allowlist="", trusted_clients=None,
                        clinical_overrides=None,
                        database_url=f"sqlite:///{tempfile.mkdtemp()}/runner.sqlite3")
    out = {}
    with TestClient(create_app(settings, demo_day=DAY)) as client:
        for bundle in bundles:
            answer = client.post("/api/v1/assessments", params={"as_of": DAY.isoformat()}, json=bundle)
            assert answer.status_code == 200, answer.text
            out[answer.json()["patient_id"]] = answer.json()
    return out


def _specs(plan, results: Path, as_of: AsOfPolicy) -> list[PartitionSpec]:
    return [PartitionSpec(i, tuple(Path(p) for p in paths), results / f"part-{i:04d}.jsonl",
                          as_of.for_partition(i, len(plan.partitions)), WorkerSettings())
            for i, paths in enumerate(plan.partitions)]


def _rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_every_patient_gets_what_the_rest_api_answers(tmp_path, bundles, rest_answers):
    plan = partition_files(write_export(bundles, tmp_path / "export"), tmp_path, patients_per_partition=10)
    rows = []
    for spec in _specs(plan, tmp_path / "results", AsOfPolicy(DAY)):
        result = run_partition(spec)
        assert result == PartitionResult(spec.index, spec.result, plan.patients_per_partition[spec.index], 0,
                                         result.seconds, result.cpu_seconds)
        partition_rows = _rows(spec.result)
        assert [r["patient_id"] for r in partition_rows] == sorted(r["patient_id"] for r in partition_rows)
        assert {r["partition"] for r in partition_rows} <= {spec.index}
        rows += partition_rows

    assert sorted(r["patient_id"] for r in rows) == sorted(rest_answers) and len(rows) == 37
    for row in rows:
        rest = rest_answers[row["patient_id"]]
        assert row["error"] is None
        assert row["fields"] == worklist_fields(rest), row["patient_id"]
        assert _strip(unpack(row["assessment_z"])) == _strip(rest), row["patient_id"]
        assert row["as_of"] == DAY.isoformat() and row["rules_version"] == rest["versions"]["rules"]
        assert isinstance(unpack(row["page_z"]), dict) and "lesions" in unpack(row["page_z"])
        assert list(row) == ["patient_id", "as_of", "partition", "rules_version", "fields", "assessment_z", "page_z",
                             "error"]
    assert {r["fields"]["recommendation"] for r in rows} >= {"not-applicable", "on-sorafenib"}


def _one_partition(tmp_path: Path, bundles: list[dict], extra=None) -> PartitionSpec:
    plan = partition_files(write_export(bundles, tmp_path / "export", extra=extra), tmp_path, patients_per_partition=100)
    return _specs(plan, tmp_path / "results", AsOfPolicy(DAY))[0]


def test_a_broken_patient_is_an_error_row_and_the_others_are_assessed(tmp_path, bundles):
    broken = {"Patient": [b'{"resourceType": "Patient", "id": "not a valid id"}'],
              "Observation": [b'{"resourceType": "Observation", "id": "o1", "status": "final",'
                              b' "subject": {"reference": "Patient/not a valid id"}}']}
    spec = _one_partition(tmp_path, bundles[:3], extra=broken)
    result = run_partition(spec)
    assert (result.patients, result.errors) == (4, 1)
    rows = {r["patient_id"]: r for r in _rows(spec.result)}
    bad = rows.pop("not a valid id")
    assert bad["fields"] is None and bad["assessment_z"] is None and bad["page_z"] is None
    assert bad["error"]["kind"] == "PatientMismatchError"
    assert "not a valid FHIR id" in bad["error"]["message"] and "Traceback" not in bad["error"]["message"]
    assert bad["partition"] == 0 and bad["as_of"] == DAY.isoformat() and bad["rules_version"]
    assert len(rows) == 3 and all(r["error"] is None and r["fields"]["recommendation"] for r in rows.values())


def test_an_exception_in_the_assessment_is_an_error_row(tmp_path, bundles, monkeypatch):
    from service.screening import runner

    spec = _one_partition(tmp_path, bundles[:2])
    victim = sorted(_rows_ids(spec))[0]
    real = runner.record_from_prefetch

    def failing(patient_id, templates, prefetch):
        if patient_id == victim:
            raise KeyError("valueQuantity")
        return real(patient_id, templates, prefetch)

    monkeypatch.setattr(runner, "record_from_prefetch", failing)
    result = run_partition(spec)
    assert (result.patients, result.errors) == (2, 1)
    rows = {r["patient_id"]: r for r in _rows(spec.result)}
    assert rows[victim]["error"] == {"kind": "KeyError", "message": "'valueQuantity'"}
    assert all(r["error"] is None for pid, r in rows.items() if pid != victim)


def _rows_ids(spec: PartitionSpec) -> set[str]:
    return {line.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
            for path in spec.partitions for line in path.read_bytes().splitlines()
            if line.startswith(b'{"resourceType":"Patient"')}


def test_as_of_per_patient_then_default_then_today(tmp_path, bundles):
    spec = _one_partition(tmp_path, bundles[:3])
    ids = sorted(_rows_ids(spec))
    special = DAY - timedelta(days=400)
    policies = {
        "per-patient": (AsOfPolicy(DAY, {ids[0]: special}), {ids[0]: special, ids[1]: DAY, ids[2]: DAY}),
        "today": (AsOfPolicy(None), dict.fromkeys(ids, datetime.now(UTC).date())),
    }
    for policy, expected in policies.values():
        run_partition(PartitionSpec(0, spec.partitions, spec.result, policy, spec.worker))
        rows = _rows(spec.result)
        assert {r["patient_id"]: r["as_of"] for r in rows} == {p: d.isoformat() for p, d in expected.items()}
        assert all(unpack(r["assessment_z"])["as_of"] == r["as_of"] for r in rows)


def test_a_spec_carries_only_its_partitions_dates():
    dates = {f"p{n}": DAY for n in range(100)}
    parts = [AsOfPolicy(DAY, dates).for_partition(i, 4) for i in range(4)]
    assert sum(len(p.per_patient) for p in parts) == 100
    assert all(partition_of(pid, 4) == i for i, p in enumerate(parts) for pid in p.per_patient)


def test_rerun_rewrites_the_same_file_atomically(tmp_path, bundles):
    spec = _one_partition(tmp_path, bundles[:2])
    pickle.loads(pickle.dumps(spec))  # it travels to worker processes
    run_partition(spec)
    first = spec.result.read_bytes()
    run_partition(spec)
    assert spec.result.read_bytes() == first
    assert [p.name for p in spec.result.parent.iterdir()] == [spec.result.name]  # no temporary file left


@pytest.mark.parametrize("files", [1, 0])
def test_an_empty_partition_gives_an_empty_result(tmp_path, files):
    empty = tmp_path / "part-0003.ndjson"
    empty.write_bytes(b"")
    result = run_partition(PartitionSpec(3, (empty,) * files, tmp_path / "r" / "part-0003.jsonl", AsOfPolicy(DAY),
                                         WorkerSettings()))
    assert (result.patients, result.errors) == (0, 0) and result.result.read_bytes() == b""


def test_a_partition_cut_in_chunks_gives_the_same_rows(tmp_path, bundles):
    """A patient's lines spread over several chunk files (read in chunk order) give the rows of one file."""
    files = write_export(bundles[:8], tmp_path / "export")
    whole = partition_files(files, tmp_path / "w1", patients_per_partition=3, chunk_bytes=1 << 40)
    cut = partition_files(files, tmp_path / "w2", patients_per_partition=3, chunk_bytes=2000)
    assert max(len(paths) for paths in cut.partitions) > len(files)
    one = [run_partition(s).result.read_bytes() for s in _specs(whole, tmp_path / "r1", AsOfPolicy(DAY))]
    many = [run_partition(s).result.read_bytes() for s in _specs(cut, tmp_path / "r2", AsOfPolicy(DAY))]
    assert many == one and sum(len(rows.splitlines()) for rows in one) == 8


ROUTING_LINES = [
    b'{"resourceType": "Patient", "id": "p1"}',
    b'{"resourceType": "Patient", "id": ""}',
    b'{"resourceType": "Patient"}',
    b'{"resourceType": "Patient", "id": 7}',
    b'{"resourceType": "", "subject": {"reference": "Patient/p1"}}',
    b'{"resourceType": 3, "subject": {"reference": "Patient/p1"}}',
    b'{"subject": {"reference": "Patient/p1"}}',
    b'[{"resourceType": "Patient", "id": "p1"}]',
    b'"Patient"',
    b'{"resourceType": "Observation", "subject": {"reference": "Patient/p2"}}',
    b'{"resourceType": "Observation", "subject": {"reference": "http://x/fhir/Patient/p2/_history/3"}}',
    b'{"resourceType": "Observation", "subject": {"reference": "Group/g1"}, "patient": {"reference": "Patient/p3"}}',
    b'{"resourceType": "Observation", "subject": null, "patient": {"reference": "Patient/p3"}}',
    b'{"resourceType": "Observation", "subject": "Patient/p1", "patient": {"reference": "Patient/p3"}}',
    b'{"resourceType": "Observation", "subject": {"reference": 5}, "patient": {"reference": "Patient/p3"}}',
    b'{"resourceType": "Observation", "subject": {"display": "x"}}',
    b'{"resourceType": "Observation", "subject": {"reference": "Patient/"}}',
    b'{"resourceType": "Observation"}',
]


@pytest.mark.parametrize("line", ROUTING_LINES)
def test_a_parsed_line_goes_to_the_patient_the_partitioner_routed_it_to(line):
    from service.screening.partition import RoutingError, route
    from service.screening.runner import routed_patient

    try:
        expected = route(line).patient_id
    except RoutingError:
        expected = None
    assert routed_patient(orjson.loads(line)) == expected


def test_a_line_orjson_refuses_is_its_patients_error_row_as_before(tmp_path, bundles):
    from service.screening.runner import group_by_patient

    # not UTF-8 in an element the routing decoder skips: routed, but orjson refuses the line
    bad = b'{"resourceType": "Observation", "id": "o9", "subject": {"reference": "Patient/demo-eligible"}, "x": "\xff"}'
    groups = group_by_patient(bad + b"\n" + b'{"resourceType": "Patient", "id": "demo-eligible"}\n\n')
    assert isinstance(groups["demo-eligible"][0], orjson.JSONDecodeError)
    spec = _one_partition(tmp_path, bundles[:2], extra={"Observation": [bad]})
    result = run_partition(spec)
    rows = {r["patient_id"]: r for r in _rows(spec.result)}
    assert (result.patients, result.errors) == (2, 1)
    assert rows["demo-eligible"]["error"]["kind"] == "JSONDecodeError"
    assert "UTF-8" in rows["demo-eligible"]["error"]["message"]
