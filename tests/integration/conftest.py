"""A real FHIR server process for the whole session, loaded with the demo patients by transaction."""

from __future__ import annotations

import pytest

from service.demo import as_transaction, demo_bundles
from service.settings import Settings
from tests.integration.fhir_server import start_fhir_server


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory):
    server = start_fhir_server(tmp_path_factory.mktemp("fhir"))
    server.load(as_transaction(demo_bundles(Settings().today())))
    yield server
    server.stop()


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
