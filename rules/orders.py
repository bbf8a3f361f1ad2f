"""What matters when someone orders sorafenib or TACE (order-select / order-sign).

Sorafenib ordered:
- sorafenib hypersensitivity -> ``critical`` (a drug-label contraindication);
- outside the study's criteria (or not decidable) -> ``warning`` with the reasons
  and override reasons: study criteria are not contraindications;
- above 800 mg/day -> ``warning``;
- below 400 mg twice daily with no recorded reason (a prior reduction, Child-Pugh
  B, a grade >= 2 adverse event) -> ``info`` with a suggestion to set 400 mg twice
  daily (not marked recommended);
- baseline labs missing within the window (CBC, platelets, albumin, bilirubin,
  creatinine, coagulation) -> a suggestion creating the lab orders.
TACE ordered for a TACE-resistant patient -> the assessment's recommendation:
sorafenib (alone, or added with the biloma warning) only for ``sorafenib-plus-tace``
/ ``sorafenib-alone``, otherwise the reasons it is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from rules import wording
from rules.assessment import Assessment
from rules.findings import Status
from rules.knowledge import Knowledge
from rules.timing import days_before

LAB_CONCEPTS = {"coagulation": ("inr", "prothrombin_time")}
LAB_LABELS = {
    "cbc": wording.orders_complete_blood_count(),
    "platelets": wording.orders_platelet_count(),
    "albumin": "albumin",
    "bilirubin": wording.orders_total_bilirubin(),
    "creatinine": "creatinine",
    "coagulation": wording.orders_coagulation_inr(),
}


@dataclass(frozen=True)
class DraftSorafenibOrder:
    ref: str
    daily_dose_mg: float | None


@dataclass(frozen=True)
class DraftTaceOrder:
    ref: str


@dataclass(frozen=True)
class OrderAlert:
    id: str
    indicator: str  # info / warning / critical
    summary: str
    reasons: tuple[str, ...]
    citation: str
    order_ref: str
    override: bool = False  # offer override reasons
    set_daily_dose_mg: float | None = None  # suggestion: update the draft order to this dose
    order_labs: tuple[str, ...] = field(default=())  # suggestion: create these lab orders (concepts)


def _fresh(assessment: Assessment, concept: str, as_of: date, max_age: int) -> bool:
    concepts = LAB_CONCEPTS.get(concept, (concept,))
    earliest = days_before(as_of, max_age)
    return any(earliest <= m.when <= as_of for c in concepts for m in assessment.snapshot.series(c))


def missing_baseline_labs(assessment: Assessment, k: Knowledge) -> tuple[str, ...]:
    g = k.criteria.sorafenib_dose
    max_age = g.baseline_lab_max_age_days
    return tuple(c for c in g.baseline_labs if not _fresh(assessment, c, assessment.as_of, max_age))


def reduced_dose_reasons(assessment: Assessment, draft: DraftSorafenibOrder, k: Knowledge) -> list[str]:
    """Recorded reasons for a dose below the full 800 mg/day."""
    reasons = []
    full = float(k.criteria.sorafenib_dose.max_mg_per_day)
    earlier = [
        m for m in assessment.sorafenib.records
        if m.ref != draft.ref and m.daily_dose_mg is not None and m.daily_dose_mg < full
    ]
    if earlier:
        reasons.append(wording.orders_prior_dose_reduction(earlier[0].ref))
    if assessment.child_pugh.klass == "B":
        reasons.append("Child-Pugh B")
    min_grade = k.criteria.sorafenib_dose.reduction_reason_min_grade
    for event in assessment.adverse_events:
        if event.grade is not None and event.grade >= min_grade:
            reasons.append(f"{event.term} grade {event.grade}")
    return reasons


def _label_contraindications(assessment: Assessment, draft: DraftSorafenibOrder) -> list[OrderAlert]:
    """A drug-label contraindication (sorafenib hypersensitivity): ``critical``."""
    return [
        OrderAlert(note.id, "critical", note.text, (note.text, *note.evidence), note.citation, draft.ref)
        for note in assessment.safety
        if note.label_contraindication
    ]


def _study_criteria(assessment: Assessment, draft: DraftSorafenibOrder, k: Knowledge) -> list[OrderAlert]:
    """Outside the study's criteria, or not decidable: a ``warning`` with override reasons (not a contraindication)."""
    elig = assessment.sorafenib_eligibility
    if elig.status == "eligible":
        return []
    failing = [
        f"{c.id}: {' '.join(c.reasons)}"
        for c in elig.criteria
        if (c.kind == "inclusion" and c.status is not Status.MET) or (c.kind == "exclusion" and c.status is not Status.NOT_MET)
    ]
    summary = (
        wording.orders_sorafenib_outside_study_criteria()
        if elig.status == "ineligible"
        else wording.orders_sorafenib_criteria_unconfirmed()
    )
    return [
        OrderAlert("outside-study-criteria" if elig.status == "ineligible" else "criteria-indeterminate", "warning",
                   summary, tuple(failing), k.criteria.sorafenib_eligibility.citation, draft.ref, override=True)
    ]


def _dose(assessment: Assessment, draft: DraftSorafenibOrder, k: Knowledge) -> list[OrderAlert]:
    """Above 800 mg/day, below the start with no recorded reason, or unreadable."""
    full = float(k.criteria.sorafenib_dose.max_mg_per_day)
    dose_citation = k.criteria.sorafenib_dose.citation
    dose = draft.daily_dose_mg
    if dose is not None and dose > full:
        return [
            OrderAlert("dose-above-label", "warning", wording.orders_sorafenib_mg_day_exceeds_mg(dose),
                       (wording.orders_ordered_mg_day_label_study(dose),), dose_citation,
                       draft.ref, override=True)
        ]
    if dose is not None and dose < full:
        if reduced_dose_reasons(assessment, draft, k):
            return []
        return [
            OrderAlert(
                "dose-below-start",
                "warning",  # an order problem (PRODUCT.md Outputs: warning)
                wording.orders_sorafenib_mg_day_below_mg(dose),
                (
                    wording.orders_ordered_mg_day_no_prior(dose),
                ),
                dose_citation,
                draft.ref,
                set_daily_dose_mg=full,
            )
        ]
    if dose is None:
        return [
            OrderAlert("dose-unreadable", "warning", wording.orders_dose_unreadable(),
                       (wording.orders_dose_unreadable_detail(),), dose_citation, draft.ref)
        ]
    return []


def _baseline_labs(assessment: Assessment, draft: DraftSorafenibOrder, k: Knowledge) -> list[OrderAlert]:
    """Baseline labs missing within the window: a suggestion creating the lab orders."""
    missing = missing_baseline_labs(assessment, k)
    if not missing:
        return []
    labels = ", ".join(LAB_LABELS[m] for m in missing)
    return [
        OrderAlert(
            "baseline-labs",
            "warning",
            wording.orders_baseline_labs_missing_before_sorafenib(labels)[:139],
            (
                wording.orders_not_within_days_study_monitored(
                    k.criteria.sorafenib_dose.baseline_lab_max_age_days, labels
                ),
            ),
            k.criteria.sorafenib_dose.citation,
            draft.ref,
            order_labs=missing,
        )
    ]


def review_sorafenib_order(assessment: Assessment, draft: DraftSorafenibOrder, k: Knowledge) -> list[OrderAlert]:
    """The alerts of a sorafenib order, in order: label contraindications, study criteria, dose, baseline labs."""
    return [
        *_label_contraindications(assessment, draft),
        *_study_criteria(assessment, draft, k),
        *_dose(assessment, draft, k),
        *_baseline_labs(assessment, draft, k),
    ]


def review_tace_order(assessment: Assessment, draft: DraftTaceOrder, k: Knowledge) -> list[OrderAlert]:
    if assessment.tace_resistance.status is not Status.MET:
        return []
    rec = assessment.recommendation
    citation = rec.citation
    if rec.code == "sorafenib-plus-tace":
        warning = k.criteria.recommendation.combination_warning
        return [OrderAlert("tace-resistant-combination", "warning",
                           wording.orders_tace_resistant_study_added_sorafenib(),
                           (*rec.reasons, warning), citation, draft.ref)]
    if rec.code == "sorafenib-alone":
        return [OrderAlert("tace-resistant-sorafenib-alone", "warning",
                           wording.orders_tace_resistant_tace_not_possible(),
                           rec.reasons, citation, draft.ref, override=True)]
    return [OrderAlert("tace-resistant-no-sorafenib", "info",
                       wording.orders_tace_resistant_but_sorafenib_not(rec.code.replace("-", " ")),
                       rec.reasons, citation, draft.ref)]
