"""The shipped tables are exactly what a rebuild produces, and a build is byte-for-byte repeatable."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from offline.benchmarks.__main__ import main as build_main
from offline.benchmarks.build import _rounded, dumps_tables
from offline.benchmarks.plots import render_plots
from service.benchmarks.cli import main as report_main
from service.benchmarks.tables import default_tables_dir
from tests.unit.benchmarks.conftest import COHORT_FILE, SHIPPED_TABLES_FILE

REBUILD_HINT = "the shipped tables are stale: run `python -m offline.benchmarks --build` and commit the result"


def test_shipped_tables_were_built_from_the_current_cohort_file():
    shipped = json.loads(SHIPPED_TABLES_FILE.read_text(encoding="utf-8"))
    assert shipped["source"]["sha256"] == hashlib.sha256(COHORT_FILE.read_bytes()).hexdigest(), REBUILD_HINT
    assert shipped["source"]["file"] == "rules/data/cohorts/tace-resistant-hcc.json"


def test_a_rebuild_gives_the_shipped_bytes(rebuilt_dir):
    rebuilt = (rebuilt_dir / SHIPPED_TABLES_FILE.name).read_bytes()
    assert rebuilt == SHIPPED_TABLES_FILE.read_bytes(), REBUILD_HINT


def test_the_build_writes_one_tables_file_per_cohort_and_the_plots_of_each_arm(rebuilt_dir):
    arms = ("overall", "sorafenib-alone", "sorafenib-plus-tace")
    plots = [f"tace-resistant-hcc.{arm}{suffix}" for arm in arms for suffix in (".plot.json", ".png", ".svg")]
    assert sorted(path.name for path in rebuilt_dir.iterdir()) == sorted([SHIPPED_TABLES_FILE.name, *plots])


def test_a_rebuild_gives_the_shipped_plots(rebuilt_dir):
    for svg in rebuilt_dir.glob("*.svg"):
        assert svg.read_bytes() == (SHIPPED_TABLES_FILE.parent / svg.name).read_bytes(), REBUILD_HINT


def test_serialisation_is_canonical_sorted_keys_and_a_trailing_newline():
    document = {"b": [1.0, {"z": None, "a": True}], "a": "µ"}
    text = dumps_tables(document)
    assert text == dumps_tables(json.loads(text)) and text.endswith("}\n")
    assert text.index('"a"') < text.index('"b"') and "µ" in text


def test_rounding_keeps_significant_digits_and_normalises_edge_values():
    assert _rounded({"p": 0.000648612, "s": 0.954545454, "m": 24.0, "n": 22}, 4) == {
        "p": 0.0006486,
        "s": 0.9545,
        "m": 24.0,
        "n": 22,
    }
    assert _rounded([-0.0, math.inf, math.nan, True, None], 4) == [0.0, None, None, True, None]
    with pytest.raises(TypeError):
        _rounded({"not json": object()}, 4)



def test_without_build_the_offline_command_prints_usage_and_exits_2(capsys):
    assert build_main([]) == 2
    assert "--build" in capsys.readouterr().err


def test_the_service_reports_on_the_rebuilt_tables(rebuilt_dir, capsys):
    assert report_main(["--report", "--out-dir", str(rebuilt_dir)]) == 0
    assert "Sorafenib + TACE (sorafenib-plus-tace, n=22" in capsys.readouterr().out


def test_rendering_the_plots_again_gives_the_shipped_mapping_and_svg(tmp_path):
    pytest.importorskip("matplotlib")
    render_plots(out_dir=tmp_path)
    shipped = default_tables_dir()
    for mapping in tmp_path.glob("*.plot.json"):
        assert json.loads(mapping.read_text()) == json.loads(shipped.joinpath(mapping.name).read_text())
    for svg in tmp_path.glob("*.svg"):
        assert svg.read_text() == shipped.joinpath(svg.name).read_text(), svg.name
