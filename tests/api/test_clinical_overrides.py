"""HCC_CLINICAL_OVERRIDES: a site adds local codes or changes a value; assessments report it."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings, SettingsError
from tests import fhir_factories as f

OVERRIDES = """
value_sets:
  concepts:
    hcc:
      codes:
        - {system: "urn:oid:1.2.3.local", code: "HCC-LOCAL", display: "Local HCC code"}
thresholds:
  child_pugh:
    inr_two_points_from: 1.8
"""


@pytest.fixture()
def override_file(tmp_path):
    path = tmp_path / "overrides.yaml"
    path.write_text(OVERRIDES)
    return path


def test_overrides_are_applied_hashed_and_listed(monkeypatch, override_file):
    monkeypatch.setenv("HCC_CLINICAL_OVERRIDES", str(override_file))
    bundle = f.bundle(
        f.patient("p1"),
        f.condition("HCC-LOCAL", "2025-01-01", system="urn:oid:1.2.3.local"),
        f.lab("6301-6", 1.75, "{INR}", "2026-11-20"),
    )
    with TestClient(create_app(Settings())) as client:
        body = client.post("/api/v1/assessments?as_of=2026-11-28", json=bundle).json()
    assert body["versions"]["overrides_sha256"] == hashlib.sha256(OVERRIDES.encode()).hexdigest()
    assert "thresholds.child_pugh.inr_two_points_from: 1.7 -> 1.8" in body["overrides"]
    assert "value_sets.concepts.hcc.codes: added urn:oid:1.2.3.local|HCC-LOCAL" in body["overrides"]
    assert body["hcc_diagnosis"]["status"] == "met"
    assert body["child_pugh"]["points"]["inr"]["points"] == 1  # 1.75 < 1.8 with the override


def test_without_overrides_the_hash_is_null_and_inr_1_75_scores_two(client):
    bundle = f.bundle(f.patient("p1"), f.lab("6301-6", 1.75, "{INR}", "2026-11-20"))
    body = client.post("/api/v1/assessments?as_of=2026-11-28", json=bundle).json()
    assert body["versions"]["overrides_sha256"] is None and body["overrides"] == []
    assert body["child_pugh"]["points"]["inr"]["points"] == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "must hold an object"),
        ("thresholds: {child_pugh: {inr_two_points_from: high}}", "must be a number"),
        ("rules: {}", "may only contain"),
        ("value_sets: {concepts: {hcc: {codes: [{code: X}]}}}", "needs 'system' and 'code'"),
        ("thresholds: {child_pugh: 3}", "is a group"),
        (": : :", "not valid JSON or YAML"),
    ],
)
def test_a_bad_overrides_file_stops_start_up_with_a_clear_message(monkeypatch, tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    monkeypatch.setenv("HCC_CLINICAL_OVERRIDES", str(path))
    with pytest.raises(SettingsError, match=message):
        create_app(Settings())


def test_a_missing_overrides_file_stops_start_up(monkeypatch, tmp_path):
    monkeypatch.setenv("HCC_CLINICAL_OVERRIDES", str(tmp_path / "nope.yaml"))
    with pytest.raises(SettingsError, match="cannot read"):
        create_app(Settings())


@pytest.mark.parametrize(
    ("variable", "value"),
    [("HCC_FHIR_BASE_URL", "ftp://ehr.example.org/fhir"), ("HCC_FHIR_ALLOWLIST", "https://ehr.example.org,https://u@evil.com")],
)
def test_unusable_fhir_urls_stop_start_up(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        create_app(Settings())
