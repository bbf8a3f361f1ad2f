"""The SMART app's save against the real sekmet (no auth, as behind the SMART launcher's proxy).

The scenario (tests/smart/scenario.py) is loaded; a hook-like gather and assessment says SD / not-met; the
form's transaction is written through service.smart.fhir_writer; sekmet then holds the two TumorSize,
the Procedures at version 2 with both codes and one Provenance naming them and the author; a second save
built from the same (now stale) form is refused 412 and changes nothing; a new gather says PD / met. The
tests run in file order: each starts from what the previous one left.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rules.findings import Status
from service.cds.services import patient_record_templates
from service.fhir.client import HttpFhirSource
from service.gather import PatientRecord, gather_patient_record
from service.knowledge import load_knowledge
from service.pipeline import Assessor
from service.settings import Settings
from service.smart.capture import CaptureContext, CaptureInput, build_transaction, capture_context, read_form
from service.smart.fhir_writer import WriteRefused, WriteResult, write_transaction
from tests.integration.fhir_server import start_fhir_server
from tests.smart.scenario import LESION_A, SCENARIO_PATIENT, TACE_SESSIONS, progression_form, scenario_bundle

AUTHOR = "Practitioner/example"
TOKEN = "launcher-user-token"  # sekmet runs with no auth (the launcher's proxy strips it): any token is accepted
TUMOUR_SIZE = "http://loinc.org|21889-1"
SEGMENT_VII = "277961009"

TODAY = Settings().today()
KNOWLEDGE = load_knowledge()


@pytest.fixture(scope="module")
def sekmet(tmp_path_factory):
    server = start_fhir_server(tmp_path_factory.mktemp("smart-capture"))
    server.load(scenario_bundle(TODAY))
    yield server
    server.stop()


def gather(base: str) -> PatientRecord:
    async def main():
        async with httpx.AsyncClient() as client:
            source = HttpFhirSource(client, base, deadline_seconds=30)
            return await gather_patient_record(SCENARIO_PATIENT, patient_record_templates(KNOWLEDGE), None, source,
                                               deadline_seconds=30)
    return asyncio.run(main())


def write(base: str, bundle: dict) -> WriteResult:
    async def main():
        async with httpx.AsyncClient() as client:
            return await write_transaction(client, base, TOKEN, bundle, timeout=30)
    return asyncio.run(main())


def assess(record: PatientRecord):
    return Assessor(KNOWLEDGE, strict=True, build="test")(record, TODAY)


def form_bundle(ctx: CaptureContext, fields: dict[str, str]) -> dict:
    inp = read_form(fields, ctx)
    assert isinstance(inp, CaptureInput), inp
    return build_transaction(inp, ctx, author=AUTHOR, app_name="hcc-cds", app_version="test", now=datetime.now(UTC))


def search(server, query: str) -> list[dict]:
    r = httpx.get(f"{server.base_url}/{query}", params={"_count": "1000"}, headers={"Accept": "application/fhir+json"}, timeout=30)
    r.raise_for_status()
    return [e["resource"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]


def read(server, ref: str) -> dict:
    r = httpx.get(f"{server.base_url}/{ref}", headers={"Accept": "application/fhir+json"}, timeout=30)
    r.raise_for_status()
    return r.json()


def state(server) -> dict:
    """What a refused save must leave unchanged: counts, and the Procedures' versions and codes."""
    procedures = {pid: read(server, f"Procedure/{pid}") for pid in TACE_SESSIONS}
    return {
        "observations": len(search(server, f"Observation?patient={SCENARIO_PATIENT}")),
        "conditions": len(search(server, f"Condition?patient={SCENARIO_PATIENT}")),
        "body_structures": len(search(server, "BodyStructure")),
        "provenances": len(search(server, "Provenance")),
        "procedures": {pid: (p["meta"]["versionId"], [c["code"] for c in p["code"]["coding"]]) for pid, p in procedures.items()},
    }


@pytest.fixture(scope="module")
def shown(sekmet):
    """The form as shown before the first save: the record gathered then, and its context."""
    record = gather(sekmet.base_url)
    return record, capture_context(SCENARIO_PATIENT, record.resources, TODAY, KNOWLEDGE)


def test_the_save_writes_what_the_assessment_then_reads(sekmet, shown):
    record, ctx = shown
    before = assess(record)
    assert (before.mrecist.category, before.tace_resistance.status) == ("SD", Status.NOT_MET)
    assert [t.procedure_id for t in ctx.unconfirmed_tace] == list(TACE_SESSIONS)

    bundle = form_bundle(ctx, progression_form(ctx))
    result = write(sekmet.base_url, bundle)
    assert len(result.written) == len(bundle["entry"]) == 5
    assert [w.split("/_history/")[0].split("/")[0] for w in result.written] == [
        "Observation", "Observation", "Procedure", "Procedure", "Provenance"]
    assert all(w.endswith("/_history/2") for w in result.written if w.startswith("Procedure/"))

    day = (TODAY + timedelta(days=-20)).isoformat()
    sizes = [o for o in search(sekmet, f"Observation?patient={SCENARIO_PATIENT}&code={TUMOUR_SIZE}")
             if o["status"] == "final" and o["effectiveDateTime"] == day]
    assert sorted(o["component"][0]["valueQuantity"]["value"] for o in sizes) == [22, 40]
    for pid in TACE_SESSIONS:
        procedure = read(sekmet, f"Procedure/{pid}")
        assert procedure["meta"]["versionId"] == "2"
        assert [c["code"] for c in procedure["code"]["coding"]] == ["37243", "441525007"]
    (provenance,) = search(sekmet, f"Provenance?target=Procedure/{TACE_SESSIONS[0]}")
    assert provenance["agent"][0]["who"]["reference"] == AUTHOR
    assert provenance["agent"][1]["who"]["display"] == "hcc-cds test"
    targets = {t["reference"].split("/_history/")[0] for t in provenance["target"]}
    assert targets == {f"Observation/{o['id']}" for o in sizes} | {f"Procedure/{pid}" for pid in TACE_SESSIONS}
    assert len(search(sekmet, "Provenance")) == 1

    after = assess(gather(sekmet.base_url))
    assert (after.mrecist.category, after.tace_resistance.status) == ("PD", Status.MET)


def test_a_save_from_the_stale_form_is_refused_412_and_changes_nothing(sekmet, shown):
    _, stale = shown  # the Procedures were version 1 when this form was shown; they are 2 now
    unchanged = state(sekmet)
    with pytest.raises(WriteRefused) as refused:
        write(sekmet.base_url, form_bundle(stale, progression_form(stale)))
    assert (refused.value.kind, refused.value.status, refused.value.written) == ("conflict", 412, ())
    assert "changed since the form was shown" in refused.value.message and 'If-Match W/"1"' in refused.value.message
    assert state(sekmet) == unchanged


def test_a_new_lesion_s_focus_becomes_its_relative_reference_and_the_gather_finds_it(sekmet):
    record = gather(sekmet.base_url)
    ctx = capture_context(SCENARIO_PATIENT, record.resources, TODAY, KNOWLEDGE)
    day = (TODAY + timedelta(days=-10)).isoformat()
    bundle = form_bundle(ctx, {"study_date": day, "modality": "MRI", "new_location__0": SEGMENT_VII, "new_size__0": "14",
                               f"size__{LESION_A}": "41"})
    result = write(sekmet.base_url, bundle)
    body_id = next(w for w in result.written if w.startswith("BodyStructure/")).split("/")[1]
    observations = [o for o in search(sekmet, f"Observation?patient={SCENARIO_PATIENT}&code={TUMOUR_SIZE}")
                    if o["effectiveDateTime"] == day]
    assert sorted(o["focus"][0]["reference"] for o in observations) == sorted(
        [f"BodyStructure/{body_id}", f"BodyStructure/{LESION_A}"])
    lesions = capture_context(SCENARIO_PATIENT, gather(sekmet.base_url).resources, TODAY, KNOWLEDGE).lesions
    new = next(x for x in lesions if x.body_structure_id == body_id)
    assert (new.location_code, new.in_liver, str(new.last_date), new.last_size_mm) == (SEGMENT_VII, True, day, 14)
