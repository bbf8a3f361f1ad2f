"""Loading the tables needs only the standard library, and the step-function helpers read them right."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from service.benchmarks.tables import (
    BenchmarkTablesError,
    load_benchmark_tables,
    parse_cohort_tables,
)

from .conftest import REPO_ROOT, SHIPPED_TABLES_FILE

SCIENTIFIC_STACK = ("lifelines", "numpy", "pandas", "matplotlib", "scipy")


def test_loading_the_tables_and_the_router_imports_no_scientific_stack():
    script = textwrap.dedent(
        f"""
        import sys
        from service.benchmarks.tables import DEFAULT_COHORT_ID, load_benchmark_tables
        tables = load_benchmark_tables()
        assert tables.cohort(DEFAULT_COHORT_ID).arm("overall").survival_at(12).estimate > 0
        import service.api.benchmarks
        loaded = sorted(name for name in {SCIENTIFIC_STACK!r} if name in sys.modules)
        print(",".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported at load time: {result.stdout.strip()}"


def test_every_arm_of_the_cohort_is_loaded_in_publication_order(shipped_cohort):
    assert shipped_cohort.arm_ids == ("sorafenib-plus-tace", "sorafenib-alone", "overall")
    assert [shipped_cohort.arm(arm).n for arm in shipped_cohort.arm_ids] == [22, 12, 34]
    assert shipped_cohort.document["citation"]["status"] == "citation unconfirmed"


def test_survival_at_reads_the_right_continuous_step_function(shipped_cohort):
    arm = shipped_cohort.arm("sorafenib-plus-tace")
    first_death = next(step for step in arm.km if step.events)
    assert arm.survival_at(0).estimate == 1.0
    assert arm.survival_at(first_death.month - 0.25).estimate == 1.0
    assert arm.survival_at(first_death.month).estimate == first_death.estimate  # deaths at t count at t
    assert arm.survival_at(24).estimate == pytest.approx(10 / 22, abs=1e-4)


def test_survival_is_undefined_beyond_follow_up_unless_everyone_has_died(shipped_cohort):
    combination, monotherapy = shipped_cohort.arm("sorafenib-plus-tace"), shipped_cohort.arm("sorafenib-alone")
    assert combination.km[-1].estimate > 0  # the last patient was alive at study end
    assert combination.survival_at(combination.last_observed_month + 1) is None
    assert monotherapy.km[-1].estimate == 0.0
    assert monotherapy.survival_at(monotherapy.last_observed_month + 12).estimate == 0.0


def test_conditional_survival_can_be_read_off_the_tables(shipped_cohort):
    arm = shipped_cohort.arm("overall")
    conditional = arm.survival_at(12).estimate / arm.survival_at(6).estimate  # S(6 + 6) / S(6)
    assert conditional == pytest.approx(21 / 28, abs=1e-3)


def test_at_risk_counts_patients_still_observed(shipped_cohort):
    arm = shipped_cohort.arm("overall")
    assert arm.at_risk(0) == 34
    assert arm.at_risk(arm.last_observed_month) == 1
    assert arm.at_risk(arm.last_observed_month + 0.5) == 0
    observed = [row["month"] for row in arm.document["pseudo_ipd"]]
    for month in (3, 6, 11.75, 24, 36):
        assert arm.at_risk(month) == sum(time >= month for time in observed)
    with pytest.raises(ValueError):
        arm.at_risk(-1)


def test_unknown_cohort_or_arm_names_the_valid_values(shipped_tables, shipped_cohort):
    with pytest.raises(KeyError, match="tace-resistant-hcc"):
        shipped_tables.cohort("nope")
    with pytest.raises(KeyError, match="sorafenib-alone"):
        shipped_cohort.arm("nope")


def test_another_format_version_is_refused_with_a_rebuild_hint():
    document = json.loads(SHIPPED_TABLES_FILE.read_text(encoding="utf-8"))
    document["format_version"] = 99
    with pytest.raises(BenchmarkTablesError, match="rebuild"):
        parse_cohort_tables(document)


def test_a_directory_without_tables_is_an_error(tmp_path):
    with pytest.raises(BenchmarkTablesError, match="no .tables.json"):
        load_benchmark_tables(tmp_path)


def test_tables_can_be_loaded_from_another_directory(tmp_path):
    (tmp_path / SHIPPED_TABLES_FILE.name).write_bytes(SHIPPED_TABLES_FILE.read_bytes())
    assert list(load_benchmark_tables(tmp_path).cohorts) == ["tace-resistant-hcc"]
