"""Order alerts (``rules.orders``) -> CDS Hooks cards with suggestions and actions."""

from __future__ import annotations

import copy
import uuid

from rules.assessment import Assessment
from rules.knowledge import Knowledge
from rules.orders import OrderAlert
from service.cds.models import Action, Card, Coding, Source, Suggestion
from service.render.cards import SOURCE_LABEL, TOPIC_SYSTEM, versions_line
from service.render.markdown import escape, escape_all, neutralise

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
    codes = k.thresholds["sorafenib_dose"]["baseline_lab_orders"]
    actions = []
    for concept in alert.order_labs:
        code = codes[concept]
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
    detail = neutralise("\n".join(
        [
            f"**{escape(alert.summary)}**",
            "",
            *(f"- {r}" for r in escape_all(alert.reasons)),
            "",
            f"Recommendation for this patient: **{escape(assessment.recommendation.code)}** — "
            f"{escape(assessment.recommendation.summary)}",
            "",
            f"_Source: {escape(alert.citation)}_",
            "",
            f"_{escape(assessment.recommendation.context)}_",
            "",
            versions_line(assessment),
        ]
    ))
    return Card(
        uuid=str(uuid.uuid4()),
        summary=alert.summary if len(alert.summary) < 140 else alert.summary[:138] + "…",
        detail=detail,
        indicator=alert.indicator,
        source=Source(
            label=SOURCE_LABEL,
            url=f"{public_base_url}/about",
            topic=Coding(system=TOPIC_SYSTEM, code=alert.id, display=alert.id.replace("-", " ")),
        ),
        suggestions=suggestions or None,
        selection_behavior="any" if suggestions else None,
        override_reasons=[Coding(system=OVERRIDE_SYSTEM, code=c, display=d) for c, d in OVERRIDE_REASONS]
        if alert.override
        else None,
    )
