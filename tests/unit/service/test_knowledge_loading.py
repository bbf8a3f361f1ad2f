"""service.knowledge.load_knowledge: a site's overrides file that is malformed stops start-up naming the
variable, the file and the key."""

from __future__ import annotations

import pytest

from service.knowledge import load_knowledge
from service.settings import SettingsError


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("thresholds: {freshness: {lab_max_age_days: -1}}", r"thresholds\.freshness\.lab_max_age_days must be at least 0, not -1"),
        ("thresholds: {freshness: {lab_max_age_dayz: 20}}", r"thresholds\.freshness\.lab_max_age_dayz is not a known name"),
        ("thresholds: {tace_candidacy: {multiple_extrahepatic_metastases_min: two}}", r"must be a number"),
        ("thresholds: {jsh_2014: {response_imaging_max_days: 20}}", r"response_imaging_max_days must be at least response_imaging_min_days \(28\)"),
    ],
)
def test_a_bad_override_names_the_variable_the_file_and_the_key(tmp_path, content, message):
    path = tmp_path / "site.yaml"
    path.write_text(content)
    with pytest.raises(SettingsError, match=rf"^HCC_CLINICAL_OVERRIDES: {path}: .*{message}"):
        load_knowledge(path)


def test_day_window_of_zero_in_an_override_loads(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text("thresholds: {safety: {antiviral_before_tace_max_days: 0}}")
    assert load_knowledge(path).criteria.safety.antiviral_before_tace_max_days == 0
