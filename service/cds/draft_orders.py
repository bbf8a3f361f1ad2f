"""Reads ``context.draftOrders`` of order-select / order-sign: sorafenib and TACE orders.

A sorafenib order is a MedicationRequest coded from the sorafenib value set; a
TACE order is a ServiceRequest coded from the TACE value set. In order-select only
the orders named in ``context.selections`` are reviewed (the newly selected ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules import DraftSorafenibOrder, DraftTaceOrder, Knowledge
from service.mapping import daily_dose_mg


class DraftOrdersError(ValueError):
    """draftOrders is not a Bundle of resources (the message says what is wrong)."""


@dataclass
class DraftOrders:
    sorafenib: list[DraftSorafenibOrder] = field(default_factory=list)
    tace: list[DraftTaceOrder] = field(default_factory=list)
    resources: dict[str, dict] = field(default_factory=dict)  # by "Type/id", to build update actions


def _list(value: object, where: str) -> list:
    """A JSON array the order reads; absent is empty; any other type is refused (a 422 naming it)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise DraftOrdersError(f"{where} must be a list, not {type(value).__name__}")
    return value


def _object(value: object, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DraftOrdersError(f"{where} must be an object, not {type(value).__name__}")
    return value


def _codings(resource: dict, key: str, where: str) -> list[dict]:
    concept = _object(resource.get(key), f"{where}.{key}")
    codings = _list(concept.get("coding"), f"{where}.{key}.coding")
    # a coding whose system or code is not a string names no code (and cannot be looked up)
    return [c for c in codings if isinstance(c, dict) and isinstance(c.get("system"), str) and isinstance(c.get("code"), str)]


def _dosages(resource: dict, where: str) -> list[dict]:
    """The order's Dosages, each checked where the dose is read (doseAndRate, timing.repeat)."""
    dosages = []
    for i, dosage in enumerate(_list(resource.get("dosageInstruction"), f"{where}.dosageInstruction")):
        at = f"{where}.dosageInstruction[{i}]"
        dosage = _object(dosage, at)
        for j, rate in enumerate(_list(dosage.get("doseAndRate"), f"{at}.doseAndRate")):
            _object(_object(rate, f"{at}.doseAndRate[{j}]").get("doseQuantity"), f"{at}.doseAndRate[{j}].doseQuantity")
        _object(_object(dosage.get("timing"), f"{at}.timing").get("repeat"), f"{at}.timing.repeat")
        dosages.append(dosage)
    return dosages


def read_draft_orders(bundle: object, selections: list[str] | None, k: Knowledge) -> DraftOrders:
    wanted = set(selections) if selections is not None else None
    found = DraftOrders()
    for i, entry in enumerate(_entries(bundle)):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise DraftOrdersError(f"context.draftOrders.entry[{i}] has no resource")
        ref = f"{resource['resourceType']}/{resource.get('id', '')}"
        if wanted is not None and ref not in wanted:
            continue
        found.resources[ref] = resource
        where = f"context.draftOrders.entry[{i}].resource"
        if resource["resourceType"] == "MedicationRequest":
            order = _sorafenib_order(resource, ref, where, k)
            if order is not None:
                found.sorafenib.append(order)
        elif resource["resourceType"] == "ServiceRequest":
            if _is_tace_order(resource, where, k):
                found.tace.append(DraftTaceOrder(ref))
    return found


def _entries(bundle: object) -> list[Any]:
    """The entries of ``context.draftOrders``, which must be a FHIR Bundle."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise DraftOrdersError("context.draftOrders must be a FHIR Bundle")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise DraftOrdersError("context.draftOrders.entry must be a list")
    return entries


def _sorafenib_order(resource: dict[str, Any], ref: str, where: str, k: Knowledge) -> DraftSorafenibOrder | None:
    """A MedicationRequest for sorafenib, with its daily dose when every dosage gives one; else None."""
    for coding in _codings(resource, "medicationCodeableConcept", where):
        code = k.lookup(coding.get("system"), coding.get("code"))
        if code is not None and code.concept == "sorafenib":
            doses = [daily_dose_mg(d, code) for d in _dosages(resource, where)]
            known = [d for d in doses if d is not None]
            total = sum(known) if known and len(known) == len(doses) else None
            return DraftSorafenibOrder(ref, total)
    return None


def _is_tace_order(resource: dict[str, Any], where: str, k: Knowledge) -> bool:
    return any((c := k.lookup(x.get("system"), x.get("code"))) and c.concept == "tace" for x in _codings(resource, "code", where))
