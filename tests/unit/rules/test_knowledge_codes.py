"""Value-set lookups: prefix families with exceptions (C77-C79 except C78.7), sites and severities carried by codes."""

from __future__ import annotations

import pytest

from rules.knowledge import Knowledge
from tests.unit.rules.factories import load_data

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return Knowledge(load_data("value_sets.json"), load_data("thresholds.json"))


@pytest.mark.parametrize(
    ("code", "concept", "site"),
    [
        ("C77", "extrahepatic_metastasis", "lymph node"),
        ("C77.2", "extrahepatic_metastasis", "lymph node"),
        ("C78", "extrahepatic_metastasis", None),
        ("C78.00", "extrahepatic_metastasis", "lung"),
        ("C7801", "extrahepatic_metastasis", "right lung"),
        ("C78.02", "extrahepatic_metastasis", "left lung"),
        ("C78.00", "extrahepatic_metastasis", "lung"),
        ("C78.6", "extrahepatic_metastasis", "peritoneum"),
        ("C78.69", "extrahepatic_metastasis", "peritoneum"),
        ("C78.8", "extrahepatic_metastasis", None),
        ("C79.51", "extrahepatic_metastasis", "bone"),
        ("C79.72", "extrahepatic_metastasis", "adrenal gland"),
        ("C79.81", "extrahepatic_metastasis", "breast"),
        ("C79.89", "extrahepatic_metastasis", None),
        ("C79.9", "extrahepatic_metastasis", None),
        ("R18", "ascites", None),
        ("R18.8", "ascites", None),
    ],
)
def test_prefix_families_give_the_concept_and_the_most_specific_site(k, code, concept, site):
    entry = k.lookup(ICD, code)
    assert entry is not None and (entry.concept, entry.site) == (concept, site)


@pytest.mark.parametrize("code", ["C78.7", "C787", "c78.7", " C78.7", "C78.70", "C76.0", "C80.1", "C7", "R17", "R19.0"])
def test_codes_outside_the_families_or_in_an_exception_are_not_found(k, code):
    assert k.lookup(ICD, code) is None


def test_a_prefix_applies_only_to_its_system(k):
    assert k.lookup(SCT, "C78.01") is None and k.lookup(None, "C78.01") is None and k.lookup(ICD, None) is None
    assert k.lookup(ICD, "") is None


def test_listed_codes_carry_their_site_and_severity(k):
    assert k.lookup(SCT, "94391008").site == "lung"
    assert k.lookup(SCT, "94222008").site == "bone"
    assert k.lookup(SCT, "94225005").site == "brain"
    assert k.lookup(ICD, "K72.91").severity == "severe"
    assert k.lookup(ICD, "K76.82").severity is None
    assert k.lookup(SCT, "17920008").specific is False
    assert k.lookup(SCT, "48521005").concept == "liver_structures"
    assert k.lookup(SCT, "39607008").site == "lung"


def test_an_override_may_add_a_family_exception(k):
    override = {"value_sets": {"concepts": {"ascites": {"code_prefixes": [
        {"system": ICD, "prefixes": ["R18"], "except": ["R18.0"], "source": "site"}]}}}}
    site = Knowledge(load_data("value_sets.json"), load_data("thresholds.json"), override)
    assert site.lookup(ICD, "R18.8").concept == "ascites"
    assert site.lookup(ICD, "R18.0").concept == "ascites"  # still listed as a code, which beats any prefix
    assert site.lookup(ICD, "R18.9") is not None and site.lookup(ICD, "R18.01") is None  # under the exception
