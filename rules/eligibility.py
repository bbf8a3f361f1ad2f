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
    "Written informed consent",
    "Nutritional status (the study excluded nutritional impairment)",
    "Feeding-artery access for TACE (digital subtraction angiography)",
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
        return finding(Status.UNKNOWN, ["No birth date recorded."], [ref], citation=citation, id="age", kind="inclusion")
    age = age_on(snapshot.patient.birth_date, as_of)
    status = Status.MET if age >= minimum else Status.NOT_MET
    sign = ">=" if status is Status.MET else "<"
    return finding(status, [f"Age {age} {sign} {minimum}."], [ref], citation=citation, id="age", kind="inclusion")


def _child_pugh(cp: ChildPugh, citation: str, warnings: list[str]) -> Finding:
    if cp.klass is None:
        return finding(
            Status.UNKNOWN,
            ["Child-Pugh class unknown.", *cp.reasons],
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
        warnings.append("Child-Pugh B: sorafenib exposure and tolerance are less certain; the study included 22 of 34 such patients.")
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
            [f"Prior liver {p.concept} ({p.performed.isoformat() if p.performed else 'undated'})." for p in done],
            [p.ref for p in done],
            citation=citation,
            id="prior_resection_or_transplant",
            kind="exclusion",
        )
    notes.assume("No liver resection or transplant recorded: assumed none.")
    return finding(
        Status.NOT_MET,
        ["No liver resection or transplant recorded (assumed none)."],
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
                [f"ECOG {ps.ecog} (no more recent Karnofsky): corresponds to Karnofsky 40 or less, excluded."],
                ps.evidence,
                citation=citation,
                id=fid,
                kind=kind,
            )
        if ps.ecog >= 1:
            kps_range = karnofsky_range_for_ecog(ps.ecog, k.criteria.performance_status)
            if kps_range is None:
                band = "an unknown Karnofsky score"
            elif kps_range[1] <= kps_cut:
                band = f"Karnofsky {kps_range[0]}-{kps_range[1]}, all of which the study excluded"
            elif kps_range[0] <= kps_cut:
                low = f"{kps_range[0]}" if kps_range[0] == kps_cut else f"{kps_range[0]}-{kps_cut}"
                # Karnofsky is scored in tens: the band's top is the score the study included
                band = f"Karnofsky {kps_range[0]}-{kps_range[1]}, of which the study excluded {low} and included {kps_range[1]}"
            else:
                band = f"Karnofsky {kps_range[0]}-{kps_range[1]}, which the study included"
            warnings.append(
                f"Only ECOG {ps.ecog} recorded: it may correspond to {band}; the study's criterion was "
                f"Karnofsky > {kps_cut}, and it nevertheless included ECOG 2 patients. "
                "Record a Karnofsky score to decide."
            )
        return finding(
            Status.NOT_MET,
            [f"ECOG {ps.ecog} (no more recent Karnofsky): not excluded by the study's practice (ECOG 0-2 included)."],
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
            f"Latest bilirubin {older.when.isoformat()} is older than {max_age} days."
            if older
            else "No usable bilirubin result."
        )
        reasons = [reason] + [f"{u.ref} not used: {u.problem}." for u in snapshot.unusable_of("bilirubin")]
        return finding(Status.UNKNOWN, reasons, [], citation=citation, id=fid, kind=kind)
    if used.value > limit:
        return finding(Status.MET, [f"Bilirubin {used.value:g} mg/dL > {limit:g}."], [used.ref], citation=citation, id=fid, kind=kind)
    return finding(Status.NOT_MET, [f"Bilirubin {used.value:g} mg/dL <= {limit:g}."], [used.ref], citation=citation, id=fid, kind=kind)


def bclc_b_at_first_tace(bclc: BclcAssessment, child_pugh_at_first_tace: ChildPugh | None, citation: str) -> Finding:
    """Inclusion 1: BCLC B at the first TACE, by tumour extent, with Child-Pugh A-B at that date.

    Performance status is not used: the study's staging followed tumour extent (dossier §4.1, note 8).
    """
    fid, kind = "bclc_b_at_first_tace", "inclusion"
    extent = bclc.tumour_extent_at_first_tace
    if extent is None:
        return finding(Status.UNKNOWN, ["No TACE recorded: no stage at the first TACE."], [], citation=citation, id=fid, kind=kind)
    cp = child_pugh_at_first_tace
    evidence = list(extent.evidence) + (list(cp.evidence) if cp else [])
    when = f"at the first TACE ({cp.anchor.isoformat()})" if cp else "at the first TACE"
    if extent.stage is None:
        return finding(
            Status.UNKNOWN,
            [f"Tumour-extent stage {when} unknown.", *extent.reasons],
            evidence,
            citation=citation,
            id=fid,
            kind=kind,
        )
    if extent.stage != "B":
        return finding(
            Status.NOT_MET,
            [f"Tumour-extent stage {extent.stage} {when}, not B.", *extent.reasons],
            evidence,
            citation=citation,
            id=fid,
            kind=kind,
        )
    if cp is None or cp.klass is None:
        reasons = [f"Tumour-extent stage B {when}, but Child-Pugh at that date is unknown."]
        if cp:
            reasons += list(cp.reasons)
        return finding(Status.UNKNOWN, reasons, evidence, citation=citation, id=fid, kind=kind)
    if cp.klass == "C":
        return finding(
            Status.NOT_MET,
            [f"Tumour-extent stage B but Child-Pugh C {when}: BCLC D."],
            evidence,
            citation=citation,
            id=fid,
            kind=kind,
        )
    return finding(
        Status.MET,
        [f"Tumour-extent stage B with Child-Pugh {cp.klass} {when}."],
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
        note = f"Judged at the sorafenib start ({day.isoformat()}), as the study did."
        criteria = tuple(
            replace(c, reasons=(*c.reasons, note)) if c.id in AT_SORAFENIB_START else c for c in criteria
        )
    return Eligibility(status=combine(criteria), criteria=criteria, to_confirm=TO_CONFIRM, warnings=tuple(warnings))
