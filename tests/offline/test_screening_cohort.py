"""The synthetic Bulk Data export (offline.screening_cohort): a consistent export, deterministic, streamed in
flat memory, with the intended mix, whose clones answer as their source records do (through the REST API)."""

from __future__ import annotations

import csv
import gzip
import re
import statistics
import tempfile
import tracemalloc
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from offline.screening_cohort import DAY, Template, generate, load_templates, main, plan_patient
from service.screening.summary import worklist_fields

PATIENTS = 300
SEED = 11
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@pytest.fixture(scope="module")
def templates() -> list[Template]:
    return load_templates()


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory, templates: list[Template]) -> Path:
    out = tmp_path_factory.mktemp("export") / "out"
    generate(PATIENTS, SEED, out, templates=templates)
    return out


def _resources(out: Path) -> list[dict[str, Any]]:
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    found = []
    for entry in manifest["output"]:
        lines = (out / entry["url"]).read_bytes().splitlines()
        assert len(lines) == entry["count"], entry
        found += [orjson.loads(line) for line in lines]
    return found


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _owner(resource: dict[str, Any]) -> str:
    if resource["resourceType"] == "Patient":
        return resource["id"]
    owner = resource.get("subject") or resource.get("patient") or {}
    return str(owner["reference"]).removeprefix("Patient/")


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == "reference"] + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def _dates(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [d for v in value.values() for d in _dates(v)]
    if isinstance(value, list):
        return [d for v in value for d in _dates(v)]
    return [value] if isinstance(value, str) and _DATE.match(value) else []


def test_the_manifest_is_a_complete_status_body_naming_each_file_once(export):
    manifest = orjson.loads((export / "manifest.json").read_bytes())
    assert set(manifest) == {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert manifest["requiresAccessToken"] is False and manifest["error"] == []
    assert [o["url"] for o in manifest["output"]] == [f"{o['type']}.ndjson" for o in manifest["output"]]
    assert {o["type"] for o in manifest["output"]} >= {"Patient", "Observation", "Procedure", "Condition",
                                                       "BodyStructure", "MedicationRequest"}
    assert next(o["count"] for o in manifest["output"] if o["type"] == "Patient") == PATIENTS
    assert sorted(p.name for p in export.glob("*.ndjson")) == sorted(o["url"] for o in manifest["output"])


def test_every_id_is_unique_and_every_reference_resolves_inside_the_export(export):
    resources = _resources(export)
    keys = [f"{r['resourceType']}/{r['id']}" for r in resources]
    assert len(keys) == len(set(keys))
    known = set(keys)
    for resource in resources:
        owner = _owner(resource)
        prefix = owner.split("-", 1)[0] + "-"
        assert resource["id"].startswith(prefix), (resource["id"], owner)
        for reference in _references(resource):
            assert reference in known, (resource["id"], reference)
            assert reference.split("/", 1)[1].startswith(prefix), (resource["id"], reference)  # never another patient
    identifiers = [(r["resourceType"], i["value"]) for r in resources for i in r.get("identifier", ())]
    assert len(identifiers) == len(set(identifiers))


def test_dates_are_valid_moved_back_and_never_before_birth(export):
    by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resource in _resources(export):
        by_patient[_owner(resource)].append(resource)
    for patient_id, resources in by_patient.items():
        birth = date.fromisoformat(next(r["birthDate"] for r in resources if r["resourceType"] == "Patient"))
        assert date(1900, 1, 1) < birth < DAY - timedelta(days=18 * 365)
        for text in (d for r in resources for d in _dates(r)):
            when = date.fromisoformat(text[:10])  # raises on an invalid date
            assert birth <= when <= DAY, (patient_id, text)


def test_the_as_of_file_moves_each_source_date_with_its_record(export, templates):
    as_of = {row["patient"]: date.fromisoformat(row["as_of"]) for row in _rows(export / "as_of.csv")}
    sources = {t.patient_id: t for t in templates}
    rows = _rows(export / "sources.csv")
    assert len(as_of) == len(rows) == PATIENTS
    for row in rows:
        assert as_of[row["patient"]] == sources[row["source"]].as_of + timedelta(days=int(row["shift_days"]))


def test_the_same_seed_gives_the_same_bytes_and_gzip_the_same_lines(tmp_path, templates):
    generate(40, 5, tmp_path / "a", templates=templates)
    generate(40, 5, tmp_path / "b", templates=templates, compress=True)
    generate(40, 6, tmp_path / "c", templates=templates)
    for plain in (tmp_path / "a").iterdir():
        if plain.suffix == ".ndjson":
            assert gzip.decompress((tmp_path / "b" / f"{plain.name}.gz").read_bytes()) == plain.read_bytes()
        elif plain.name != "manifest.json":  # it names the files, .ndjson.gz in b
            assert (tmp_path / "b" / plain.name).read_bytes() == plain.read_bytes()
    assert (tmp_path / "c" / "Patient.ndjson").read_bytes() != (tmp_path / "a" / "Patient.ndjson").read_bytes()


def test_the_mix_and_the_record_sizes(templates):
    plans = [plan_patient(3, n, templates) for n in range(20_000)]
    shares = Counter(p.variant for p in plans)
    assert abs(shares["cohort"] / len(plans) - 0.70) < 0.02
    assert abs(shares["no-tace"] / len(plans) - 0.20) < 0.015
    assert abs(shares["no-labs"] / len(plans) - 0.10) < 0.01
    heavy = [p for p in plans if p.observations >= 3000]
    assert 0.003 < len(heavy) / len(plans) < 0.008 and all(p.observations <= 5000 for p in heavy)
    sizes = [p.observations for p in plans]
    assert 30 <= statistics.median(sizes) <= 120
    assert sum(10 <= s <= 400 for s in sizes) / len(sizes) > 0.95  # most: tens to a few hundred
    assert len({p.template for p in plans}) == len(templates)


def test_a_heavy_patient_is_written_with_its_thousands_of_observations(tmp_path, templates):
    index = next(n for n in range(5000) if plan_patient(SEED, n, templates).observations >= 3000)
    plan = plan_patient(SEED, index, templates)
    generate(index + 1, SEED, tmp_path / "out", templates=templates)
    rows = _rows(tmp_path / "out" / "sources.csv")
    assert int(rows[index]["observations"]) == plan.observations
    assert 3000 <= plan.observations <= 5000


def _peak(patients: int, templates: list[Template]) -> int:
    out = Path(tempfile.mkdtemp()) / "out"
    tracemalloc.start()
    try:
        generate(patients, SEED, out, templates=templates)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_whatever_the_number_of_patients(templates):
    small, large = _peak(200, templates), _peak(2000, templates)  # ten times the patients and the heavy records
    assert sum(plan_patient(SEED, n, templates).observations >= 3000 for n in range(2000)) >= 5
    assert large < small * 1.25 + 1_000_000, (small, large)


def test_the_command_refuses_a_directory_in_use_and_bad_counts(tmp_path, capsys):
    assert main(["--patients", "3", "--seed", "1", "--out", str(tmp_path / "out")]) == 0
    assert main(["--patients", "3", "--seed", "1", "--out", str(tmp_path / "out")]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert main(["--patients", "0", "--out", str(tmp_path / "other")]) == 2
    assert "at least 1" in capsys.readouterr().err


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from fastapi.testclient import TestClient

    from service.main import create_app
    from service.settings import Settings

    database = tmp_path_factory.mktemp("db") / "screening-cohort.sqlite3"
    settings = Settings(mode="demo", fhir_base_url=None, fhir_allowlist="", trusted_clients=None,
                        clinical_overrides=None, database_url=f"sqlite:///{database}")
    with TestClient(create_app(settings, demo_day=DAY)) as test_client:
        yield test_client


def _answer(client, resources: list[dict[str, Any]], as_of: date) -> dict[str, Any]:
    """recommendation, tace_resistance, mrecist and missing of ``POST /api/v1/assessments`` (a collection Bundle)."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    response = client.post("/api/v1/assessments", params={"as_of": as_of.isoformat()}, json=bundle)
    assert response.status_code == 200, response.text[:500]
    fields = worklist_fields(response.json())
    return {key: fields[key] for key in ("recommendation", "tace_resistance", "mrecist", "missing")}


def _clones(export: Path, variant: str, sizes: str, count: int) -> list[dict[str, str]]:
    """Up to ``count`` clones of the variant from different sources: ``same`` (unmodified) or ``longer`` records."""
    picked: dict[str, dict[str, str]] = {}
    for row in _rows(export / "sources.csv"):
        same = row["observations"] == row["source_observations"]
        longer = int(row["observations"]) > int(row["source_observations"])
        if row["variant"] == variant and (same if sizes == "same" else longer) and row["source"] not in picked:
            picked[row["source"]] = row
    return list(picked.values())[:count]


@pytest.mark.parametrize("sizes", ["same", "longer"])
def test_cohort_like_clones_answer_as_their_source_at_the_moved_date(client, export, templates, sizes):
    """Unmodified clones (and clones with a longer history before their first visit): same recommendation,
    TACE resistance and mRECIST as the source record, each as of its own (moved) assessment date."""
    by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resource in _resources(export):
        by_patient[_owner(resource)].append(resource)
    as_of = {row["patient"]: date.fromisoformat(row["as_of"]) for row in _rows(export / "as_of.csv")}
    sources = {t.patient_id: t for t in templates}
    clones = _clones(export, "cohort", sizes, 5)
    assert len(clones) >= 3
    for row in clones:
        source = sources[row["source"]]
        expected = _answer(client, [source.patient, *source.others], source.as_of)
        assert int(row["shift_days"]) != 0
        assert _answer(client, by_patient[row["patient"]], as_of[row["patient"]]) == expected, row


def test_no_tace_clones_are_not_applicable_and_no_labs_clones_miss_child_pugh(client, export):
    by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resource in _resources(export):
        by_patient[_owner(resource)].append(resource)
    as_of = {row["patient"]: date.fromisoformat(row["as_of"]) for row in _rows(export / "as_of.csv")}
    for row in _clones(export, "no-tace", "same", 3):
        assert _answer(client, by_patient[row["patient"]], as_of[row["patient"]])["recommendation"] == "not-applicable"
    for row in _clones(export, "no-labs", "same", 3):
        assert "child-pugh" in _answer(client, by_patient[row["patient"]], as_of[row["patient"]])["missing"]
