"""``hcc-cds screen`` end to end: the real sekmet's Group ``$export`` with SMART Backend Services, the
partitions assessed in worker processes, the worklist in the database; checked against ``hcc-cds demo
--json`` (each cohort patient as of its study assessment date, as the demo assesses them). Then: a Dask
LocalCluster run gives the same rows, an incremental run compares with the previous one, and a run
killed mid-way resumes without redoing its finished partitions."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jwt.algorithms import RSAAlgorithm

from service.demo import as_transaction, demo_bundles
from service.settings import Settings
from tests.integration.fhir_server import load_resources, search_bundle, start_fhir_server
from tests.screening_export import demo_json_rows, write_as_of_file
from tests.unit.service.screening.test_backend_auth import pem

STATIC_TOKEN = "loader-static-token"
GROUP = "hcc-cohort"
CLIENT_ID = "hcc-screen"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """sekmet with the 37 demo and cohort patients, a Group of the 34 cohort patients, and a backend client."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    root = tmp_path_factory.mktemp("screen-e2e")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = root / "bulk-client.pem"
    key_file.write_text(pem(key).get_secret_value())
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "alg": "RS384", "kid": "screen"}
    server = start_fhir_server(
        root / "fhir", bearer_tokens=[STATIC_TOKEN],
        smart_clients=[{"client_id": CLIENT_ID, "jwks": {"keys": [jwk]}, "scopes": "system/*.read"}],
    )
    today = Settings().today()
    bundles = demo_bundles(today)
    cohort = [b["entry"][0]["resource"]["id"] for b in bundles if b["entry"][0]["resource"]["id"].startswith("cohort-")]
    group = {"resourceType": "Group", "id": GROUP, "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in cohort]}
    transaction = as_transaction(bundles)
    transaction["entry"].append({"resource": group, "request": {"method": "PUT", "url": f"Group/{GROUP}"}})
    server.load(transaction, token=STATIC_TOKEN)
    demo = demo_json_rows(today)
    as_of = write_as_of_file(root / "as_of.csv", demo)
    env = {
        **os.environ,
        "HCC_DATABASE_URL": f"sqlite:///{root}/hcc.sqlite3",
        "HCC_SCREEN_WORK_DIR": str(root / "work"),
        "HCC_BULK_CLIENT_ID": CLIENT_ID,
        "HCC_BULK_PRIVATE_KEY_FILE": str(key_file),
        "HCC_BULK_KEY_ID": "screen",
        "HCC_BULK_ALG": "RS384",
        "HCC_SCREEN_PATIENTS_PER_PARTITION": "5",
    }
    yield {"server": server, "root": root, "env": env, "demo": demo, "as_of": as_of, "cohort": cohort}
    server.stop()


def screen(site, *args: str, timeout: float = 300) -> dict:
    command = [sys.executable, "-m", "service.cli", "screen", "--no-progress", *args]
    done = subprocess.run(command, env=site["env"], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    assert CLIENT_ID not in done.stderr or "BEGIN" not in done.stderr  # the key never reaches a log
    return json.loads(done.stdout.strip().splitlines()[-1])


def worklist(path: Path) -> dict[str, dict]:
    with path.open(newline="") as rows:
        return {row["patient_id"]: row for row in csv.DictReader(rows)}


@pytest.fixture(scope="module")
def first_run(site):
    out = site["root"] / "first.csv"
    summary = screen(site, "--fhir", site["server"].base_url, "--group", GROUP, "--as-of-file", str(site["as_of"]),
                     "--workers", "2", "--csv", str(out), "--jsonl", str(site["root"] / "first.jsonl"))
    return summary, worklist(out)


def test_the_worklist_says_what_the_demo_says_of_each_cohort_patient(site, first_run):
    summary, rows = first_run
    assert summary["status"] == "complete" and summary["errors"] == 0
    assert sorted(rows) == sorted(site["cohort"])  # the Group's members, and only them
    for pid, demo in site["demo"].items():
        row = rows[pid]
        assert row["as_of"] == demo["assessment_date"], pid
        assert (row["recommendation"], row["tace_resistance"], row["mrecist"]) == (
            demo["recommendation"], demo["tace_resistance"], demo["mrecist"] or ""), pid
    notes = summary["counts"]["export"]["notes"]
    assert any("BodyStructure absent from the Group export" in n for n in notes)  # lesions completed


def test_a_dask_local_cluster_gives_the_same_rows(site, first_run):
    out = site["root"] / "dask.csv"
    summary = screen(site, "--fhir", site["server"].base_url, "--group", GROUP, "--as-of-file", str(site["as_of"]),
                     "--scheduler", "local-cluster", "--workers", "2", "--csv", str(out))
    assert summary["status"] == "complete"
    dask_rows = worklist(out)
    _, local_rows = first_run
    volatile = {"changes_since_previous_run"}
    assert {p: {k: v for k, v in r.items() if k not in volatile} for p, r in dask_rows.items()} == {
        p: {k: v for k, v in r.items() if k not in volatile} for p, r in local_rows.items()}


def test_an_incremental_run_lays_the_changes_over_the_previous_runs_files(site, first_run):
    """One patient's record changes on the server (a new name: no clinical difference); `--since auto` downloads
    only what changed since the previous run's transactionTime, and every patient is still screened from their
    whole record (the delta laid over the previous run's files): without that, 33 patients would be missing."""
    server = site["server"]
    patient = search_bundle(server, "Patient/cohort-07", token=STATIC_TOKEN)
    patient["name"] = [{"family": "Changed", "given": ["Incremental"]}]
    load_resources(server, [patient], token=STATIC_TOKEN)
    out = site["root"] / "since.csv"
    summary = screen(site, "--fhir", server.base_url, "--group", GROUP, "--as-of-file", str(site["as_of"]),
                     "--since", "auto", "--csv", str(out))
    assert summary["status"] == "complete"
    assert any(n.startswith("incremental: the export since") for n in summary["counts"]["export"]["notes"])
    assert summary["counts"]["partitioning"]["resources"]["Patient"] == len(site["cohort"])
    rows = worklist(out)
    _, before = first_run
    strip = {"changes_since_previous_run"}
    assert {p: {k: v for k, v in r.items() if k not in strip} for p, r in rows.items()} == {
        p: {k: v for k, v in r.items() if k not in strip} for p, r in before.items()}


def test_a_killed_run_resumes_without_redoing_finished_partitions(site):
    env = {**site["env"], "HCC_SCREEN_PATIENTS_PER_PARTITION": "1"}  # 34 partitions: a kill lands mid-run
    command = [sys.executable, "-m", "service.cli", "screen", "--no-progress", "--fhir", site["server"].base_url,
               "--group", GROUP, "--as-of-file", str(site["as_of"]), "--workers", "1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    work = site["root"] / "work"
    deadline = time.monotonic() + 240
    finished_before: list[Path] = []
    while time.monotonic() < deadline and process.poll() is None:
        runs = sorted(work.glob("*/results"), key=lambda p: p.stat().st_mtime)
        done = sorted(runs[-1].glob("part-*.jsonl")) if runs else []
        if len(done) >= 3:
            finished_before = done
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    _out, err = process.communicate(timeout=30)
    assert finished_before, (
        f"the run ended (exit {process.returncode}) before three partitions were done: nothing to resume\n"
        + err.decode(errors="replace")[-3000:]
    )
    run_id = finished_before[0].parent.parent.name
    summary = screen({**site, "env": env}, "--run-id", run_id)
    assert summary["status"] == "complete" and summary["patients"] == len(site["cohort"])
    # the partitions finished before the kill were stored again from their result files, not assessed again
    assert summary["counts"]["partitions_reused"] >= len(finished_before)
    assert summary["counts"]["partitions_reused"] < summary["counts"]["partitioning"]["partitions"]
    assert not (work / run_id / "partitions").exists()  # patient data on disk tidied once stored
