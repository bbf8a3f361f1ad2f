"""The clinician page for a tumour board: decision in words, the course timeline, both survival arms,
criteria by clinical name, readable evidence, caveats once each, print and narrow-screen styles."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from tests.api.test_page_feedback_audit import call_patient_view, page_path

INTERNAL_CODES = (
    "sorafenib-plus-tace", "sorafenib-alone", "continue-tace", "insufficient-data", "refer-mdt",
    "outside-study-criteria", "on-sorafenib", "bclc_b_at_first_tace", "bclc b at first tace",
    "karnofsky_above_70", "bilirubin_above_3", "child_pugh_a_or_b",
)


def visible_text(html: str) -> str:
    """What a reader sees: no tags, attributes, <style>, <details> bodies or SVG <desc> (text alternatives)."""
    html = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    html = re.sub(r"<details.*?</details>", " ", html, flags=re.S)
    html = re.sub(r"<(title|desc)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def page(client, settings):
    r = client.get(page_path(call_patient_view(client, settings)))
    assert r.status_code == 200
    return r.text


def test_the_decision_comes_first_in_words_with_the_deciding_facts_and_safety(page):
    decision = page.index('id="decision"')
    assert decision < page.index('id="course"') < page.index('id="benchmark"') < page.index('id="criteria"')
    assert "Consider sorafenib with continued TACE" in page
    assert "What decided it" in page and "TACE resistance met." in page
    assert 'class="safety"' in page and "Hepatitis B without recorded antiviral therapy" in page


def test_no_internal_code_or_criterion_id_is_visible(page):
    text = visible_text(page)
    for code in INTERNAL_CODES:
        assert code not in text, code
    assert "BCLC stage B at the first TACE" in text and "Karnofsky 70 or below" in text
    assert "BodyStructure/" not in text  # lesions read as "lesion A"


def test_the_timeline_draws_lesions_the_target_sum_sessions_windows_categories_and_nadir(page, settings):
    svg = page[page.index('id="timeline-chart"'):]
    svg = svg[: svg.index("</svg>")]
    assert svg.count('class="tace"') == 4  # the four completed TACE sessions of demo-eligible
    # demo dates are relative to the load day: the third session (@day-210) opens the second window
    third_tace = (settings.today() - timedelta(days=210)).isoformat()
    assert svg.count('class="window"') == 2 and f"92-day window after TACE {third_tace}" in svg
    assert svg.count('class="lesion"') == 2 and 'class="target-sum"' in svg
    assert 'class="nadir"' in svg and "nadir 50 mm" in svg
    assert svg.count('class="category"') == 4 and ">PD<" in svg and ">SD<" in svg
    assert "<title id=\"timeline-title\">" in svg and "<desc id=\"timeline-desc\">" in svg
    # the text alternative as a table
    assert "The chart's data" in page and "CT 2026-" in page


def test_evidence_reads_as_study_date_lesion_and_size_with_the_raw_reference_on_demand(page):
    assert re.search(r"CT \d{4}-\d\d-\d\d: lesion A \d+ mm viable", page)
    assert "<details class=\"refs\"><summary>Record references</summary>" in page
    assert "Observation/demo-eligible-size-" in page  # kept, one click away


def test_both_arms_on_one_plot_with_the_patients_arm_highlighted_and_its_marker(page):
    svg = page[page.index('id="survival-chart"'):]
    svg = svg[: svg.index("</svg>")]
    assert 'data-arm="sorafenib-plus-tace"' in svg and 'data-arm="sorafenib-alone"' in svg
    assert 'class="arm patient-arm" data-arm="sorafenib-plus-tace"' in svg
    assert 'id="patient-position"' in svg and "this patient&#x27;s arm" in svg.replace("'", "&#x27;")
    assert "<title id=\"survival-title\">" in svg and "<desc id=\"survival-desc\">" in svg


def test_the_caveats_appear_once_each_and_only_the_patients_arm_specific_ones(page):
    caveats = page[page.index('class="caveats"'):]
    caveats = caveats[: caveats.index("</ul>")]
    items = re.findall(r"<li>(.*?)</li>", caveats, flags=re.S)
    assert len(items) == len(set(items))
    text = unescape(caveats)
    assert text.count("Not randomised") == 1 and text.count("small retrospective cohort") == 1
    assert "32% at 12 months" not in text and "Twelve patients" not in text  # sorafenib-alone caveats
    assert text.count("25 months") == 1  # the combination's median, once (not cohort + arm wording)
    assert "predates immunotherapy" not in text  # the context sentence already says it


def test_the_page_links_references_and_has_print_and_narrow_screen_styles(page):
    assert 'href="/references"' in page
    assert "@media print" in page and "@media (max-width: 52rem)" in page
    assert 'name="viewport"' in page


def test_a_page_without_stored_course_data_still_renders(client, settings, monkeypatch):
    from service.api import hooks

    monkeypatch.setattr(hooks, "page_course", lambda *a, **k: None)
    r = client.get(page_path(call_patient_view(client, settings)))
    assert r.status_code == 200 and 'id="timeline-chart"' in r.text and 'class="target-sum"' in r.text


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    h = "".join(c * 2 for c in h) if len(h) == 3 else h
    channels = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2.x contrast ratio of two sRGB colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_contrast_helper_matches_known_wcag_ratios():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54  # the lightest grey that passes AA on white


def test_every_text_colour_meets_wcag_aa_on_the_page_backgrounds(page):
    """Text colours (the page's CSS variables for text, every <text> fill in the charts) against every background
    the page puts text on: at least 4.5:1 (WCAG 2.1 AA, normal text)."""
    variables = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-fA-F]{3,6})", page))
    text_colours = {name: variables[name] for name in ("ink", "muted", "blue", "good", "bad", "unknown")}
    backgrounds = set(re.findall(r"background:\s*(#[0-9a-fA-F]{3,6})", page)) | {"#ffffff"}
    svg_fills = set(re.findall(r'<text[^>]*\sfill="(#[0-9a-fA-F]{6})"', page))
    assert svg_fills, "the charts' text colours were not found"
    failing = [
        (name, colour, bg, round(contrast(colour, bg), 2))
        for name, colour in [*text_colours.items(), *(("svg text", c) for c in svg_fills)]
        for bg in backgrounds
        if contrast(colour, bg) < 4.5
    ]
    assert not failing, failing
