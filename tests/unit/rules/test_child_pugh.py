"""Child-Pugh: every cut-off below, at and above its boundary; freshness; incomplete scores; cautions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.child_pugh import evaluate_child_pugh
from rules.findings import Notes
from rules.snapshot import ConditionFact
from tests.unit.rules.factories import condition, make_snapshot, measurement, medication, unusable

AS_OF = date(2026, 11, 28)
NORMAL = {"bilirubin": 1.0, "albumin": 4.0, "inr": 1.0}


def labs(when: date = AS_OF, **values: float):
    merged = {**NORMAL, **values}
    return [measurement(concept, value, when) for concept, value in merged.items() if value is not None]


def evaluate(snapshot, knowledge, anchor: date = AS_OF):
    return evaluate_child_pugh(snapshot, anchor, knowledge, Notes())


@pytest.mark.parametrize(
    ("bilirubin", "points"),
    [(1.99, 1), (2.0, 2), (2.5, 2), (3.0, 2), (3.01, 3), (10.0, 3)],
)
def test_bilirubin_points_at_the_2_and_3_mg_dl_boundaries(knowledge, bilirubin, points):
    result = evaluate(make_snapshot(measurements=labs(bilirubin=bilirubin)), knowledge)
    assert result.points["bilirubin"].points == points


@pytest.mark.parametrize(
    ("albumin", "points"),
    [(3.6, 1), (3.51, 1), (3.5, 2), (3.0, 2), (2.8, 2), (2.79, 3), (2.0, 3)],
)
def test_albumin_points_at_the_3_5_and_2_8_g_dl_boundaries(knowledge, albumin, points):
    result = evaluate(make_snapshot(measurements=labs(albumin=albumin)), knowledge)
    assert result.points["albumin"].points == points


@pytest.mark.parametrize(("inr", "points"), [(1.69, 1), (1.7, 2), (2.0, 2), (2.3, 2), (2.31, 3)])
def test_inr_points_at_the_1_7_and_2_3_boundaries(knowledge, inr, points):
    result = evaluate(make_snapshot(measurements=labs(inr=inr)), knowledge)
    assert result.points["inr"].points == points


@pytest.mark.parametrize(
    ("severity", "points"),
    [(None, 2), ("mild", 2), ("moderate", 3), ("severe", 3)],
)
def test_ascites_points_by_recorded_severity_and_unrecorded_severity_scores_two(knowledge, severity, points):
    snap = make_snapshot(
        measurements=labs(), conditions=[condition("ascites", onset=AS_OF - timedelta(days=10), severity=severity)]
    )
    result = evaluate(snap, knowledge)
    assert result.points["ascites"].points == points
    if severity is None:
        assert any("without severity" in r for r in result.reasons)


def test_no_ascites_or_encephalopathy_recorded_scores_one_and_says_it_is_assumed(knowledge):
    notes = Notes()
    result = evaluate_child_pugh(make_snapshot(measurements=labs()), AS_OF, knowledge, notes)
    assert result.points["ascites"].points == 1 and result.points["encephalopathy"].points == 1
    assert "No ascites recorded: scored as none." in notes.assumptions
    assert result.score == 5 and result.klass == "A"


def test_resolved_ascites_before_the_date_is_not_scored(knowledge):
    snap = make_snapshot(
        measurements=labs(),
        conditions=[condition("ascites", onset=date(2026, 1, 1), abatement=date(2026, 6, 1), severity="severe")],
    )
    assert evaluate(snap, knowledge).points["ascites"].points == 1


@pytest.mark.parametrize(
    ("bilirubin", "albumin", "inr", "asc", "score", "klass"),
    [
        (1.0, 4.0, 1.0, None, 5, "A"),
        (2.0, 4.0, 1.0, None, 6, "A"),
        (2.0, 3.5, 1.0, None, 7, "B"),
        (3.1, 2.7, 2.4, None, 11, "C"),
        (3.0, 3.0, 2.0, "moderate", 10, "C"),
        (2.0, 3.0, 2.0, None, 8, "B"),
        (3.1, 3.0, 2.0, None, 9, "B"),
        (3.1, 2.7, 2.0, None, 10, "C"),
    ],
)
def test_class_a_is_5_to_6_b_is_7_to_9_c_is_10_to_15(knowledge, bilirubin, albumin, inr, asc, score, klass):
    conditions = [condition("ascites", onset=date(2026, 1, 1), severity=asc)] if asc else []
    snap = make_snapshot(measurements=labs(bilirubin=bilirubin, albumin=albumin, inr=inr), conditions=conditions)
    result = evaluate(snap, knowledge)
    assert (result.score, result.klass) == (score, klass)


@pytest.mark.parametrize(("age_days", "used"), [(0, True), (30, True), (31, False)])
def test_a_lab_counts_up_to_30_days_before_the_date_and_not_at_31(knowledge, age_days, used):
    snap = make_snapshot(
        measurements=[
            measurement("bilirubin", 1.0, AS_OF - timedelta(days=age_days)),
            measurement("albumin", 4.0, AS_OF),
            measurement("inr", 1.0, AS_OF),
        ]
    )
    result = evaluate(snap, knowledge)
    assert (result.points["bilirubin"].points is not None) is used
    if not used:
        assert any("stale" in r for r in result.reasons)


def test_a_lab_after_the_anchor_date_is_not_used(knowledge):
    snap = make_snapshot(measurements=labs(when=AS_OF + timedelta(days=1)))
    result = evaluate(snap, knowledge)
    assert result.points["bilirubin"].points is None and result.klass is None


def test_incomplete_score_with_more_than_one_possible_class_is_null(knowledge):
    snap = make_snapshot(measurements=[measurement("bilirubin", 1.0, AS_OF), measurement("albumin", 4.0, AS_OF)])
    result = evaluate(snap, knowledge)
    assert result.score is None and result.klass is None
    assert "INR missing" in result.reasons[0]


def test_incomplete_score_whose_class_is_forced_gives_the_class_but_no_score(knowledge):
    # bilirubin 3 + albumin 3 + severe ascites 3 + encephalopathy none 1 = 10 already: C whatever the INR
    snap = make_snapshot(
        measurements=[measurement("bilirubin", 4.0, AS_OF), measurement("albumin", 2.5, AS_OF)],
        conditions=[condition("ascites", onset=date(2026, 1, 1), severity="severe")],
    )
    result = evaluate(snap, knowledge)
    assert result.score is None and result.klass == "C"
    assert "whatever the missing INR" in result.reasons[0]


def test_incomplete_score_at_class_edge_is_not_forced(knowledge):
    # 1 + 3 + 1 + 1 = 6 known; INR 1..3 gives 7..9 -> B whatever: forced B
    snap = make_snapshot(measurements=[measurement("bilirubin", 1.0, AS_OF), measurement("albumin", 2.5, AS_OF)])
    assert evaluate(snap, knowledge).klass == "B"
    # 1 + 1 + 1 + 1 = 4 known; INR 1..3 gives 5..7 -> A or B: not forced
    snap = make_snapshot(measurements=[measurement("bilirubin", 1.0, AS_OF), measurement("albumin", 4.0, AS_OF)])
    assert evaluate(snap, knowledge).klass is None


def test_an_unusable_value_is_named_in_the_reasons(knowledge):
    snap = make_snapshot(
        measurements=[measurement("bilirubin", 1.0, AS_OF), measurement("inr", 1.0, AS_OF)],
        unusable=[unusable("albumin", AS_OF, "value has no unit", ref="Observation/alb-1")],
    )
    result = evaluate(snap, knowledge)
    assert result.points["albumin"].points is None
    assert any("Observation/alb-1" in r and "no unit" in r for r in result.reasons)


def test_inr_on_a_vitamin_k_antagonist_is_a_caution(knowledge):
    snap = make_snapshot(
        measurements=labs(), medications=[medication("vitamin_k_antagonist", date(2026, 1, 1), ref="MedicationRequest/w")]
    )
    result = evaluate(snap, knowledge)
    assert any("vitamin-K antagonist" in c and "MedicationRequest/w" in c for c in result.cautions)


def test_lactulose_without_encephalopathy_and_diuretic_without_ascites_are_cautions(knowledge):
    snap = make_snapshot(
        measurements=labs(),
        medications=[medication("lactulose", date(2026, 1, 1)), medication("diuretic", date(2026, 1, 1))],
    )
    cautions = evaluate(snap, knowledge).cautions
    assert any("Lactulose" in c for c in cautions) and any("Diuretic" in c for c in cautions)


def test_a_diuretic_with_recorded_ascites_is_no_caution(knowledge):
    snap = make_snapshot(
        measurements=labs(),
        medications=[medication("diuretic", date(2026, 1, 1))],
        conditions=[condition("ascites", onset=date(2026, 1, 1), severity="mild")],
    )
    assert not any("Diuretic" in c for c in evaluate(snap, knowledge).cautions)


def test_the_most_recent_fresh_result_is_used(knowledge):
    snap = make_snapshot(
        measurements=[
            measurement("bilirubin", 3.5, AS_OF - timedelta(days=20)),
            measurement("bilirubin", 1.0, AS_OF - timedelta(days=2)),
            measurement("albumin", 4.0, AS_OF),
            measurement("inr", 1.0, AS_OF),
        ]
    )
    assert evaluate(snap, knowledge).points["bilirubin"].points == 1


@pytest.mark.parametrize(
    ("severity", "points"),
    [(None, 2), ("mild", 2), ("moderate", 2), ("severe", 3)],
)
def test_encephalopathy_mild_or_moderate_scores_two_and_severe_three(knowledge, severity, points):
    """Pugh (PRODUCT.md): encephalopathy mild or moderate (West Haven 1-2) = 2, severe (3-4) = 3."""
    snap = make_snapshot(
        measurements=labs(), conditions=[condition("encephalopathy", onset=AS_OF - timedelta(days=10), severity=severity)]
    )
    assert evaluate(snap, knowledge).points["encephalopathy"].points == points


def test_points_are_per_item_moderate_ascites_three_moderate_encephalopathy_two(knowledge):
    snap = make_snapshot(
        measurements=labs(),
        conditions=[
            condition("ascites", onset=AS_OF - timedelta(days=10), severity="moderate"),
            condition("encephalopathy", onset=AS_OF - timedelta(days=10), severity="moderate"),
        ],
    )
    result = evaluate(snap, knowledge)
    assert (result.points["ascites"].points, result.points["encephalopathy"].points) == (3, 2)
    assert result.score == 8 and result.klass == "B"


def test_the_worst_graded_encephalopathy_decides(knowledge):
    snap = make_snapshot(
        measurements=labs(),
        conditions=[
            condition("encephalopathy", onset=AS_OF - timedelta(days=20), severity="severe", ref="Condition/a"),
            condition("encephalopathy", onset=AS_OF - timedelta(days=10), severity="moderate", ref="Condition/b"),
        ],
    )
    item = evaluate(snap, knowledge).points["encephalopathy"]
    assert (item.points, item.evidence) == (3, "Condition/a")


# -- dating of the findings (PRODUCT.md, Data contract: no onset or recordedDate = date unknown) -----------------------


def dated(concept: str, *, onset=None, recorded=None, severity=None, ref=None):
    return ConditionFact(concept=concept, ref=ref or f"Condition/{concept}", onset=onset, clinical_status="active",
                         verification_status="confirmed", severity=severity, recorded=recorded)


PAST = AS_OF - timedelta(days=200)


@pytest.mark.parametrize(
    ("recorded", "anchor", "points"),
    [
        (PAST - timedelta(days=1), PAST, 2),   # recorded before the anchor: present then
        (PAST, PAST, 2),                        # recorded on the anchor day: present
        (PAST + timedelta(days=1), PAST, None),  # recorded after: not known to be present then
        (PAST + timedelta(days=1), AS_OF, 2),
    ],
)
def test_a_finding_dated_only_by_recorded_date_counts_from_that_date(knowledge, recorded, anchor, points):
    snap = make_snapshot(measurements=labs(anchor), conditions=[dated("ascites", recorded=recorded)])
    result = evaluate_child_pugh(snap, anchor, knowledge, Notes(), as_of=AS_OF)
    assert result.points["ascites"].points == points
    if points is None:
        assert any("not known to have been present" in r for r in result.reasons)
        assert result.score is None


@pytest.mark.parametrize(("anchor", "points"), [(AS_OF, 2), (PAST, None)])
def test_an_undated_finding_is_present_now_and_unknown_at_a_past_date(knowledge, anchor, points):
    snap = make_snapshot(measurements=labs(anchor), conditions=[dated("encephalopathy")])
    assert evaluate_child_pugh(snap, anchor, knowledge, Notes(), as_of=AS_OF).points["encephalopathy"].points == points


def test_an_unknown_finding_that_cannot_score_higher_does_not_make_the_item_unknown(knowledge):
    snap = make_snapshot(measurements=labs(PAST), conditions=[
        dated("ascites", onset=PAST - timedelta(days=5), severity="severe", ref="Condition/a"),
        dated("ascites", recorded=PAST + timedelta(days=5), severity="mild", ref="Condition/b"),
    ])
    item = evaluate_child_pugh(snap, PAST, knowledge, Notes(), as_of=AS_OF).points["ascites"]
    assert (item.points, item.evidence) == (3, "Condition/a")


def test_an_unknown_finding_that_could_score_higher_makes_the_item_unknown(knowledge):
    snap = make_snapshot(measurements=labs(PAST), conditions=[
        dated("ascites", onset=PAST - timedelta(days=5), severity="mild", ref="Condition/a"),
        dated("ascites", recorded=PAST + timedelta(days=5), severity="severe", ref="Condition/b"),
    ])
    item = evaluate_child_pugh(snap, PAST, knowledge, Notes(), as_of=AS_OF).points["ascites"]
    assert (item.points, item.evidence) == (None, "Condition/b")


def test_without_as_of_the_anchor_is_the_assessment_date(knowledge):
    snap = make_snapshot(measurements=labs(PAST), conditions=[dated("ascites")])
    assert evaluate_child_pugh(snap, PAST, knowledge, Notes()).points["ascites"].points == 2


def test_an_unknown_finding_scoring_the_same_as_a_known_one_does_not_make_the_item_unknown(knowledge):
    snap = make_snapshot(measurements=labs(PAST), conditions=[
        dated("encephalopathy", onset=PAST - timedelta(days=5), severity="mild", ref="Condition/a"),
        dated("encephalopathy", recorded=PAST + timedelta(days=5), ref="Condition/b"),
    ])
    result = evaluate_child_pugh(snap, PAST, knowledge, Notes(), as_of=AS_OF)
    assert (result.points["encephalopathy"].points, result.points["encephalopathy"].evidence) == (2, "Condition/a")


def test_the_unknown_reason_names_the_record_and_how_it_is_dated(knowledge):
    snap = make_snapshot(measurements=labs(PAST), conditions=[
        dated("ascites", recorded=PAST + timedelta(days=5), ref="Condition/z"),
        dated("ascites", recorded=PAST + timedelta(days=9), ref="Condition/y"),
        dated("encephalopathy", ref="Condition/e"),
    ])
    reasons = evaluate_child_pugh(snap, PAST, knowledge, Notes(), as_of=AS_OF).reasons
    assert (f"Condition/y: ascites (recorded {(PAST + timedelta(days=9)).isoformat()}) is not known to have been present "
            f"on {PAST.isoformat()}: ascites points unknown.") in reasons
    assert (f"Condition/e: hepatic encephalopathy (undated) is not known to have been present on {PAST.isoformat()}: "
            "hepatic encephalopathy points unknown.") in reasons
