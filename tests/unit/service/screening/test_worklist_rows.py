"""The worklist row of an assessment, its changes between runs, its CSV, and the sources a run reads."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from service.screening.changes import (
    DATA_NOW_MISSING,
    NEW_PATIENT,
    NO_LONGER_ASSESSABLE,
    NO_LONGER_RESISTANT,
    NOW_ASSESSABLE,
    change_label,
    changes_since,
)
from service.screening.source_spec import SourceError, SourceSpec, configured_sources, read_as_of_file
from service.screening.summary import missing_data, missing_label, worklist_fields
from service.screening.worklist_files import CSV_COLUMNS, _csv_line, csv_record

BASELINE = Path("/nonexistent")


def rendered(**over):
    base = {
        "recommendation": {"code": "sorafenib-plus-tace"},
        "tace_resistance": {"status": "met"},
        "mrecist": {"category": "PD"},
        "sorafenib_eligibility": {"status": "eligible"},
        "tace_candidacy": {"status": "met"},
        "child_pugh": {"class": "A", "points": {"albumin": {"points": 1}, "bilirubin": {"points": 1}}},
        "bclc": {"current": "C", "at_first_tace": "B"},
        "performance_status": {"ecog": 1},
        "data_issues": [],
    }
    base.update(over)
    return base


def test_a_complete_record_misses_nothing():
    fields = worklist_fields(rendered())
    assert fields["missing"] == [] and fields["bclc"] == "C" and fields["recommendation"] == "sorafenib-plus-tace"


def test_each_unknown_finding_names_what_is_missing():
    r = rendered(
        tace_resistance={"status": "unknown"},
        mrecist={"category": "NE"},
        child_pugh={"class": None, "points": {"albumin": {"points": None}, "bilirubin": {"points": 2}}},
        performance_status={"ecog": None},
        bclc={"current": None, "at_first_tace": None},
        sorafenib_eligibility={"status": "indeterminate"},
        tace_candidacy={"status": "unknown"},
        data_issues=[{"resource": "Observation/1", "problem": "no unit"}],
    )
    assert missing_data(r) == [
        "bclc", "child-pugh", "child-pugh:albumin", "eligibility", "performance-status", "tace-candidacy",
        "tace-resistance", "tumour-response",
    ]
    assert worklist_fields(r)["data_issues"] == 1
    assert missing_label("child-pugh:albumin") == "Child-Pugh item: albumin"
    assert "ECOG" in missing_label("performance-status")


def test_bclc_at_first_tace_counts_when_current_is_unknown():
    assert worklist_fields(rendered(bclc={"current": None, "at_first_tace": "B"}))["bclc"] == "B"
    assert "bclc" not in missing_data(rendered(bclc={"current": None, "at_first_tace": "B"}))


ROW = {"recommendation": "continue-tace", "tace_resistance": "met", "missing": [], "error_kind": None}


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        (None, ROW, [NEW_PATIENT]),
        (ROW, ROW, []),
        (ROW, {**ROW, "tace_resistance": "unknown"}, [NO_LONGER_RESISTANT]),
        (ROW, {**ROW, "missing": ["ecog"]}, [DATA_NOW_MISSING]),
        ({**ROW, "error_kind": "MappingError"}, ROW, [NOW_ASSESSABLE]),
        (ROW, {**ROW, "error_kind": "MappingError"}, [NO_LONGER_ASSESSABLE]),
    ],
)
def test_changes(previous, current, expected):
    assert changes_since(previous, current, has_previous_run=True) == expected


def test_no_previous_run_no_changes():
    assert changes_since(None, ROW, has_previous_run=False) == []
    assert change_label("recommendation:a->b") == "recommendation a → b"


def test_csv_cells_never_run_as_formulas():
    row = {c: None for c in CSV_COLUMNS} | {"patient_id": "=HYPERLINK(\"http://x\")", "missing": ["ecog"],
                                            "changes": [], "error_kind": "-1+1", "error_message": "@SUM(A1)"}
    record = csv_record(row)
    assert record[0].startswith("'=")
    parsed = next(csv.reader(io.StringIO(_csv_line(record))))
    assert parsed == record and all(not cell.startswith(("=", "+", "-", "@")) for cell in parsed)


def test_sources_only_from_the_sites_configuration():
    sources = configured_sources(json.dumps({
        "north": {"fhir_base_url": "https://ehr.example/fhir/", "level": "group", "group_id": "hcc"},
        "files": {"ndjson": "/exports"},
    }))
    assert sources["north"].key == "fhir:https://ehr.example/fhir|group|hcc"
    assert sources["files"].kind == "ndjson"
    with pytest.raises(SourceError, match="names its group"):
        configured_sources(json.dumps({"x": {"fhir_base_url": "https://e/fhir", "level": "group"}}))
    with pytest.raises(SourceError, match="not JSON"):
        configured_sources("{")
    with pytest.raises(SourceError, match="http"):
        SourceSpec("fhir", fhir_base_url="file:///etc", level="system")


def test_as_of_file(tmp_path):
    good = tmp_path / "as_of.csv"
    good.write_text("patient,as_of\ncohort-01,2023-01-29\n\ncohort-02, 2024-09-02\n")
    assert {k: v.isoformat() for k, v in read_as_of_file(good).items()} == {
        "cohort-01": "2023-01-29", "cohort-02": "2024-09-02"}
    bad = tmp_path / "bad.csv"
    bad.write_text("patient,as_of\ncohort-01,29/01/2023\n")
    with pytest.raises(SourceError, match="bad.csv:2"):
        read_as_of_file(bad)
