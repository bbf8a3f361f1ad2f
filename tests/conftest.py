"""Shared fixtures: the knowledge files, the app built for a fixed day, a test client."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.cds.validation import response_problems
from service.knowledge import load_knowledge
from service.main import create_app
from service.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def _database_for_the_session(tmp_path_factory):
    """Every app the tests build (and every server they start) uses one SQLite file of this session."""
    import os

    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'hcc-cds.sqlite3'}"
    previous = os.environ.get("HCC_DATABASE_URL")
    os.environ["HCC_DATABASE_URL"] = url
    yield url
    if previous is None:
        os.environ.pop("HCC_DATABASE_URL", None)
    else:
        os.environ["HCC_DATABASE_URL"] = previous


@pytest.fixture(scope="session")
def knowledge():
    return load_knowledge()


@pytest.fixture()
def settings(monkeypatch) -> Settings:
    for name in ("HCC_MODE", "HCC_FHIR_BASE_URL", "HCC_FHIR_TOKEN", "HCC_FHIR_ALLOWLIST", "HCC_CLINICAL_OVERRIDES",
                 "HCC_CORS_ORIGINS", "HCC_MAX_BODY_BYTES", "HCC_TRUSTED_CLIENTS"):
        monkeypatch.delenv(name, raising=False)
    return Settings()


def validate_cds_responses(response) -> None:
    """Every card any test receives from a CDS service passes the strict card validator."""
    request = response.request
    if request.method == "POST" and request.url.path.startswith("/cds-services/") and response.status_code == 200:
        if request.url.path.endswith("/feedback"):
            return
        response.read()
        problems = response_problems(response.json())
        assert not problems, f"invalid CDS Hooks response from {request.url.path}: {problems}"


def cds_client(app) -> TestClient:
    test_client = TestClient(app)
    test_client.event_hooks["response"].append(validate_cds_responses)
    return test_client


@pytest.fixture()
def client(settings) -> TestClient:
    with cds_client(create_app(settings)) as test_client:
        yield test_client
