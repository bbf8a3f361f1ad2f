"""The cohort on a real FHIR server (sekmet-fhir), loaded once per session by one transaction Bundle."""

from __future__ import annotations

from datetime import date

import pytest

from service.cohort.demo_cli import snapshot_of, study_dates
from service.cohort.load import cohort_bundles
from service.demo import as_transaction
from service.settings import Settings
from tests.integration.fhir_server import start_fhir_server


@pytest.fixture(scope="session")
def load_day() -> date:
    """The day the cohort's ``@day-N`` dates are resolved against (as the demo service does)."""
    return Settings().today()


@pytest.fixture(scope="session")
def cohort(load_day) -> list[dict]:
    return cohort_bundles(load_day)


@pytest.fixture(scope="session")
def cohort_snapshots(cohort, knowledge):
    return {b["id"].removesuffix("-bundle"): snapshot_of(b, knowledge) for b in cohort}


@pytest.fixture(scope="session")
def cohort_dates(cohort_snapshots, load_day):
    """patient id -> (sorafenib start, study assessment date), read from each record."""
    return {pid: study_dates(s, load_day) for pid, s in cohort_snapshots.items()}


@pytest.fixture(scope="session")
def cohort_fhir_server(tmp_path_factory, cohort):
    server = start_fhir_server(tmp_path_factory.mktemp("cohort-fhir"))
    try:
        outcome = server.load(as_transaction(cohort))
        assert outcome.get("resourceType") == "Bundle", outcome
        yield server
    finally:
        server.stop()
