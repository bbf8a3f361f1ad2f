"""Issue 23's "done when", in a real headless browser (Debian's chromium): a clinician goes from a card to the app
inside the (simulated) EHR, records a study's measurements by keyboard only, and sees the new assessment.

The stand-in EHR (tests/smart/ehr.py) shows the patient-view cards hcc-cds returned; following the card's ``smart``
link opens, in an 800 px frame, the launch URL the real SMART launcher's EHR side builds (``iss`` + ``launch``); the
launcher authorizes (login and consent skipped) and the app reads the record through the user's token. The form
records day -20 (40 and 22 mm, CT) and confirms both CPT-only TACE sessions: mRECIST SD -> PD, TACE resistance
not-met -> met. sekmet then holds the new resources with a Provenance naming the user, and a second hook call sees
them. Screenshots in ``test-artifacts/smart/`` (gitignored). Skipped without chromium locally, never in CI.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from service.demo import as_transaction, demo_bundles
from service.smart.capture import CONFIRM_TACE_PREFIX, MODALITY, SIZE_PREFIX, STUDY_DATE
from tests.smart.app import patient_view_cards, served_smart_app, smart_link
from tests.smart.ehr import FRAME_WIDTH, ehr_page, served_ehr
from tests.smart.scenario import PROGRESSION_DAY, PROGRESSION_SIZES, SCENARIO_PATIENT, TACE_SESSIONS, scenario_bundle

try:
    from playwright.sync_api import Frame, Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "smart"
MAX_TABS = 60
pytestmark = [
    pytest.mark.smart,
    pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true", reason="chromium not installed"),
]


def tab_to(page: Page, frame: Frame, name: str) -> None:
    """Press Tab until the element named ``name`` has the focus: the form is reachable by keyboard, in order."""
    for _ in range(MAX_TABS):
        if frame.evaluate("document.activeElement && document.activeElement.name") == name:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{name} not reached with {MAX_TABS} Tab presses")


def type_date(page: Page, day: date) -> None:
    """A date typed into Chromium's date field as a clinician does, month, day and year (the en-US order)."""
    page.keyboard.type(f"{day.month:02d}{day.day:02d}{day.year}")


def fill_the_form_by_keyboard(page: Page, frame: Frame, today: date) -> None:
    tab_to(page, frame, STUDY_DATE)
    type_date(page, today + timedelta(days=PROGRESSION_DAY))
    tab_to(page, frame, MODALITY)
    page.keyboard.type("CT")  # the select's type-ahead
    for lesion, size in PROGRESSION_SIZES.items():
        tab_to(page, frame, f"{SIZE_PREFIX}{lesion}")
        page.keyboard.type(size)
    for procedure in TACE_SESSIONS:
        tab_to(page, frame, f"{CONFIRM_TACE_PREFIX}{procedure}")
        page.keyboard.press("Space")
    page.keyboard.press("Enter")  # submits the form from a checkbox, as from any field


def test_from_a_card_to_a_recorded_study_in_the_ehr_frame(smart_stack, tmp_path_factory):
    assert CHROMIUM and sync_playwright, "CI installs chromium and playwright (the dev extra)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    today = date.today()
    smart_stack.load(as_transaction(demo_bundles(today)))
    smart_stack.load(scenario_bundle(today))
    fhir = f"{smart_stack.proxy.url}/fhir"
    with served_ehr() as screen, served_smart_app(tmp_path_factory.mktemp("app"), frame_ancestors=screen.origin) as app:
        cards = patient_view_cards(app, SCENARIO_PATIENT, fhir)
        link = smart_link(cards)
        screen.show(ehr_page(SCENARIO_PATIENT, cards, {link["url"]: smart_stack.launch_url(link["url"], patient=SCENARIO_PATIENT)}))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(screen.url)
                page.get_by_role("link", name=link["label"]).focus()
                page.keyboard.press("Enter")  # the clinician follows the card's link
                frame = page.frame(name="app")
                assert frame is not None
                frame.wait_for_url(re.compile(re.escape(f"{app.base_url}/smart/app/") + r"[\w-]+$"), timeout=30_000)
                frame.get_by_role("heading", name="Record a study's measurements").wait_for()
                assert "mRECIST now: SD" in frame.locator("#course").inner_text()
                assert frame.get_by_label("Lesion A: Liver structure").count() == 1  # the chart's letters
                assert frame.evaluate("document.documentElement.scrollWidth") <= FRAME_WIDTH, "the app scrolls sideways"
                page.screenshot(path=str(ARTIFACTS / "ehr-app-launched.png"), full_page=True)
                frame.locator("#record").screenshot(path=str(ARTIFACTS / "app-form.png"))

                frame.locator(f"#f-{STUDY_DATE}").focus()
                fill_the_form_by_keyboard(page, frame, today)
                frame.get_by_role("heading", name="Saved to the patient's record").wait_for(timeout=30_000)
                changes = frame.locator("table.changes").inner_text()
                assert "SD\tPD" in changes and "not met\tmet" in changes, changes
                page.screenshot(path=str(ARTIFACTS / "ehr-app-saved.png"), full_page=True)
                assert not errors
            finally:
                browser.close()
        provenance = httpx.get(f"{smart_stack.sekmet.direct_url}/Provenance",
                               params={"target": f"Procedure/{TACE_SESSIONS[0]}"}, timeout=10).json()
        assert [e["resource"]["agent"][0]["who"]["reference"] for e in provenance["entry"]] == ["Practitioner/example"]
        again = patient_view_cards(app, SCENARIO_PATIENT, fhir)
        stored = httpx.get(next(lk["url"] for card in again for lk in card["links"] if lk["type"] == "absolute"))
        assert "mRECIST now:</strong> PD" in stored.text
