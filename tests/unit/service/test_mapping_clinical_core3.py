"""FHIR -> snapshot, clinical core III: lesion organs by liver part, EHR codes for the findings recorded only
when present (ICD-10-CM ascites, encephalopathy, metastases; C78.7 is intrahepatic), unit-less INR,
condition dating (onset vs recordedDate), non-specific portal-vein thrombosis, procedure status,
clinician-graded hypertension."""

from __future__ import annotations

from datetime import date

import pytest

from rules.child_pugh import evaluate_child_pugh
from rules.findings import Notes
from rules.knowledge import Knowledge
from service.mapping import map_to_snapshot
from tests import fhir_factories as f

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = f.SCT
DAY = "2026-11-20"
AS_OF = date(2026, 11, 28)


def snap(*resources, knowledge):
    return map_to_snapshot(f.patient(), list(resources), knowledge)


def lesion(rid: str, location: dict | None) -> dict:
    body: dict = {"resourceType": "BodyStructure", "id": rid, "patient": {"reference": "Patient/p1"}}
    if location is not None:
        body["location"] = location
    return body


def size(rid: str, lesion_id: str, mm: float, when: str = DAY) -> dict:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": f.LOINC, "code": "21889-1"}]},
        "subject": {"reference": "Patient/p1"},
        "focus": [{"reference": f"BodyStructure/{lesion_id}"}],
        "effectiveDateTime": when,
        "component": [
            {
                "code": {"coding": [{"system": f.LOINC, "code": "33728-7"}]},
                "valueQuantity": {"value": mm, "unit": "mm", "system": f.UCUM, "code": "mm"},
            }
        ],
    }


def where(code: str, display: str = "", system: str = SCT) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


# -- a. lesion organs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "display"),
    [
        ("10200004", "Liver structure"),
        ("48521005", "Structure of right lobe of liver"),
        ("69842003", "Structure of left lobe of liver"),
        ("71133005", "Couinaud hepatic segment I"),
        ("277956007", "Couinaud hepatic segment II"),
        ("277957003", "Couinaud hepatic segment III"),
        ("277958008", "Couinaud hepatic segment IV"),
        ("277959000", "Couinaud hepatic segment V"),
        ("277960005", "Couinaud hepatic segment VI"),
        ("277961009", "Couinaud hepatic segment VII"),
        ("277962002", "Couinaud hepatic segment VIII"),
    ],
)
def test_a_lesion_in_the_liver_or_any_lobe_or_couinaud_segment_is_in_the_liver(knowledge, code, display):
    s = snap(lesion("n1", where(code, display)), size("sz", "n1", 6), knowledge=knowledge)
    assert [m.organ for m in s.lesions] == ["liver"]
    assert not [i for i in s.data_issues if "organ" in i.problem]


@pytest.mark.parametrize(
    ("code", "organ"),
    [("39607008", "lung"), ("272673000", "bone"), ("59441001", "lymph node"), ("23451007", "adrenal gland"),
     ("15425007", "peritoneum"), ("12738006", "brain")],
)
def test_a_lesion_in_a_known_extrahepatic_structure_is_in_that_organ(knowledge, code, organ):
    s = snap(lesion("m1", where(code)), size("sz", "m1", 12), knowledge=knowledge)
    assert [m.organ for m in s.lesions] == [organ]


@pytest.mark.parametrize(
    "location",
    [None, {"text": "liver, right"}, where("999999999", "Some other structure"), where("48521005", system="http://example.org/local")],
)
def test_a_missing_or_unrecognised_location_makes_the_organ_unknown_not_extrahepatic(knowledge, location):
    s = snap(lesion("u1", location), size("sz1", "u1", 6), size("sz2", "u1", 7, "2026-11-21"), knowledge=knowledge)
    assert [m.organ for m in s.lesions] == [None, None]
    issues = [i for i in s.data_issues if i.resource == "BodyStructure/u1"]
    assert len(issues) == 1 and "organ is unknown" in issues[0].problem  # once per lesion, not per measurement


def test_location_codes_naming_liver_and_another_organ_make_the_organ_unknown(knowledge):
    both = {"coding": [{"system": SCT, "code": "48521005"}, {"system": SCT, "code": "39607008"}]}
    s = snap(lesion("x", both), size("sz", "x", 6), knowledge=knowledge)
    assert s.lesions[0].organ is None and any("different organs" in i.problem for i in s.data_issues)


# -- b/c. codes of the findings recorded only when present -----------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code", "concept"),
    [
        (ICD, "R18.0", "ascites"),
        (ICD, "R18.8", "ascites"),
        (ICD, "K70.31", "ascites"),
        (ICD, "K70.11", "ascites"),
        (ICD, "K71.51", "ascites"),
        (SCT, "389026000", "ascites"),
        (ICD, "K76.82", "encephalopathy"),
        (ICD, "K72.91", "encephalopathy"),
        (ICD, "K72.11", "encephalopathy"),
        (SCT, "13920009", "encephalopathy"),
        (SCT, "128462008", "extrahepatic_metastasis"),
        (SCT, "94391008", "extrahepatic_metastasis"),
        (ICD, "C77.2", "extrahepatic_metastasis"),
        (ICD, "C78.01", "extrahepatic_metastasis"),
        (ICD, "C78.6", "extrahepatic_metastasis"),
        (ICD, "C78.89", "extrahepatic_metastasis"),
        (ICD, "C79.51", "extrahepatic_metastasis"),
        (ICD, "C79.9", "extrahepatic_metastasis"),
    ],
)
def test_ehr_codes_of_the_findings_recorded_only_when_present(knowledge, system, code, concept):
    s = snap(f.condition(code, DAY, system=system, rid="c"), knowledge=knowledge)
    assert [c.concept for c in s.conditions] == [concept]


@pytest.mark.parametrize(
    "code", ["K74.60", "K74.69", "K72.10", "K72.90", "K70.30", "R19.0"]
)
def test_codes_that_do_not_say_ascites_or_encephalopathy_are_not_read_as_them(knowledge, code):
    s = snap(f.condition(code, DAY, system=ICD), knowledge=knowledge)
    assert [c.concept for c in s.conditions] == []


@pytest.mark.parametrize("code", ["C78.7", "C787", "c78.7", "C78.70"])
def test_c78_7_secondary_of_liver_is_not_extrahepatic_spread(knowledge, code):
    s = snap(f.condition(code, DAY, system=ICD), knowledge=knowledge)
    assert s.conditions_of("extrahepatic_metastasis") == ()


def test_secondary_of_liver_snomed_94381002_is_not_extrahepatic_spread(knowledge):
    s = snap(f.condition("94381002", DAY), knowledge=knowledge)
    assert s.conditions_of("extrahepatic_metastasis") == ()


@pytest.mark.parametrize(
    ("system", "code", "site"),
    [
        (ICD, "C78.01", "right lung"),
        (ICD, "C78.02", "left lung"),
        (ICD, "C77.2", "lymph node"),
        (ICD, "C79.51", "bone"),
        (ICD, "C79.71", "adrenal gland"),
        (ICD, "C78.6", "peritoneum"),
        (ICD, "C79.31", "brain"),
        (SCT, "94391008", "lung"),
        (SCT, "94222008", "bone"),
        (SCT, "94225005", "brain"),
        (ICD, "C79.89", None),
        (SCT, "128462008", None),
    ],
)
def test_a_metastasis_site_comes_from_its_code(knowledge, system, code, site):
    s = snap(f.condition(code, DAY, system=system), knowledge=knowledge)
    assert [c.site for c in s.conditions] == [site]


def test_a_metastasis_code_without_a_site_takes_the_body_site_else_none(knowledge):
    with_site = {**f.condition("C79.89", DAY, system=ICD, rid="m1"), "bodySite": [where("23451007", "Adrenal structure")]}
    unknown_site = {**f.condition("128462008", DAY, rid="m2"), "bodySite": [where("123", "somewhere")]}
    code_wins = {**f.condition("C78.01", DAY, system=ICD, rid="m3"), "bodySite": [where("272673000")]}
    s = snap(with_site, unknown_site, code_wins, knowledge=knowledge)
    assert {c.ref: c.site for c in s.conditions} == {
        "Condition/m1": "adrenal gland", "Condition/m2": None, "Condition/m3": "right lung"}


# -- g (mapping side): coma codes imply severe encephalopathy ------------------------------------------------------


def test_hepatic_failure_with_coma_is_severe_encephalopathy_unless_severity_says_otherwise(knowledge):
    coma = f.condition("K72.91", DAY, system=ICD, rid="coma")
    graded = {**f.condition("K72.11", DAY, system=ICD, rid="graded"),
              "severity": {"coding": [{"system": SCT, "code": "6736007"}]}}
    plain = f.condition("K76.82", DAY, system=ICD, rid="plain")
    s = snap(coma, graded, plain, knowledge=knowledge)
    assert {c.ref: c.severity for c in s.conditions} == {
        "Condition/coma": "severe", "Condition/graded": "moderate", "Condition/plain": None}


# -- d. INR is dimensionless ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", [None, "1", "{INR}", "{ratio}"])
def test_inr_without_a_unit_or_with_a_dimensionless_one_is_used(knowledge, unit):
    s = snap(f.lab("6301-6", 1.7, unit, DAY, rid="inr"), knowledge=knowledge)
    assert [(m.value, m.unit) for m in s.series("inr")] == [(1.7, "1")]
    assert s.unusable_of("inr") == () and not [i for i in s.data_issues if i.resource == "Observation/inr"]
    assert evaluate_child_pugh(s, AS_OF, knowledge, Notes()).points["inr"].points == 2


def test_inr_with_a_non_dimensionless_unit_is_still_unusable(knowledge):
    s = snap(f.lab("6301-6", 1.7, "s", DAY, rid="inr"), knowledge=knowledge)
    assert s.series("inr") == () and s.unusable_of("inr")


@pytest.mark.parametrize("code", ["1975-2", "1751-7", "777-3", "2160-0"])
def test_other_labs_without_a_unit_stay_unusable(knowledge, code):
    s = snap(f.lab(code, 2.0, None, DAY, rid="x"), knowledge=knowledge)
    assert s.measurements == () and "no unit" in s.unusable[0].problem


# -- e. dating: onset[x] -> onset, recordedDate -> recorded, for every concept ------------------------------------------


def undated(code: str, rid: str, system: str = SCT, **dates) -> dict:
    cond = f.condition(code, DAY, system=system, rid=rid)
    del cond["onsetDateTime"]
    return {**cond, **dates}


@pytest.mark.parametrize(
    ("code", "system"),
    [("109841003", SCT), ("389026000", SCT), ("17920008", SCT), ("C78.01", ICD), ("K76.82", ICD)],
)
def test_recorded_date_goes_to_recorded_and_onset_to_onset_for_every_concept(knowledge, code, system):
    s = snap(
        undated(code, "rec", system, recordedDate="2026-03-04"),
        undated(code, "both", system, onsetDateTime="2026-01-02", recordedDate="2026-03-04"),
        undated(code, "none", system),
        knowledge=knowledge,
    )
    got = {c.ref: (c.onset, c.recorded) for c in s.conditions}
    assert got == {
        "Condition/rec": (None, date(2026, 3, 4)),
        "Condition/both": (date(2026, 1, 2), date(2026, 3, 4)),
        "Condition/none": (None, None),
    }
    assert {c.ref: c.dated_by for c in s.conditions}["Condition/rec"] == date(2026, 3, 4)


def test_an_undated_finding_is_kept_and_reported(knowledge):
    s = snap(undated("389026000", "asc"), knowledge=knowledge)
    assert [c.ref for c in s.conditions] == ["Condition/asc"]
    assert any(i.resource == "Condition/asc" and "no onset and no recordedDate" in i.problem for i in s.data_issues)


# -- f. portal-vein thrombosis that does not say tumour thrombus ----------------------------------------------------------


def test_portal_vein_thrombosis_is_vascular_invasion_but_not_specific(knowledge):
    s = snap(f.condition("17920008", DAY, rid="pvt"), f.condition("C78.01", DAY, system=ICD, rid="met"), knowledge=knowledge)
    assert {c.ref: (c.concept, c.specific) for c in s.conditions} == {
        "Condition/pvt": ("portal_vein_tumour_thrombus", False),
        "Condition/met": ("extrahepatic_metastasis", True),
    }


def test_a_site_tumour_thrombus_code_is_specific(knowledge):
    k = Knowledge(knowledge.value_sets, knowledge.thresholds, {"value_sets": {"concepts": {"portal_vein_tumour_thrombus": {
        "codes": [{"system": "http://example.org/local", "code": "PVTT", "display": "Portal vein tumour thrombus"}]}}}})
    s = map_to_snapshot(f.patient(), [f.condition("PVTT", DAY, system="http://example.org/local", rid="t")], k)
    assert [(c.concept, c.specific) for c in s.conditions] == [("portal_vein_tumour_thrombus", True)]


# -- j. procedure status is the FHIR status -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["completed", "preparation", "in-progress", "not-done", "on-hold", "stopped", "unknown"])
def test_procedure_status_is_the_fhir_status(knowledge, status):
    s = snap(f.procedure("441525007", {"performedDateTime": DAY}, status=status), knowledge=knowledge)
    assert [p.status for p in s.procedures] == [status]


# -- i. clinician-graded hypertension ---------------------------------------------------------------------------------------


def test_a_clinician_graded_hypertension_is_read_as_a_graded_event(knowledge):
    obs = {
        "resourceType": "Observation", "id": "htn", "status": "final",
        "code": {"coding": [{"system": SCT, "code": "38341003"}]},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": DAY, "valueInteger": 4,
    }
    s = snap(obs, knowledge=knowledge)
    assert [(e.term, e.grade) for e in s.graded_events] == [("hypertension", 4)]


def test_an_unreadable_onset_keeps_the_condition_dated_by_recorded_date(knowledge):
    cond = undated("109841003", "hcc", onsetString="last spring", recordedDate="2026-03-04")
    s = snap(cond, knowledge=knowledge)
    assert [(c.concept, c.onset, c.recorded) for c in s.conditions] == [("hcc", None, date(2026, 3, 4))]
    issue = next(i.problem for i in s.data_issues if i.resource == "Condition/hcc")
    assert "onset is unknown" in issue and "not used" not in issue
