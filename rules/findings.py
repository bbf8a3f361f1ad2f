"""Three-valued findings: the one shape every clinical criterion answers in.

A finding is ``met``, ``not-met`` or ``unknown`` (the tokens of
``assessment.schema.json``), with reasons in plain language, the evidence it
rests on (relative FHIR references) and the criterion's citation. Missing,
stale or unusable data gives ``unknown``, never ``not-met`` and never ``met``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    """Outcome of one criterion."""

    MET = "met"
    NOT_MET = "not-met"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Finding:
    """The answer to one criterion, with why and on what evidence."""

    status: Status
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    citation: str
    id: str | None = None
    kind: str | None = None  # "inclusion" / "exclusion" for eligibility criteria


def finding(
    status: Status,
    reasons: Iterable[str],
    evidence: Iterable[str] = (),
    *,
    citation: str,
    id: str | None = None,
    kind: str | None = None,
) -> Finding:
    """Build a :class:`Finding`, de-duplicating evidence while keeping its order."""
    return Finding(
        status=status,
        reasons=tuple(reasons),
        evidence=tuple(dict.fromkeys(e for e in evidence if e)),
        citation=citation,
        id=id,
        kind=kind,
    )


@dataclass(frozen=True)
class DataIssue:
    """A resource (or field) the mapping could not use, and why."""

    resource: str
    problem: str


@dataclass
class Notes:
    """Assumptions and warnings collected while evaluating, in order, without duplicates."""

    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def assume(self, text: str) -> None:
        if text not in self.assumptions:
            self.assumptions.append(text)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
