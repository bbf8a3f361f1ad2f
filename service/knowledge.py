"""Loads the clinical knowledge files shipped in ``rules/data/`` and the site's overrides."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import yaml

from rules import Knowledge, KnowledgeError, OverridesError
from service.settings import SettingsError


def read_data_file(name: str) -> dict:
    """A JSON document from the ``rules/data`` package directory."""
    return json.loads(resources.files("rules").joinpath("data", name).read_text(encoding="utf-8"))


def clinical_thresholds() -> dict:
    """thresholds.json with the groups of response_criteria.json (mRECIST, BCLC, performance status)."""
    thresholds = read_data_file("thresholds.json")
    criteria = read_data_file("response_criteria.json")
    for group, content in criteria.items():
        if group != "_meta":
            thresholds[group] = content
    return thresholds


def load_knowledge(overrides_path: Path | None = None) -> Knowledge:
    """Value sets and thresholds, with the site's overrides applied and hashed."""
    overrides = None
    digest = None
    if overrides_path is not None:
        try:
            raw = overrides_path.read_bytes()
        except OSError as exc:
            raise SettingsError(f"HCC_CLINICAL_OVERRIDES: cannot read {overrides_path}: {exc.strerror}") from exc
        digest = hashlib.sha256(raw).hexdigest()
        try:
            overrides = yaml.safe_load(raw.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise SettingsError(f"HCC_CLINICAL_OVERRIDES: {overrides_path} is not valid JSON or YAML: {exc}") from exc
        if not isinstance(overrides, dict):
            raise SettingsError(f"HCC_CLINICAL_OVERRIDES: {overrides_path} must hold an object")
    try:
        return Knowledge(
            read_data_file("value_sets.json"),
            clinical_thresholds(),
            overrides=overrides,
            overrides_sha256=digest,
            overrides_source=str(overrides_path),
            require_complete=True,
        )
    except OverridesError as exc:
        raise SettingsError(f"HCC_CLINICAL_OVERRIDES: {exc}") from exc
    except KnowledgeError as exc:  # the shipped rules/data documents themselves
        raise SettingsError(f"clinical knowledge (rules/data): {exc}") from exc
