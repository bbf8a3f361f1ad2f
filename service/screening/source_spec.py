"""What a screening reads: a FHIR server's Bulk Data export, or NDJSON files already exported.

Stored with the run (``screening_runs.source``) so a resumed run reads the same thing; ``key`` names the
source across runs ("what changed since the previous run" compares runs of the same key).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

Level = Literal["system", "patient", "group"]
LEVELS: tuple[Level, ...] = ("system", "patient", "group")


class SourceError(ValueError):
    """The source is not usable as given (the message says what to change)."""


@dataclass(frozen=True)
class SourceSpec:
    kind: Literal["fhir", "ndjson"]
    fhir_base_url: str | None = None
    level: Level = "group"
    group_id: str | None = None
    # "auto": the previous complete run's transactionTime; None: a full export; else an instant
    since: str | None = None
    location: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "fhir":
            if not self.fhir_base_url or not self.fhir_base_url.startswith(("http://", "https://")):
                raise SourceError("a FHIR source needs an http(s) base URL")
            if self.level not in LEVELS:
                raise SourceError(f"the export level is one of {', '.join(LEVELS)}, not {self.level!r}")
            if (self.level == "group") != bool(self.group_id):
                raise SourceError("a Group export names its group (--group ID), and only a Group export does")
        elif self.kind == "ndjson":
            if not self.location:
                raise SourceError("an NDJSON source names a folder or an http(s) URL")
        else:
            raise SourceError(f"unknown source kind {self.kind!r}")

    @property
    def key(self) -> str:
        if self.kind == "fhir":
            return f"fhir:{self.fhir_base_url}|{self.level}|{self.group_id or ''}"
        return f"ndjson:{self.location}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SourceSpec:
        return cls(**{k: v for k, v in value.items() if k in cls.__dataclass_fields__})


def configured_sources(text: str) -> dict[str, SourceSpec]:
    """``HCC_SCREEN_SOURCES``: the only sources the job API may start a screening of (no URL from a caller)."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"HCC_SCREEN_SOURCES is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise SourceError("HCC_SCREEN_SOURCES is a JSON object: name -> source")
    out: dict[str, SourceSpec] = {}
    for name, item in raw.items():
        if not isinstance(item, dict):
            raise SourceError(f"HCC_SCREEN_SOURCES[{name!r}] is not an object")
        try:
            if "ndjson" in item:
                out[name] = SourceSpec("ndjson", location=str(item["ndjson"]))
            else:
                out[name] = SourceSpec(
                    "fhir",
                    fhir_base_url=str(item.get("fhir_base_url") or "").rstrip("/"),
                    level=item.get("level", "group"),
                    group_id=item.get("group_id"),
                    since=item.get("since"),
                )
        except (SourceError, TypeError) as exc:
            raise SourceError(f"HCC_SCREEN_SOURCES[{name!r}]: {exc}") from None
    return out


@dataclass(frozen=True)
class AsOfSpec:
    """The date each patient is screened as of: one date (default today) or a CSV ``patient,as_of``
    (e.g. each cohort patient's study assessment date, as ``hcc-cds demo`` assesses them)."""

    default: str | None = None  # ISO date; None: the day the run starts
    per_patient_file: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def default_date(self, today: date) -> date:
        return date.fromisoformat(self.default) if self.default else today

    def per_patient(self) -> dict[str, date]:
        if not self.per_patient_file:
            return {}
        return read_as_of_file(Path(self.per_patient_file))


def read_as_of_file(path: Path) -> dict[str, date]:
    """``patient,as_of`` lines (a header line is allowed); a malformed line is refused with its number."""
    out: dict[str, date] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read the as-of file {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or (number == 1 and line.lower().startswith("patient")):
            continue
        patient, _, day = line.partition(",")
        try:
            out[patient.strip()] = date.fromisoformat(day.strip())
        except ValueError:
            raise SourceError(f"{path}:{number}: expected 'patient,YYYY-MM-DD', got {line[:80]!r}") from None
    return out
