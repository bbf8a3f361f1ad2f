"""BCLC boundaries and explanations not pinned elsewhere (written against mutmut's surviving mutants).

Which diameters count as viable (> 0 mm, any size above it), the staging day
itself, unusable readings, extrahepatic lesions, the "forced" stages, and the
sentence given for each stage.
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from rules.bclc import (
    ABSENT_UNLESS_RECORDED,
    BclcCriteria,
    assess_bclc,
    bclc_2010_stage,
    bclc_at,
    staging_facts_at,
    tumour_burden_at,
    tumour_extent_stage,
)
from rules.knowledge import KnowledgeError
from service.render.clinical_json import bclc_json, bclc_stage_json
from tests.unit.rules.factories import condition, lesion, make_snapshot, response_criteria

CRITERIA = response_criteria()
DAY = date(2026, 3, 1)
SCAN = date(2026, 2, 20)


def nodules(*diameters, when=SCAN, organ="liver"):
    return [lesion(f"n{i}", when, d, organ=organ) for i, d in enumerate(diameters, start=1)]


def stage_of(lesions=(), conditions=(), *, child_pugh="A", ecog=0, day=DAY):
    return bclc_at(make_snapshot(lesions=lesions, conditions=conditions), day, child_pugh_class=child_pugh, ecog=ecog,
                   criteria=CRITERIA)


# -- what counts as a viable nodule ---------------------------------------------------------------


@pytest.mark.parametrize(("mm", "count"), [(0, 0), (0.5, 1), (1, 1), (1.5, 1), (12.3, 1)])
def test_any_viable_diameter_above_0_mm_is_a_nodule_read_as_the_decimal_it_prints_as(mm, count):
    burden = tumour_burden_at(nodules(mm), DAY, CRITERIA)
    assert burden.nodules == count
    assert burden.largest_mm == (Fraction(str(mm)) if count else None)
    assert burden.evidence == ("Observation/size-n1-20260220",)  # a 0 mm reading is evidence too


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, None])
def test_an_unusable_diameter_is_left_out_without_stopping_the_others(bad):
    readings = [lesion("a", SCAN, bad), lesion("b", SCAN, 25)]
    burden = tumour_burden_at(readings, DAY, CRITERIA)
    assert (burden.nodules, burden.largest_mm, burden.evidence) == (1, Fraction(25), ("Observation/size-b-20260220",))


def test_the_largest_of_two_readings_of_one_nodule_on_one_date_is_used():
    readings = [lesion("a", SCAN, 25, ref="Observation/r1"), lesion("a", SCAN, 15, ref="Observation/r2")]
    burden = tumour_burden_at(readings, DAY, CRITERIA)
    assert (burden.nodules, burden.largest_mm, burden.diameters_mm) == (1, Fraction(25), (Fraction(25),))


def test_imaging_on_the_staging_day_is_the_latest():
    burden = tumour_burden_at(nodules(25, when=date(2026, 1, 1)) + nodules(0, when=DAY), DAY, CRITERIA)
    assert (burden.imaging_date, burden.nodules) == (DAY, 0)


# -- extrahepatic lesions and the assumption of absence -------------------------------------------


@pytest.mark.parametrize(("mm", "spread"), [(0, False), (0.5, True), (1, True), (float("nan"), False), (None, False)])
def test_a_viable_lesion_outside_the_liver_is_extrahepatic_spread_and_0_mm_is_not(mm, spread):
    facts = staging_facts_at(make_snapshot(lesions=nodules(25) + [lesion("x", SCAN, mm, organ="lung")]), DAY, CRITERIA)
    assert facts.extrahepatic_spread is spread
    if spread:
        assert "Viable lesion outside the liver on imaging of 2026-02-20: lung (Observation/size-x-20260220)." in facts.reasons


def pvtt():
    return condition("portal_vein_tumour_thrombus", onset=date(2026, 1, 1), ref="Condition/pvtt")


def metastasis():
    return condition("extrahepatic_metastasis", onset=date(2026, 1, 1), ref="Condition/met")


@pytest.mark.parametrize(
    ("conditions", "assumed"),
    [((), True), ((pvtt(),), True), ((metastasis(),), True), ((pvtt(), metastasis()), False)],
)
def test_absence_is_assumed_unless_both_thrombus_and_spread_are_recorded(conditions, assumed):
    facts = staging_facts_at(make_snapshot(lesions=nodules(25), conditions=conditions), DAY, CRITERIA)
    assert (ABSENT_UNLESS_RECORDED in facts.assumptions) is assumed


def test_recorded_thrombus_and_metastasis_are_named_with_their_references():
    facts = staging_facts_at(make_snapshot(lesions=nodules(25), conditions=[pvtt(), metastasis()]), DAY, CRITERIA)
    assert facts.reasons == (
        "Portal-vein tumour thrombus present (Condition/pvtt).",
        "Extrahepatic metastasis present (Condition/met).",
    )
    assert facts.evidence == ("Observation/size-n1-20260220", "Condition/pvtt", "Condition/met")


# -- stages, forced or not, and their sentences ----------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "stage", "forced", "reason"),
    [
        ({"lesions": nodules(15)}, "0", False, "Single nodule < 20 mm, no invasion or spread, ECOG 0, Child-Pugh A: 0."),
        ({"lesions": nodules(15), "child_pugh": "B"}, "A", False,
         "Single nodule < 20 mm with Child-Pugh B and ECOG 0: A (stage 0 needs Child-Pugh A and ECOG 0)."),
        ({"lesions": nodules(50)}, "A", False, "Single nodule, no invasion or spread, ECOG 0, Child-Pugh A: A."),
        ({"lesions": nodules(25, 20)}, "A", False,
         "2 nodules (up to 3), all <= 30 mm, no invasion or spread, ECOG 0, Child-Pugh A: A."),
        ({"lesions": nodules(40, 35, 20)}, "B", False,
         "Multinodular: 3 nodules, largest over 30 mm, no invasion or spread, ECOG 0, Child-Pugh A: B."),
        ({"lesions": nodules(40, 35, 20, 10)}, "B", False,
         "Multinodular: 4 nodules (more than 3), no invasion or spread, ECOG 0, Child-Pugh A: B."),
        ({"lesions": nodules(50), "ecog": 1}, "C", False,
         "ECOG 1 makes it C under the 2010 scheme (Child-Pugh A, no invasion or spread)."),
        ({"lesions": nodules(50), "ecog": 3}, "D", True, "ECOG 3 (> 2) makes it D (Child-Pugh A)."),
        ({"lesions": nodules(50), "ecog": 3, "child_pugh": None}, "D", True,
         "ECOG 3 (> 2) makes it D (Child-Pugh class unknown)."),
        ({"lesions": nodules(50), "child_pugh": "C"}, "D", True, "Child-Pugh C makes it D (ECOG 0)."),
        ({"lesions": nodules(50), "conditions": [pvtt()]}, "C", True,
         "Portal invasion with Child-Pugh A and ECOG 0 make it C."),
        ({"lesions": nodules(50), "child_pugh": None}, None, False,
         "Not staged: Child-Pugh class missing, so it could be 0 to D (ECOG 0)."),
        ({"lesions": nodules(50), "child_pugh": "X"}, None, False,
         "Not staged: Child-Pugh class missing, so it could be 0 to D (ECOG 0)."),
        ({"lesions": nodules(50), "child_pugh": None, "ecog": None}, None, False,
         "Not staged: Child-Pugh class and ECOG missing, so it could be 0 to D."),
        ({"lesions": nodules(50), "child_pugh": None, "ecog": 1}, None, False,
         "Not staged: Child-Pugh class missing, so it could be C or D (ECOG 1)."),
        ({"lesions": nodules(50), "ecog": None, "conditions": [pvtt()]}, None, False,
         "Not staged: ECOG missing, so it could be C or D (portal invasion, Child-Pugh A)."),
        ({"lesions": nodules(0)}, None, False, "Not staged: no viable tumour on the latest imaging (Child-Pugh A, ECOG 0)."),
    ],
)
def test_each_bclc_2010_stage_says_why_and_whether_it_was_forced(kw, stage, forced, reason):
    full, _, _ = stage_of(**kw)
    assert (full.stage, full.forced, full.reasons) == (stage, forced, (reason,))


@pytest.mark.parametrize(
    ("kw", "stage", "forced", "reason"),
    [
        ({"lesions": nodules(50), "conditions": [pvtt()]}, "C", True, "Tumour extent C: portal invasion."),
        ({"lesions": nodules(50), "conditions": [pvtt(), metastasis()]}, "C", True,
         "Tumour extent C: portal invasion and extrahepatic spread."),
        ({"lesions": nodules(0)}, None, False, "Tumour extent not staged: no viable tumour on imaging of 2026-02-20."),
        ({"lesions": nodules(40, 35, 20)}, "B", False,
         "Tumour extent B: 3 nodules, largest 40 mm viable, on imaging of 2026-02-20 (multinodular: 3 nodules, largest "
         "over 30 mm); no portal invasion or extrahepatic spread."),
        ({"lesions": nodules(12.5)}, "0", False,
         "Tumour extent 0: a single nodule, largest 12.5 mm viable, on imaging of 2026-02-20 (single nodule < 20 mm); no "
         "portal invasion or extrahepatic spread."),
    ],
)
def test_each_tumour_extent_stage_says_why(kw, stage, forced, reason):
    _, extent, facts = stage_of(**kw)
    assert (extent.stage, extent.forced, extent.reasons) == (stage, forced, (reason,))
    assert extent.evidence == facts.evidence and extent.evidence
    assert extent.citation == CRITERIA["bclc_2010"]["citation"]


def test_without_imaging_the_tumour_extent_is_unknown_with_its_evidence_and_citation():
    extent = tumour_extent_stage(tumour=None, vascular_invasion=False, extrahepatic_spread=False, criteria=CRITERIA,
                                 evidence=["Condition/x"])
    assert (extent.stage, extent.reasons, extent.evidence, extent.citation) == (
        None, ("Tumour extent unknown: no tumour imaging.",), ("Condition/x",), CRITERIA["bclc_2010"]["citation"])


def test_a_stage_forced_by_child_pugh_c_ignores_missing_inputs():
    result = bclc_2010_stage(tumour=None, vascular_invasion=False, extrahepatic_spread=False, child_pugh_class="C",
                             ecog=None, criteria=CRITERIA)
    assert (result.stage, result.forced, result.reasons) == ("D", True, ("Child-Pugh C makes it D (ECOG unknown).",))


def assessment(ecog_now: int):
    return assess_bclc(make_snapshot(lesions=nodules(50)), as_of=DAY, first_tace=None, child_pugh_at_first_tace=None,
                       ecog_at_first_tace=None, child_pugh_now="A", ecog_now=ecog_now, criteria=CRITERIA)


def test_the_assessment_explains_the_tumour_extent_stage_when_it_differs_from_bclc_2010():
    reasons = assessment(1).reasons
    assert reasons[2] == "Findings now: a single nodule, largest 50 mm viable, on imaging of 2026-02-20; no portal invasion; no extrahepatic spread."
    assert reasons[3] == (
        "How the study's Table 1 staged (tumour extent only): Tumour extent A: a single nodule, largest 50 mm viable, "
        "on imaging of 2026-02-20 (single nodule); no portal invasion or extrahepatic spread."
    )


def test_the_assessment_says_the_tumour_extent_stage_is_the_same_when_it_is():
    assert assessment(0).reasons[3] == "Tumour extent (how the study's Table 1 staged) is also A."


def test_the_findings_sentence_names_invasion_and_spread_when_present():
    result = assess_bclc(make_snapshot(lesions=nodules(50), conditions=[pvtt(), metastasis()]), as_of=DAY,
                         first_tace=None, child_pugh_at_first_tace=None, ecog_at_first_tace=None, child_pugh_now="A",
                         ecog_now=0, criteria=CRITERIA)
    assert "Findings now: a single nodule, largest 50 mm viable, on imaging of 2026-02-20; portal invasion; extrahepatic spread." in result.reasons


def test_the_findings_sentence_without_imaging_says_so():
    result = assess_bclc(make_snapshot(), as_of=DAY, first_tace=None, child_pugh_at_first_tace=None,
                         ecog_at_first_tace=None, child_pugh_now="A", ecog_now=0, criteria=CRITERIA)
    assert "Findings now: no tumour imaging; no portal invasion; no extrahepatic spread." in result.reasons
    assert "Tumour extent (how the study's Table 1 staged) is also not staged." in result.reasons


def test_a_lesion_outside_the_liver_does_not_stop_the_liver_nodules_after_it_from_counting():
    readings = [lesion("a", SCAN, 30, organ="lung"), lesion("b", SCAN, 25), lesion("c", SCAN, 15)]
    burden = tumour_burden_at(readings, DAY, CRITERIA)
    assert (burden.nodules, burden.largest_mm) == (2, Fraction(25))


def test_each_nodule_of_unrecorded_site_is_counted_and_said():
    readings = [lesion("a", SCAN, 30, organ=None), lesion("b", SCAN, 25, organ=None)]
    facts = staging_facts_at(make_snapshot(lesions=readings), DAY, CRITERIA)
    assert facts.tumour.unknown_site_nodules == 2
    assert "2 viable lesion(s) with no recorded site counted as liver nodules." in facts.reasons
    assert facts.day == DAY


def test_several_thrombi_are_listed_by_reference():
    conditions = [condition("portal_vein_tumour_thrombus", onset=date(2026, 1, 1), ref="Condition/b"),
                  condition("portal_vein_tumour_thrombus", onset=date(2026, 1, 2), ref="Condition/a")]
    facts = staging_facts_at(make_snapshot(lesions=nodules(25), conditions=conditions), DAY, CRITERIA)
    assert facts.reasons == ("Portal-vein tumour thrombus present (Condition/a, Condition/b).",)


def test_criteria_without_the_2022_group_have_an_empty_note():
    crit = BclcCriteria.from_dict({"bclc_2010": CRITERIA["bclc_2010"], "freshness": CRITERIA["freshness"]})
    assert (crit.note_2022, crit.citation_2022) == ("", "")
    full = BclcCriteria.from_dict(CRITERIA)
    assert full.citation_2022 == CRITERIA["bclc_2022"]["citation"] and full.note_2022


def test_malformed_bclc_criteria_are_named_in_the_error():
    with pytest.raises(KnowledgeError, match="malformed 'bclc_2010' group"):
        BclcCriteria.from_dict({"bclc_2010": {"citation": "c"}})


def test_the_assessment_at_the_first_tace_stages_that_day_with_its_own_evidence():
    snap = make_snapshot(lesions=nodules(25, 20, when=date(2026, 1, 5)) + nodules(50, when=SCAN))
    result = assess_bclc(snap, as_of=DAY, first_tace=date(2026, 1, 10), child_pugh_at_first_tace="A",
                         ecog_at_first_tace=0, child_pugh_now="A", ecog_now=0, criteria=CRITERIA,
                         evidence_at_first_tace=["Observation/cp-first"], evidence_now=["Observation/cp-now"])
    assert result.at_first_tace.stage == "A" and result.tumour_extent_at_first_tace.stage == "A"
    assert result.reasons[0] == (
        "At the first TACE (2026-01-10): A. 2 nodules (up to 3), all <= 30 mm, no invasion or spread, ECOG 0, Child-Pugh A: A."
    )
    assert result.reasons[1] == (
        "Findings at the first TACE: 2 nodules, largest 25 mm viable, on imaging of 2026-01-05; no portal invasion; "
        "no extrahepatic spread."
    )
    assert "Observation/cp-first" in result.at_first_tace.evidence and "Observation/cp-first" in result.evidence
    assert "Observation/cp-now" in result.current.evidence
    assert result.citation == CRITERIA["bclc_2010"]["citation"]
    assert bclc_json(result)["at_first_tace"] == "A"


def test_without_a_tace_there_is_no_stage_at_the_first_tace_and_the_dicts_say_so():
    result = assessment(0)
    assert result.at_first_tace is None and result.tumour_extent_at_first_tace is None
    data = bclc_json(result)
    assert (data["at_first_tace"], data["current"], data["tumour_extent_stage"], data["tumour_extent_stage_at_first_tace"]) == (
        None, "A", "A", None)
    assert data["reasons"] == list(result.reasons) and data["evidence"] == list(result.evidence)
    assert (data["note"], data["citation"]) == (result.note, result.citation) and data["note"]
    assert bclc_stage_json(result.current) == {"stage": "A", "reasons": list(result.current.reasons),
                                        "evidence": list(result.current.evidence), "citation": result.current.citation}
