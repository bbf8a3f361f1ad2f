"""The recommendation's decision table row by row, its ECOG / Karnofsky cut-offs and the spread check.

Written against mutmut's surviving mutants; ``recommend`` is called directly with
findings built by hand, so each test moves one input across one boundary.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.findings import Finding, Status, finding
from rules.performance_status import PerformanceStatus
from rules.recommendation import SUMMARIES, recommend
from service.render.clinical_json import recommendation_json
from tests.unit.rules.factories import condition, lesion, make_snapshot, patient

AS_OF = date(2026, 11, 28)


def days(n: int) -> timedelta:
    return timedelta(days=n)


def f(status: Status, *reasons: str) -> Finding:
    return finding(status, reasons or (f"{status.value} reason",), citation="c")


def ps(ecog: int | None = 0, karnofsky: int | None = None, source: str | None = "ecog") -> PerformanceStatus:
    return PerformanceStatus(
        anchor=AS_OF, ecog=ecog, karnofsky=karnofsky, date=AS_OF if source else None, source=source,
        evidence=(), reasons=("ps reason",), citation="ps", max_age_days=90,
    )


def run(knowledge, snapshot=None, **kw):
    args = dict(
        has_hcc=f(Status.MET),
        tace_sessions_recorded=2,
        on_sorafenib=False,
        tace_resistance=f(Status.MET, "resistance reason"),
        eligibility_status="eligible",
        eligibility_reasons=["eligibility reason"],
        candidacy=f(Status.MET, "candidacy reason"),
        performance=ps(),
    )
    args.update(kw)
    return recommend(snapshot or make_snapshot(), AS_OF, knowledge, **args)


def test_every_recommendation_carries_its_summary_the_context_and_the_citation(knowledge):
    rec = run(knowledge)
    assert rec.code == "sorafenib-plus-tace"
    assert rec.summary == SUMMARIES["sorafenib-plus-tace"]
    assert rec.context == knowledge.thresholds["recommendation"]["context"]
    assert rec.citation == knowledge.citation("recommendation")
    assert rec.reasons == ("TACE resistance met.", "Eligible by the study's criteria.", "TACE still possible: candidacy reason")
    assert recommendation_json(rec) == {"code": rec.code, "summary": rec.summary, "reasons": list(rec.reasons),
                             "context": rec.context, "citation": rec.citation}


@pytest.mark.parametrize(("deceased_date", "reason"), [
    (date(2026, 10, 1), "The patient is recorded as deceased (2026-10-01)."),
    (None, "The patient is recorded as deceased."),
])
def test_a_deceased_patient_is_not_applicable(knowledge, deceased_date, reason):
    snap = make_snapshot(patient=patient(deceased=True, deceased_date=deceased_date))
    rec = run(knowledge, snap)
    assert (rec.code, rec.reasons, rec.summary) == ("not-applicable", (reason,), SUMMARIES["not-applicable"])


@pytest.mark.parametrize(("offset", "code"), [(-1, "not-applicable"), (0, "not-applicable"), (1, "sorafenib-plus-tace")])
def test_a_death_recorded_on_or_before_the_assessment_day_makes_it_not_applicable_and_a_later_one_does_not(
    knowledge, offset, code
):
    snap = make_snapshot(patient=patient(deceased=True, deceased_date=AS_OF + days(offset)))
    assert run(knowledge, snap).code == code


@pytest.mark.parametrize("status", [Status.NOT_MET, Status.UNKNOWN])
def test_without_an_active_confirmed_hcc_it_is_not_applicable(knowledge, status):
    rec = run(knowledge, has_hcc=f(status, "hcc reason"))
    assert (rec.code, rec.reasons) == ("not-applicable", ("No active, confirmed HCC diagnosis.", "hcc reason"))


@pytest.mark.parametrize(("sessions", "code"), [(0, "not-applicable"), (1, "sorafenib-plus-tace"), (2, "sorafenib-plus-tace")])
def test_no_tace_recorded_is_not_applicable_and_one_session_is_enough_to_go_on(knowledge, sessions, code):
    rec = run(knowledge, tace_sessions_recorded=sessions)
    assert rec.code == code
    if code == "not-applicable":
        assert rec.reasons == (
            "No completed TACE session recorded (planned, in-progress or not-done sessions do not count): "
            "the study concerns HCC after TACE.",
        )


def test_a_patient_on_sorafenib_gets_the_on_sorafenib_card(knowledge):
    rec = run(knowledge, on_sorafenib=True)
    assert (rec.code, rec.reasons) == (
        "on-sorafenib", ("Sorafenib is recorded as current: response, toxicity and survival information apply.",))


def test_unknown_resistance_is_insufficient_data(knowledge):
    rec = run(knowledge, tace_resistance=f(Status.UNKNOWN, "why unknown"))
    assert (rec.code, rec.reasons) == ("insufficient-data", ("TACE resistance unknown.", "why unknown"))


@pytest.mark.parametrize(("eligibility", "code", "first"), [
    ("ineligible", "outside-study-criteria", "TACE resistance met."),
    ("indeterminate", "insufficient-data", "TACE resistance met; eligibility indeterminate."),
])
def test_resistance_met_but_not_eligible_or_not_known_eligible(knowledge, eligibility, code, first):
    rec = run(knowledge, eligibility_status=eligibility)
    assert (rec.code, rec.reasons) == (code, (first, "eligibility reason"))


def test_resistant_and_eligible_without_tace_candidacy_is_sorafenib_alone(knowledge):
    rec = run(knowledge, candidacy=f(Status.NOT_MET, "no TACE"))
    assert (rec.code, rec.reasons) == (
        "sorafenib-alone",
        ("TACE resistance met.", "Eligible by the study's criteria.", "TACE candidacy not met: no TACE"),
    )


def test_resistant_and_eligible_with_unknown_tace_candidacy_picks_no_arm(knowledge):
    """PRODUCT.md row 8: an unknown candidacy never picks an arm (it used to give sorafenib-alone)."""
    rec = run(knowledge, candidacy=f(Status.UNKNOWN, "stale imaging"))
    assert (rec.code, rec.reasons) == (
        "insufficient-data",
        ("TACE resistance met; eligible by the study's criteria.",
         "TACE candidacy unknown, so neither arm can be chosen: stale imaging"),
    )


# -- resistance not met: continue TACE, refer, or insufficient data ---------------------------------


def not_resistant(knowledge, snapshot=None, **kw):
    return run(knowledge, snapshot, tace_resistance=f(Status.NOT_MET, "not resistant"), **kw)


BASE = ("TACE resistance not met (JSH 2010).", "not resistant")


def test_not_resistant_with_tace_possible_and_ecog_0_continues_tace(knowledge):
    rec = not_resistant(knowledge)
    assert (rec.code, rec.reasons) == ("continue-tace", BASE + (
        "TACE candidacy met; no vascular invasion or extrahepatic spread; performance status allows TACE.",))


@pytest.mark.parametrize(("ecog", "code"), [(0, "continue-tace"), (1, "continue-tace"), (2, "refer-mdt"), (3, "refer-mdt")])
def test_continuing_tace_needs_ecog_at_most_1(knowledge, ecog, code):
    rec = not_resistant(knowledge, performance=ps(ecog=ecog))
    assert rec.code == code
    if code == "refer-mdt":
        assert rec.reasons == BASE + ("Performance status beyond ECOG 1: ps reason",)


def test_every_performance_status_reason_is_given_when_it_does_not_allow_tace(knowledge):
    two = PerformanceStatus(anchor=AS_OF, ecog=2, karnofsky=None, date=AS_OF, source="ecog", evidence=(),
                            reasons=("ECOG 2 on 2026-11-28.", "No Karnofsky."), citation="ps", max_age_days=90)
    rec = not_resistant(knowledge, performance=two)
    assert rec.reasons[-1] == "Performance status beyond ECOG 1: ECOG 2 on 2026-11-28. No Karnofsky."


@pytest.mark.parametrize(("kps", "code"), [(100, "continue-tace"), (80, "continue-tace"), (79, "refer-mdt"), (70, "refer-mdt")])
def test_continuing_tace_on_a_karnofsky_score_needs_80_or_more(knowledge, kps, code):
    assert not_resistant(knowledge, performance=ps(ecog=None, karnofsky=kps, source="karnofsky")).code == code


def test_on_the_same_day_the_karnofsky_score_decides_over_the_ecog_grade(knowledge):
    assert not_resistant(knowledge, performance=ps(ecog=0, karnofsky=70, source="karnofsky")).code == "refer-mdt"
    assert not_resistant(knowledge, performance=ps(ecog=2, karnofsky=80, source="karnofsky")).code == "continue-tace"


def test_an_ecog_source_is_not_read_as_karnofsky(knowledge):
    assert not_resistant(knowledge, performance=ps(ecog=0, karnofsky=70, source="ecog")).code == "continue-tace"


def test_no_performance_status_is_insufficient_data(knowledge):
    rec = not_resistant(knowledge, performance=ps(ecog=None, source=None))
    assert (rec.code, rec.reasons) == ("insufficient-data", BASE + ("no performance status within 90 days",))


def test_unknown_candidacy_is_insufficient_data_and_says_why(knowledge):
    rec = not_resistant(knowledge, candidacy=f(Status.UNKNOWN, "no bilirubin", "no imaging"))
    assert (rec.code, rec.reasons) == ("insufficient-data", BASE + ("TACE candidacy unknown: no bilirubin no imaging",))


def test_unknown_candidacy_and_no_performance_status_name_both(knowledge):
    rec = not_resistant(knowledge, candidacy=f(Status.UNKNOWN, "x"), performance=ps(ecog=None, source=None))
    assert rec.reasons == BASE + ("no performance status within 90 days", "TACE candidacy unknown: x")


def test_candidacy_not_met_refers_to_the_tumour_board_with_its_reasons(knowledge):
    rec = not_resistant(knowledge, candidacy=f(Status.NOT_MET, "Child-Pugh C", "bilirubin"))
    assert (rec.code, rec.reasons) == ("refer-mdt", BASE + ("TACE candidacy not met: Child-Pugh C bilirubin",))


def test_candidacy_not_met_and_poor_performance_are_both_named(knowledge):
    rec = not_resistant(knowledge, candidacy=f(Status.NOT_MET, "no"), performance=ps(ecog=2))
    assert rec.reasons == BASE + ("TACE candidacy not met: no", "Performance status beyond ECOG 1: ps reason")


def test_poor_performance_with_unknown_candidacy_is_insufficient_data(knowledge):
    assert not_resistant(knowledge, candidacy=f(Status.UNKNOWN, "x"), performance=ps(ecog=3)).code == "insufficient-data"


# -- vascular invasion or extrahepatic spread -------------------------------------------------------


def spread_snapshot(**kw):
    return make_snapshot(**kw)


@pytest.mark.parametrize(("concept", "label"), [("portal_vein_tumour_thrombus", "vascular invasion"),
                                                ("extrahepatic_metastasis", "extrahepatic spread")])
def test_present_invasion_or_spread_refers_to_the_tumour_board(knowledge, concept, label):
    snap = spread_snapshot(conditions=[condition(concept, onset=AS_OF - days(10), ref="Condition/x")])
    rec = not_resistant(knowledge, snap)
    assert (rec.code, rec.reasons) == ("refer-mdt", BASE + (f"Present: {label} (Condition/x).",))


def test_an_invasion_with_onset_on_the_assessment_day_is_present_and_one_after_it_is_not(knowledge):
    on_the_day = spread_snapshot(conditions=[condition("portal_vein_tumour_thrombus", onset=AS_OF)])
    assert not_resistant(knowledge, on_the_day).code == "refer-mdt"
    later = spread_snapshot(conditions=[condition("portal_vein_tumour_thrombus", onset=AS_OF + days(1))])
    assert not_resistant(knowledge, later).code == "continue-tace"


def test_an_abated_invasion_is_not_present(knowledge):
    gone = condition("portal_vein_tumour_thrombus", onset=AS_OF - days(100), abatement=AS_OF - days(1), clinical_status="resolved")
    assert not_resistant(knowledge, spread_snapshot(conditions=[gone])).code == "continue-tace"


def test_both_invasion_and_spread_are_listed(knowledge):
    snap = spread_snapshot(conditions=[
        condition("portal_vein_tumour_thrombus", onset=AS_OF - days(10), ref="Condition/p"),
        condition("extrahepatic_metastasis", onset=AS_OF - days(10), ref="Condition/m1"),
        condition("extrahepatic_metastasis", onset=AS_OF - days(20), ref="Condition/m2"),
    ])
    rec = not_resistant(knowledge, snap)
    assert rec.reasons[-1] == "Present: vascular invasion (Condition/p); extrahepatic spread (Condition/m1, Condition/m2)."


@pytest.mark.parametrize(
    ("organ", "mm", "offset", "spread"),
    [
        ("lung", 12, -10, True),
        ("lung", 0.5, -10, True),  # any viable size
        ("lung", 1, 0, True),  # imaged on the assessment day
        ("lung", 0, -10, False),  # no viable tumour
        ("lung", 12, 1, False),  # imaged after the assessment day
        ("liver", 12, -10, False),
        (None, 12, -10, False),  # unrecorded site: counted as liver elsewhere
    ],
)
def test_a_viable_lesion_outside_the_liver_by_the_assessment_day_is_spread(knowledge, organ, mm, offset, spread):
    snap = spread_snapshot(lesions=[lesion("x", AS_OF + days(offset), mm, organ=organ)])
    rec = not_resistant(knowledge, snap)
    assert (rec.code == "refer-mdt") is spread
    if spread:
        assert rec.reasons[-1] == "Present: extrahepatic lesions (BodyStructure/x)."


def test_extrahepatic_lesions_are_listed_once_each_in_order(knowledge):
    lesions = [lesion("z", AS_OF - days(40), 10, organ="lung"), lesion("y", AS_OF - days(10), 10, organ="bone"),
               lesion("z", AS_OF - days(10), 11, organ="lung")]
    rec = not_resistant(knowledge, spread_snapshot(lesions=lesions))
    assert rec.reasons[-1] == "Present: extrahepatic lesions (BodyStructure/y, BodyStructure/z)."
