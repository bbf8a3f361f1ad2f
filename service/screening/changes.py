"""What changed for one patient since the previous complete run of the same source.

Tokens, not prose: the worklist page and the CSV word them (:func:`change_label`). A coordinator
looks for "newly TACE-resistant" and "data now complete" first: those patients need the tumour board.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NEW_PATIENT = "new-patient"
NEWLY_RESISTANT = "newly-tace-resistant"
NO_LONGER_RESISTANT = "no-longer-tace-resistant"
DATA_NOW_COMPLETE = "data-now-complete"
DATA_NOW_MISSING = "data-now-missing"
NOW_ASSESSABLE = "now-assessable"
NO_LONGER_ASSESSABLE = "no-longer-assessable"
RECOMMENDATION_PREFIX = "recommendation:"  # recommendation:<before>-><after>

LABELS = {
    NEW_PATIENT: "new in this run",
    NEWLY_RESISTANT: "newly TACE-resistant",
    NO_LONGER_RESISTANT: "no longer TACE-resistant",
    DATA_NOW_COMPLETE: "data now complete",
    DATA_NOW_MISSING: "data now missing",
    NOW_ASSESSABLE: "assessable again (the previous run could not assess the record)",
    NO_LONGER_ASSESSABLE: "could not be assessed this run",
}


def changes_since(
    previous: Mapping[str, Any] | None, current: Mapping[str, Any], *, has_previous_run: bool
) -> list[str]:
    """``previous`` and ``current``: worklist rows (``recommendation``, ``tace_resistance``, ``missing``,
    ``error_kind``); ``previous`` is None when the patient was not in the previous run."""
    if not has_previous_run:
        return []
    if previous is None:
        return [NEW_PATIENT]
    was_error, is_error = previous.get("error_kind") is not None, current.get("error_kind") is not None
    if was_error or is_error:
        if was_error and not is_error:
            return [NOW_ASSESSABLE]
        return [NO_LONGER_ASSESSABLE] if is_error and not was_error else []
    out: list[str] = []
    before, after = previous.get("tace_resistance"), current.get("tace_resistance")
    if after == "met" and before != "met":
        out.append(NEWLY_RESISTANT)
    elif before == "met" and after != "met":
        out.append(NO_LONGER_RESISTANT)
    if previous.get("recommendation") != current.get("recommendation"):
        out.append(f"{RECOMMENDATION_PREFIX}{previous.get('recommendation')}->{current.get('recommendation')}")
    if previous.get("missing") and not current.get("missing"):
        out.append(DATA_NOW_COMPLETE)
    elif not previous.get("missing") and current.get("missing"):
        out.append(DATA_NOW_MISSING)
    return out


def change_label(token: str) -> str:
    if token.startswith(RECOMMENDATION_PREFIX):
        before, _, after = token.removeprefix(RECOMMENDATION_PREFIX).partition("->")
        return f"recommendation {before} \N{RIGHTWARDS ARROW} {after}"
    return LABELS.get(token, token)
