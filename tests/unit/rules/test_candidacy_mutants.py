"""TACE candidacy at each of its boundaries (written against mutmut's surviving mutants).

Viable tumour on the latest imaging (sum of viable diameters > 0), Child-Pugh C,
bilirubin > 3 mg/dL within the 30-day freshness window, at least 2 extrahepatic
metastases, a TACE not done within 365 days and not followed by a completed one.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.candidacy import evaluate_tace_candidacy
from rules.child_pugh import ChildPugh
from rules.findings import Status
from tests.unit.rules.factories import condition, lesion, make_snapshot, measurement, procedure

AS_OF = date(2026, 11, 28)


def days(n: int) -> timedelta:
    return timedelta(days=n)


def cp(klass: str | None = "A") -> ChildPugh:
    return ChildPugh(anchor=AS_OF, score=None, klass=klass, points={}, reasons=("cp",), cautions=(), citation="cp")


def viable(mm: float = 30, when: date | None = None, name: str = "a"):
    return lesion(name, when or AS_OF - days(10), mm)


def fresh_bilirubin(value: float = 1.0, age: int = 3):
    return measurement("bilirubin", value, AS_OF - days(age))


def candidacy(knowledge, *, klass="A", lesions=None, measurements=None, **kw):
    snap = make_snapshot(
        lesions=[viable()] if lesions is None else lesions,
        measurements=[fresh_bilirubin()] if measurements is None else measurements,
        **kw,
    )
    return evaluate_tace_candidacy(snap, AS_OF, knowledge, child_pugh=cp(klass))


def test_no_contraindication_and_viable_tumour_is_met_with_the_study_citation(knowledge):
    result = candidacy(knowledge)
    assert result.status is Status.MET
    assert result.finding.reasons == (
        "Viable liver tumour on the latest imaging (2026-11-18: sum of viable diameters 30 mm).",
        "No TACE contraindication recorded.",
    )
    assert result.finding.evidence == ("Observation/size-a-20261118",)
    assert result.finding.citation == knowledge.citation("tace_candidacy")
    assert result.to_confirm == ()


@pytest.mark.parametrize(("mm", "status"), [(0, Status.NOT_MET), (0.5, Status.MET), (1, Status.MET), (2, Status.MET)])
def test_any_viable_diameter_above_0_mm_is_tumour_to_embolise(knowledge, mm, status):
    result = candidacy(knowledge, lesions=[viable(mm)])
    assert result.status is status
    if status is Status.NOT_MET:
        assert result.finding.reasons == (
            "No viable (arterially enhancing) liver tumour on the latest imaging (2026-11-18): nothing to embolise.",
        )
        assert result.finding.evidence == ("Observation/size-a-20261118",)


def test_imaging_on_the_assessment_day_is_the_latest_and_later_imaging_is_ignored(knowledge):
    on_the_day = [viable(30, AS_OF - days(40)), viable(0, AS_OF)]
    assert candidacy(knowledge, lesions=on_the_day).status is Status.NOT_MET
    after = [viable(30, AS_OF - days(40)), viable(0, AS_OF + days(1))]
    assert candidacy(knowledge, lesions=after).status is Status.MET


def test_only_the_latest_imaging_date_counts_towards_viable_tumour(knowledge):
    earlier_viable = [viable(30, AS_OF - days(40)), viable(0, AS_OF - days(5))]
    assert candidacy(knowledge, lesions=earlier_viable).status is Status.NOT_MET
    later_viable = [viable(0, AS_OF - days(40)), viable(12, AS_OF - days(5))]
    assert candidacy(knowledge, lesions=later_viable).status is Status.MET


def test_no_imaging_is_unknown(knowledge):
    result = candidacy(knowledge, lesions=[])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons == ("No liver tumour imaging recorded: whether viable liver tumour remains is unknown.",)


@pytest.mark.parametrize(("klass", "status"), [("A", Status.MET), ("B", Status.MET), ("C", Status.NOT_MET)])
def test_child_pugh_c_and_only_c_contraindicates_tace(knowledge, klass, status):
    result = candidacy(knowledge, klass=klass)
    assert result.status is status
    if klass == "C":
        assert result.finding.reasons[-1] == "TACE contraindicated: Child-Pugh C."


def test_an_unknown_child_pugh_class_leaves_candidacy_unknown(knowledge):
    result = candidacy(knowledge, klass=None)
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons[-1] == "Cannot exclude a contraindication: Child-Pugh class unknown."


@pytest.mark.parametrize(("value", "status"), [(2.99, Status.MET), (3.0, Status.MET), (3.01, Status.NOT_MET)])
def test_bilirubin_above_3_contraindicates_tace_and_3_0_does_not(knowledge, value, status):
    result = candidacy(knowledge, measurements=[fresh_bilirubin(value)])
    assert result.status is status
    if status is Status.NOT_MET:
        assert result.finding.reasons[-1] == "TACE contraindicated: bilirubin 3.01 mg/dL > 3."
        assert f"Observation/bilirubin-20261125-{value}" in result.finding.evidence


@pytest.mark.parametrize(("age", "status"), [(30, Status.NOT_MET), (31, Status.UNKNOWN)])
def test_a_high_bilirubin_counts_up_to_30_days_old(knowledge, age, status):
    result = candidacy(knowledge, measurements=[fresh_bilirubin(4.0, age)])
    assert result.status is status


def test_no_fresh_bilirubin_leaves_candidacy_unknown(knowledge):
    result = candidacy(knowledge, measurements=[])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons[-1] == "Cannot exclude a contraindication: no bilirubin within the freshness window."


SITES = ("bone", "lung", "peritoneum")


def metastasis(n: int, site: str | None = None, **kw):
    return condition("extrahepatic_metastasis", onset=AS_OF - days(30 + n), ref=f"Condition/m{n}", site=site or SITES[n], **kw)


@pytest.mark.parametrize(("count", "status"), [(0, Status.MET), (1, Status.MET), (2, Status.NOT_MET), (3, Status.NOT_MET)])
def test_two_or_more_extrahepatic_metastases_contraindicate_tace_and_one_does_not(knowledge, count, status):
    result = candidacy(knowledge, conditions=[metastasis(i) for i in range(count)])
    assert result.status is status
    if status is Status.NOT_MET:
        listed = ", ".join(f"{site} (Condition/m{i})" for i, site in sorted(enumerate(SITES[:count]), key=lambda x: x[1]))
        assert result.finding.reasons[-1] == f"TACE contraindicated: multiple extrahepatic metastases ({count} sites: {listed})."
        assert {f"Condition/m{i}" for i in range(count)} <= set(result.finding.evidence)


def test_an_abated_metastasis_is_not_counted(knowledge):
    gone = metastasis(1, clinical_status="resolved", abatement=AS_OF - days(1))
    assert candidacy(knowledge, conditions=[metastasis(0), gone]).status is Status.MET


def not_done(when: date | None, reason: str | None = "technically impossible", ref: str = "Procedure/nd"):
    return procedure("tace", when, status="not-done", status_reason=reason, ref=ref)


@pytest.mark.parametrize(
    ("age", "status"),
    [(0, Status.NOT_MET), (365, Status.NOT_MET), (366, Status.NOT_MET), (3650, Status.NOT_MET), (-1, Status.MET)],
)
def test_a_tace_not_done_by_the_assessment_date_contraindicates_however_old_and_a_later_one_does_not(knowledge, age, status):
    """PRODUCT.md: a TACE not done after the last completed session; no recency window (it had 365 days)."""
    result = candidacy(knowledge, procedures=[not_done(AS_OF - days(age))])
    assert result.status is status
    if status is Status.NOT_MET:
        when = (AS_OF - days(age)).isoformat()
        assert result.finding.reasons[-1] == f"TACE contraindicated: TACE not done (technically impossible; {when})."
        assert "Procedure/nd" in result.finding.evidence


def test_an_undated_tace_not_done_contraindicates_whatever_was_done_since(knowledge):
    done = procedure("tace", AS_OF - days(10), ref="Procedure/done")
    result = candidacy(knowledge, procedures=[not_done(None, reason=None), done])
    assert result.status is Status.NOT_MET
    assert result.finding.reasons[-1] == "TACE contraindicated: TACE not done (no reason recorded; undated)."


@pytest.mark.parametrize(("done_offset", "status"), [(-1, Status.NOT_MET), (0, Status.NOT_MET), (1, Status.MET)])
def test_a_tace_not_done_stops_counting_once_a_later_tace_is_completed(knowledge, done_offset, status):
    refused = AS_OF - days(100)
    procs = [not_done(refused, "refused"), procedure("tace", refused + days(done_offset), ref="Procedure/done")]
    assert candidacy(knowledge, procedures=procs).status is status


def test_only_a_completed_tace_cancels_an_earlier_not_done_one(knowledge):
    refused = AS_OF - days(100)
    in_progress = procedure("tace", refused + days(5), status="in-progress", ref="Procedure/ip")
    assert candidacy(knowledge, procedures=[not_done(refused), in_progress]).status is Status.NOT_MET
    other = procedure("resection", refused + days(5), ref="Procedure/res")
    assert candidacy(knowledge, procedures=[not_done(refused), other]).status is Status.NOT_MET


def test_a_resolved_portal_vein_thrombus_is_nothing_to_confirm(knowledge):
    resolved = condition("portal_vein_tumour_thrombus", onset=AS_OF - days(20), abatement=AS_OF - days(1))
    assert candidacy(knowledge, conditions=[resolved]).to_confirm == ()


@pytest.mark.parametrize("outcome", ["contraindicated", "not viable", "unknown"])
def test_the_thrombus_to_confirm_is_kept_whatever_the_outcome(knowledge, outcome):
    kw = {"conditions": [condition("portal_vein_tumour_thrombus", onset=AS_OF - days(20))]}
    if outcome == "contraindicated":
        kw["klass"] = "C"
    elif outcome == "not viable":
        kw["lesions"] = [viable(0)]
    else:
        kw["measurements"] = []
    result = candidacy(knowledge, **kw)
    assert len(result.to_confirm) == 1
    assert result.finding.citation == knowledge.citation("tace_candidacy")


def test_a_contraindication_lists_the_viable_text_and_every_contraindication_with_its_evidence(knowledge):
    result = candidacy(
        knowledge,
        klass="C",
        measurements=[fresh_bilirubin(4.0)],
        conditions=[metastasis(0), metastasis(1)],
    )
    assert result.status is Status.NOT_MET
    assert result.finding.reasons == (
        "Viable liver tumour on the latest imaging (2026-11-18: sum of viable diameters 30 mm).",
        "TACE contraindicated: Child-Pugh C; bilirubin 4 mg/dL > 3; "
        "multiple extrahepatic metastases (2 sites: bone (Condition/m0), lung (Condition/m1)).",
    )
    assert result.finding.evidence == (
        "Observation/size-a-20261118",
        "Observation/bilirubin-20261125-4.0",
        "Condition/m0",
        "Condition/m1",
    )


def test_unknown_inputs_with_viable_tumour_are_unknown_with_the_viable_text_first(knowledge):
    result = candidacy(knowledge, klass=None, measurements=[])
    assert result.status is Status.UNKNOWN
    assert result.finding.reasons == (
        "Viable liver tumour on the latest imaging (2026-11-18: sum of viable diameters 30 mm).",
        "Cannot exclude a contraindication: Child-Pugh class unknown, no bilirubin within the freshness window.",
    )
    assert result.finding.evidence == ("Observation/size-a-20261118",)


def test_no_viable_tumour_wins_over_unknown_inputs(knowledge):
    result = candidacy(knowledge, klass=None, lesions=[viable(0)])
    assert result.status is Status.NOT_MET
