"""Collects one patient's resources: prefetch first, the FHIR source for what is missing.

CDS Hooks 2.0 prefetch semantics: a key that is absent, or whose value is an
OperationOutcome, must be fetched by the service; a ``null`` value means the
client has no data for it. Without a source to fetch from, missing keys make the
call fail with :class:`PrefetchMissingError` (HTTP 412). Resources of another
patient are excluded and reported; a Patient of another id is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from rules.findings import DataIssue
from service.fhir.errors import FhirNotFoundError, FhirUnavailableError
from service.fhir.source import FhirSource, Query, SearchResult, run_query

PATIENT_KEY = "patient"
SUBJECT_FIELDS = ("subject", "patient")
# Many servers do not support BodyStructure?patient=: lesions are resolved through the
# TumorSize Observations' focus references instead (a search by _id, else one read each).
LESIONS_KEY = "bodyStructures"
OBSERVATIONS_KEY = "observations"


class PrefetchMissingError(Exception):
    """Required data is neither prefetched nor fetchable (CDS Hooks: 412)."""


class PatientMismatchError(Exception):
    """A prefetched Patient, or the bundle's Patient, is not the patient in context."""


@dataclass
class PatientRecord:
    patient: dict
    resources: list[dict] = field(default_factory=list)
    issues: list[DataIssue] = field(default_factory=list)
    fetched_keys: list[str] = field(default_factory=list)


def render_template(template: str, context: Mapping[str, object]) -> str:
    """Replace ``{{context.<field>}}`` tokens with the hook context's primitive values."""
    out = template
    for key, value in context.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            out = out.replace("{{context.%s}}" % key, str(value))
    return out


def _belongs_to(resource: dict, patient_id: str) -> bool | None:
    """True/False when the resource names its patient; None when it names none."""
    target = f"Patient/{patient_id}"
    for name in SUBJECT_FIELDS:
        ref = resource.get(name)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            reference = ref["reference"]
            return reference == target or reference.endswith("/" + target)
    return None


def _prefetch_value(value: object) -> tuple[str, list[dict] | dict | None]:
    """Classify a prefetch value: ('null'|'fetch'|'resource'|'bundle', payload)."""
    if value is None:
        return "null", None
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return "fetch", None
    if value["resourceType"] == "OperationOutcome":
        return "fetch", None
    if value["resourceType"] == "Bundle":
        entries = [e.get("resource") for e in value.get("entry") or [] if isinstance(e, dict)]
        return "bundle", [r for r in entries if isinstance(r, dict) and r.get("resourceType") != "OperationOutcome"]
    return "resource", value


async def gather_patient_record(
    patient_id: str,
    templates: Mapping[str, str],
    prefetch: Mapping[str, object] | None,
    source: FhirSource | None,
    *,
    deadline_seconds: float,
) -> PatientRecord:
    """All resources the templates ask for, from prefetch or from ``source``."""
    context = {"patientId": patient_id}
    prefetch = prefetch or {}
    collected: dict[str, list[dict] | dict | None] = {}
    to_fetch: dict[str, Query] = {}
    for key, template in templates.items():
        kind, payload = _prefetch_value(prefetch[key]) if key in prefetch else ("fetch", None)
        if kind == "fetch":
            to_fetch[key] = Query.parse(render_template(template, context))
        else:
            collected[key] = payload
    if to_fetch and source is None:
        raise PrefetchMissingError(
            "prefetch is missing " + ", ".join(sorted(to_fetch)) + " and no fhirServer/fhirAuthorization was given"
        )
    fetched_keys = sorted(to_fetch)
    issues: list[DataIssue] = []
    resolve_lesions = to_fetch.pop(LESIONS_KEY, None) is not None
    if to_fetch or resolve_lesions:
        assert source is not None
        try:
            async with asyncio.timeout(deadline_seconds):
                answers = await asyncio.gather(*(run_query(source, q) for q in to_fetch.values()))
                for key, answer in zip(to_fetch, answers):
                    collected[key] = _accept(key, answer, patient_id, issues)
                if resolve_lesions:
                    observations = collected.get(OBSERVATIONS_KEY)
                    collected[LESIONS_KEY] = await _fetch_focus(source, observations if isinstance(observations, list) else [])
        except TimeoutError as exc:
            raise FhirUnavailableError(f"FHIR server did not answer within {deadline_seconds:g} s") from exc

    patient = collected.get(PATIENT_KEY)
    if isinstance(patient, list):
        patient = next((p for p in patient if p.get("resourceType") == "Patient"), None)
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise PrefetchMissingError("no Patient resource for the patient in context")
    if str(patient.get("id")) != patient_id:
        raise PatientMismatchError(
            f"the prefetched Patient is Patient/{patient.get('id')}, not the context's Patient/{patient_id}"
        )

    resources: list[dict] = []
    for key, payload in collected.items():
        if key == PATIENT_KEY or payload is None:
            continue
        resources.extend(payload if isinstance(payload, list) else [payload])
    kept, excluded = restrict_to_patient(resources, patient_id)
    return PatientRecord(patient=patient, resources=kept, issues=issues + excluded, fetched_keys=fetched_keys)


def _accept(key: str, answer: dict | SearchResult, patient_id: str, issues: list[DataIssue]) -> dict | list[dict]:
    """A fetched value; an unfiltered search (a parameter ignored by the server) is re-filtered by patient."""
    if not isinstance(answer, SearchResult):
        return answer
    if not answer.unfiltered:
        return answer.resources
    issues.append(
        DataIssue(
            f"search:{key}",
            "the FHIR server ignored a search parameter (" + "; ".join(answer.outcomes) + "); re-filtered by patient",
        )
    )
    return [r for r in answer.resources if _belongs_to(r, patient_id)]


async def _fetch_focus(source: FhirSource, observations: list[dict]) -> list[dict]:
    """The BodyStructures the Observations' ``focus`` references name."""
    ids = sorted(
        {
            ref.split("/", 1)[1]
            for obs in observations
            for focus in obs.get("focus") or []
            if isinstance(focus, dict)
            and isinstance(ref := focus.get("reference"), str)
            and ref.startswith("BodyStructure/")
            and ref.count("/") == 1
        }
    )
    if not ids:
        return []
    result = await source.search("BodyStructure", [("_id", ",".join(ids))])
    if not result.unfiltered:
        return [r for r in result.resources if r.get("id") in ids]
    reads = await asyncio.gather(*(source.read("BodyStructure", i) for i in ids), return_exceptions=True)
    for outcome in reads:
        if isinstance(outcome, BaseException) and not isinstance(outcome, FhirNotFoundError):
            raise outcome
    return [r for r in reads if isinstance(r, dict)]


def restrict_to_patient(resources: list[dict], patient_id: str) -> tuple[list[dict], list[DataIssue]]:
    """Keep the resources that name ``patient_id`` as their patient; report the others."""
    kept: list[dict] = []
    issues: list[DataIssue] = []
    for resource in resources:
        ref = f"{resource.get('resourceType')}/{resource.get('id')}"
        belongs = _belongs_to(resource, patient_id)
        if belongs is False:
            issues.append(DataIssue(ref, "belongs to another patient; excluded"))
        elif belongs is None:
            issues.append(DataIssue(ref, "names no patient; excluded"))
        else:
            kept.append(resource)
    return kept, issues
