"""Fixtures for the offline tools' tests: the cohort definition and one fresh rebuild of the benchmarks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.benchmarks.conftest import COHORT_FILE


@pytest.fixture(scope="session")
def cohort_definition() -> dict[str, Any]:
    return json.loads(COHORT_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def rebuilt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full rebuild through the command (search + lifelines + plots), shared by the tests that need it."""
    pytest.importorskip("lifelines")
    from offline.benchmarks.__main__ import main

    out_dir = tmp_path_factory.mktemp("rebuilt-tables")
    assert main(["--build", "--out-dir", str(out_dir)]) == 0
    return out_dir
