"""Fixtures for the benchmark tests: the cohort definition and the shipped tables (a rebuild: tests/offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.benchmarks.tables import BenchmarkTables, CohortTable, load_benchmark_tables

REPO_ROOT = Path(__file__).resolve().parents[3]
COHORT_FILE = REPO_ROOT / "rules" / "data" / "cohorts" / "tace-resistant-hcc.json"
SHIPPED_TABLES_FILE = REPO_ROOT / "rules" / "data" / "benchmarks" / "tace-resistant-hcc.tables.json"
COHORT_ID = "tace-resistant-hcc"


@pytest.fixture(scope="session")
def cohort_definition() -> dict[str, Any]:
    return json.loads(COHORT_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def shipped_tables() -> BenchmarkTables:
    return load_benchmark_tables()


@pytest.fixture(scope="session")
def shipped_cohort(shipped_tables: BenchmarkTables) -> CohortTable:
    return shipped_tables.cohort(COHORT_ID)


@pytest.fixture(scope="session")
def published_arms(cohort_definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cohort file's arm definitions by arm id."""
    return {arm["id"]: arm for arm in cohort_definition["arms"]}
