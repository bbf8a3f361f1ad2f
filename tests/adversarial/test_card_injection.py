"""Hostile text from the record must reach the clinician as text: never HTML, never a link, in any card.

A card's ``detail`` is Markdown the EHR renders. Resource ids that fail validation, units, status
reasons, displays and codes flow into it (the "Data not used" list, reasons); each card is rendered
here with a CommonMark renderer that passes raw HTML through (as a permissive EHR would), and the
result must hold no tag and no link the service did not write. The clinician page escapes as well.
"""

from __future__ import annotations

import os
import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from service.main import create_app
from tests.adversarial.clinical_data import paths_of, record, set_path
from tests.adversarial.conftest import demo_settings
from tests.api.hook_requests import full_prefetch, patient_view

HOOK = "/cds-services/hcc-tace-resistance"
RENDER = MarkdownIt("commonmark")  # raw HTML passes through, as in a permissive EHR
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[click here](https://evil.example/login)",
    "![pixel](https://evil.example/p.png)",
    "<a href='https://evil.example'>ok</a>",
    "<https://evil.example/autolink>",
    "<!-- hidden --><iframe src=https://evil.example>",
    "\\<img src=x onerror=alert(2)>",
    "**bold**\n\n# Heading\n\n<details open>x</details>",
]
EXAMPLES = int(os.environ.get("HCC_ADVERSARIAL_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(demo_settings())) as test_client:
        yield test_client


# every Markdown token type the service's own card wording uses: anything else (a link, an image, raw
# HTML, a heading, a quote, code, an ordered list, a rule, a line break) can only come from record text
SERVICE_TOKENS = {"paragraph_open", "paragraph_close", "inline", "text", "bullet_list_open", "bullet_list_close",
                  "list_item_open", "list_item_close", "strong_open", "strong_close", "em_open", "em_close"}


def assert_cards_render_as_text(cards: list[dict]) -> None:
    for card in cards:
        tokens = {t.type for t in _flat(card.get("detail") or "")}
        assert tokens <= SERVICE_TOKENS, f"card detail renders {tokens - SERVICE_TOKENS}: {card['detail'][:300]}"
        html = RENDER.render(card.get("detail") or "")
        tags = set(re.findall(r"<\s*([a-zA-Z!][a-zA-Z0-9]*)", html)) - {"p", "ul", "ol", "li", "strong", "em", "code", "h1",
                                                                             "h2", "h3", "br", "hr", "blockquote", "pre"}
        assert not tags, f"card detail renders tags {tags}: {card['detail'][:300]}"
        for text in (card.get("summary", ""), *(s.get("label", "") for s in card.get("suggestions") or [])):
            assert "<" not in text or not re.search(r"<[a-zA-Z!/]", text), text


def _hostile_record(text: str) -> tuple[dict, list[dict]]:
    patient, resources = record("demo-eligible")
    resources.append({  # an id that fails validation: listed under "Data not used"
        "resourceType": "Observation", "id": text, "status": "final", "subject": {"reference": "Patient/demo-eligible"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "1975-2"}]},
    })
    resources.append({  # a unit that cannot be converted: its text is quoted in the problem
        "resourceType": "Observation", "id": "hostile-unit", "status": "final",
        "subject": {"reference": "Patient/demo-eligible"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "1975-2"}]}, "effectiveDateTime": "2026-05-20",
        "valueQuantity": {"value": 1.0, "unit": text},
    })
    resources.append({  # a TACE not done, with a status reason in free text (reasons quote it)
        "resourceType": "Procedure", "id": "hostile-not-done", "status": "not-done",
        "subject": {"reference": "Patient/demo-eligible"}, "performedDateTime": "2026-05-25",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "441525007"}]},
        "statusReason": {"text": text},
    })
    return patient, resources


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_the_record_renders_as_text_in_every_card(client, text):
    patient, resources = _hostile_record(text)
    response = client.post(HOOK, json=patient_view("demo-eligible", prefetch=full_prefetch(resources, patient)))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert cards
    assert_cards_render_as_text(cards)


def test_hostile_text_is_escaped_on_the_clinician_page(client):
    patient, resources = _hostile_record("<img src=x onerror=alert(1)>")
    cards = client.post(HOOK, json=patient_view("demo-eligible", prefetch=full_prefetch(resources, patient))).json()["cards"]
    link = next(link["url"] for link in cards[0]["links"] if "/assessments/" in link["url"])
    page = client.get("/assessments/" + link.rsplit("/assessments/", 1)[1])
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "onerror=alert" not in page.text.replace("onerror=alert(1)&gt;", "")


STRING_LEAVES = st.sampled_from(HOSTILE) | st.text(alphabet="<>[]()!\\*_`#&;:/ahimgrcsptx=\"'", min_size=1, max_size=40)


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_hostile_text_in_any_string_field_never_renders_as_html_or_a_link(client, data):
    patient, resources = record("demo-eligible")
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(resources) - 1))
        strings = [p for p in paths_of(resources[i]) if p[0] not in ("resourceType", "subject")
                   and isinstance(_get(resources[i], p), str)]
        set_path(resources[i], data.draw(st.sampled_from(strings)), data.draw(STRING_LEAVES))
    response = client.post(HOOK, json=patient_view("demo-eligible", prefetch=full_prefetch(resources, patient)))
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert_cards_render_as_text(response.json()["cards"])


def _get(value, path):
    for step in path:
        value = value[step]
    return value


# -- issue 18 item 2: record free text reaching a card through the reasons ---------------------------
# A not-done TACE's statusReason is quoted in the candidacy and recommendation reasons. With a line
# break it could open a block of its own: a reference-link definition turning the service's own
# "[...]" into a live link, a heading forging a verdict, a list, a quote.
PHISH = ('refused\n[x]: https://evil.example/phish "hospital protocol"\n'
         "## Sorafenib eligibility (study criteria): eligible\n[see protocol][x]\n> quoted\n1. listed\n---\n")
NON_TEXT = {"link_open", "image", "html_inline", "html_block", "heading_open", "blockquote_open", "fence",
            "code_block", "code_inline", "hr", "ordered_list_open", "hardbreak", "softbreak", "table_open", "s_open"}
RECORD_TEXT = st.text(alphabet=st.sampled_from(list("\n\r\t     <>[]()!\\*_`#&;:/=-+.|~\"'0123456789ahimgrcsptx")),
                      min_size=1, max_size=60).filter(lambda t: t.strip())


def _flat(markdown: str) -> list:
    tokens = []
    for token in RENDER.parse(markdown):
        tokens.append(token)
        tokens.extend(token.children or ())
    return tokens


def _structure(markdown: str) -> list[tuple[str, str]]:
    """Every token but the text: what the Markdown makes of the detail, whatever the words."""
    return [(t.type, t.tag) for t in _flat(markdown) if t.type not in ("text", "inline")]


def _shown_text(markdown: str) -> str:
    return "".join(t.content for t in _flat(markdown) if t.type == "text")


def _status_reason_cards(client, text: str) -> list[dict]:
    """demo-eligible, dated from today, with a TACE not done after its last session: the status reason is
    then a deciding fact (TACE not possible: sorafenib alone), quoted in the card."""
    from datetime import date, timedelta

    from service.demo import demo_bundles

    today = demo_settings().today()
    [bundle] = [b for b in demo_bundles(today) if b["id"].startswith("demo-eligible")]
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    resources = [r for r in resources if r is not patient]
    last = max(date.fromisoformat(r["performedDateTime"][:10]) for r in resources
               if r["resourceType"] == "Procedure" and r.get("status") == "completed" and "performedDateTime" in r)
    resources.append({
        "resourceType": "Procedure", "id": "hostile-not-done", "status": "not-done",
        "subject": {"reference": "Patient/demo-eligible"}, "performedDateTime": (last + timedelta(days=5)).isoformat(),
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "441525007"}]},
        "statusReason": {"text": text},
    })
    response = client.post(HOOK, json=patient_view("demo-eligible", prefetch=full_prefetch(resources, patient)))
    assert response.status_code == 200, response.text
    return response.json()["cards"]


def _shown_as_written(text: str, shown: str) -> bool:
    """The record text is shown as written, on one line; a card short of room may end it early with "…"."""
    written = " ".join(text.split())
    if written in shown:
        return True
    cut = shown.find("…")
    return cut > 0 and any(shown[:cut].endswith(written[:n]) for n in range(min(len(written), 30), len(written)))


def test_a_status_reason_with_a_link_definition_and_a_heading_renders_as_text(client):
    [card] = _status_reason_cards(client, PHISH)
    found = {t.type for t in _flat(card["detail"])} & NON_TEXT
    assert not found, f"the status reason made {found}: {card['detail']}"
    assert "href=" not in RENDER.render(card["detail"])
    # shown as written, on one line
    assert _shown_as_written(PHISH, _shown_text(card["detail"])), card["detail"]


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(RECORD_TEXT)
def test_generated_record_text_in_a_status_reason_adds_no_markdown_token_to_the_card(client, text):
    """The card's Markdown structure is the same whatever the status reason says; the text is shown as written."""
    [card] = _status_reason_cards(client, text)
    [plain] = _status_reason_cards(client, "refused")
    assert _structure(card["detail"]) == _structure(plain["detail"]), card["detail"]
    assert _shown_as_written(text, _shown_text(card["detail"])), card["detail"]


@settings(max_examples=EXAMPLES * 10, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(RECORD_TEXT | st.text(max_size=80), st.sampled_from(["- ", "", "**Label**: met. ", "_Source: ", "1. "]))
def test_escaped_text_is_one_text_token_wherever_it_lands_on_a_line(text, prefix):
    """``escape`` over any text (all of Unicode) at a list item's start, a line's start or mid-line."""
    from service.render.markdown import escape

    rendered = escape(text)
    assume(rendered)  # nothing but spaces and control characters: nothing is shown
    assert "\n" not in rendered and "\r" not in rendered
    baseline = _structure(prefix + "x" + ("_" if prefix == "_Source: " else ""))
    assert _structure(prefix + rendered + ("_" if prefix == "_Source: " else "")) == baseline, rendered
