"""openapi.yaml at the repository root equals what the app serves."""

from __future__ import annotations

from pathlib import Path

import yaml

from service.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[2]


def test_openapi_yaml_equals_the_served_document(client):
    committed = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    assert committed == openapi_document(), "run: hcc-cds openapi > openapi.yaml"
    assert client.get("/openapi.json").json() == committed
