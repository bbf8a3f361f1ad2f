"""Comparison mutants of rules/mrecist.py left by the full mutation run (tools/mutation.sh mrecist, after clinical
core III): the new-lesion site wording and the recordedDate-only condition at the baseline boundary."""

from __future__ import annotations

from datetime import date

from tests.unit.rules.factories import condition
from tests.unit.rules.test_mrecist_core3 import BASE, F1, evaluate

PVT = "portal_vein_tumour_thrombus"


def test_a_new_lesion_of_unknown_organ_says_so_and_a_liver_one_names_no_organ():
    unknown = evaluate({BASE: {"a": 40}, F1: {"a": 40, "n": 15}}, organs={"a": "liver", "n": None})
    assert unknown.category == "PD"
    assert any(r.startswith("New lesion BodyStructure/n (organ unknown) first seen") for r in unknown.reasons), unknown.reasons
    liver = evaluate({BASE: {"a": 40}, F1: {"a": 40, "n": 15}})
    assert any(r.startswith("New lesion BodyStructure/n first seen") for r in liver.reasons), liver.reasons


def test_a_condition_recorded_on_the_baseline_day_without_onset_is_taken_as_present_before_baseline():
    on_day = condition(PVT, recorded=BASE, ref="Condition/on-day")
    result = evaluate({BASE: {"a": 40}, F1: {"a": 40}}, conditions=[on_day])
    assert any("Condition/on-day has no onset date: taken as present before baseline" in r for r in result.reasons)
    assert not any("Condition/on-day has no onset date, only a recordedDate" in r for r in result.reasons)
    after = condition(PVT, recorded=date(2026, 5, 3), ref="Condition/after")
    later = evaluate({BASE: {"a": 40}, F1: {"a": 40}}, conditions=[after])
    assert any("Condition/after has no onset date, only a recordedDate (2026-05-03, after baseline)" in r for r in later.reasons)


def test_a_condition_with_an_onset_is_dated_by_it_whatever_its_recorded_date():
    dated = condition(PVT, onset=date(2026, 4, 1), recorded=date(2026, 6, 1), ref="Condition/dated")
    result = evaluate({BASE: {"a": 40}, F1: {"a": 40}}, conditions=[dated])
    assert not any("Condition/dated has no onset date" in r for r in result.reasons), result.reasons
