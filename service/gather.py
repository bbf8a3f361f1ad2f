"""Collects one patient's resources: prefetch first, the FHIR source for what is missing.

CDS Hooks 2.0 prefetch semantics, key by key of the service's templates:

- absent, an OperationOutcome, or not a FHIR resource at all: the service fetches
  it itself (through ``source``);
- ``null``: the client has no data for it (an empty list, nothing fetched);
- a resource, or a searchset Bundle: used as given. A Bundle with a ``next`` link
  (2.0 allows paginated prefetch) holds only its first page: the rest is fetched
  by following the link through ``source`` when the link is on the source's
  origin; otherwise the whole search is fetched again from ``source``.

Without a source, anything to fetch (including the rest of a paginated prefetch)
fails with :class:`PrefetchMissingError` (HTTP 412): an assessment from part of
a search could differ from the true one without anyone noticing, so it is not
made.

Fetches run concurrently within one overall deadline (which the HTTP source
enforces request by request; a backstop here ends the rest a second later). Lesions (BodyStructure)
are resolved from the TumorSize Observations' ``focus`` references (a search by
``_id``, else one read each), because many servers ignore
``BodyStructure?patient=``.

Patient safety: a prefetched Patient of another id is refused
(:class:`PatientMismatchError`, 400) before any connection; resources of another
patient are excluded and reported in ``data_issues``. A search whose server says
it ignored a parameter is re-filtered by patient (reported once). An ignored
``code`` filter needs no re-filtering: the mapping ignores codes outside its
value sets, so only the patient filter matters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

from rules.findings import DataIssue
from service.fhir.errors import (
    FhirAuthError,
    FhirError,
    FhirNotFoundError,
    FhirResponseError,
    FhirUnavailableError,
)
from service.fhir.ids import FHIR_ID
from service.fhir.source import (
    FhirSource,
    MalformedBundleError,
    Query,
    SearchPage,
    SearchResult,
    read_search_page,
    run_query,
)

PATIENT_KEY = "patient"
SUBJECT_FIELDS = ("subject", "patient")
# Many servers do not support BodyStructure?patient=: lesions are resolved through the
# TumorSize Observations' focus references instead (a search by _id, else one read each).
LESIONS_KEY = "bodyStructures"
OBSERVATIONS_KEY = "observations"
FOCUS_IDS_PER_SEARCH = 50
DEADLINE_GRACE_SECONDS = 1.0
# when several fetches fail at once, the error that best tells the caller what to do
_ERROR_PRIORITY = (FhirAuthError, FhirNotFoundError, FhirUnavailableError, FhirResponseError, FhirError)

T = TypeVar("T")


class PrefetchMissingError(Exception):
    """Required data is neither prefetched nor fetchable (CDS Hooks: 412)."""


class PatientMismatchError(Exception):
    """A prefetched Patient, or the bundle's Patient, is not the patient in context."""


class PrefetchInvalidError(Exception):
    """A prefetch value is malformed as a container (a Bundle whose ``entry`` is not a list, ...): a 400."""


@dataclass
class PatientRecord:
    patient: dict
    resources: list[dict] = field(default_factory=list)
    issues: list[DataIssue] = field(default_factory=list)
    fetched_keys: list[str] = field(default_factory=list)


@dataclass
class PrefetchPlan:
    """What the prefetch gives, and what is left to get from the source."""

    given: dict[str, SearchPage] = field(default_factory=dict)  # key -> the prefetched resources
    to_fetch: dict[str, Query] = field(default_factory=dict)  # key -> the whole query, to run
    to_continue: dict[str, str] = field(default_factory=dict)  # key -> a prefetched page's next link


# -- templates and prefetch ------------------------------------------------------------------------


def render_template(template: str, context: Mapping[str, object]) -> str:
    """Replace ``{{context.<field>}}`` tokens with the hook context's primitive values (URL-encoded)."""
    out = template
    for key, value in context.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            out = out.replace("{{context." + key + "}}", quote(str(value), safe=""))
    return out


def _prefetched_page(value: object) -> SearchPage | None:
    """The resources a prefetch value gives; None when the service must fetch the key itself."""
    if value is None:
        return SearchPage()  # the client has no data for this key
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return None
    if value["resourceType"] == "OperationOutcome":
        return None  # the client's prefetch failed
    if value["resourceType"] == "Bundle":
        return read_search_page(value)
    return SearchPage(resources=[value])


def plan_prefetch(patient_id: str, templates: Mapping[str, str], prefetch: Mapping[str, object] | None) -> PrefetchPlan:
    """Sort the templates' keys into prefetched, to fetch, and prefetched-but-paginated."""
    prefetch = prefetch or {}
    plan = PrefetchPlan()
    for key, template in templates.items():
        try:
            page = _prefetched_page(prefetch[key]) if key in prefetch else None
        except MalformedBundleError as exc:
            raise PrefetchInvalidError(f"prefetch {key!r} is not a usable searchset Bundle: {exc}") from exc
        if page is None:
            plan.to_fetch[key] = Query.parse(render_template(template, {"patientId": patient_id}))
            continue
        plan.given[key] = page
        if page.next_url:
            plan.to_continue[key] = page.next_url
    return plan


def _missing_message(plan: PrefetchPlan) -> str:
    parts = []
    if plan.to_fetch:
        parts.append("prefetch is missing " + ", ".join(sorted(plan.to_fetch)))
    if plan.to_continue:
        parts.append("prefetch holds only the first page of " + ", ".join(sorted(plan.to_continue)) + " (a next link)")
    return "; ".join(parts) + " and no fhirServer/fhirAuthorization was given to fetch the rest"


def _route_continuations(plan: PrefetchPlan, source: FhirSource, templates: Mapping[str, str], patient_id: str) -> None:
    """A next link the source cannot follow (another origin): fetch that whole search again instead."""
    for key, url in list(plan.to_continue.items()):
        if not source.can_follow(url):
            del plan.to_continue[key]
            del plan.given[key]
            plan.to_fetch[key] = Query.parse(render_template(templates[key], {"patientId": patient_id}))


# -- patient identity ------------------------------------------------------------------------------


def _reference_names(reference: str, patient_id: str) -> bool:
    """``Patient/<id>``, absolute or versioned (``.../Patient/<id>/_history/2``)."""
    reference = reference.split("/_history/", 1)[0]
    target = f"Patient/{patient_id}"
    return reference == target or reference.endswith("/" + target)


def _belongs_to(resource: dict, patient_id: str) -> bool | None:
    """True/False when the resource names its patient (or is the Patient); None when it names none."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id")) == patient_id
    for name in SUBJECT_FIELDS:
        ref = resource.get(name)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return _reference_names(ref["reference"], patient_id)
    return None


def restrict_to_patient(resources: list[dict], patient_id: str) -> tuple[list[dict], list[DataIssue]]:
    """Keep the resources that name ``patient_id`` as their patient; report the others."""
    kept: list[dict] = []
    issues: list[DataIssue] = []
    # the common case first (a long record's every Observation): ``subject`` is exactly ``Patient/<id>``, which
    # _belongs_to accepts (an id with "/_history/" in it, never valid, takes the general path)
    target = f"Patient/{patient_id}" if "/_history/" not in patient_id else None
    for resource in resources:
        subject = resource.get("subject")
        if type(subject) is dict and subject.get("reference") == target and resource.get("resourceType") != "Patient":
            kept.append(resource)
            continue
        belongs = _belongs_to(resource, patient_id)
        ref = f"{resource.get('resourceType')}/{resource.get('id')}"  # only for an issue
        if belongs is False:
            issues.append(DataIssue(ref, "belongs to another patient; excluded"))
        elif belongs is None:
            issues.append(DataIssue(ref, "names no patient; excluded"))
        else:
            kept.append(resource)
    return kept, issues


def the_patient(resources: list[dict], patient_id: str) -> dict:
    """The Patient resource of the patient in context among ``resources``."""
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if not patients:
        raise PrefetchMissingError("no Patient resource for the patient in context")
    for patient in patients:
        if str(patient.get("id")) == patient_id:
            return patient
    raise PatientMismatchError(
        f"the Patient received is Patient/{patients[0].get('id')}, not the context's Patient/{patient_id}"
    )


def _accept(key: str, found: SearchResult | SearchPage | dict, patient_id: str, issues: list[DataIssue]) -> list[dict]:
    """A key's resources; a search the server did not filter as asked is re-filtered by patient."""
    if isinstance(found, dict):
        return [found]
    if not found.unfiltered or key == PATIENT_KEY:
        return list(found.resources)
    issues.append(
        DataIssue(
            f"search:{key}",
            "the FHIR server ignored a search parameter (" + "; ".join(found.outcomes) + "); re-filtered by patient",
        )
    )
    return [r for r in found.resources if _belongs_to(r, patient_id)]


# -- fetching --------------------------------------------------------------------------------------


def _most_telling(errors: BaseExceptionGroup) -> BaseException:
    """One error for the caller: a bug first (it must not hide), then by :data:`_ERROR_PRIORITY`."""
    flat: list[BaseException] = []
    stack: list[BaseException] = [errors]
    while stack:
        error = stack.pop(0)
        if isinstance(error, BaseExceptionGroup):
            stack.extend(error.exceptions)
        else:
            flat.append(error)
    for error in flat:
        if not isinstance(error, FhirError):
            return error
    for kind in _ERROR_PRIORITY:
        for error in flat:
            if isinstance(error, kind):
                return error
    return flat[0]


async def run_concurrently(calls: Mapping[str, Awaitable[T]]) -> dict[str, T]:
    """Await every call at once; the first failure cancels the rest and is raised (unwrapped)."""
    tasks: dict[str, asyncio.Task[T]] = {}
    try:
        async with asyncio.TaskGroup() as group:
            for key, call in calls.items():
                tasks[key] = group.create_task(call)  # type: ignore[arg-type]
    except BaseExceptionGroup as errors:
        raise _most_telling(errors) from None
    return {key: task.result() for key, task in tasks.items()}


def focus_ids(observations: list[dict]) -> list[str]:
    """The ids of the BodyStructures that the Observations' ``focus`` references name (relative references)."""
    ids = set()
    for obs in observations:
        focus_list = obs.get("focus")
        if not isinstance(focus_list, list):
            continue  # none, or malformed: the mapping reports such an Observation and skips it
        for focus in focus_list:
            ref = focus.get("reference") if isinstance(focus, dict) else None
            if isinstance(ref, str) and ref.startswith("BodyStructure/"):
                rid = ref.split("/", 1)[1]
                if FHIR_ID.fullmatch(rid):
                    ids.add(rid)
    return sorted(ids)


async def _read_each(source: FhirSource, ids: list[str]) -> list[dict]:
    """One read per id; an id not found is skipped (the mapping reports the lesion as not found)."""
    reads = await asyncio.gather(*(source.read("BodyStructure", i) for i in ids), return_exceptions=True)
    for outcome in reads:
        if isinstance(outcome, BaseException) and not isinstance(outcome, FhirNotFoundError):
            raise outcome
    return [r for r in reads if isinstance(r, dict)]


async def _fetch_focus_batch(source: FhirSource, ids: list[str]) -> list[dict]:
    result = await source.search("BodyStructure", [("_id", ",".join(ids))])
    if result.unfiltered:  # the server ignored _id: read each instead
        return await _read_each(source, ids)
    return [r for r in result.resources if r.get("id") in ids]


async def fetch_focus(source: FhirSource, observations: list[dict]) -> list[dict]:
    """The BodyStructures the Observations' ``focus`` references name (another patient's are kept, to report)."""
    ids = focus_ids(observations)
    batches = [ids[i : i + FOCUS_IDS_PER_SEARCH] for i in range(0, len(ids), FOCUS_IDS_PER_SEARCH)]
    found = await run_concurrently({str(n): _fetch_focus_batch(source, batch) for n, batch in enumerate(batches)})
    return [r for batch in found.values() for r in batch]


def _own_observations(observations: Iterable[dict], patient_id: str) -> list[dict]:
    """The Observations of the patient in context (what :func:`_accept` keeps, less those naming no patient)."""
    return [obs for obs in observations if _belongs_to(obs, patient_id)]


async def _observations_then_lesions(
    query: Query, source: FhirSource, patient_id: str, lesions: list[dict]
) -> dict | SearchResult:
    """The Observations; the lesions they name are added to ``lesions`` at once: the lesions' round waits for
    this search only, not for every other search of the record."""
    found = await run_query(source, query)
    observations = [found] if isinstance(found, dict) else found.resources
    lesions.extend(await fetch_focus(source, _own_observations(observations, patient_id)))
    return found


async def _fetch(
    plan: PrefetchPlan, source: FhirSource, patient_id: str, issues: list[DataIssue]
) -> dict[str, list[dict]]:
    """Run the plan's fetches concurrently; the lesions are resolved from the Observations as soon as
    these are in (when the Observations are fetched whole), else once everything else is."""
    resolve_lesions = plan.to_fetch.pop(LESIONS_KEY, None) is not None
    chained = resolve_lesions and OBSERVATIONS_KEY in plan.to_fetch
    lesions: list[dict] = []
    calls: dict[str, Awaitable[dict | SearchResult]] = {
        k: _observations_then_lesions(q, source, patient_id, lesions)
        if chained and k == OBSERVATIONS_KEY
        else run_query(source, q)
        for k, q in plan.to_fetch.items()
    }
    calls |= {key: source.follow(url) for key, url in plan.to_continue.items()}
    answers = await run_concurrently(calls)
    fetched = {key: _accept(key, answer, patient_id, issues) for key, answer in answers.items()}
    for key in plan.to_continue:
        fetched[key] = _accept(key, plan.given.pop(key), patient_id, issues) + fetched[key]
    if resolve_lesions and not chained:
        observations = fetched.get(OBSERVATIONS_KEY)
        if observations is None:
            observations = list(plan.given.get(OBSERVATIONS_KEY, SearchPage()).resources)
        lesions = await fetch_focus(source, _own_observations(observations, patient_id))
    if resolve_lesions:
        fetched[LESIONS_KEY] = lesions
    return fetched


def _checked_plan(patient_id: str, templates: Mapping[str, str], prefetch: Mapping[str, object] | None) -> PrefetchPlan:
    """The prefetch plan, once the patient in context is a valid id and any prefetched Patient is theirs."""
    if not FHIR_ID.fullmatch(patient_id):
        raise PatientMismatchError(f"the patient in context ({patient_id[:64]!r}) is not a valid FHIR id")
    plan = plan_prefetch(patient_id, templates, prefetch)
    if PATIENT_KEY in plan.given:
        the_patient(plan.given[PATIENT_KEY].resources, patient_id)  # refuse another patient before connecting
    return plan


def _assemble(
    plan: PrefetchPlan,
    collected: dict[str, list[dict]],
    issues: list[DataIssue],
    patient_id: str,
    fetched_keys: list[str],
) -> PatientRecord:
    """The record from what was fetched and what the prefetch gave, restricted to the patient in context."""
    for key, page in plan.given.items():
        collected[key] = _accept(key, page, patient_id, issues)
    patient = the_patient(collected.pop(PATIENT_KEY, []), patient_id)
    resources = [r for found in collected.values() for r in found]
    kept, excluded = restrict_to_patient(resources, patient_id)
    return PatientRecord(patient=patient, resources=kept, issues=issues + excluded, fetched_keys=fetched_keys)


def _prefetched_record(plan: PrefetchPlan, patient_id: str) -> PatientRecord:
    if plan.to_fetch or plan.to_continue:
        raise PrefetchMissingError(_missing_message(plan))
    return _assemble(plan, {}, [], patient_id, [])


def record_from_prefetch(
    patient_id: str, templates: Mapping[str, str], prefetch: Mapping[str, object] | None
) -> PatientRecord:
    """:func:`gather_patient_record` with no source, without an event loop (a screening worker's call).

    The same steps (the async function calls the same helpers when there is nothing to fetch): everything must
    be prefetched, else :class:`PrefetchMissingError`.
    """
    return _prefetched_record(_checked_plan(patient_id, templates, prefetch), patient_id)


async def gather_patient_record(
    patient_id: str,
    templates: Mapping[str, str],
    prefetch: Mapping[str, object] | None,
    source: FhirSource | None,
    *,
    deadline_seconds: float,
) -> PatientRecord:
    """All resources the templates ask for, from prefetch or from ``source``, within ``deadline_seconds``."""
    plan = _checked_plan(patient_id, templates, prefetch)
    if source is None or not (plan.to_fetch or plan.to_continue):
        return _prefetched_record(plan, patient_id)
    fetched_keys = sorted({*plan.to_fetch, *plan.to_continue})
    issues: list[DataIssue] = []
    _route_continuations(plan, source, templates, patient_id)
    try:
        # A backstop only: an HTTP source bounds each request by what is left of the same deadline with
        # httpx's own timeouts, and its requests are shielded from this cancellation (service.fhir.client).
        async with asyncio.timeout(deadline_seconds + DEADLINE_GRACE_SECONDS):
            collected = await _fetch(plan, source, patient_id, issues)
    except TimeoutError as exc:
        raise FhirUnavailableError(f"the FHIR server did not answer within {deadline_seconds:g} s") from exc
    return _assemble(plan, collected, issues, patient_id, fetched_keys)
