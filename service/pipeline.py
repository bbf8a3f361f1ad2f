"""gather -> map -> assess: one patient's assessment from whatever source the caller has."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from rules import Assessment, assess
from rules.knowledge import Knowledge
from service.fhir.limits import FhirLimitError
from service.fhir.source import FhirSource
from service.gather import PatientRecord, gather_patient_record
from service.mapping import map_to_snapshot

if TYPE_CHECKING:  # only annotations: a screening worker imports this module without the app's db and auth
    from service.main_state import AppState

# what mapping and rules may take beyond what the FHIR requests left of HCC_FHIR_DEADLINE_SECONDS
ASSESS_GRACE_SECONDS = 2.0
# A record of at most this many resources is mapped and assessed on the event loop: ~1-5 ms of CPU (the demo and
# cohort records hold 59-100), for which the hop to a worker thread and back cost ~0.1-0.2 ms more and, under
# load, GIL hand-overs between the two threads. Other calls of this worker wait meanwhile, as they would for the
# GIL. Larger records, and whole-resource validation (HCC_FHIR_STRICT_VALIDATION: ~0.15 ms a resource), go to a
# worker thread within the call's deadline.
INLINE_MAX_RESOURCES = 200


@dataclass(frozen=True)
class Assessor:
    """map -> assess with what they read of the app: a hook call, a REST call and a screening worker
    (which has no app, database or HTTP pool) assess a gathered record through this one object."""

    knowledge: Knowledge
    strict: bool
    build: str

    @classmethod
    def of(cls, state: AppState) -> Assessor:
        return cls(state.knowledge, state.settings.fhir_strict_validation, state.build)

    def __call__(self, record: PatientRecord, as_of: date) -> Assessment:
        snapshot = map_to_snapshot(
            record.patient,
            record.resources,
            self.knowledge,
            prior_issues=record.issues,
            strict=self.strict,
        )
        return assess(snapshot, as_of, self.knowledge, build=self.build)


def assess_record(state: AppState, record: PatientRecord, as_of: date) -> Assessment:
    return Assessor.of(state)(record, as_of)


async def assess_patient(
    state: AppState,
    patient_id: str,
    *,
    templates: Mapping[str, str],
    prefetch: Mapping[str, object] | None,
    source: FhirSource | None,
    as_of: date,
) -> Assessment:
    started = time.monotonic()
    record = await gather_patient_record(
        patient_id,
        templates,
        prefetch,
        source,
        deadline_seconds=state.settings.fhir_deadline_seconds,
    )
    if len(record.resources) <= INLINE_MAX_RESOURCES and not state.settings.fhir_strict_validation:
        return assess_record(state, record, as_of)
    # Mapping and rules take long for a large record: in a worker thread, so the event loop keeps serving,
    # and within the call's deadline (a thread cannot be stopped: one past it is abandoned; its work is
    # bounded by HCC_FHIR_MAX_RESOURCES).
    deadline = state.settings.fhir_deadline_seconds
    left = max(deadline - (time.monotonic() - started), 0.0) + ASSESS_GRACE_SECONDS
    try:
        with anyio.fail_after(left):
            return await anyio.to_thread.run_sync(assess_record, state, record, as_of, abandon_on_cancel=True)
    except TimeoutError:
        raise FhirLimitError(
            f"the record ({len(record.resources)} resources) could not be assessed within HCC_FHIR_DEADLINE_SECONDS "
            f"({deadline:g} s); HCC_FHIR_MAX_RESOURCES ({state.settings.fhir_max_resources}) bounds it"
        ) from None
