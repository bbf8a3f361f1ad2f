"""One worklist row from one rendered assessment (the JSON of ``POST /api/v1/assessments``).

A screening worker calls :func:`worklist_fields` on the same rendered JSON a hook call stores, so the
worklist says what the patient's assessment page says. ``missing`` names what kept a finding
``unknown``, in tokens a coordinator can act on (:data:`MISSING_LABELS` gives their wording):
"data now complete" between two runs is ``missing`` becoming empty.
"""

from __future__ import annotations

from typing import Any

# token -> what a coordinator reads in the worklist (and the CSV)
MISSING_LABELS: dict[str, str] = {
    "tace-resistance": "TACE resistance undecided (TACE dates or follow-up imaging)",
    "tumour-response": "tumour response (mRECIST) not assessable: lesion measurements",
    "child-pugh": "Child-Pugh class",
    "performance-status": "ECOG or Karnofsky performance status",
    "bclc": "BCLC stage",
    "eligibility": "sorafenib eligibility undecided",
    "tace-candidacy": "TACE candidacy undecided",
}
CHILD_PUGH_ITEM_PREFIX = "child-pugh:"

# the worklist's default order: what a tumour board acts on first (a decision to take, then data to complete,
# then patients whose management goes on unchanged); unknown codes last
RECOMMENDATION_PRIORITY = (
    "sorafenib-plus-tace",
    "sorafenib-alone",
    "refer-mdt",
    "insufficient-data",
    "outside-study-criteria",
    "continue-tace",
    "on-sorafenib",
    "not-applicable",
)

# the worklist's columns of one patient, in order (what worklist_fields returns; the database's result rows)
FIELDS = (
    "recommendation",
    "tace_resistance",
    "mrecist",
    "sorafenib_eligibility",
    "tace_candidacy",
    "child_pugh",
    "bclc",
    "ecog",
    "missing",
    "data_issues",
)


def _status(rendered: dict[str, Any], key: str) -> str | None:
    value = rendered.get(key)
    return value.get("status") if isinstance(value, dict) else None


def missing_data(rendered: dict[str, Any]) -> list[str]:
    """Tokens for what the assessment could not decide for want of data (sorted, no duplicates)."""
    missing: set[str] = set()
    if _status(rendered, "tace_resistance") == "unknown":
        missing.add("tace-resistance")
    if (rendered.get("mrecist") or {}).get("category") in (None, "NE"):
        missing.add("tumour-response")
    child_pugh = rendered.get("child_pugh") or {}
    if child_pugh.get("class") is None:
        missing.add("child-pugh")
        for item, point in sorted((child_pugh.get("points") or {}).items()):
            if isinstance(point, dict) and point.get("points") is None:
                missing.add(CHILD_PUGH_ITEM_PREFIX + item)
    if (rendered.get("performance_status") or {}).get("ecog") is None:
        missing.add("performance-status")
    bclc = rendered.get("bclc") or {}
    if bclc.get("current") is None and bclc.get("at_first_tace") is None:
        missing.add("bclc")
    if (rendered.get("sorafenib_eligibility") or {}).get("status") == "indeterminate":
        missing.add("eligibility")
    if _status(rendered, "tace_candidacy") == "unknown":
        missing.add("tace-candidacy")
    return sorted(missing)


# short forms for a worklist cell
MISSING_SHORT: dict[str, str] = {
    "tace-resistance": "TACE resistance",
    "tumour-response": "lesion measurements",
    "child-pugh": "Child-Pugh",
    "performance-status": "ECOG/Karnofsky",
    "bclc": "BCLC",
    "eligibility": "eligibility",
    "tace-candidacy": "TACE candidacy",
}


def missing_short(tokens: list[str]) -> str:
    """One line for a worklist cell: "Child-Pugh (albumin, bilirubin), ECOG/Karnofsky"."""
    items = [t.removeprefix(CHILD_PUGH_ITEM_PREFIX) for t in tokens if t.startswith(CHILD_PUGH_ITEM_PREFIX)]
    parts = []
    for token in tokens:
        if token.startswith(CHILD_PUGH_ITEM_PREFIX):
            continue
        text = MISSING_SHORT.get(token, token)
        parts.append(f"{text} ({', '.join(items)})" if token == "child-pugh" and items else text)
    return ", ".join(parts)


def missing_label(token: str) -> str:
    if token.startswith(CHILD_PUGH_ITEM_PREFIX):
        return f"Child-Pugh item: {token.removeprefix(CHILD_PUGH_ITEM_PREFIX)}"
    return MISSING_LABELS.get(token, token)


def worklist_fields(rendered: dict[str, Any]) -> dict[str, Any]:
    """The worklist columns of one patient (see :data:`FIELDS`)."""
    child_pugh = rendered.get("child_pugh") or {}
    bclc = rendered.get("bclc") or {}
    return {
        "recommendation": (rendered.get("recommendation") or {}).get("code"),
        "tace_resistance": _status(rendered, "tace_resistance"),
        "mrecist": (rendered.get("mrecist") or {}).get("category"),
        "sorafenib_eligibility": (rendered.get("sorafenib_eligibility") or {}).get("status"),
        "tace_candidacy": _status(rendered, "tace_candidacy"),
        "child_pugh": child_pugh.get("class"),
        "bclc": bclc.get("current") or bclc.get("at_first_tace"),
        "ecog": (rendered.get("performance_status") or {}).get("ecog"),
        "missing": missing_data(rendered),
        "data_issues": len(rendered.get("data_issues") or ()),
    }
