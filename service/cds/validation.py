"""A strict validator for CDS Hooks responses as they go on the wire.

Checks the spec's rules (summary < 140 characters, indicator, source.label,
selectionBehavior whenever there are suggestions, a link's type, override
reasons with a display) and this service's own (a uuid on every card and
suggestion), and that no value is null or empty (``""``, ``[]``, ``{}``) except the
``cards`` array itself. Returns a list of problems; empty means valid.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from service.cds.models import Card

INDICATORS = ("info", "warning", "critical")


def _empty_values(value: Any, path: str) -> list[str]:
    problems = []
    if value is None:
        problems.append(f"{path} is null")
    elif isinstance(value, str) and value == "":
        problems.append(f"{path} is an empty string")
    elif isinstance(value, (list, dict)) and len(value) == 0:
        problems.append(f"{path} is empty")
    if isinstance(value, dict):
        for key, item in value.items():
            problems.extend(_empty_values(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problems.extend(_empty_values(item, f"{path}[{i}]"))
    return problems


def card_problems(card: Any, where: str = "card") -> list[str]:
    if not isinstance(card, dict):
        return [f"{where} is not an object"]
    problems = _empty_values(card, where)
    try:
        Card.model_validate(card)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}.{loc}: {err.get('msg')}")
    summary = card.get("summary")
    if isinstance(summary, str) and len(summary) >= 140:
        problems.append(f"{where}.summary has {len(summary)} characters (must be < 140)")
    if not card.get("uuid"):
        problems.append(f"{where} has no uuid")
    for i, suggestion in enumerate(card.get("suggestions") or []):
        if isinstance(suggestion, dict) and not suggestion.get("uuid"):
            problems.append(f"{where}.suggestions[{i}] has no uuid")
    for i, link in enumerate(card.get("links") or []):
        if isinstance(link, dict) and link.get("type") not in ("absolute", "smart"):
            problems.append(f"{where}.links[{i}] needs type 'absolute' or 'smart'")
    return problems


def response_problems(body: Any) -> list[str]:
    """Problems of a whole ``{"cards": [...]}`` response."""
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        return ["response has no cards array"]
    problems = []
    for key, value in body.items():
        if key != "cards":
            problems.extend(_empty_values(value, key))
    for i, card in enumerate(body["cards"]):
        problems.extend(card_problems(card, f"cards[{i}]"))
    return problems
