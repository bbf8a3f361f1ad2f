"""Reads ``context.draftOrders`` of order-select / order-sign: sorafenib and TACE orders.

A sorafenib order is a MedicationRequest coded from the sorafenib value set; a
TACE order is a ServiceRequest coded from the TACE value set. In order-select only
the orders named in ``context.selections`` are reviewed (the newly selected ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.knowledge import Knowledge
from rules.orders import DraftSorafenibOrder, DraftTaceOrder
from service.mapping import daily_dose_mg


class DraftOrdersError(ValueError):
    """draftOrders is not a Bundle of resources (the message says what is wrong)."""


@dataclass
class DraftOrders:
    sorafenib: list[DraftSorafenibOrder] = field(default_factory=list)
    tace: list[DraftTaceOrder] = field(default_factory=list)
    resources: dict[str, dict] = field(default_factory=dict)  # by "Type/id", to build update actions


def _codings(resource: dict, key: str) -> list[dict]:
    concept = resource.get(key)
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def read_draft_orders(bundle: object, selections: list[str] | None, k: Knowledge) -> DraftOrders:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise DraftOrdersError("context.draftOrders must be a FHIR Bundle")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise DraftOrdersError("context.draftOrders.entry must be a list")
    wanted = set(selections) if selections is not None else None
    found = DraftOrders()
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise DraftOrdersError(f"context.draftOrders.entry[{i}] has no resource")
        ref = f"{resource['resourceType']}/{resource.get('id', '')}"
        if wanted is not None and ref not in wanted:
            continue
        found.resources[ref] = resource
        if resource["resourceType"] == "MedicationRequest":
            for coding in _codings(resource, "medicationCodeableConcept"):
                code = k.lookup(coding.get("system"), coding.get("code"))
                if code is not None and code.concept == "sorafenib":
                    doses = [daily_dose_mg(d, code) for d in resource.get("dosageInstruction") or [] if isinstance(d, dict)]
                    known = [d for d in doses if d is not None]
                    total = sum(known) if known and len(known) == len(doses) else None
                    found.sorafenib.append(DraftSorafenibOrder(ref, total))
                    break
        elif resource["resourceType"] == "ServiceRequest":
            if any((c := k.lookup(x.get("system"), x.get("code"))) and c.concept == "tace" for x in _codings(resource, "code")):
                found.tace.append(DraftTaceOrder(ref))
    return found
