"""FHIR -> snapshot: units, unusable values, ignored statuses, date forms, codes, validation."""

from __future__ import annotations

from datetime import date

import pytest

from rules.child_pugh import evaluate_child_pugh
from rules.findings import Notes
from service.mapping import map_to_snapshot
from tests import fhir_factories as f

DAY = "2026-11-20"
AS_OF = date(2026, 11, 28)


def snap(*resources, knowledge, patient=None):
    return map_to_snapshot(patient or f.patient(), list(resources), knowledge)


@pytest.mark.parametrize(
    ("code", "value", "unit", "points"),
    [
        ("14631-6", 34.1, "umol/L", 1),
        ("14631-6", 34.2, "umol/L", 2),
        ("14631-6", 51.3, "umol/L", 2),
        ("14631-6", 51.4, "umol/L", 3),
        ("1975-2", 2.0, "mg/dL", 2),
        ("1975-2", 3.0, "mg/dL", 2),
    ],
)
def test_bilirubin_in_umol_per_l_is_divided_by_17_1_and_keeps_its_boundaries(knowledge, code, value, unit, points):
    s = snap(f.lab(code, value, unit, DAY), knowledge=knowledge)
    assert evaluate_child_pugh(s, AS_OF, knowledge, Notes()).points["bilirubin"].points == points


@pytest.mark.parametrize(
    ("value", "unit", "points"),
    [(28, "g/L", 2), (27.9, "g/L", 3), (35, "g/L", 2), (35.1, "g/L", 1), (2.8, "g/dL", 2), (3.5, "g/dL", 2)],
)
def test_albumin_in_g_per_l_is_divided_by_10_and_keeps_its_boundaries(knowledge, value, unit, points):
    s = snap(f.lab("1751-7", value, unit, DAY), knowledge=knowledge)
    assert evaluate_child_pugh(s, AS_OF, knowledge, Notes()).points["albumin"].points == points


def test_platelets_in_10_3_per_ul_equal_10_9_per_l(knowledge):
    s = snap(f.lab("777-3", 150, "10*3/uL", DAY), knowledge=knowledge)
    assert s.series("platelets")[0].value == 150 and s.series("platelets")[0].unit == "10*9/L"


def test_a_value_without_a_unit_is_unusable_and_reported(knowledge):
    s = snap(f.lab("1751-7", 3.9, None, DAY, rid="alb"), knowledge=knowledge)
    assert s.series("albumin") == ()
    assert s.unusable_of("albumin")[0].ref == "Observation/alb"
    assert any(i.resource == "Observation/alb" and "no unit" in i.problem for i in s.data_issues)


def test_a_value_with_an_unconvertible_unit_is_unusable_and_reported(knowledge):
    s = snap(f.lab("1975-2", 1.0, "mmol/mol", DAY, rid="b"), knowledge=knowledge)
    assert s.series("bilirubin") == ()
    assert any(i.resource == "Observation/b" and "cannot be converted" in i.problem for i in s.data_issues)


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_entered_in_error_and_cancelled_results_are_ignored(knowledge, status):
    s = snap(f.lab("1975-2", 9.0, "mg/dL", DAY, status=status), knowledge=knowledge)
    assert s.series("bilirubin") == () and s.data_issues == ()


def test_a_preliminary_result_is_not_used_and_reported(knowledge):
    s = snap(f.lab("1975-2", 9.0, "mg/dL", DAY, status="preliminary", rid="pre"), knowledge=knowledge)
    assert s.series("bilirubin") == () and s.data_issues[0].resource == "Observation/pre"


@pytest.mark.parametrize(
    ("performed", "expected"),
    [
        ({"performedDateTime": "2026-05-01T10:00:00+02:00"}, date(2026, 5, 1)),
        ({"performedPeriod": {"start": "2026-05-02", "end": "2026-05-03"}}, date(2026, 5, 2)),
        ({"performedPeriod": {"end": "2026-05-03"}}, date(2026, 5, 3)),
        ({"performedString": "last spring"}, None),
    ],
)
def test_performed_x_forms_give_the_session_date(knowledge, performed, expected):
    s = snap(f.procedure("441525007", performed), knowledge=knowledge)
    assert s.procedures_of("tace")[0].performed == expected


def test_a_cpt_only_tace_is_not_specific_and_a_snomed_one_is(knowledge):
    s = snap(
        f.procedure("37243", {"performedDateTime": DAY}, system=f.CPT, rid="cpt"),
        f.procedure("441525007", {"performedDateTime": DAY}, rid="sct"),
        knowledge=knowledge,
    )
    by_ref = {p.ref: p for p in s.procedures_of("tace")}
    assert by_ref["Procedure/cpt"].specific is False and by_ref["Procedure/sct"].specific is True


def test_a_resource_that_fails_r4_validation_is_skipped_and_reported(knowledge):
    broken = f.lab("1975-2", 1.0, "mg/dL", DAY, rid="bad")
    broken["code"] = "not a CodeableConcept"
    s = snap(broken, knowledge=knowledge)
    assert s.series("bilirubin") == ()
    assert s.data_issues[0].resource == "Observation/bad" and "validation" in s.data_issues[0].problem


def test_a_duplicate_resource_id_is_used_once_and_reported(knowledge):
    a = f.lab("1975-2", 1.0, "mg/dL", DAY, rid="dup")
    b = f.lab("1975-2", 5.0, "mg/dL", DAY, rid="dup")
    s = snap(a, b, knowledge=knowledge)
    assert [m.value for m in s.series("bilirubin")] == [1.0]
    assert any("duplicate" in i.problem for i in s.data_issues)


def test_a_month_precision_date_is_not_used_for_a_lab(knowledge):
    s = snap(f.lab("1975-2", 1.0, "mg/dL", "2026-11", rid="m"), knowledge=knowledge)
    assert s.series("bilirubin") == () and "precise" in s.data_issues[0].problem


@pytest.mark.parametrize(
    ("extra", "deceased", "when"),
    [({}, None, None), ({"deceasedBoolean": True}, True, None), ({"deceasedDateTime": "2026-10-01"}, True, date(2026, 10, 1))],
)
def test_patient_deceased_forms(knowledge, extra, deceased, when):
    s = snap(knowledge=knowledge, patient=f.patient(**extra))
    assert s.patient.deceased is deceased and s.patient.deceased_date == when


def test_hcc_condition_by_icd10_and_snomed(knowledge):
    s = snap(
        f.condition("C22.0", "2025-01-01", system="http://hl7.org/fhir/sid/icd-10-cm"),
        f.condition("109841003", "2025-01-01"),
        knowledge=knowledge,
    )
    assert len(s.conditions_of("hcc")) == 2


def test_ecog_out_of_range_is_unusable(knowledge):
    obs = {
        "resourceType": "Observation", "id": "e", "status": "final",
        "code": {"coding": [{"system": f.LOINC, "code": "89247-1"}]},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": DAY, "valueInteger": 7,
    }
    s = snap(obs, knowledge=knowledge)
    assert s.series("ecog") == () and s.unusable_of("ecog")
