"""Mutation survivors of rules/eligibility.py and rules/bclc.py after clinical core III (tools/mutation.sh eligibility
bclc): the comparison mutants that change what a clinician reads."""

from __future__ import annotations

from rules.bclc import assess_bclc
from rules.eligibility import AT_SORAFENIB_START
from rules.findings import Status, finding
from rules.knowledge import Knowledge
from tests.unit.rules.factories import condition, lesion, make_snapshot, medication
from tests.unit.rules.test_boundaries_mutants import eligibility, ps
from tests.unit.rules.test_clinical_core_iii import AS_OF, CRITERIA, PVT, days


def test_an_ecog_band_straddling_the_karnofsky_cut_names_the_excluded_part_as_a_range(knowledge):
    # a site's table where ECOG 1 means Karnofsky 60-80: 60-70 excluded, 80 included (the shipped 70-80 names "70")
    k = Knowledge(knowledge.value_sets, knowledge.thresholds,
                  {"thresholds": {"performance_status": {"karnofsky_range_by_ecog": {"1": {"min": 60, "max": 80}}}}})
    result = eligibility(k, performance=ps(source="ecog", ecog=1))
    assert any("Karnofsky 60-80, of which the study excluded 60-70 and included 80" in w for w in result.warnings)
    shipped = eligibility(knowledge, performance=ps(source="ecog", ecog=1))
    assert any("Karnofsky 70-80, of which the study excluded 70 and included 80" in w for w in shipped.warnings)


def test_only_the_criteria_of_the_sorafenib_start_say_they_were_judged_then(knowledge):
    from rules.eligibility import evaluate_eligibility, tace_resistant
    from rules.findings import Notes
    from tests.unit.rules.test_boundaries_mutants import cp, fresh_labs

    start = AS_OF - days(60)
    snap = make_snapshot(measurements=fresh_labs(), medications=[medication("sorafenib", start)])
    result = evaluate_eligibility(
        snap, AS_OF, knowledge, Notes(), child_pugh=cp("A"), performance=ps(source="karnofsky", karnofsky=90),
        bclc_b_at_first_tace=finding(Status.MET, ["B"], citation="bclc", id="bclc_b_at_first_tace", kind="inclusion"),
        tace_resistance=tace_resistant(finding(Status.MET, ["resistant"], ["Procedure/t"], citation="jsh")),
        judged_at=start,
    )
    note = f"Judged at the sorafenib start ({start.isoformat()}), as the study did."
    judged = {c.id for c in result.criteria if note in c.reasons}
    assert judged == {c.id for c in result.criteria if c.id in AT_SORAFENIB_START} and judged
    assert note not in next(c for c in result.criteria if c.id == "tace_resistant").reasons


def test_findings_now_say_portal_invasion_unknown_for_a_thrombus_recorded_after_the_assessment_date():
    later = condition(PVT, recorded=AS_OF + days(5), ref="Condition/pvt-later")
    snap = make_snapshot(lesions=[lesion("a", AS_OF - days(10), 30)], conditions=[later])
    bclc = assess_bclc(snap, as_of=AS_OF, first_tace=None, child_pugh_at_first_tace=None, ecog_at_first_tace=None,
                       child_pugh_now="A", ecog_now=0, criteria=CRITERIA)
    now = next(r for r in bclc.reasons if r.startswith("Findings now"))
    assert "portal invasion unknown" in now and "no portal invasion" not in now


def test_an_ecog_band_ending_at_the_karnofsky_cut_is_wholly_excluded(knowledge):
    k = Knowledge(knowledge.value_sets, knowledge.thresholds,
                  {"thresholds": {"performance_status": {"karnofsky_range_by_ecog": {"2": {"min": 50, "max": 70}}}}})
    result = eligibility(k, performance=ps(source="ecog", ecog=2))
    assert any("Karnofsky 50-70, all of which the study excluded" in w for w in result.warnings), result.warnings
