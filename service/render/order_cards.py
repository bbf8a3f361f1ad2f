"""Order alerts (``rules.orders``) -> CDS Hooks cards with suggestions and actions."""

from __future__ import annotations

import copy
import uuid

from rules import Assessment, Knowledge, OrderAlert, SafetyNote
from service.cds.models import Action, Card, Coding, Suggestion
from service.render.cards import (
    PLAIN,
    SAFETY_TOPIC,
    deciding_facts,
    detail_markdown,
    eligibility_fact,
    plain,
    safety_warnings,
    source,
    versions_extension,
)

OVERRIDE_SYSTEM = "urn:hcc-cds:override-reason"
OVERRIDE_REASONS = (
    ("clinical-judgement", "Clinical judgement: benefit outweighs the study's criteria"),
    ("tumour-board", "Discussed at the multidisciplinary tumour board"),
    ("patient-preference", "Patient's informed preference"),
)
UCUM = "http://unitsofmeasure.org"


def _full_dose_update(draft: dict, mg_per_day: float) -> dict:
    """The draft MedicationRequest with its dosage set to the study's start: 400 mg twice daily."""
    updated = copy.deepcopy(draft)
    per_dose = mg_per_day / 2
    updated["dosageInstruction"] = [
        {
            "text": f"{per_dose:g} mg twice daily",
            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": per_dose, "unit": "mg", "system": UCUM, "code": "mg"}}],
        }
    ]
    return updated


def _lab_orders(alert: OrderAlert, assessment: Assessment, k: Knowledge) -> list[Action]:
    orders = k.criteria.sorafenib_dose.baseline_lab_orders
    actions = []
    for concept in alert.order_labs:
        order = orders[concept]
        code = {"system": order.system, "code": order.code, "display": order.display}
        actions.append(
            Action(
                type="create",
                description=f"Order {code['display']}",
                resource={
                    "resourceType": "ServiceRequest",
                    "status": "draft",
                    "intent": "order",
                    "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "108252007", "display": "Laboratory procedure"}]}],
                    "code": {"coding": [code], "text": code["display"]},
                    "subject": {"reference": f"Patient/{assessment.patient_id}"},
                    "reasonCode": [{"text": "Baseline before sorafenib (source study's monitoring)"}],
                },
            )
        )
    return actions


ORDER_TOPIC = {
    "outside-study-criteria": "Sorafenib outside the study's criteria",
    "criteria-indeterminate": "Study criteria not decidable",
    "dose-above-label": "Dose above the label",
    "dose-below-start": "Dose below the study's start",
    "dose-unreadable": "Dose not readable",
    "baseline-labs": "Baseline labs missing",
    "tace-resistant-combination": "TACE-resistant: sorafenib with TACE",
    "tace-resistant-sorafenib-alone": "TACE-resistant: sorafenib alone",
    "tace-resistant-no-sorafenib": "TACE-resistant, sorafenib not suggested",
}
NOT_SUGGESTED = {  # why sorafenib is not suggested for a TACE-resistant patient, in words
    "outside-study-criteria": "outside the study's criteria",
    "insufficient-data": "data to decide is missing",
    "refer-mdt": "discuss at the tumour board",
    "on-sorafenib": "already on sorafenib",
    "not-applicable": "the study's question does not arise",
}
RANK = {"info": 0, "warning": 1, "critical": 2}
TACE_SAFETY = frozenset({"hbv-without-antiviral"})  # safety notes about TACE; the others concern sorafenib


def order_summary(alert: OrderAlert, assessment: Assessment) -> str:
    """The alert's summary; the one naming a recommendation says it in words, not as a code."""
    code = assessment.recommendation.code
    if alert.id == "tace-resistant-no-sorafenib":
        return f"TACE-resistant, but sorafenib is not suggested: {NOT_SUGGESTED.get(code, code.replace('-', ' '))}."
    return plain(alert.summary)


def order_facts(alert: OrderAlert, assessment: Assessment) -> list[str]:
    """What decided this alert, without resource ids or internal criterion ids."""
    if alert.id.startswith("tace-resistant"):
        return deciding_facts(assessment)
    if alert.id in ("outside-study-criteria", "criteria-indeterminate"):
        return [eligibility_fact(assessment)]
    facts = [plain(r) for r in alert.reasons]
    return [f for f in dict.fromkeys(facts) if f][:3]


def relevant_safety_notes(alert: OrderAlert, assessment: Assessment) -> list[SafetyNote]:
    """The safety notes that bear on the order: hepatitis B before TACE; the others before sorafenib.

    A drug-label contraindication has its own (critical) card, so it is not repeated on the others.
    """
    tace_order = alert.id.startswith("tace-")
    return [
        n for n in assessment.safety
        if not n.label_contraindication and (n.id in TACE_SAFETY) == tace_order
    ]


def order_indicator(alert: OrderAlert, notes: list[SafetyNote]) -> str:
    """The order problem's own indicator; a safety note bearing on the order makes it at least ``warning``.

    ``critical`` stays reserved for drug-label contraindications (``rules.orders`` sets it only for those).
    """
    level = alert.indicator
    if notes and RANK.get(level, 0) < RANK["warning"]:
        level = "warning"
    return level


def render_order_card(
    alert: OrderAlert, assessment: Assessment, drafts: dict[str, dict], k: Knowledge, public_base_url: str
) -> Card:
    suggestions: list[Suggestion] = []
    if alert.set_daily_dose_mg is not None and alert.order_ref in drafts:
        suggestions.append(
            Suggestion(
                label=f"Change the order to {alert.set_daily_dose_mg / 2:g} mg twice daily",
                uuid=str(uuid.uuid4()),
                is_recommended=False,
                actions=[
                    Action(
                        type="update",
                        description=f"Set the sorafenib dose to {alert.set_daily_dose_mg:g} mg/day",
                        resource=_full_dose_update(drafts[alert.order_ref], alert.set_daily_dose_mg),
                    )
                ],
            )
        )
    if alert.order_labs:
        suggestions.append(
            Suggestion(label="Order the missing baseline labs", uuid=str(uuid.uuid4()), actions=_lab_orders(alert, assessment, k))
        )
    label_ids = {n.id for n in assessment.safety if n.label_contraindication}
    notes = relevant_safety_notes(alert, assessment)
    warnings = safety_warnings(assessment, notes)
    headline = (
        "Sorafenib is contraindicated for this patient (drug label)."
        if alert.id in label_ids
        else "For this patient: " + PLAIN.get(assessment.recommendation.code, assessment.recommendation.summary)
    )
    detail = detail_markdown(
        headline,
        order_facts(alert, assessment),
        warnings,
        assessment.recommendation.context,
    )
    summary = order_summary(alert, assessment)
    return Card(
        uuid=str(uuid.uuid4()),
        summary=summary if len(summary) < 140 else summary[:138] + "…",
        detail=detail,
        indicator=order_indicator(alert, notes),
        source=source(public_base_url, alert.id, ORDER_TOPIC.get(alert.id) or SAFETY_TOPIC.get(alert.id) or alert.id.replace("-", " ")),
        extension=versions_extension(assessment),
        suggestions=suggestions or None,
        selection_behavior="any" if suggestions else None,
        override_reasons=[Coding(system=OVERRIDE_SYSTEM, code=c, display=d) for c, d in OVERRIDE_REASONS]
        if alert.override
        else None,
    )
