"""BCLC 2010 staging, the study's tumour-extent stage, and the schema's ``bclc`` object."""

from __future__ import annotations

from datetime import date

import pytest

from rules.bclc import (
    ABSENT_UNLESS_RECORDED,
    BclcCriteria,
    assess_bclc,
    bclc_2010_stage,
    bclc_at,
    conditions_present_at,
    staging_facts_at,
    tumour_burden_at,
    tumour_extent_stage,
)
from service.render.clinical_json import bclc_json
from tests.unit.rules.factories import condition, lesion, make_snapshot, response_criteria

CRITERIA = response_criteria()
DAY = date(2026, 3, 1)
SCAN = date(2026, 2, 20)


def nodules(*diameters, when=SCAN, organ="liver"):
    return [lesion(f"n{i}", when, d, organ=organ) for i, d in enumerate(diameters, start=1)]


def stage_of(lesions=(), conditions=(), *, child_pugh="A", ecog=0, day=DAY):
    snapshot = make_snapshot(lesions=lesions, conditions=conditions)
    full, extent, facts = bclc_at(snapshot, day, child_pugh_class=child_pugh, ecog=ecog, criteria=CRITERIA)
    return full, extent, facts


@pytest.mark.parametrize(
    ("diameters", "child_pugh", "expected"),
    [
        ((15,), "A", "0"),
        ((19.9,), "A", "0"),
        ((20,), "A", "A"),  # "single < 2 cm": 20 mm is not
        ((15,), "B", "A"),  # stage 0 needs Child-Pugh A
        ((80,), "A", "A"),  # a single nodule of any size is A
        ((80,), "B", "A"),
        ((30, 30), "A", "A"),
        ((30, 25, 10), "A", "A"),  # up to 3 nodules <= 3 cm
        ((31, 25, 10), "A", "B"),
        ((45, 20), "B", "B"),
        ((10, 10, 10, 10), "A", "B"),  # 4 nodules: multinodular
    ],
)
def test_tumour_burden_gives_0_a_or_b_with_ecog_0_and_child_pugh_a_or_b(diameters, child_pugh, expected):
    full, extent, _ = stage_of(nodules(*diameters), child_pugh=child_pugh)
    assert full.stage == expected
    # tumour extent ignores liver function: a single nodule < 2 cm is 0 by extent even with Child-Pugh B
    assert extent.stage == ("0" if diameters[0] < 20 and len(diameters) == 1 else expected)
    assert full.reasons and full.citation.startswith("BCLC 2010")


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"conditions": [condition("portal_vein_tumour_thrombus", onset=date(2026, 1, 1))]}, "portal invasion"),
        ({"conditions": [condition("extrahepatic_metastasis", onset=date(2026, 1, 1))]}, "extrahepatic spread"),
        ({"lesions": [lesion("lung-1", SCAN, 12, organ="lung")]}, "extrahepatic spread"),
    ],
)
def test_portal_invasion_or_extrahepatic_spread_makes_it_c(extra, why):
    lesions = nodules(25, 20) + extra.get("lesions", [])
    full, extent, _ = stage_of(lesions, extra.get("conditions", ()), ecog=0)
    assert full.stage == "C"
    assert extent.stage == "C"
    assert why in " ".join(full.reasons).lower()


def test_ecog_1_makes_it_c_under_2010_while_the_tumour_extent_says_b():
    full, extent, _ = stage_of(nodules(45, 30, 20, 15), ecog=1)
    assert full.stage == "C"
    assert "ECOG 1 makes it C" in full.reasons[0]
    assert extent.stage == "B"


@pytest.mark.parametrize(
    ("child_pugh", "ecog", "expected"),
    [
        ("C", 0, "D"),
        ("C", None, "D"),  # forced: ECOG unknown does not matter
        ("C", 2, "D"),
        ("A", 3, "D"),
        (None, 3, "D"),  # forced: Child-Pugh unknown does not matter
        (None, 4, "D"),
        ("B", 2, "C"),
    ],
)
def test_child_pugh_c_or_ecog_above_2_is_d_whatever_else_is_missing(child_pugh, ecog, expected):
    full = bclc_2010_stage(
        tumour=None,
        vascular_invasion=False,
        extrahepatic_spread=False,
        child_pugh_class=child_pugh,
        ecog=ecog,
        criteria=CRITERIA,
    )
    assert full.stage == expected


@pytest.mark.parametrize(
    ("vascular_invasion", "child_pugh", "ecog", "could_be"),
    [
        (True, None, 0, "C or D"),  # Child-Pugh C would make it D
        (True, "A", None, "C or D"),  # ECOG > 2 would make it D
        (False, None, 1, "C or D"),
        (False, None, 0, "0 to D"),
        (False, "A", None, "0 to D"),
        (False, None, None, "0 to D"),
    ],
)
def test_a_missing_input_that_could_change_the_stage_leaves_it_unstaged(vascular_invasion, child_pugh, ecog, could_be):
    snapshot_lesions = nodules(25)
    facts_tumour = tumour_burden_at(snapshot_lesions, DAY, CRITERIA)
    full = bclc_2010_stage(
        tumour=facts_tumour,
        vascular_invasion=vascular_invasion,
        extrahepatic_spread=False,
        child_pugh_class=child_pugh,
        ecog=ecog,
        criteria=BclcCriteria.from_dict(CRITERIA),
    )
    assert full.stage is None
    assert f"could be {could_be}" in full.reasons[0]


def test_invasion_with_child_pugh_a_to_b_and_ecog_up_to_2_is_c_even_without_imaging():
    full = bclc_2010_stage(
        tumour=None, vascular_invasion=True, extrahepatic_spread=False, child_pugh_class="B", ecog=2, criteria=CRITERIA
    )
    assert full.stage == "C"


def test_without_imaging_stages_needing_tumour_burden_are_unknown():
    full, extent, facts = stage_of([], child_pugh="A", ecog=0)
    assert full.stage is None and extent.stage is None
    assert facts.tumour is None
    assert "No tumour imaging on or before 2026-03-01." in facts.reasons


def test_no_viable_tumour_on_the_latest_imaging_cannot_be_staged_by_burden():
    full, extent, _ = stage_of(nodules(0, 0), ecog=0)
    assert full.stage is None and extent.stage is None
    assert "no viable tumour" in full.reasons[0]


def test_the_latest_imaging_on_or_before_the_date_is_used():
    lesions = nodules(15, when=date(2025, 12, 1)) + nodules(40, 35, 30, when=SCAN) + nodules(50, when=date(2026, 3, 2))
    burden = tumour_burden_at(lesions, DAY, CRITERIA)
    assert burden.imaging_date == SCAN
    assert (burden.nodules, burden.largest_mm) == (3, 40)


def test_a_lesion_with_no_recorded_site_counts_as_a_liver_nodule_and_says_so():
    full, _, facts = stage_of([lesion("x", SCAN, 15, organ=None), lesion("y", SCAN, 12, organ=None)])
    assert full.stage == "A"
    assert any("no recorded site counted as liver nodules" in r for r in facts.reasons)


@pytest.mark.parametrize(
    ("fact", "present"),
    [
        (condition("portal_vein_tumour_thrombus", onset=date(2026, 3, 1)), True),  # onset on the date
        (condition("portal_vein_tumour_thrombus", onset=date(2026, 3, 2)), False),  # onset after
        (condition("portal_vein_tumour_thrombus", onset=None), True),  # unknown onset: present
        (condition("portal_vein_tumour_thrombus", onset=date(2026, 1, 1), abatement=date(2026, 3, 1),
                   clinical_status="resolved"), False),
        (condition("portal_vein_tumour_thrombus", onset=date(2026, 1, 1), abatement=date(2026, 3, 2),
                   clinical_status="resolved"), True),  # abated after the date
        (condition("portal_vein_tumour_thrombus", onset=date(2026, 1, 1), clinical_status="resolved"), False),
        (condition("portal_vein_tumour_thrombus", onset=date(2026, 1, 1), verification_status="refuted"), False),
    ],
)
def test_a_condition_is_present_at_a_date_when_begun_not_abated_and_active(fact, present):
    assert bool(conditions_present_at([fact], "portal_vein_tumour_thrombus", DAY)) is present


def test_absent_invasion_and_spread_come_with_the_recorded_only_when_present_assumption():
    facts = staging_facts_at(make_snapshot(lesions=nodules(25)), DAY, CRITERIA)
    assert (facts.vascular_invasion, facts.extrahepatic_spread) == (False, False)
    assert facts.assumptions == (ABSENT_UNLESS_RECORDED,)


def test_with_both_invasion_and_spread_recorded_nothing_is_assumed():
    facts = staging_facts_at(
        make_snapshot(
            lesions=nodules(25),
            conditions=[
                condition("portal_vein_tumour_thrombus", onset=date(2026, 1, 1)),
                condition("extrahepatic_metastasis", onset=date(2026, 1, 1)),
            ],
        ),
        DAY,
        CRITERIA,
    )
    assert facts.assumptions == ()
    assert "Condition/portal_vein_tumour_thrombus-20260101" in facts.evidence


def test_tumour_extent_ignores_liver_function_and_performance_status():
    burden = tumour_burden_at(nodules(45, 30), DAY, CRITERIA)
    extent = tumour_extent_stage(tumour=burden, vascular_invasion=False, extrahepatic_spread=False, criteria=CRITERIA)
    assert extent.stage == "B"
    assert tumour_extent_stage(tumour=None, vascular_invasion=True, extrahepatic_spread=False, criteria=CRITERIA).stage == "C"
    assert tumour_extent_stage(tumour=None, vascular_invasion=False, extrahepatic_spread=False, criteria=CRITERIA).stage is None


def test_the_bclc_object_stages_at_the_first_tace_and_now_with_the_tumour_extent():
    first_tace = date(2026, 1, 10)
    as_of = date(2026, 11, 28)
    snapshot = make_snapshot(
        lesions=nodules(40, 25, when=date(2026, 1, 5)) + nodules(45, 30, when=date(2026, 11, 1)),
    )
    result = assess_bclc(
        snapshot,
        as_of=as_of,
        first_tace=first_tace,
        child_pugh_at_first_tace="A",
        ecog_at_first_tace=0,
        child_pugh_now="A",
        ecog_now=1,
        criteria=CRITERIA,
        evidence_now=["Observation/ecog-1"],
    )
    data = bclc_json(result)
    assert (data["at_first_tace"], data["current"], data["tumour_extent_stage"]) == ("B", "C", "B")
    assert data["tumour_extent_stage_at_first_tace"] == "B"
    assert data["reasons"][0].startswith("At the first TACE (2026-01-10): B.")
    assert any(r.startswith("Now (2026-11-28): C. ECOG 1 makes it C under the 2010 scheme") for r in data["reasons"])
    assert "BCLC 2022 (Reig 2022)" in result.note and "follows BCLC 2010 as the study did" in result.note
    assert result.note in data["reasons"]
    assert "Observation/ecog-1" in result.evidence
    assert "Observation/size-n1-20261101" in result.evidence
    assert result.assumptions == (ABSENT_UNLESS_RECORDED,)


def test_without_a_tace_the_first_tace_stage_is_null():
    result = assess_bclc(
        make_snapshot(lesions=nodules(15)),
        as_of=DAY,
        first_tace=None,
        child_pugh_at_first_tace=None,
        ecog_at_first_tace=None,
        child_pugh_now="A",
        ecog_now=0,
        criteria=CRITERIA,
    )
    assert bclc_json(result)["at_first_tace"] is None
    assert bclc_json(result)["current"] == "0"
    assert "At the first TACE: not staged, no TACE recorded." in result.reasons


def test_invasion_appearing_after_the_first_tace_changes_only_the_current_stage():
    snapshot = make_snapshot(
        lesions=nodules(40, 25, when=date(2026, 1, 5)) + nodules(45, 30, when=date(2026, 6, 1)),
        conditions=[condition("portal_vein_tumour_thrombus", onset=date(2026, 5, 1))],
    )
    result = assess_bclc(
        snapshot,
        as_of=date(2026, 7, 1),
        first_tace=date(2026, 1, 10),
        child_pugh_at_first_tace="A",
        ecog_at_first_tace=0,
        child_pugh_now="B",
        ecog_now=0,
        criteria=CRITERIA,
    )
    assert (result.at_first_tace.stage, result.current.stage, result.tumour_extent.stage) == ("B", "C", "C")
