"""The SMART app end to end without a browser: the real launcher (authorization server and FHIR proxy) in front of
sekmet, ``hcc-cds serve``, and an httpx client keeping cookies and following redirects as a browser does.

The refusals of issue 23 — a card for another patient, a denied authorization, an expired token, a FHIR server that
refuses the write (403, 422 injected; a real 412), implausible values, a double submit — each give a clear page and
leave sekmet exactly as it was; then a save goes through and a second hook call sees it. The tests run in file
order on one stack: every test before the last leaves the record unchanged (each checks it).
(tests/browser/test_smart_app_in_chromium.py drives the same app in Chromium inside the stand-in EHR's frame.)
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from service.demo import as_transaction, demo_bundles
from service.smart.capture import SIZE_PREFIX, STUDY_DATE
from tests.smart.app import hidden, open_app, patient_view_cards, served_smart_app, smart_link
from tests.smart.conftest import SmartStack
from tests.smart.scenario import LESION_A, SCENARIO_PATIENT, TACE_SESSIONS, progression_form, scenario_bundle

pytestmark = pytest.mark.smart
OTHER_PATIENT = "demo-eligible"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def today() -> date:
    return date.today()


@pytest.fixture(scope="module")
def served(smart_stack: SmartStack, tmp_path_factory: pytest.TempPathFactory, today: date):
    smart_stack.load(as_transaction(demo_bundles(today)))
    smart_stack.load(scenario_bundle(today))  # after the demo: the scenario's version of demo-missing-data
    workdir = tmp_path_factory.mktemp("smart-app")
    with served_smart_app(workdir) as app:
        yield app, workdir


@pytest.fixture(scope="module")
def card_link(served, smart_stack: SmartStack) -> dict:
    app, _ = served
    return smart_link(patient_view_cards(app, SCENARIO_PATIENT, f"{smart_stack.proxy.url}/fhir"))


def record_state(stack: SmartStack) -> Counter:
    """What sekmet holds that a save could change: counts by type, and every Procedure's version."""
    state: Counter = Counter()
    for rtype in ("Observation", "BodyStructure", "Condition", "Provenance"):
        bundle = httpx.get(f"{stack.sekmet.direct_url}/{rtype}", params={"_summary": "count"}, timeout=10).json()
        state[rtype] = bundle["total"]
    for pid in TACE_SESSIONS:
        state[f"Procedure/{pid}"] = int(httpx.get(f"{stack.sekmet.direct_url}/Procedure/{pid}", timeout=10).json()["meta"]["versionId"])
    return state


def fields_of(page: str, today: date, **changes: str) -> dict[str, str]:
    fields = {name: hidden(page, name) for name in ("csrf_token", "form_id", "record_version")}
    fields |= progression_form(SimpleNamespace(today=today))  # type: ignore[arg-type]
    fields |= changes
    return fields


def post_form(browser: httpx.Client, page: httpx.Response, fields: dict[str, str]) -> httpx.Response:
    """Post the form of the app window ``page`` was the first page of (its URL: /smart/app/<window>)."""
    return browser.post(f"{page.url}/measurements", data=fields, headers={"Content-Type": FORM})


def test_the_app_reads_the_record_live_and_offers_the_form(served, smart_stack, smart_proxy, card_link, today):
    app, _ = served
    assert card_link["url"].startswith(f"{app.base_url}/smart/launch?assessment=") and card_link["appContext"]
    browser, page = open_app(smart_stack, card_link["url"], SCENARIO_PATIENT)
    assert page.status_code == 200 and str(page.url).startswith(f"{app.base_url}/smart/app/"), page.text[:2000]
    assert "mRECIST now:</strong> SD" in page.text
    assert f'name="{SIZE_PREFIX}{LESION_A}"' in page.text and all(f"confirm_tace__{p}" in page.text for p in TACE_SESSIONS)
    assert "Practitioner/example" in page.text
    assert "<strong>Missing Demo</strong> · born 1968-11-30 · male · id demo-missing-data" in page.text  # the banner
    assert "frame-ancestors 'self'; form-action 'self'" in page.headers["content-security-policy"]
    # read through the launcher with the user's token, only the launch patient
    reads = [path for method, path, _ in smart_proxy.log if method == "GET"]
    assert reads and all(OTHER_PATIENT not in path for path in reads)


def test_a_card_for_another_patient_is_refused_before_reading(served, smart_stack, smart_proxy, card_link):
    before = record_state(smart_stack)
    _, page = open_app(smart_stack, card_link["url"], OTHER_PATIENT)
    assert page.status_code == 403 and "This card is for another patient" in page.text
    assert not [entry for entry in smart_proxy.log if OTHER_PATIENT in entry[1]]  # nothing of either patient read
    assert not [entry for entry in smart_proxy.log if SCENARIO_PATIENT in entry[1]]
    assert record_state(smart_stack) == before


def test_two_launches_in_one_browser_keep_each_window_on_its_patient(served, smart_stack, smart_proxy, today):
    """Two EHR windows (two patients) in one browser: each launch has its own session on its own path, so the first
    window neither shows the second patient nor loses its form."""
    app, _ = served
    launch = f"{app.base_url}/smart/launch"
    browser, first = open_app(smart_stack, launch, SCENARIO_PATIENT)
    second = browser.get(smart_stack.launch_url(launch, patient=OTHER_PATIENT))
    assert first.status_code == second.status_code == 200 and first.url != second.url
    assert f"id {SCENARIO_PATIENT}</p>" in browser.get(str(first.url)).text
    assert f"id {OTHER_PATIENT}</p>" in browser.get(str(second.url)).text
    checked = post_form(browser, first, fields_of(first.text, today, **{f"{SIZE_PREFIX}{LESION_A}": "301"}))
    assert checked.status_code == 422 and f"id {SCENARIO_PATIENT}</p>" in checked.text  # its own session still
    assert not [entry for entry in smart_proxy.log if entry[0] == "POST"]


@pytest.mark.parametrize("auth_error", ["auth_invalid_scope", "auth_invalid_client_id"])
def test_a_denied_authorization_is_a_clear_page_without_session(served, smart_stack, card_link, auth_error):
    browser, page = open_app(smart_stack, card_link["url"], SCENARIO_PATIENT, auth_error=auth_error)
    assert page.status_code in (400, 403) and "did not authorise" in page.text, page.text[:1500]
    assert not browser.cookies
    assert browser.get(f"{served[0].base_url}/smart/app/any-window").status_code == 401


def test_implausible_values_are_refused_field_by_field(served, smart_stack, smart_proxy, card_link, today):
    app, _ = served
    before = record_state(smart_stack)
    browser, window = open_app(smart_stack, card_link["url"], SCENARIO_PATIENT)
    page = window
    cases = {
        f"{SIZE_PREFIX}{LESION_A}": ("301", "300"),
        STUDY_DATE: ((today + timedelta(days=1)).isoformat(), "future"),
    }
    for name, (value, words) in cases.items():
        answer = post_form(browser, window, fields_of(page.text, today, **{name: value}))
        assert answer.status_code == 422 and words in answer.text, answer.text[answer.text.find("<body>"):][:3000]
        assert f'id="err-{name}"' in answer.text and 'role="alert"' in answer.text
        assert f'value="{value}"' in answer.text  # what was typed is shown again
        page = answer
    long_ago = post_form(browser, window, fields_of(page.text, today, **{STUDY_DATE: "2001-01-01"}))
    assert long_ago.status_code == 422 and "diagnos" in long_ago.text
    assert not [entry for entry in smart_proxy.log if entry[0] == "POST"]
    assert record_state(smart_stack) == before


def test_a_form_without_the_sessions_csrf_token_is_refused(served, smart_stack, smart_proxy, card_link, today):
    app, _ = served
    browser, page = open_app(smart_stack, card_link["url"], SCENARIO_PATIENT)
    forged = post_form(browser, page, fields_of(page.text, today, csrf_token="x" * 43))
    assert forged.status_code == 403 and "not sent from this app" in forged.text
    unreadable = browser.post(f"{page.url}/measurements", json=fields_of(page.text, today))
    assert unreadable.status_code == 415
    assert not [entry for entry in smart_proxy.log if entry[0] == "POST"]


@pytest.mark.parametrize(("status", "page_status", "words"),
                         [("403", 403, "refused"), ("422", 422, "rejected"), ("412", 409, "changed")])
def test_a_refused_write_writes_nothing(served, smart_stack, smart_proxy, card_link, today, status, page_status, words):
    app, _ = served
    before = record_state(smart_stack)
    browser, page = open_app(smart_stack, card_link["url"], SCENARIO_PATIENT)
    smart_proxy.faults = {"transaction": [status]}
    answer = post_form(browser, page, fields_of(page.text, today))
    assert answer.status_code == page_status and words in answer.text and "nothing was saved" in answer.text
    assert [s for m, p, s in smart_proxy.log if m == "POST"] == [int(status)]
    assert record_state(smart_stack) == before


def test_a_record_changed_since_the_form_was_shown_is_a_conflict(served, smart_stack, smart_proxy, card_link, today):
    app, _ = served
    browser, page = open_app(smart_stack, card_link["url"], SCENARIO_PATIENT)
    procedure = httpx.get(f"{smart_stack.sekmet.direct_url}/Procedure/{TACE_SESSIONS[0]}", timeout=10).json()
    httpx.put(f"{smart_stack.sekmet.direct_url}/Procedure/{TACE_SESSIONS[0]}", json=procedure, timeout=10).raise_for_status()
    before = record_state(smart_stack)
    answer = post_form(browser, page, fields_of(page.text, today))
    assert answer.status_code == 409 and "changed since the form was shown" in answer.text, answer.text[:1500]
    assert 'value="40"' in answer.text  # the form again, with what was typed, on the record as it is now
    assert not [entry for entry in smart_proxy.log if entry[0] == "POST"]
    assert record_state(smart_stack) == before


def test_an_expired_token_writes_nothing(served, smart_stack, smart_proxy, card_link, today):
    app, _ = served
    before = record_state(smart_stack)
    browser, page = open_app(smart_stack, card_link["url"], SCENARIO_PATIENT, short=True)
    assert page.status_code == 200
    time.sleep(4)  # launcher B's tokens live 3 s
    answer = post_form(browser, page, fields_of(page.text, today))
    assert answer.status_code == 401 and "session with the app has ended" in answer.text  # it ends with the token
    assert not [entry for entry in smart_proxy.log if entry[0] == "POST"]
    assert record_state(smart_stack) == before


def test_a_save_is_written_once_with_provenance_and_the_next_hook_sees_it(served, smart_stack, smart_proxy, card_link, today):
    app, workdir = served
    before = record_state(smart_stack)
    browser, page = open_app(smart_stack, card_link["url"], SCENARIO_PATIENT)
    second_window = browser.get(str(page.url))  # the same record shown twice (two tabs of the window)
    fields, other = fields_of(page.text, today), fields_of(second_window.text, today)
    assert fields["form_id"] != other["form_id"] and fields["record_version"] == other["record_version"]
    with ThreadPoolExecutor(2) as pool:  # both saved at once: the study must be written once
        answers = list(pool.map(lambda f: post_form(httpx.Client(cookies=browser.cookies, timeout=30), page, f),
                                [fields, other]))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text[-800:] for a in answers]
    saved = next(a for a in answers if a.status_code == 200)
    assert "Saved to the patient" in saved.text
    for before_after in (("SD", "PD"), ("not met", "met")):
        assert f"<td>{before_after[0]}</td><td>{before_after[1]}" in saved.text, saved.text
    after = record_state(smart_stack)
    assert after["Observation"] == before["Observation"] + 2 and after["Provenance"] == before["Provenance"] + 1
    assert all(after[f"Procedure/{p}"] == before[f"Procedure/{p}"] + 1 for p in TACE_SESSIONS)
    provenance = httpx.get(f"{smart_stack.sekmet.direct_url}/Provenance", params={"target": f"Procedure/{TACE_SESSIONS[0]}"},
                           timeout=10).json()["entry"][-1]["resource"]
    assert provenance["agent"][0]["who"]["reference"] == "Practitioner/example"
    # the same form again: written once
    again = post_form(browser, page, fields if saved is answers[0] else other)
    assert again.status_code == 409 and "already sent" in again.text
    assert record_state(smart_stack) == after
    # a second assessment (a hook call) sees the new study
    cards = patient_view_cards(app, SCENARIO_PATIENT, f"{smart_stack.proxy.url}/fhir")
    stored = httpx.get(next(link["url"] for card in cards for link in card["links"] if link["type"] == "absolute"))
    assert "mRECIST now:</strong> PD" in stored.text
    # the audit names the user for the write
    with sqlite3.connect(Path(workdir) / "hcc.sqlite3") as db:
        rows = db.execute("SELECT actor, patient_ref, outcome FROM audit_events WHERE kind = 'smart-write'").fetchall()
    assert ("Practitioner/example", f"Patient/{SCENARIO_PATIENT}", 200) in rows
