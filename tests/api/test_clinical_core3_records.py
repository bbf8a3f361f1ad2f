"""Realistic records end to end (POST /api/v1/assessments and the patient-view hook with prefetch), clinical core III:
lesions coded by liver lobe and Couinaud segment, ICD-10-CM-coded ascites / encephalopathy / metastases, C78.7
(secondary of liver: intrahepatic), and a unit-less INR. The base record is the demo patient who fits the study
(two liver lesions, four TACE sessions, progression after them, Child-Pugh A, sorafenib plus TACE)."""

from __future__ import annotations

import copy
from datetime import date, timedelta

from service.demo import demo_bundles
from tests import fhir_factories as f
from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view

SCT = f.SCT
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
PID = "demo-eligible"


def base(today: date) -> list[dict]:
    bundle = next(b for b in demo_bundles(today) if b["id"] == "demo-eligible-bundle")
    return [copy.deepcopy(e["resource"]) for e in bundle["entry"]]


def ago(today: date, n: int) -> str:
    return (today - timedelta(days=n)).isoformat()


def relocate(resources: list[dict], where: dict[str, tuple[str, str]]) -> list[dict]:
    """The lesions' BodyStructure.location recoded: {lesion id: (SNOMED code, display)}."""
    for r in resources:
        if r["resourceType"] == "BodyStructure" and r["id"] in where:
            code, display = where[r["id"]]
            r["location"] = {"coding": [{"system": SCT, "code": code, "display": display}]}
    return resources


def assess(client, today: date, resources: list[dict]) -> dict:
    r = client.post(f"/api/v1/assessments?as_of={today.isoformat()}", json=f.bundle(*resources))
    assert r.status_code == 200, r.text
    return r.json()


def icd_condition(code: str, onset: str, rid: str, **extra) -> dict:
    return {**f.condition(code, onset, system=ICD, pid=PID, rid=rid), **extra}


def latest_scan(today: date) -> date:
    """The demo record's latest lesion imaging (a new nodule is seen on it)."""
    return max(date.fromisoformat(r["effectiveDateTime"][:10]) for r in base(today)
               if r["resourceType"] == "Observation" and r.get("focus"))


def new_nodule(today: date, code: str, display: str, mm: float, days_ago: int | None = None) -> list[dict]:
    days_ago = (today - latest_scan(today)).days if days_ago is None else days_ago
    body = {
        "resourceType": "BodyStructure", "id": "demo-eligible-lesion-c", "patient": {"reference": f"Patient/{PID}"},
        "identifier": [{"value": "lesion-c"}],
        "location": {"coding": [{"system": SCT, "code": code, "display": display}]},
    }
    size = {
        "resourceType": "Observation", "id": "nodule-c-size", "status": "final",
        "code": {"coding": [{"system": f.LOINC, "code": "21889-1"}]}, "subject": {"reference": f"Patient/{PID}"},
        "focus": [{"reference": "BodyStructure/demo-eligible-lesion-c"}], "effectiveDateTime": ago(today, days_ago),
        "component": [{"code": {"coding": [{"system": f.LOINC, "code": "33728-7"}]},
                       "valueQuantity": {"value": mm, "unit": "mm", "system": f.UCUM, "code": "mm"}}],
    }
    return [body, size]


def reasons_text(body: dict) -> str:
    return " ".join(
        [*body["bclc"].get("reasons", []), *body["tace_resistance"].get("reasons", []),
         *body["recommendation"].get("reasons", [])]
    ).lower()


# -- lesions by lobe and segment -------------------------------------------------------------------------------------


def test_lesions_coded_by_lobe_and_segment_stay_intrahepatic_and_bclc_is_not_c(client, settings):
    today = settings.today()
    expected = assess(client, today, base(today))
    by_part = relocate(base(today), {
        "demo-eligible-lesion-a": ("48521005", "Structure of right lobe of liver"),
        "demo-eligible-lesion-b": ("277962002", "Couinaud hepatic segment VIII"),
    })
    body = assess(client, today, by_part)
    assert body["bclc"]["tumour_extent_stage"] == expected["bclc"]["tumour_extent_stage"] != "C"
    assert body["bclc"]["at_first_tace"] == expected["bclc"]["at_first_tace"] != "C"
    assert body["recommendation"]["code"] == expected["recommendation"]["code"] == "sorafenib-plus-tace"
    assert body["tace_candidacy"]["status"] == "met"
    assert not [i for i in body["data_issues"] if "organ" in i["problem"]]


def test_a_new_6_mm_nodule_in_the_right_lobe_is_not_extrahepatic_spread(client, settings):
    today = settings.today()
    expected = assess(client, today, base(today))
    body = assess(client, today, base(today) + new_nodule(today, "48521005", "Structure of right lobe of liver", 6))
    assert body["bclc"]["tumour_extent_stage"] == expected["bclc"]["tumour_extent_stage"] == "B"
    findings_now = next(r for r in body["bclc"]["reasons"] if r.startswith("Findings now"))
    assert "3 nodules" in findings_now and "no extrahepatic spread" in findings_now
    assert body["recommendation"]["code"] == "sorafenib-plus-tace"


def test_a_nodule_of_unrecognised_location_is_unknown_and_reported_never_extrahepatic(client, settings):
    today = settings.today()
    body = assess(client, today, base(today) + new_nodule(today, "999999999", "Some structure", 6))
    assert any(i["resource"] == "BodyStructure/demo-eligible-lesion-c" and "organ is unknown" in i["problem"]
               for i in body["data_issues"])
    findings_now = next(r for r in body["bclc"]["reasons"] if r.startswith("Findings now"))
    assert "no extrahepatic spread" in findings_now and body["bclc"]["tumour_extent_stage"] != "C"


# -- ICD-coded findings -------------------------------------------------------------------------------------------------


def test_icd_coded_moderate_ascites_and_hepatic_coma_score_in_child_pugh(client, settings):
    today = settings.today()
    moderate = {"coding": [{"system": SCT, "code": "6736007", "display": "Moderate"}]}
    resources = base(today) + [
        icd_condition("R18.8", ago(today, 20), "asc", severity=moderate),
        icd_condition("K72.91", ago(today, 20), "he"),
    ]
    body = assess(client, today, resources)
    points = body["child_pugh"]["points"]
    assert (points["ascites"]["points"], points["encephalopathy"]["points"]) == (3, 3)
    assert (body["child_pugh"]["score"], body["child_pugh"]["class"]) == (1 + 1 + 1 + 3 + 3, "B")


def test_icd_coded_encephalopathy_without_severity_scores_two(client, settings):
    today = settings.today()
    body = assess(client, today, base(today) + [icd_condition("K76.82", ago(today, 20), "he")])
    assert body["child_pugh"]["points"]["encephalopathy"]["points"] == 2 and body["child_pugh"]["class"] == "A"


def test_icd_coded_lung_metastasis_is_extrahepatic_spread(client, settings):
    today = settings.today()
    body = assess(client, today, base(today) + [icd_condition("C78.01", ago(today, 20), "met")])
    assert body["bclc"]["tumour_extent_stage"] == "C"
    assert "no extrahepatic spread" not in next(r for r in body["bclc"]["reasons"] if r.startswith("Findings now"))


def test_c78_7_secondary_of_liver_is_not_extrahepatic_spread(client, settings):
    today = settings.today()
    expected = assess(client, today, base(today))
    body = assess(client, today, base(today) + [icd_condition("C78.7", ago(today, 20), "liver-met")])
    assert body["bclc"] == expected["bclc"]
    assert body["recommendation"]["code"] == "sorafenib-plus-tace"


# -- unit-less INR ---------------------------------------------------------------------------------------------------------


def test_a_unit_less_inr_is_used_and_child_pugh_is_known(client, settings):
    today = settings.today()
    resources = base(today)
    for r in resources:
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "6301-6":
            r["valueQuantity"] = {"value": r["valueQuantity"]["value"]}
    body = assess(client, today, resources)
    assert body["child_pugh"]["points"]["inr"]["points"] == 1
    assert (body["child_pugh"]["class"], body["child_pugh"]["score"]) == ("A", 5)
    assert not [i for i in body["data_issues"] if "unit" in i["problem"]]


# -- the same record through the patient-view hook with prefetch -------------------------------------------------------------


def test_patient_view_with_prefetch_reads_lobes_icd_codes_and_unit_less_inr(client, settings):
    today = settings.today()
    resources = relocate(base(today), {
        "demo-eligible-lesion-a": ("69842003", "Structure of left lobe of liver"),
        "demo-eligible-lesion-b": ("71133005", "Couinaud hepatic segment I"),
    }) + new_nodule(today, "277959000", "Couinaud hepatic segment V", 6) + [
        icd_condition("C78.7", ago(today, 20), "liver-met"),
    ]
    for r in resources:
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "6301-6":
            r["valueQuantity"] = {"value": r["valueQuantity"]["value"]}
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    others = [r for r in resources if r["resourceType"] != "Patient"]
    hook = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view(PID, prefetch=full_prefetch(others, patient)))
    assert hook.status_code == 200, hook.text
    cards = hook.json()["cards"]
    assert len(cards) == 1
    rest = assess(client, today, resources)
    assert rest["recommendation"]["code"] == "sorafenib-plus-tace" and rest["child_pugh"]["class"] == "A"
    assert "sorafenib" in cards[0]["summary"].lower() and "tace" in cards[0]["summary"].lower()
