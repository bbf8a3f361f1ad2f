"""Shared fixtures: the knowledge files, the app built for a fixed day, a test client."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.knowledge import load_knowledge
from service.main import create_app
from service.settings import Settings


@pytest.fixture(scope="session")
def knowledge():
    return load_knowledge()


@pytest.fixture()
def settings(monkeypatch) -> Settings:
    for name in ("HCC_MODE", "HCC_FHIR_BASE_URL", "HCC_FHIR_TOKEN", "HCC_FHIR_ALLOWLIST", "HCC_CLINICAL_OVERRIDES"):
        monkeypatch.delenv(name, raising=False)
    return Settings()


@pytest.fixture()
def client(settings) -> TestClient:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
