"""gather -> map -> assess: one patient's assessment from whatever source the caller has."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import anyio.to_thread

from rules.assessment import Assessment, assess
from service.fhir.source import FhirSource
from service.gather import PatientRecord, gather_patient_record
from service.main_state import AppState
from service.mapping import map_to_snapshot


def assess_record(state: AppState, record: PatientRecord, as_of: date) -> Assessment:
    snapshot = map_to_snapshot(record.patient, record.resources, state.knowledge, prior_issues=record.issues)
    return assess(snapshot, as_of, state.knowledge, build=state.build)


async def assess_patient(
    state: AppState,
    patient_id: str,
    *,
    templates: Mapping[str, str],
    prefetch: Mapping[str, object] | None,
    source: FhirSource | None,
    as_of: date,
) -> Assessment:
    record = await gather_patient_record(
        patient_id,
        templates,
        prefetch,
        source,
        deadline_seconds=state.settings.fhir_deadline_seconds,
    )
    # mapping and rules take long for a large record: in a worker thread, the event loop keeps serving
    return await anyio.to_thread.run_sync(assess_record, state, record, as_of)
