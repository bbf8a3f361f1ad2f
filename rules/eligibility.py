"""Sorafenib eligibility by the source study's criteria (not drug contraindications).

Inclusion: age >= 18; BCLC B at the first TACE; TACE-resistant; Child-Pugh A or
B (B flagged). Exclusion: prior liver resection or transplant; Karnofsky <= 70
(only ECOG recorded: ECOG >= 3 excludes, ECOG 1-2 allowed with a warning);
bilirubin > 3 mg/dL. For an exclusion criterion ``met`` means the exclusion
applies. Result: ``eligible`` / ``ineligible`` / ``indeterminate``. For a patient on (or
past) sorafenib the criteria are judged at the sorafenib start, as the study did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from rules import wording
from rules.bclc import BclcAssessment
from rules.child_pugh import ChildPugh
from rules.demographics import age_on
from rules.findings import Finding, Notes, Status, finding
from rules.knowledge import Knowledge
from rules.performance_status import PerformanceStatus, karnofsky_range_for_ecog
from rules.snapshot import Snapshot
from rules.timing import latest_before, latest_within

# the criteria judged at the sorafenib start for a patient on or past sorafenib (the others have their own dates)
AT_SORAFENIB_START = frozenset(
    {"age", "child_pugh_a_or_b", "prior_resection_or_transplant", "karnofsky_above_70", "bilirubin_above_3"}
)

TO_CONFIRM = (
    wording.eligibility_written_informed_consent(),
    wording.eligibility_nutritional_status_study_excluded_nutritional(),
    wording.eligibility_feeding_artery_access_tace_digital(),
)


@dataclass(frozen=True)
class Eligibility:
    status: str  # eligible / ineligible / indeterminate
    criteria: tuple[Finding, ...]
    to_confirm: tuple[str, ...]
    warnings: tuple[str, ...]


def _age(snapshot: Snapshot, as_of: date, k: Knowledge, citation: str) -> Finding:
    minimum = k.criteria.sorafenib_eligibility.min_age_years
    ref = snapshot.patient.ref
    if snapshot.patient.birth_date is None:
        return finding(
            Status.UNKNOWN,
            [wording.eligibility_no_birth_date_recorded()],
            [ref],
            citation=citation,
            id="age",
            kind="inclusion",
        )
    age = age_on(snapshot.patient.birth_date, as_of)
    status = Status.MET if age >= minimum else Status.NOT_MET
    sign = ">=" if status is Status.MET else "<"
    return finding(status, [f"Age {age} {sign} {minimum}."], [ref], citation=citation, id="age", kind="inclusion")


def _child_pugh(cp: ChildPugh, citation: str, warnings: list[str]) -> Finding:
    if cp.klass is None:
        return finding(
            Status.UNKNOWN,
            [wording.eligibility_child_pugh_class_unknown(), *cp.reasons],
            cp.evidence,
            citation=citation,
            id="child_pugh_a_or_b",
            kind="inclusion",
        )
    if cp.klass == "C":
        return finding(
            Status.NOT_MET,
            [f"Child-Pugh C ({cp.reasons[0]})"],
            cp.evidence,
            citation=citation,
            id="child_pugh_a_or_b",
            kind="inclusion",
        )
    if cp.klass == "B":
        warnings.append(wording.eligibility_child_pugh_b_sorafenib_exposure())
    return finding(
        Status.MET,
        [f"Child-Pugh {cp.klass}: {cp.reasons[0]}"],
        cp.evidence,
        citation=citation,
        id="child_pugh_a_or_b",
        kind="inclusion",
    )


def _prior_surgery(snapshot: Snapshot, as_of: date, notes: Notes, citation: str) -> Finding:
    done = [
        p
        for concept in ("resection", "transplant")
        for p in snapshot.procedures_of(concept)
        if p.status == "completed" and (p.performed is None or p.performed <= as_of)
    ]
    if done:
        return finding(
            Status.MET,
            [
                wording.eligibility_prior_liver(p.concept, p.performed.isoformat() if p.performed else "undated")
                for p in done
            ],
            [p.ref for p in done],
            citation=citation,
            id="prior_resection_or_transplant",
            kind="exclusion",
        )
    notes.assume(wording.eligibility_no_prior_liver_treatment_assumed())
    return finding(
        Status.NOT_MET,
        [wording.eligibility_no_prior_liver_treatment_assumed_note()],
        [],
        citation=citation,
        id="prior_resection_or_transplant",
        kind="exclusion",
    )


def _performance(ps: PerformanceStatus, k: Knowledge, citation: str, warnings: list[str]) -> Finding:
    kps_cut = k.criteria.sorafenib_eligibility.karnofsky_excluded_at_or_below
    ecog_cut = k.criteria.sorafenib_eligibility.ecog_excluded_from
    fid, kind = "karnofsky_above_70", "exclusion"
    if ps.source == "karnofsky" and ps.karnofsky is not None:
        if ps.karnofsky <= kps_cut:
            return finding(Status.MET, [f"Karnofsky {ps.karnofsky} <= {kps_cut}."], ps.evidence, citation=citation, id=fid, kind=kind)
        return finding(Status.NOT_MET, [f"Karnofsky {ps.karnofsky} > {kps_cut}."], ps.evidence, citation=citation, id=fid, kind=kind)
    if ps.source == "ecog" and ps.ecog is not None:
        if ps.ecog >= ecog_cut:
            return finding(
                Status.MET,
                [wording.eligibility_ecog_only_excluded(ps.ecog)],
                ps.evidence,
                citation=citation,
                id=fid,
                kind=kind,
            )
        if ps.ecog >= 1:
            kps_range = karnofsky_range_for_ecog(ps.ecog, k.criteria.performance_status)
            if kps_range is None:
                band = wording.eligibility_unknown_karnofsky_score()
            elif kps_range[1] <= kps_cut:
                band = wording.eligibility_karnofsky_all_which_study_excluded(kps_range[0], kps_range[1])
            elif kps_range[0] <= kps_cut:
                low = f"{kps_range[0]}" if kps_range[0] == kps_cut else f"{kps_range[0]}-{kps_cut}"
                # Karnofsky is scored in tens: the band's top is the score the study included
                band = wording.eligibility_karnofsky_which_study_excluded_included(kps_range[0], kps_range[1], low)
            else:
                band = wording.eligibility_karnofsky_which_study_included(kps_range[0], kps_range[1])
            warnings.append(
                wording.eligibility_only_ecog_recorded_may_correspond(ps.ecog, band, kps_cut)
            )
        return finding(
            Status.NOT_MET,
            [wording.eligibility_ecog_only_not_excluded(ps.ecog)],
            ps.evidence,
            citation=citation,
            id=fid,
            kind=kind,
        )
    return finding(Status.UNKNOWN, list(ps.reasons), ps.evidence, citation=citation, id=fid, kind=kind)


def _bilirubin(snapshot: Snapshot, as_of: date, k: Knowledge, citation: str) -> Finding:
    limit = k.criteria.sorafenib_eligibility.bilirubin_mg_dl_max
    max_age = k.criteria.freshness.lab_max_age_days
    fid, kind = "bilirubin_above_3", "exclusion"
    series = snapshot.series("bilirubin")
    used = latest_within(series, as_of, max_age)
    if used is None:
        older = latest_before(series, as_of)
        reason = (
            wording.eligibility_latest_bilirubin_older_than_days(older.when.isoformat(), max_age)
            if older
            else wording.eligibility_no_usable_bilirubin_result()
        )
        reasons = [reason] + [wording.eligibility_not_used(u.ref, u.problem) for u in snapshot.unusable_of("bilirubin")]
        return finding(Status.UNKNOWN, reasons, [], citation=citation, id=fid, kind=kind)
    if used.value > limit:
        return finding(
            Status.MET,
            [wording.eligibility_bilirubin_above_limit(used.value, limit)],
            [used.ref],
            citation=citation,
            id=fid,
            kind=kind,
        )
    return finding(
        Status.NOT_MET,
        [wording.eligibility_bilirubin_within_limit(used.value, limit)],
        [used.ref],
        citation=citation,
        id=fid,
        kind=kind,
    )


def bclc_b_at_first_tace(bclc: BclcAssessment, child_pugh_at_first_tace: ChildPugh | None, citation: str) -> Finding:
    """Inclusion 1: BCLC B at the first TACE, by tumour extent, with Child-Pugh A-B at that date.

    Performance status is not used: the study's staging followed tumour extent (dossier §4.1, note 8).
    """
    fid, kind = "bclc_b_at_first_tace", "inclusion"
    extent = bclc.tumour_extent_at_first_tace
    if extent is None:
        return finding(
            Status.UNKNOWN, [wording.eligibility_no_tace_recorded_no_stage()], [], citation=citation, id=fid, kind=kind
        )
    cp = child_pugh_at_first_tace
    evidence = list(extent.evidence) + (list(cp.evidence) if cp else [])
    when = wording.eligibility_at_first_tace_on(cp.anchor.isoformat()) if cp else wording.eligibility_at_first_tace()
    if extent.stage is None:
        return finding(
            Status.UNKNOWN,
            [wording.eligibility_tumour_extent_stage_unknown(when), *extent.reasons],
            evidence,
            citation=citation,
            id=fid,
            kind=kind,
        )
    if extent.stage != "B":
        return finding(
            Status.NOT_MET,
            [wording.eligibility_tumour_extent_stage_not_b(extent.stage, when), *extent.reasons],
            evidence,
            citation=citation,
            id=fid,
            kind=kind,
        )
    if cp is None or cp.klass is None:
        reasons = [wording.eligibility_stage_b_child_pugh_unknown(when)]
        if cp:
            reasons += list(cp.reasons)
        return finding(Status.UNKNOWN, reasons, evidence, citation=citation, id=fid, kind=kind)
    if cp.klass == "C":
        return finding(
            Status.NOT_MET,
            [wording.eligibility_stage_b_child_pugh_c(when)],
            evidence,
            citation=citation,
            id=fid,
            kind=kind,
        )
    return finding(
        Status.MET,
        [wording.eligibility_tumour_extent_stage_b_child(cp.klass, when)],
        evidence,
        citation=citation,
        id=fid,
        kind=kind,
    )


def tace_resistant(resistance: Finding) -> Finding:
    """Inclusion 2: TACE-resistant by the study's definition (JSH 2010)."""
    return finding(
        resistance.status,
        resistance.reasons,
        resistance.evidence,
        citation=resistance.citation,
        id="tace_resistant",
        kind="inclusion",
    )


def combine(criteria: tuple[Finding, ...]) -> str:
    """ineligible if an inclusion is not met or an exclusion applies; indeterminate if anything is unknown."""
    for c in criteria:
        if (c.kind == "inclusion" and c.status is Status.NOT_MET) or (c.kind == "exclusion" and c.status is Status.MET):
            return "ineligible"
    if any(c.status is Status.UNKNOWN for c in criteria):
        return "indeterminate"
    return "eligible"


def evaluate_eligibility(
    snapshot: Snapshot,
    as_of: date,
    k: Knowledge,
    notes: Notes,
    *,
    child_pugh: ChildPugh,
    performance: PerformanceStatus,
    bclc_b_at_first_tace: Finding,
    tace_resistance: Finding,
    judged_at: date | None = None,
) -> Eligibility:
    """The study's criteria, judged at ``judged_at`` (default ``as_of``).

    For a patient on or past sorafenib the caller passes the sorafenib start as ``judged_at``, with
    ``child_pugh`` and ``performance`` computed at that date: the study judged its criteria then.
    Age, prior surgery and bilirubin are judged here at that date.
    """
    citation = k.criteria.sorafenib_eligibility.citation
    warnings: list[str] = []
    day = judged_at or as_of
    criteria: tuple[Finding, ...] = (
        _age(snapshot, day, k, citation),
        bclc_b_at_first_tace,
        tace_resistance,
        _child_pugh(child_pugh, citation, warnings),
        _prior_surgery(snapshot, day, notes, citation),
        _performance(performance, k, citation, warnings),
        _bilirubin(snapshot, day, k, citation),
    )
    if day != as_of:
        note = wording.eligibility_judged_sorafenib_start_study_did(day.isoformat())
        criteria = tuple(
            replace(c, reasons=(*c.reasons, note)) if c.id in AT_SORAFENIB_START else c for c in criteria
        )
    return Eligibility(status=combine(criteria), criteria=criteria, to_confirm=TO_CONFIRM, warnings=tuple(warnings))
