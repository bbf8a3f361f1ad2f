"""The tumour-board worklist in a real headless browser (Debian's chromium): a screening started through the
job API, its worklist sorted and filtered by a click, a patient's page opened from their row, readable on a
laptop and in an ~800 px frame (screenshots in ``test-artifacts/worklist/``, gitignored).

Skipped without chromium on a developer's machine, never in CI (CI=true).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.fhir_server import free_port
from tests.screening_export import DAY, demo_export_bundles, write_export
from tests.served import served_hcc_cds

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "worklist"
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="chromium not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def worklist_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("worklist")
    write_export(demo_export_bundles(DAY), root / "export")
    port = free_port()
    env = {
        "HCC_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "HCC_DATABASE_URL": f"sqlite:///{root}/db.sqlite3",
        "HCC_SCREEN_WORK_DIR": str(root / "work"),
        "HCC_SCREEN_WORKERS": "1",
        "HCC_SCREEN_PATIENTS_PER_PARTITION": "10",
        "HCC_SCREEN_SOURCES": json.dumps({"demo-hospital": {"ndjson": str(root / "export")}}),
    }
    with served_hcc_cds(env, port=port) as app:
        started = httpx.post(f"{app.base_url}/api/v1/screenings", json={"source": "demo-hospital", "as_of": DAY.isoformat()})
        assert started.status_code == 202, started.text
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status = httpx.get(started.json()["status_url"]).json()
            if status["status"] in ("complete", "failed"):
                break
            time.sleep(0.3)
        assert status["status"] == "complete", status
        yield status["worklist_url"]


def test_the_worklist_sorts_filters_and_opens_a_patient(worklist_url):
    assert CHROMIUM and sync_playwright, "CI installs chromium and playwright (the dev extra)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            for width, height in ((1366, 768), (800, 900)):
                page = browser.new_page(viewport={"width": width, "height": height})
                errors: list[str] = []
                page.on("pageerror", lambda e, seen=errors: seen.append(str(e)))
                page.goto(worklist_url)
                assert not errors
                assert page.locator("table.worklist tbody tr").count() == 37
                assert page.evaluate("document.documentElement.scrollWidth") <= width, f"page scrolls sideways at {width}"
                page.screenshot(path=str(ARTIFACTS / f"worklist-{width}.png"), full_page=True)
                page.screenshot(path=str(ARTIFACTS / f"worklist-{width}-first-screen.png"))
                page.close()
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.goto(worklist_url)
            page.get_by_role("link", name="Patient").click()  # sort by patient id, ascending
            first = page.locator("table.worklist tbody tr th a").first.inner_text()
            page.get_by_role("link", name="Patient ▲").click()  # and descending
            assert page.locator("table.worklist tbody tr th a").first.inner_text() > first
            page.get_by_role("link", name="Consider sorafenib with continued TACE").first.click()
            rows = page.locator("table.worklist tbody tr")
            assert rows.count() >= 1
            assert all("Consider sorafenib with continued TACE" in rows.nth(i).inner_text() for i in range(rows.count()))
            page.screenshot(path=str(ARTIFACTS / "worklist-filtered.png"), full_page=True)
            page.get_by_role("link", name="demo-eligible").click()
            assert "demo-eligible" in page.locator("h1, .meta").first.inner_text() or "demo-eligible" in page.content()
            assert page.locator("#decision-title").inner_text().startswith("Consider sorafenib")
            page.screenshot(path=str(ARTIFACTS / "worklist-patient.png"))
        finally:
            browser.close()
