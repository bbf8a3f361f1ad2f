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
from hypothesis import HealthCheck, given, settings
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


def assert_cards_render_as_text(cards: list[dict]) -> None:
    for card in cards:
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


def _get(value, path):  # noqa: ANN001, ANN202
    for step in path:
        value = value[step]
    return value
