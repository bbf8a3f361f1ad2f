"""Stored assessments behind card links, the clinician page, CDS feedback and the audit trail."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view
from tests.api.test_hooks import demo_record
from tests.conftest import cds_client


def call_patient_view(client, settings, pid="demo-eligible"):
    patient, resources = demo_record(pid, settings.today())
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view(pid, prefetch=full_prefetch(resources, patient)))
    assert r.status_code == 200
    return r.json()["cards"][0]


def page_path(card) -> str:
    link = card["links"][0]
    assert link["type"] == "absolute"
    return "/" + link["url"].split("/", 3)[3]


def test_each_card_links_to_its_stored_assessment_under_the_public_base_url(client, settings):
    card = call_patient_view(client, settings)
    link = card["links"][0]
    assert link["url"].startswith(f"{settings.public_base_url}/assessments/")
    assessment_id = link["url"].rsplit("/", 1)[1]
    assert len(assessment_id) >= 40  # secrets.token_urlsafe(32)


def test_the_page_renders_the_stored_result_with_findings_context_and_curves(client, settings):
    html_response = client.get(page_path(call_patient_view(client, settings)))
    assert html_response.status_code == 200 and html_response.headers["content-type"].startswith("text/html")
    html = html_response.text
    assert "Consider sorafenib with continued TACE" in html
    assert "Based on a 2008–2015 retrospective cohort (n=34)." in html
    assert "TACE-resistant (JSH 2010" in html and "Procedure/demo-eligible-tace" in html  # raw refs on demand
    assert '<g id="patient-position"' in html and "<svg" in html
    assert html_response.headers["cache-control"] == "no-store" and "noindex" in html_response.headers["x-robots-tag"]


def test_the_page_needs_no_token_in_production(monkeypatch, tmp_path, settings):
    # a card link opened in a browser carries no JWT: the unguessable id is the authorisation
    import yaml

    from tests.api.test_production_mode import ISS, PUBLIC, keys, public_jwk

    path = tmp_path / "trusted.yaml"
    path.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "jwks": {"keys": [public_jwk(keys().ec384, "ec-1", alg="ES384")]}}]}))
    for k, v in {"HCC_MODE": "production", "HCC_TRUSTED_CLIENTS": str(path), "HCC_FHIR_ALLOWLIST": "https://ehr.example.org",
                 "HCC_PUBLIC_BASE_URL": PUBLIC}.items():
        monkeypatch.setenv(k, v)
    with TestClient(create_app(Settings())) as prod:
        assert prod.get("/assessments/not-a-real-id").status_code == 404  # not 401


def test_an_unknown_id_is_a_clear_404_page(client):
    r = client.get("/assessments/" + "x" * 43)
    assert r.status_code == 404 and "not found" in r.text.lower()


def test_an_expired_link_says_so(monkeypatch, settings):
    monkeypatch.setenv("HCC_ASSESSMENT_LINK_HOURS", str(1 / 3600))  # one second
    with cds_client(create_app(Settings())) as c:
        path = page_path(call_patient_view(c, settings))
        time.sleep(1.2)
        r = c.get(path)
    assert r.status_code == 410 and "expired" in r.text.lower()


def feedback_item(card, outcome="accepted", **extra):
    item = {"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": datetime.now(UTC).isoformat(), **extra}
    if outcome == "accepted":
        item.setdefault("acceptedSuggestions", [])
    return item


def test_feedback_is_stored_and_summarised_per_card_type(client, settings):
    card = call_patient_view(client, settings)
    r = client.post(f"/cds-services/{SERVICE_ID}/feedback", json={"feedback": [feedback_item(card, "overridden", overrideReason={"userComment": "tumour board"})]})
    assert r.status_code == 200 and r.json() == {"stored": 1}
    topics = {t["topic_code"]: t for t in client.get("/api/v1/feedback", params={"service_id": SERVICE_ID}).json()["topics"]}
    row = topics["sorafenib-plus-tace"]
    assert row["overridden"] >= 1 and 0 < row["override_rate"] <= 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "feedback"),
        ({"feedback": []}, "at least one"),
        ({"feedback": [{"card": "x", "outcome": "maybe", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}, "outcome"),
        ({"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}, "acceptedSuggestions"),
        ({"feedback": [{"card": "x", "outcome": "overridden", "outcomeTimestamp": "yesterday"}]}, "RFC 3339"),
    ],
)
def test_bad_feedback_is_422_with_a_message(client, body, message):
    r = client.post(f"/cds-services/{SERVICE_ID}/feedback", json=body)
    assert r.status_code == 422 and message in r.json()["detail"]


def test_feedback_to_an_unknown_service_is_404(client):
    r = client.post("/cds-services/nope/feedback", json={"feedback": [{"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]})
    assert r.status_code == 404


def test_every_call_leaves_an_audit_record_with_references_only(client, settings):
    marker = str(uuid.uuid4())
    pid = "demo-ineligible"
    patient, resources = demo_record(pid, settings.today())
    body = patient_view(pid, prefetch=full_prefetch(resources, patient))
    body["hookInstance"] = marker
    card = client.post(f"/cds-services/{SERVICE_ID}", json=body, headers={"X-Request-ID": marker}).json()["cards"][0]
    client.get(page_path(card))
    client.get(f"/api/v1/patients/{pid}/assessment")
    client.post(f"/cds-services/{SERVICE_ID}", json={"hook": "patient-view"})  # refused: still audited
    events = client.get("/api/v1/audit", params={"patient_ref": f"Patient/{pid}", "limit": 1000}).json()["events"]
    kinds = {(e["kind"], e["route"]) for e in events}
    assert ("hook-call", "/cds-services/{service_id}") in kinds
    assert ("page-view", "/assessments/{assessment_id}") in kinds
    assert ("rest-call", "/api/v1/patients/{patient_id}/assessment") in kinds
    hook = next(e for e in events if e["hook_instance"] == marker)
    assert hook["actor"] == "demo" and hook["outcome"] == 200 and hook["request_id"] == marker and hook["rules_version"]
    all_events = client.get("/api/v1/audit", params={"limit": 1000}).json()["events"]
    assert any(e["outcome"] == 422 and e["kind"] == "hook-call" for e in all_events)
    text = str(all_events)
    assert "Ineligible" not in text and "1955-07-02" not in text  # no names or birth dates


def test_feedback_and_audit_survive_an_app_restart(settings):
    with cds_client(create_app(Settings())) as first:
        card = call_patient_view(first, settings)
        first.post(f"/cds-services/{SERVICE_ID}/feedback", json={"feedback": [feedback_item(card, "overridden")]})
    with cds_client(create_app(Settings())) as second:
        assert second.get(page_path(card)).status_code == 200
        issued = {t["topic_code"]: t for t in second.get("/api/v1/feedback").json()["topics"]}
        assert issued["sorafenib-plus-tace"]["overridden"] >= 1


def test_card_sources_link_to_the_references_page_and_about_lists_sources_and_versions(client, settings):
    card = call_patient_view(client, settings)
    assert card["source"]["url"] == f"{settings.public_base_url}/references"
    about = client.get("/about")
    assert about.status_code == 200 and "citation unconfirmed" in about.text
    assert "JSH 2010" in about.text and "Codes not confirmed" in about.text


@pytest.fixture()
def own_trail(settings, tmp_path):
    """A client on its own database: paging the whole trail of the shared test database (thousands of
    events by the end of a full run) would write over a thousand newer events of its own."""
    own = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/audit.sqlite3"})
    with cds_client(create_app(own)) as test_client:
        yield test_client


def test_the_audit_trail_is_newest_first_and_pages_with_a_cursor(own_trail):
    """Issue 18 item 11: the trail used to return only ever the oldest events (``since``, ``offset``, ``order`` ignored)."""
    client = own_trail
    markers = [f"audit-page-{uuid.uuid4().hex[:8]}-{i}" for i in range(7)]
    for marker in markers:
        client.get("/cds-services", headers={"X-Request-ID": marker})
    first = client.get("/api/v1/audit", params={"limit": 1}).json()
    assert first["events"][0]["request_id"] == markers[-1]  # the newest call, not the oldest
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/audit", params=params).json()
        assert len(page["events"]) <= 3
        seen += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [e["request_id"] for e in seen]
    assert len(ids) == len(set(ids)), "a page repeated an event"
    assert [m for m in ids if m in markers] == markers[::-1]
    ats = [datetime.fromisoformat(e["at"]) for e in seen]
    assert ats == sorted(ats, reverse=True)
    since = next(e["at"] for e in seen if e["request_id"] == markers[3])
    recent = client.get("/api/v1/audit", params={"since": since, "limit": 1000}).json()["events"]
    assert {m for m in markers if m in {e["request_id"] for e in recent}} >= set(markers[3:])
    assert all(datetime.fromisoformat(e["at"]) >= datetime.fromisoformat(since) for e in recent)


@pytest.mark.parametrize("params", [{"offset": "10"}, {"order": "asc"}, {"cursor": "not-a-cursor"},
                                    {"cursor": "W10"}, {"since": "2026-01-01T00:00:00"},
                                    {"since": "0001-01-01T00:00:00+14:00"}, {"since": "0.5"}, {"since": "2026-13-01T00:00:00Z"},
                                    {"cursor": "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwxMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMF0"},
                                    {"cursor": "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAwIiwxXQ"}])
def test_the_audit_trail_refuses_parameters_it_would_ignore(client, params):
    r = client.get("/api/v1/audit", params=params)
    assert r.status_code == 422, r.text
