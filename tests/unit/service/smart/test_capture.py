"""service.smart.capture: the form's checks at their limits, the codes from the value sets, and a Bundle the
mapping reads back into the assessment the clinician meant (the scenario: SD -> PD, not-met -> met)."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from rules.findings import Status
from rules.knowledge import Knowledge
from service.gather import PatientRecord
from service.knowledge import load_knowledge
from service.mapping import map_to_snapshot
from service.pipeline import Assessor
from service.smart import capture
from service.smart.capture import (
    FORM_ERROR,
    CaptureBuildError,
    CaptureErrors,
    CaptureInput,
    build_transaction,
    capture_context,
    describe_writes,
    read_form,
)
from tests.smart.scenario import (
    LESION_A,
    LESION_B,
    SCENARIO_PATIENT,
    TACE_SESSIONS,
    progression_form,
    scenario_resources,
)

TODAY = date(2026, 12, 3)
NOW = datetime(2026, 12, 3, 14, 0, tzinfo=timezone(timedelta(hours=1)))
DIAGNOSIS = TODAY - timedelta(days=200)
LAST_STUDY = TODAY - timedelta(days=50)
AUTHOR = "Practitioner/example"
LUNG, ADRENAL, SEGMENT_VII = "39607008", "23451007", "277961009"


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load_knowledge()


def served(resources: list[dict]) -> list[dict]:
    """The resources as a FHIR server gives them: versioned."""
    out = copy.deepcopy(resources)
    for r in out:
        r.setdefault("meta", {})["versionId"] = "1"
    return out


@pytest.fixture(scope="module")
def record() -> tuple[dict, list[dict]]:
    resources = served(scenario_resources(TODAY))
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    return patient, [r for r in resources if r["resourceType"] != "Patient"]


@pytest.fixture(scope="module")
def ctx(k, record):
    return capture_context(SCENARIO_PATIENT, record[1], TODAY, k)


def form(**fields: str) -> dict[str, str]:
    return {"study_date": (TODAY - timedelta(days=20)).isoformat(), "modality": "CT", **fields}


def errors_of(fields, ctx) -> dict[str, str]:
    result = read_form(fields, ctx)
    assert isinstance(result, CaptureErrors), result
    return result.errors


def accepted(fields, ctx) -> CaptureInput:
    result = read_form(fields, ctx)
    assert isinstance(result, CaptureInput), getattr(result, "errors", result)
    return result


# -- the context -------------------------------------------------------------------------------------


def test_the_context_reads_the_record_through_the_mapping(ctx, k):
    assert ctx.diagnosis_date == DIAGNOSIS
    assert [(x.body_structure_id, x.last_date, x.last_size_mm, x.in_liver) for x in ctx.lesions] == [
        (LESION_A, LAST_STUDY, Decimal(34), True), (LESION_B, LAST_STUDY, Decimal(19), True)]
    assert [(t.procedure_id, t.performed) for t in ctx.unconfirmed_tace] == [
        (TACE_SESSIONS[0], TODAY - timedelta(days=120)), (TACE_SESSIONS[1], TODAY - timedelta(days=60))]
    assert ctx.liver_locations == tuple((e.code, e.display) for e in k.codes_of("liver_structures"))
    assert [code for code, _ in ctx.extrahepatic_locations] == [e.code for e in k.codes_of("extrahepatic_structures")]
    assert dict(ctx.modalities).keys() == {"CT", "MRI", "US", "PET"}
    assert ctx.limits.max_diameter_mm == k.threshold("capture", "max_diameter_mm") == 300


def test_a_tace_already_specific_or_unversioned_is_not_offered(k, record):
    resources = copy.deepcopy(record[1])
    tace6 = next(r for r in resources if r["id"] == TACE_SESSIONS[0])
    tace6["code"]["coding"].append({"system": "http://snomed.info/sct", "code": "441525007"})
    del next(r for r in resources if r["id"] == TACE_SESSIONS[1])["meta"]
    assert capture_context(SCENARIO_PATIENT, resources, TODAY, k).unconfirmed_tace == ()


# -- diameters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "mm"), [("300", Decimal(300)), ("300.0", Decimal(300)), ("0", Decimal(0)),
                                           ("40,5", Decimal("40.5")), (" 12.3 ", Decimal("12.3"))])
def test_diameters_within_the_limits_are_accepted(ctx, typed, mm):
    assert accepted(form(**{f"size__{LESION_A}": typed}), ctx).sizes == ((LESION_A, mm),)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("300.1", "Diameter 300.1 mm is over 300 mm: check the value"),
        ("301", "Diameter 301 mm is over 300 mm"),
        ("-1", "Diameter -1 mm is under 0 mm"),
        ("40.55", "Diameter 40.55 mm has more than 1 decimal place(s)"),
        ("forty", "is not a number of millimetres"),
        ("NaN", "is not a number of millimetres"),
        ("1e2", "is not a number of millimetres"),
    ],
)
def test_diameters_outside_the_limits_are_refused_with_the_value_named(ctx, typed, message):
    fields = form(**{f"size__{LESION_A}": typed})
    errors = errors_of(fields, ctx)
    assert message in errors[f"size__{LESION_A}"]
    assert read_form(fields, ctx).values[f"size__{LESION_A}"] == typed


def test_the_limit_is_the_site_s_when_overridden(k, record):
    site = Knowledge(k.value_sets, k.thresholds, {"thresholds": {"capture": {"max_diameter_mm": 250}}})
    ctx = capture_context(SCENARIO_PATIENT, record[1], TODAY, site)
    assert "over 250 mm" in errors_of(form(**{f"size__{LESION_A}": "250.1"}), ctx)[f"size__{LESION_A}"]
    assert accepted(form(**{f"size__{LESION_A}": "250"}), ctx).sizes


# -- dates -------------------------------------------------------------------------------------------


def test_today_is_accepted_and_tomorrow_refused(ctx):
    assert accepted(form(study_date=TODAY.isoformat(), **{f"size__{LESION_A}": "40"}), ctx).study_date == TODAY
    tomorrow = TODAY + timedelta(days=1)
    message = errors_of(form(study_date=tomorrow.isoformat(), **{f"size__{LESION_A}": "40"}), ctx)["study_date"]
    assert message == f"Study date {tomorrow} is in the future (today is {TODAY})."


def test_the_diagnosis_date_is_accepted_and_the_day_before_refused(ctx):
    bare = dataclasses.replace(ctx, lesions=())  # no lesion study yet: only the diagnosis bounds the date
    finding = {"vascular_invasion": "1"}
    assert accepted(form(study_date=DIAGNOSIS.isoformat(), **finding), bare).study_date == DIAGNOSIS
    before = DIAGNOSIS - timedelta(days=1)
    assert "before the HCC diagnosis" in errors_of(form(study_date=before.isoformat(), **finding), bare)["study_date"]


def test_a_same_day_study_of_a_measured_lesion_is_a_duplicate(ctx):
    message = errors_of(form(study_date=LAST_STUDY.isoformat(), **{f"size__{LESION_A}": "40"}), ctx)["study_date"]
    assert f"a study of {LAST_STUDY} is already recorded" in message


def test_a_study_before_a_measured_lesion_s_last_one_is_refused_and_the_day_after_accepted(ctx):
    earlier = LAST_STUDY - timedelta(days=1)
    message = errors_of(form(study_date=earlier.isoformat(), **{f"size__{LESION_B}": "20"}), ctx)["study_date"]
    assert f"the latest recorded study is of {LAST_STUDY}: only a later study can be added" in message
    later = LAST_STUDY + timedelta(days=1)
    assert accepted(form(study_date=later.isoformat(), **{f"size__{LESION_B}": "20"}), ctx).study_date == later


@pytest.mark.parametrize("recorded", [{"new_location__0": LUNG, "new_size__0": "25"}, {"vascular_invasion": "1"},
                                      {f"extrahepatic__{LUNG}": "1"}])
def test_new_lesions_and_findings_cannot_be_dated_before_the_latest_study(ctx, recorded):
    """A back-dated new lesion would become a baseline target (SD -> NE) or an untracked non-target; a back-dated
    thrombus or spread would predate the baseline: neither may slip in before the latest recorded study."""
    for day in (LAST_STUDY - timedelta(days=60), LAST_STUDY):
        assert "Study date:" in errors_of(form(study_date=day.isoformat(), **recorded), ctx)["study_date"]
    later = LAST_STUDY + timedelta(days=1)
    assert accepted(form(study_date=later.isoformat(), **recorded), ctx).study_date == later


@pytest.mark.parametrize("typed", ["2026-13-01", "03/12/2026", "yesterday"])
def test_a_date_that_is_not_one_is_refused(ctx, typed):
    assert "is not a date" in errors_of(form(study_date=typed, vascular_invasion="1"), ctx)["study_date"]


def test_measurements_need_a_date_and_a_modality(ctx):
    errors = errors_of({f"size__{LESION_A}": "40"}, ctx)
    assert set(errors) == {"study_date", "modality"}
    assert "from the list" in errors_of(form(modality="XR", **{f"size__{LESION_A}": "40"}), ctx)["modality"]


# -- the rest of the form ----------------------------------------------------------------------------


def test_nothing_to_record(ctx):
    assert "Nothing to record" in errors_of(form(), ctx)[FORM_ERROR]
    assert "Nothing to record" in errors_of(form(**{f"size__{LESION_A}": " ", "vascular_invasion": ""}), ctx)[FORM_ERROR]


def test_a_new_lesion_needs_both_its_location_and_a_location_of_the_value_sets(ctx):
    assert "needs its diameter" in errors_of(form(new_location__0=LUNG), ctx)["new_size__0"]
    assert "needs its location" in errors_of(form(new_size__1="12"), ctx)["new_location__1"]
    assert "from the list" in errors_of(form(new_location__2="12345", new_size__2="12"), ctx)["new_location__2"]
    new = accepted(form(new_location__0=LUNG, new_size__0="12"), ctx).new_lesions
    assert [(n.location_code, n.size_mm) for n in new] == [(LUNG, Decimal(12))]


def test_unknown_ids_are_errors_and_unknown_fields_ignored(ctx):
    errors = errors_of(form(**{"size__someone-else": "40", "confirm_tace__Procedure-x": "1", "extrahepatic__999": "1",
                               "unrelated": "x"}), ctx)
    assert set(errors) == {"size__someone-else", "confirm_tace__Procedure-x", "extrahepatic__999"}
    result = read_form(form(**{f"size__{LESION_A}": "40", "unrelated": "<script>"}), ctx)
    assert isinstance(result, CaptureInput)


def test_the_scenario_s_form_is_accepted(ctx):
    inp = accepted(progression_form(ctx), ctx)
    assert inp.sizes == ((LESION_A, Decimal(40)), (LESION_B, Decimal(22)))
    assert inp.confirm_tace == TACE_SESSIONS and inp.modality == "CT"


def test_a_confirmation_alone_needs_no_date(ctx):
    inp = accepted({f"confirm_tace__{TACE_SESSIONS[0]}": "1"}, ctx)
    assert inp.study_date is None and inp.confirm_tace == (TACE_SESSIONS[0],)


# -- the transaction ---------------------------------------------------------------------------------


def build(inp, ctx):
    return build_transaction(inp, ctx, author=AUTHOR, app_name="hcc-cds", app_version="1.2.3", now=NOW)


def full_form():
    return form(**{f"size__{LESION_A}": "40", f"size__{LESION_B}": "22.5", "new_location__0": SEGMENT_VII,
                   "new_size__0": "15", "new_location__1": LUNG, "new_size__1": "8", "vascular_invasion": "1",
                   f"extrahepatic__{LUNG}": "1", f"extrahepatic__{ADRENAL}": "1",
                   f"confirm_tace__{TACE_SESSIONS[0]}": "1"})


def by_type(bundle, rtype):
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def test_every_code_written_comes_from_the_value_sets(ctx, k):
    bundle = build(accepted(full_form(), ctx), ctx)
    size = k.value_set("tumour_size")
    for entry in by_type(bundle, "Observation"):
        obs = entry["resource"]
        assert obs["code"]["coding"][0]["code"] == k.codes_of("tumour_size")[0].code
        assert obs["component"][0]["code"]["coding"][0]["code"] == size.component.code
        assert k.lookup(obs["code"]["coding"][0]["system"], obs["code"]["coding"][0]["code"]).concept == "tumour_size"
    bodies = [e["resource"] for e in by_type(bundle, "BodyStructure")]
    assert [k.lookup(b["location"]["coding"][0]["system"], b["location"]["coding"][0]["code"]).concept for b in bodies] == [
        "liver_structures", "extrahepatic_structures"]
    assert {k.lookup(b["morphology"]["coding"][0]["system"], b["morphology"]["coding"][0]["code"]).concept for b in bodies} == {
        "lesion_morphology"}
    conditions = [e["resource"] for e in by_type(bundle, "Condition")]
    concepts = [k.lookup(c["code"]["coding"][0]["system"], c["code"]["coding"][0]["code"]) for c in conditions]
    assert [(e.concept, e.site) for e in concepts] == [
        ("portal_vein_tumour_thrombus", None), ("extrahepatic_metastasis", "lung"), ("extrahepatic_metastasis", None)]
    assert conditions[2]["bodySite"][0]["coding"][0]["code"] == ADRENAL  # its site's code is unconfirmed: generic + site


def test_the_procedure_is_put_as_read_with_the_specific_code_beside_and_its_version_as_if_match(ctx, record, k):
    (entry,) = by_type(build(accepted(full_form(), ctx), ctx), "Procedure")
    read = next(r for r in record[1] if r["id"] == TACE_SESSIONS[0])
    assert entry["request"] == {"method": "PUT", "url": f"Procedure/{TACE_SESSIONS[0]}", "ifMatch": 'W/"1"'}
    written = entry["resource"]
    assert [c["code"] for c in written["code"]["coding"]] == ["37243", "441525007"]
    assert {k: v for k, v in written.items() if k != "code"} == {k: v for k, v in read.items() if k != "code"}
    assert read["code"]["coding"] == [written["code"]["coding"][0]]  # the context's copy is untouched


def test_the_provenance_names_every_write_its_author_and_the_app(ctx):
    bundle = build(accepted(full_form(), ctx), ctx)
    *writes, last = bundle["entry"]
    provenance = last["resource"]
    assert provenance["resourceType"] == "Provenance" and last["request"]["method"] == "POST"
    assert [t["reference"] for t in provenance["target"]] == [e["fullUrl"] for e in writes]
    assert provenance["recorded"] == "2026-12-03T14:00:00+01:00"
    assert provenance["agent"][0]["who"] == {"reference": AUTHOR}
    assert provenance["agent"][1]["who"] == {"display": "hcc-cds 1.2.3"}
    assert provenance["activity"]["coding"][0]["code"] == "CREATE"
    only_confirm = build(accepted({f"confirm_tace__{TACE_SESSIONS[0]}": "1"}, ctx), ctx)
    assert only_confirm["entry"][-1]["resource"]["activity"]["coding"][0]["code"] == "UPDATE"


def test_new_entries_are_posted_with_urn_uuids_that_the_observations_name(ctx):
    bundle = build(accepted(full_form(), ctx), ctx)
    posted = [e for e in bundle["entry"] if e["request"]["method"] == "POST"]
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in posted)
    bodies = [e["fullUrl"] for e in by_type(bundle, "BodyStructure")]
    focus = [e["resource"]["focus"][0]["reference"] for e in by_type(bundle, "Observation")]
    assert focus == [f"BodyStructure/{LESION_A}", f"BodyStructure/{LESION_B}", *bodies]


def test_describe_writes(ctx):
    lines = describe_writes(build(accepted(full_form(), ctx), ctx))
    day = (TODAY - timedelta(days=20)).isoformat()
    assert lines[0] == f"TumorSize 40 mm, Liver structure, {day} (CT)"
    assert lines[1] == f"TumorSize 22.5 mm, Liver structure, {day} (CT)"
    assert "New lesion, Couinaud hepatic segment VII" in lines
    assert f"Procedure/{TACE_SESSIONS[0]} of {(TODAY - timedelta(days=120)).isoformat()}: confirmed as " \
           "Percutaneous transluminal chemoembolisation of artery (procedure)" in lines
    assert lines[-1].startswith("Provenance: recorded 2026-12-03T14:00:00+01:00 by Practitioner/example with hcc-cds")
    assert len(lines) == len(build(accepted(full_form(), ctx), ctx)["entry"])


def test_a_builder_fault_raises_and_never_returns_a_bundle(ctx):
    inp = accepted(full_form(), ctx)
    with pytest.raises(CaptureBuildError, match="zone"):
        build_transaction(inp, ctx, author=AUTHOR, app_name="a", app_version="1", now=datetime(2026, 12, 3, 14))
    with pytest.raises(CaptureBuildError, match="read_form was bypassed"):
        build(CaptureInput(TODAY, "CT", (("not-a-lesion", Decimal(1)),), (), False, (), ()), ctx)
    with pytest.raises(CaptureBuildError, match="without its study date or modality"):
        build(CaptureInput(TODAY, None, ((LESION_A, Decimal(1)),), (), False, (), ()), ctx)
    with pytest.raises(CaptureBuildError, match="without its study date or modality"):
        build(CaptureInput(None, None, (), (), True, (), ()), ctx)
    with pytest.raises(CaptureBuildError, match="fails FHIR R4B validation"):
        capture.validate_bundle({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Observation", "status": "final"}, "request": {"method": "POST", "url": "Observation"}}]})


# -- read back by the mapping -----------------------------------------------------------------------------


def as_stored(bundle: dict) -> list[dict]:
    """What a server holds after the transaction: ids for POSTs, urn:uuid references made relative (as sekmet does)."""
    refs = {}
    for n, entry in enumerate(bundle["entry"]):
        if entry["request"]["method"] == "POST":
            refs[entry["fullUrl"]] = f"{entry['resource']['resourceType']}/new-{n}"
    text = json.dumps([e["resource"] for e in bundle["entry"]])
    for urn, ref in refs.items():
        text = text.replace(urn, ref)
    stored = json.loads(text)
    for entry, resource in zip(bundle["entry"], stored, strict=True):
        if entry["fullUrl"] in refs:
            resource["id"] = refs[entry["fullUrl"]].split("/")[1]
    return stored


def merged(before: list[dict], written: list[dict]) -> list[dict]:
    out = {f"{r['resourceType']}/{r['id']}": r for r in before}
    out.update({f"{r['resourceType']}/{r['id']}": r for r in written})
    return list(out.values())


def test_the_mapping_reads_back_what_was_written(ctx, record, k):
    written = as_stored(build(accepted(full_form(), ctx), ctx))
    snapshot = map_to_snapshot(record[0], merged(record[1], written), k)
    day = TODAY - timedelta(days=20)
    at_day = {(m.lesion, m.organ, m.viable_diameter_mm, m.modality) for m in snapshot.lesions if m.when == day}
    assert at_day == {(f"BodyStructure/{LESION_A}", "liver", 40.0, "CT"), (f"BodyStructure/{LESION_B}", "liver", 22.5, "CT"),
                      ("BodyStructure/new-2", "liver", 15.0, "CT"), ("BodyStructure/new-4", "lung", 8.0, "CT")}
    conditions = {(c.concept, c.onset, c.site) for c in snapshot.conditions if c.concept != "hcc"}
    assert conditions == {("portal_vein_tumour_thrombus", day, None), ("extrahepatic_metastasis", day, "lung"),
                          ("extrahepatic_metastasis", day, "adrenal gland")}
    assert all(p.specific for p in snapshot.procedures_of("tace") if p.ref == f"Procedure/{TACE_SESSIONS[0]}")
    assert not [i for i in snapshot.data_issues if "new-" in i.resource]


def test_the_scenario_goes_from_sd_and_not_met_to_pd_and_met(ctx, record, k):
    assess = Assessor(k, strict=True, build="test")
    before = assess(PatientRecord(record[0], record[1]), TODAY)
    assert (before.mrecist.category, before.tace_resistance.status) == ("SD", Status.NOT_MET)
    written = as_stored(build(accepted(progression_form(ctx), ctx), ctx))
    after = assess(PatientRecord(record[0], merged(record[1], written)), TODAY)
    assert (after.mrecist.category, after.tace_resistance.status) == ("PD", Status.MET)
    assert not [i for i in after.data_issues if "fails FHIR" in i.problem]


def test_a_procedure_that_cannot_be_sent_back_whole_is_not_offered_and_the_rest_of_the_form_works(k, record):
    """The confirmation PUTs the Procedure as read: one fhir.resources refuses (here an element the mapping does not
    read, malformed) is shown with the reason, its confirmation is refused, and the rest of the form still saves."""
    resources = copy.deepcopy(record[1])
    broken = next(r for r in resources if r["id"] == TACE_SESSIONS[0])
    broken["note"] = "free text where FHIR wants a list of Annotations"
    ctx = capture_context(SCENARIO_PATIENT, resources, TODAY, k)
    offered = {t.procedure_id: t.problem for t in ctx.unconfirmed_tace}
    assert offered[TACE_SESSIONS[1]] is None and "does not pass FHIR validation" in (offered[TACE_SESSIONS[0]] or "")
    refused = errors_of(form(**{f"confirm_tace__{TACE_SESSIONS[0]}": "1"}), ctx)
    assert f"confirm_tace__{TACE_SESSIONS[0]}" in refused
    fine = accepted(form(**{f"confirm_tace__{TACE_SESSIONS[1]}": "1", f"size__{LESION_A}": "40"}), ctx)
    build_transaction(fine, ctx, author="Practitioner/example", app_name="hcc-cds", app_version="t",
                      now=datetime.now(UTC))
