"""Issue 17's new rules at their edges (written against mutmut's surviving mutants).

Exact texts, orderings and boundaries of: distinct extrahepatic sites, viable liver tumour, portal-vein
thrombus presence, the ended sorafenib course, and the recommendation's new rows.
"""

from __future__ import annotations

from datetime import date, timedelta

from rules.candidacy import evaluate_tace_candidacy, extrahepatic_sites
from rules.child_pugh import ChildPugh
from rules.findings import Status, finding
from rules.knowledge import Knowledge
from rules.performance_status import PerformanceStatus
from rules.recommendation import recommend
from rules.treatment import ended_sorafenib_courses
from tests.unit.rules.factories import condition, lesion, make_snapshot, measurement, medication

AS_OF = date(2026, 11, 28)
PVT = "portal_vein_tumour_thrombus"
MET_ = "extrahepatic_metastasis"


def days(n: int) -> timedelta:
    return timedelta(days=n)


def cp() -> ChildPugh:
    return ChildPugh(anchor=AS_OF, score=None, klass="A", points={}, reasons=("cp",), cautions=(), citation="cp")


def candidacy(knowledge, *, lesions=None, conditions=(), bilirubin=True):
    snap = make_snapshot(
        lesions=[lesion("a", AS_OF - days(10), 30)] if lesions is None else lesions,
        measurements=[measurement("bilirubin", 1.0, AS_OF - days(3))] if bilirubin else [],
        conditions=conditions,
    )
    return evaluate_tace_candidacy(snap, AS_OF, knowledge, child_pugh=cp())


def branch_knowledge(knowledge) -> Knowledge:
    return Knowledge(
        knowledge.value_sets,
        knowledge.thresholds,
        {"thresholds": {"tace_candidacy": {"portal_vein_branch_only_concepts": ["branch"]}}},
    )


# -- extrahepatic sites ---------------------------------------------------------------------------------


def test_a_lesion_counts_by_its_latest_measurement_on_or_before_the_day():
    on_the_day = make_snapshot(lesions=[lesion("l", AS_OF, 12, organ="lung")])
    assert set(extrahepatic_sites(on_the_day, AS_OF, AS_OF).sites) == {"lung"}
    later = make_snapshot(lesions=[lesion("l", AS_OF + days(1), 12, organ="lung")])
    assert extrahepatic_sites(later, AS_OF, AS_OF).sites == {}
    shrunk = make_snapshot(lesions=[lesion("l", AS_OF - days(50), 12, organ="lung"), lesion("l", AS_OF - days(5), 0, organ="lung")])
    assert extrahepatic_sites(shrunk, AS_OF, AS_OF).sites == {}
    regrown = make_snapshot(lesions=[lesion("l", AS_OF - days(50), 0, organ="lung"), lesion("l", AS_OF - days(5), 12, organ="lung")])
    assert set(extrahepatic_sites(regrown, AS_OF, AS_OF).sites) == {"lung"}


def test_a_site_needs_a_viable_diameter_above_0_mm():
    assert extrahepatic_sites(make_snapshot(lesions=[lesion("l", AS_OF, 0, organ="lung")]), AS_OF, AS_OF).sites == {}
    small = make_snapshot(lesions=[lesion("l", AS_OF, 0.5, organ="lung")])
    assert extrahepatic_sites(small, AS_OF, AS_OF).sites == {"lung": ("Observation/size-l-20261128",)}


def test_the_evidence_of_a_site_is_ordered_by_reference_and_described_in_full():
    lesions = [lesion("l1", AS_OF - days(1), 30, organ="lung", ref="Observation/a"),
               lesion("l2", AS_OF - days(9), 5, organ="lung", ref="Observation/b")]
    sites = extrahepatic_sites(make_snapshot(lesions=lesions), AS_OF, AS_OF)
    assert sites.sites == {"lung": ("Observation/a", "Observation/b")}
    assert sites.describe() == "lung (Observation/a, Observation/b)"


def test_an_undated_metastasis_is_present_at_the_assessment_date(knowledge):
    undated = condition(MET_, site="bone", ref="Condition/m")
    assert extrahepatic_sites(make_snapshot(conditions=[undated]), AS_OF, AS_OF).sites == {"bone": ("Condition/m",)}
    both = [undated, condition(MET_, site="lung", ref="Condition/n")]
    assert candidacy(knowledge, conditions=both).status is Status.NOT_MET


def test_a_metastasis_recorded_after_the_assessment_date_leaves_multiple_sites_unknown(knowledge):
    later = condition(MET_, recorded=AS_OF + days(2), site="bone", ref="Condition/later")
    later2 = condition(MET_, recorded=AS_OF + days(3), site="skin", ref="Condition/later2")
    known = condition(MET_, onset=AS_OF - days(30), site="lung", ref="Condition/lung")
    result = candidacy(knowledge, conditions=[known, later, later2])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons[-1] == (
        "Cannot exclude a contraindication: whether extrahepatic metastases involve 2 or more distinct sites "
        "(metastasis recorded after 2026-11-28, presence then unknown: Condition/later, Condition/later2; "
        "known sites: lung (Condition/lung))."
    )
    assert extrahepatic_sites(make_snapshot(conditions=[later]), AS_OF, AS_OF).presence_unknown == ("Condition/later",)
    assert candidacy(knowledge, conditions=[later]).status is Status.MET  # one possible site at most


# -- viable liver tumour --------------------------------------------------------------------------------


def test_unknown_organ_lesions_are_named_and_a_0_mm_one_does_not_count(knowledge):
    unknown_organ = [lesion("x", AS_OF - days(10), 0.5, organ=None), lesion("y", AS_OF - days(10), 9, organ=None)]
    result = candidacy(knowledge, lesions=[lesion("a", AS_OF - days(10), 0), *unknown_organ])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons == (
        "No viable liver tumour on the latest imaging (2026-11-18), but 2 viable lesion(s) of unknown organ "
        "(BodyStructure/x, BodyStructure/y): whether viable liver tumour remains is unknown.",
    )
    gone = candidacy(knowledge, lesions=[lesion("a", AS_OF - days(10), 0), lesion("x", AS_OF - days(10), 0, organ=None)])
    assert gone.status is Status.NOT_MET


def test_a_lesion_outside_the_liver_seen_on_the_assessment_day_is_named(knowledge):
    lesions = [lesion("a", AS_OF - days(10), 0), lesion("p", AS_OF, 20, organ="lung"), lesion("q", AS_OF, 20, organ="bone")]
    result = candidacy(knowledge, lesions=lesions)
    assert result.finding.reasons[0].endswith("Lesions outside the liver (BodyStructure/p, BodyStructure/q) do not count.")


# -- portal-vein thrombus -------------------------------------------------------------------------------


def test_thrombi_are_listed_by_reference_and_the_to_confirm_text_is_exact(knowledge):
    b = condition(PVT, onset=AS_OF - days(5), ref="Condition/b")
    a = condition(PVT, onset=AS_OF - days(9), ref="Condition/a")
    result = candidacy(knowledge, conditions=[b, a])
    assert result.finding.reasons[-1] == (
        "TACE contraindicated: portal-vein thrombosis (Condition/a, Condition/b): main portal trunk involvement not excluded: confirm."
    )
    assert result.to_confirm == (
        "Portal-vein thrombosis recorded: confirm whether it involves the main portal trunk (a TACE contraindication).",
    )
    bland = candidacy(knowledge, conditions=[condition(PVT, onset=AS_OF - days(5), specific=False)])
    assert bland.to_confirm == (
        "Portal-vein thrombosis recorded: confirm whether it involves the main portal trunk (a TACE contraindication); "
        "tumour vs bland thrombus to confirm.",
    )


def test_an_undated_thrombus_is_present_now(knowledge):
    assert candidacy(knowledge, conditions=[condition(PVT, ref="Condition/u")]).status is Status.NOT_MET


def test_a_thrombus_recorded_after_the_assessment_date_leaves_candidacy_unknown(knowledge):
    later = condition(PVT, recorded=AS_OF + days(1), ref="Condition/later", specific=False)
    result = candidacy(knowledge, conditions=[later])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons[-1] == (
        "Cannot exclude a contraindication: whether the portal-vein thrombosis recorded after 2026-11-28 was present "
        "(Condition/later; tumour vs bland thrombus to confirm)."
    )


def test_a_branch_thrombus_is_confirmed_on_every_outcome_with_the_citation(knowledge):
    site = branch_knowledge(knowledge)
    branch = condition("branch", onset=AS_OF - days(5), ref="Condition/br")
    text = (
        "Portal-vein thrombus recorded as confined to a branch (Condition/br): not a TACE contraindication by the "
        "site's codes; confirm the main trunk is free.",
    )
    not_viable = candidacy(site, conditions=[branch], lesions=[lesion("a", AS_OF - days(10), 0)])
    unknown = candidacy(site, conditions=[branch], bilirubin=False)
    assert (not_viable.status, unknown.status) == (Status.NOT_MET, Status.UNKNOWN)
    for result in (not_viable, unknown):
        assert result.to_confirm == text
        assert result.finding.citation == site.citation("tace_candidacy")


# -- ended sorafenib course -----------------------------------------------------------------------------


def test_a_course_started_on_the_assessment_day_and_stopped_counts_and_one_starting_later_does_not():
    assert len(ended_sorafenib_courses(make_snapshot(medications=[medication("sorafenib", AS_OF, status="stopped")]), AS_OF)) == 1
    later = medication("sorafenib", AS_OF + days(1), status="stopped")
    assert ended_sorafenib_courses(make_snapshot(medications=[later]), AS_OF) == ()


def test_an_active_course_ends_only_with_an_end_date_before_the_assessment_date():
    for end, count in ((None, 0), (AS_OF, 0), (AS_OF - days(1), 1)):
        med = medication("sorafenib", AS_OF - days(100), status="active", end=end)
        assert len(ended_sorafenib_courses(make_snapshot(medications=[med]), AS_OF)) == count, end


def test_every_ended_course_is_listed_oldest_first_and_a_not_started_one_is_skipped():
    meds = [
        medication("sorafenib", AS_OF - days(50), status="cancelled", ref="MedicationRequest/x"),
        medication("sorafenib", AS_OF - days(100), status="stopped", ref="MedicationRequest/b"),
        medication("sorafenib", AS_OF - days(300), status="completed", ref="MedicationRequest/c"),
        medication("sorafenib", None, status="stopped", ref="MedicationRequest/a"),
    ]
    courses = ended_sorafenib_courses(make_snapshot(medications=meds), AS_OF)
    assert [c.record.ref for c in courses] == ["MedicationRequest/a", "MedicationRequest/c", "MedicationRequest/b"]
    assert courses[0].describe() == (
        "Earlier sorafenib course start not recorded to end date not recorded (stopped; no stop reason recorded; "
        "MedicationRequest/a)."
    )


# -- recommendation -------------------------------------------------------------------------------------


def f(status: Status, *reasons: str):
    return finding(status, reasons or (f"{status.value} reason",), citation="c")


def ps() -> PerformanceStatus:
    return PerformanceStatus(anchor=AS_OF, ecog=0, karnofsky=None, date=AS_OF, source="ecog", evidence=(),
                             reasons=("ps",), citation="ps", max_age_days=90)


def run(knowledge, snapshot, **kw):
    args = dict(has_hcc=f(Status.MET), tace_sessions_recorded=2, on_sorafenib=False, tace_resistance=f(Status.MET),
                eligibility_status="eligible", eligibility_reasons=["e"], candidacy=f(Status.MET, "c1", "c2"),
                performance=ps())
    args.update(kw)
    return recommend(snapshot, AS_OF, knowledge, **args)


def test_the_ended_course_row_gives_its_reason_first(knowledge):
    snap = make_snapshot(medications=[medication("sorafenib", AS_OF - days(100), status="stopped", end=AS_OF - days(10),
                                                 ref="MedicationRequest/s")])
    rec = run(knowledge, snap)
    assert rec.reasons == (
        "Sorafenib was given before and has ended: the study's question (starting sorafenib) no longer arises as such.",
        "Earlier sorafenib course 2026-08-20 to 2026-11-18 (stopped; no stop reason recorded; MedicationRequest/s).",
    )


def test_an_undated_thrombus_is_vascular_invasion_now(knowledge):
    rec = run(knowledge, make_snapshot(conditions=[condition(PVT, ref="Condition/u")]), tace_resistance=f(Status.NOT_MET))
    assert rec.code == "refer-mdt"
    assert rec.reasons[-1] == "Present: vascular invasion (Condition/u)."


def test_unknown_spread_is_named_in_full(knowledge):
    later = condition(MET_, recorded=AS_OF + days(1), ref="Condition/m")
    snap = make_snapshot(conditions=[later], lesions=[lesion("x", AS_OF, 5, organ=None), lesion("y", AS_OF, 5, organ=None)])
    rec = run(knowledge, snap, tace_resistance=f(Status.NOT_MET))
    assert rec.code == "insufficient-data"
    assert rec.reasons[-1] == (
        "Unknown: extrahepatic spread: recorded after 2026-11-28, presence then unknown (Condition/m); "
        "extrahepatic spread: viable lesion(s) of unknown organ (BodyStructure/x, BodyStructure/y)."
    )


def test_the_arm_rows_join_every_candidacy_reason(knowledge):
    snap = make_snapshot()
    assert run(knowledge, snap).reasons[-1] == "TACE still possible: c1 c2"
    assert run(knowledge, snap, candidacy=f(Status.NOT_MET, "n1", "n2")).reasons[-1] == "TACE candidacy not met: n1 n2"
    assert run(knowledge, snap, candidacy=f(Status.UNKNOWN, "u1", "u2")).reasons[-1] == (
        "TACE candidacy unknown, so neither arm can be chosen: u1 u2"
    )
