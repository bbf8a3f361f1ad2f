"""``hcc-cds benchmarks --report`` (``service.benchmarks.cli.main``); the build is offline (tests/offline)."""

from __future__ import annotations

from service.benchmarks.cli import main


def test_without_an_action_it_prints_usage_and_exits_2(capsys):
    assert main([]) == 2
    assert "--build" in capsys.readouterr().err


def test_report_shows_published_and_reconstructed_side_by_side(capsys, shipped_cohort):
    assert main(["--report"]) == 0
    report = capsys.readouterr().out
    header = next(line for line in report.splitlines() if line.startswith("figure"))
    assert header.split() == ["figure", "published", "reconstructed", "target", "within"]
    for arm in shipped_cohort.arms.values():
        assert f"({arm.arm_id}, n={arm.n}" in report
        for check in arm.document["checks"]:
            assert check["figure"] in report
    assert "OS at 24 months (%)" in report and "0.002008" in report
    assert "Outside target: overall: median follow-up (months)" in report


def test_report_on_a_directory_without_tables_fails_cleanly(tmp_path, capsys):
    assert main(["--report", "--out-dir", str(tmp_path)]) == 1
    assert "no .tables.json" in capsys.readouterr().err


def test_build_is_not_part_of_the_service_and_names_the_offline_command(capsys):
    assert main(["--build"]) == 2
    assert "python -m offline.benchmarks --build" in capsys.readouterr().err
