"""export_from_fhir / files_from_ndjson (service.screening.sources): lesion completion, re-kick-off, resume."""

from __future__ import annotations

import asyncio
import gzip
import json

import httpx
import pytest

from service.screening.bulk_client import BulkExportError, RetryPolicy
from service.screening.sources import ExportedFiles, export_from_fhir, export_types, files_from_ndjson
from tests.unit.service.screening.fake_bulk import BASE, BUCKET, DATA, FakeBulk, Sleeps, StaticAuth, ndjson

TYPES = ("Patient", "Condition", "BodyStructure")


def export(server: FakeBulk, dest, level="group", **kwargs) -> ExportedFiles:
    kwargs.setdefault("types", TYPES)
    return asyncio.run(
        export_from_fhir(
            BASE, dest, level=level, group_id="g1" if level == "group" else None, since=None, auth=StaticAuth(),
            transport=server.transport(), policy=RetryPolicy(sleep=Sleeps()), **kwargs,
        )
    )


def contents(result: ExportedFiles) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for rtype, path in result.files:
        out.setdefault(rtype, []).extend(json.loads(line) for line in path.read_text().splitlines())
    return out


def kickoffs(server: FakeBulk) -> list[str]:
    return [url for method, url, _ in server.requests if url.endswith("$export")]


def test_default_types_are_the_mappings():
    assert set(export_types()) == {"Patient", "Observation", "Condition", "Procedure", "MedicationRequest",
                                   "MedicationStatement", "BodyStructure", "AllergyIntolerance"}


def test_group_export_completed_with_system_level_lesions(tmp_path):
    server = FakeBulk()
    result = export(server, tmp_path)
    assert contents(result) == DATA
    assert [t for t, _ in result.files] == ["BodyStructure", "Condition", "Patient"]
    assert [p.name for _, p in result.files] == ["BodyStructure-system-1.ndjson", "Condition-1.ndjson", "Patient-1.ndjson"]
    assert kickoffs(server) == [f"{BASE}/Group/g1/$export", f"{BASE}/$export"]
    assert server.jobs[1]["types"] == ["BodyStructure"]
    assert result.notes == ("BodyStructure absent from the Group export: 5 taken from a system-level export "
                            "(only in-scope patients' are kept)",)
    assert result.transaction_time == "2026-12-03T07:42:00.000Z"  # the main export's, not the lesions'


@pytest.mark.parametrize("level, in_scope, types", [("system", False, TYPES), ("group", True, TYPES), ("group", False, ("Patient",))])
def test_no_lesion_completion_when_not_needed(tmp_path, level, in_scope, types):
    server = FakeBulk(lesions_in_scope=in_scope)
    result = export(server, tmp_path, level=level, types=types)
    assert len(kickoffs(server)) == 1 and result.notes == ()


def test_lesion_completion_can_be_switched_off(tmp_path):
    server = FakeBulk()
    result = export(server, tmp_path, complete_lesions=False)
    assert "BodyStructure" not in contents(result) and len(kickoffs(server)) == 1


def test_a_gone_file_kicks_off_once_more(tmp_path):
    server = FakeBulk()
    server.files = {"Condition.ndjson": ["404"]}
    result = export(server, tmp_path, types=("Patient", "Condition"))
    assert contents(result) == {"Patient": DATA["Patient"], "Condition": DATA["Condition"]}
    assert len(kickoffs(server)) == 2
    assert sorted(p.name for p in tmp_path.glob("*.ndjson")) == ["Condition-1.ndjson", "Patient-1.ndjson"]


def test_gone_again_after_the_new_kickoff_fails_clearly(tmp_path):
    server = FakeBulk()
    server.files = {"Condition.ndjson": ["404", "404"]}
    with pytest.raises(BulkExportError, match=r"Condition.ndjson is gone \(HTTP 404\); giving up after 2 kick-off"):
        export(server, tmp_path, types=("Patient", "Condition"))


def test_error_files_are_returned(tmp_path):
    server = FakeBulk()
    server.errors = [{"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "diagnostics": "Ignored: _elements"}]}]
    assert export(server, tmp_path, types=("Patient",)).errors == ("warning: Ignored: _elements",)


def test_resume_reuses_finished_downloads_and_the_saved_status_url(tmp_path):
    server = FakeBulk()
    server.files = {"Condition.ndjson": ["503", "503", "503"]}
    with pytest.raises(BulkExportError, match="Condition.ndjson could not be downloaded whole"):
        export(server, tmp_path, types=("Patient", "Condition"))
    saved = json.loads((tmp_path / "export.json").read_text())["exports"]["main"]
    assert saved["status_url"] == f"{BASE}/bulk-status/0" and list(saved["files"].values()) == [{"name": "Patient-1.ndjson", "lines": 3}]

    server.requests.clear()
    result = export(server, tmp_path, types=("Patient", "Condition"))
    assert contents(result)["Condition"] == DATA["Condition"]
    fetched = [url for _, url, _ in server.requests]
    assert not kickoffs(server) and not any(u.endswith("Patient.ndjson") for u in fetched)
    assert any(u.endswith("Condition.ndjson") for u in fetched)

    server.requests.clear()  # done: a third call needs nothing from the server
    assert contents(export(server, tmp_path, types=("Patient", "Condition"))) == contents(result)
    assert server.requests == []


def test_resume_kicks_off_again_when_the_server_forgot_the_export(tmp_path):
    server = FakeBulk()
    server.status = [httpx.Response(500, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "diagnostics": "crash"}]})]
    with pytest.raises(BulkExportError, match="crash"):
        export(server, tmp_path, types=("Patient",))
    server.forget_jobs()  # sekmet restarted
    result = export(server, tmp_path, types=("Patient",))
    assert contents(result) == {"Patient": DATA["Patient"]} and len(kickoffs(server)) == 2


def test_another_request_on_the_same_dest_starts_afresh(tmp_path):
    server = FakeBulk()
    export(server, tmp_path, types=("Patient",))
    result = export(server, tmp_path, types=("Condition",))
    assert [t for t, _ in result.files] == ["Condition"] and len(kickoffs(server)) == 2
    assert not (tmp_path / "Patient-1.ndjson").exists()


def test_folder_of_ndjson_files(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Patient.ndjson").write_bytes(ndjson(DATA["Patient"]))
    (folder / "Condition-002.ndjson").write_bytes(ndjson(DATA["Condition"][:1]))
    (folder / "Condition-001.ndjson").write_bytes(ndjson(DATA["Condition"][1:]))
    with gzip.open(folder / "BodyStructure.ndjson.gz", "wb") as gz:
        gz.write(ndjson(DATA["BodyStructure"]))
    (folder / "OperationOutcome.ndjson").write_bytes(
        ndjson([{"resourceType": "OperationOutcome", "issue": [{"severity": "error", "diagnostics": "Observation/9 unreadable"}]}])
    )
    (folder / "README.txt").write_text("hi")
    result = asyncio.run(files_from_ndjson(str(folder), tmp_path / "work"))
    assert [(t, p.name) for t, p in result.files] == [
        ("BodyStructure", "BodyStructure.ndjson"), ("Condition", "Condition-001.ndjson"),
        ("Condition", "Condition-002.ndjson"), ("Patient", "Patient.ndjson"),
    ]
    assert result.files[0][1].parent == tmp_path / "work" and result.files[3][1].parent == folder  # used in place
    assert result.errors == ("error: Observation/9 unreadable",)
    assert result.notes == (f"1 entries of {folder} skipped (not <Type>….ndjson): README.txt",)
    assert contents(result)["BodyStructure"] == DATA["BodyStructure"]


def test_folder_without_ndjson_is_refused(tmp_path):
    with pytest.raises(BulkExportError, match="no <Type>.ndjson files"):
        asyncio.run(files_from_ndjson(str(tmp_path), tmp_path / "work"))
    with pytest.raises(BulkExportError, match="is not a folder"):
        asyncio.run(files_from_ndjson(str(tmp_path / "nope"), tmp_path / "work"))


def test_manifest_url(tmp_path):
    manifest = {
        "transactionTime": "2026-12-01T00:00:00.000Z", "requiresAccessToken": False, "error": [],
        "output": [{"type": "Patient", "url": f"{BUCKET}/Patient.ndjson", "count": 3}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("manifest.json"):
            return httpx.Response(200, json=manifest)
        return httpx.Response(200, content=ndjson(DATA["Patient"]))

    result = asyncio.run(files_from_ndjson(f"{BUCKET}/manifest.json", tmp_path, transport=httpx.MockTransport(handler)))
    assert contents(result) == {"Patient": DATA["Patient"]} and result.transaction_time == "2026-12-01T00:00:00.000Z"


def test_a_stopped_run_cancels_the_export_on_the_server(tmp_path):
    server = FakeBulk()
    server.status = [httpx.Response(202, headers={"Retry-After": "1"}) for _ in range(500)]

    async def tiny_sleep(_seconds: float) -> None:
        await asyncio.sleep(0.005)

    async def main():
        task = asyncio.create_task(export_from_fhir(
            BASE, tmp_path, level="system", group_id=None, since=None, auth=StaticAuth(), transport=server.transport(),
            policy=RetryPolicy(sleep=tiny_sleep), types=("Patient",),
        ))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert ("DELETE", f"{BASE}/bulk-status/0") in [(m, u) for m, u, _ in server.requests]
