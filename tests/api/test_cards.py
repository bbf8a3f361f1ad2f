"""Cards are read in seconds (PRODUCT.md, Outputs; issue 19): short, plain, no ids, codes, versions or files.

Every embedded demo and cohort patient (at today, the day before their sorafenib start and 90 days
after it) and every recommendation scenario is rendered as a patient-view card and as order-select /
order-sign cards for sorafenib (800, 400, 1200 mg/day, unreadable) and TACE orders.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from rules.assessment import assess
from rules.orders import DraftSorafenibOrder, DraftTaceOrder, OrderAlert, review_sorafenib_order, review_tace_order
from rules.recommendation import SUMMARIES as RECOMMENDATION_CODES
from rules.safety import SafetyNote
from rules.treatment import sorafenib_history
from service.cohort.demo_cli import snapshot_of
from service.demo import demo_bundles
from service.mapping import map_to_snapshot
from service.render.cards import VERSIONS_EXTENSION, render_patient_view_cards
from service.render.order_cards import order_indicator, render_order_card
from tests import fhir_factories as f
from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view
from tests.api.test_order_hooks import cards_by_topic, order_call, sorafenib_order
from tests.api.test_recommendations import RX, scenario

BASE = "https://cds.example.org"
BUILD = "build-7f3a9c1"
PREGNANCY = "77386006"  # SNOMED CT Pregnancy (finding)
REFERENCE = re.compile(r"\b[A-Z][A-Za-z]+/[A-Za-z0-9\-.]+")
FILE_NAME = re.compile(r"\b[\w.-]+\.(?:json|md|py|ya?ml|csv|txt|html)\b|\bdossier\b|shared/", re.IGNORECASE)
SCENARIOS = ["sorafenib-plus-tace", "sorafenib-alone", "outside-study-criteria", "insufficient-data", "continue-tace",
             "refer-mdt", "on-sorafenib", "not-applicable:deceased", "not-applicable:no-tace"]


def shown(markdown: str) -> str:
    """The detail as text: Markdown escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def card_problems(card, assessment) -> list[str]:
    """Why ``card`` is not a short, plain card for ``assessment`` (empty when it is)."""
    problems = []
    detail = card.detail or ""
    text = shown(detail) + " " + card.summary
    lines = [line for line in detail.splitlines() if line.strip()]
    if len(lines) > 6:
        problems.append(f"{len(lines)} lines")
    if len(detail) >= 900:
        problems.append(f"{len(detail)} characters")
    if m := REFERENCE.search(text):
        problems.append(f"resource reference {m.group()}")
    internal = set(RECOMMENDATION_CODES) | {c.id for c in assessment.sorafenib_eligibility.criteria if c.id}
    internal |= {n.id for n in assessment.safety} | {"bclc_b_at_first_tace", "sorafenib-plus-tace"}
    problems += [f"internal code {code}" for code in sorted(internal)
                 if re.search(r"[-_]", code) and re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text)]
    versions = [str(v) for k, v in assessment.versions.items() if v and k != "build"] + [BUILD]
    problems += [f"version {v}" for v in versions if v in text]
    if m := FILE_NAME.search(text):
        problems.append(f"file name {m.group()}")
    if card.source.url != f"{BASE}/references":
        problems.append(f"source.url {card.source.url}")
    expected = {k: v for k, v in assessment.versions.items() if v is not None}
    if (card.extension or {}).get(VERSIONS_EXTENSION) != expected:
        problems.append(f"extension {card.extension}")
    return problems


def all_cards(assessment, k) -> list:
    cards = render_patient_view_cards(assessment, BASE)
    for dose in (800, 400, 1200, None):
        for alert in review_sorafenib_order(assessment, DraftSorafenibOrder("MedicationRequest/draft-1", dose), k):
            cards.append(render_order_card(alert, assessment, {}, k, BASE))
    for alert in review_tace_order(assessment, DraftTaceOrder("ServiceRequest/draft-2"), k):
        cards.append(render_order_card(alert, assessment, {}, k, BASE))
    return cards


def embedded_assessments(k, today) -> list:
    out = []
    for bundle in demo_bundles(today):  # the named demo patients and the whole study cohort
        snapshot = snapshot_of(bundle, k)
        dates = [today]
        start = sorafenib_history(snapshot, today).start
        if start is not None:
            dates += [start - timedelta(days=1), start + timedelta(days=90)]
        out += [assess(snapshot, d, k, build=BUILD) for d in dates]
    return out


def scenario_assessment(name: str, k, today):
    resources = scenario(name, today)
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    return assess(map_to_snapshot(patient, [r for r in resources if r is not patient], k), today, k, build=BUILD)


def test_every_demo_and_cohort_card_is_short_and_plain(knowledge, settings):
    today = settings.today()
    assessments = embedded_assessments(knowledge, today)
    assert len(assessments) > 60
    checked, codes = 0, set()
    for a in assessments:
        for card in all_cards(a, knowledge):
            problems = card_problems(card, a)
            assert not problems, f"{a.patient_id} at {a.as_of} ({card.source.topic.code}): {problems}\n{card.detail}"
            checked += 1
        codes.add(a.recommendation.code)
    assert checked > 300 and {"sorafenib-plus-tace", "sorafenib-alone", "on-sorafenib", "insufficient-data"} <= codes


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_recommendation_gives_short_plain_cards(knowledge, settings, name):
    a = scenario_assessment(name, knowledge, settings.today())
    assert a.recommendation.code == name.split(":")[0]
    for card in all_cards(a, knowledge):
        assert not card_problems(card, a), card.detail


def test_the_card_checks_can_fail(knowledge, settings):
    """The checks above catch what the old, 7 000-character detail held."""
    a = scenario_assessment("sorafenib-plus-tace", knowledge, settings.today())
    [card] = render_patient_view_cards(a, BASE)
    bad = {
        "ids": card.detail + "\n\nEvidence: Observation/lab-1",
        "codes": card.detail.replace("TACE-resistant", "sorafenib-plus-tace"),
        "versions": card.detail + f"\n\nBuild {BUILD}.",
        "files": card.detail + "\n\nSource: PRODUCT.md",
        "lines": card.detail + "\n- a\n- b",
        "length": card.detail + "\n\n" + "x" * 900,
    }
    for what, detail in bad.items():
        assert card_problems(card.model_copy(update={"detail": detail}), a), what
    assert card_problems(card.model_copy(update={"extension": None}), a)


def test_the_detail_has_the_recommendation_the_deciding_facts_and_the_context(knowledge, settings):
    a = scenario_assessment("sorafenib-plus-tace", knowledge, settings.today())
    [card] = render_patient_view_cards(a, BASE)
    lines = [line for line in card.detail.splitlines() if line.strip()]
    assert lines[0] == "**Consider adding sorafenib and continuing TACE.**"
    facts = [line for line in lines if line.startswith("- ")]
    assert 2 <= len(facts) <= 3
    assert facts[0].startswith("- TACE-resistant \\(JSH 2010\\)") and "Eligible by the study's criteria" in facts[1]
    assert "TACE still possible: viable liver tumour" in facts[2]
    assert lines[-1] == "_" + a.recommendation.context.replace("(", "\\(").replace(")", "\\)") + "_"


def test_reasons_quoting_resource_ids_are_shown_without_them(knowledge, settings):
    today = settings.today()
    [cohort_10] = [b for b in demo_bundles(today) if b["id"].startswith("cohort-10")]
    snapshot = snapshot_of(cohort_10, knowledge)
    a = assess(snapshot, sorafenib_history(snapshot, today).start - timedelta(days=1), knowledge, build=BUILD)
    assert a.recommendation.code == "sorafenib-alone"
    assert any(REFERENCE.search(r) for r in a.recommendation.reasons)  # the reason quotes the Condition
    [card] = render_patient_view_cards(a, BASE)
    assert "TACE not possible: portal-vein thrombosis (tumour vs bland thrombus to confirm)" in shown(card.detail)
    assert not REFERENCE.search(shown(card.detail))


def test_not_applicable_gives_no_patient_view_card(knowledge, settings):
    today = settings.today()
    none = [a for a in embedded_assessments(knowledge, today) if a.recommendation.code == "not-applicable"]
    assert none  # deceased cohort patients, some with safety notes
    assert any(a.safety for a in none)
    assert all(render_patient_view_cards(a, BASE) == [] for a in none)


@pytest.mark.parametrize("name", ["not-applicable:deceased", "not-applicable:no-tace"])
def test_a_not_applicable_patient_view_hook_answers_no_cards(client, settings, name):
    resources = scenario(name, settings.today())
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    others = [r for r in resources if r is not patient]
    r = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view("demo-eligible", prefetch=full_prefetch(others, patient)))
    assert r.status_code == 200 and r.json() == {"cards": []}


ALLERGY = {
    "resourceType": "AllergyIntolerance", "id": "allergy-sora",
    "code": {"coding": [{"system": RX, "code": "495881", "display": "sorafenib"}]},
    "patient": {"reference": "Patient/demo-eligible"},
}


def test_a_label_contraindication_gets_its_order_card_even_when_not_applicable(client, settings):
    resources = scenario("not-applicable:deceased", settings.today()) + [ALLERGY]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    others = [r for r in resources if r is not patient]
    assert client.post(f"/cds-services/{SERVICE_ID}",
                       json=patient_view("demo-eligible", prefetch=full_prefetch(others, patient))).json() == {"cards": []}
    for hook in ("order-select", "order-sign"):
        cards = cards_by_topic(order_call(client, hook, "demo-eligible", [sorafenib_order("demo-eligible", 200)], others, patient))
        card = cards["sorafenib-hypersensitivity"]
        assert card["indicator"] == "critical" and "contraindicated" in card["detail"]
        assert card["source"]["url"].endswith("/references") and card["extension"][VERSIONS_EXTENSION]["rules"]
        assert not REFERENCE.search(shown(card["detail"]))
        assert "dose-below-start" in cards  # an order problem gets its card, whatever the recommendation


def _without_safety_notes(name: str, k, today) -> list[dict]:
    """The scenario's resources without those that make a safety note (demo-eligible's hepatitis B)."""
    a = scenario_assessment(name, k, today)
    refs = {ref for note in a.safety for ref in note.evidence}
    return [r for r in scenario(name, today) if f"{r['resourceType']}/{r.get('id')}" not in refs]


@pytest.mark.parametrize("name", ["sorafenib-plus-tace", "insufficient-data", "outside-study-criteria", "refer-mdt",
                                  "continue-tace", "sorafenib-alone", "on-sorafenib"])
def test_indicator_is_info_unless_a_safety_note_needs_attention(knowledge, settings, name):
    today = settings.today()
    with_note = scenario_assessment(name, knowledge, today)
    assert with_note.safety and not any(n.label_contraindication for n in with_note.safety)
    assert [c.indicator for c in render_patient_view_cards(with_note, BASE)] == ["warning"]
    resources = _without_safety_notes(name, knowledge, today)
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    plain = assess(map_to_snapshot(patient, [r for r in resources if r is not patient], knowledge), today, knowledge)
    assert plain.recommendation.code == name and not plain.safety
    assert [c.indicator for c in render_patient_view_cards(plain, BASE)] == ["info"]


def test_critical_only_for_a_label_contraindication(knowledge, settings):
    today = settings.today()
    resources = scenario("sorafenib-plus-tace", today) + [ALLERGY]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    a = assess(map_to_snapshot(patient, [r for r in resources if r is not patient], knowledge), today, knowledge)
    cards = render_patient_view_cards(a, BASE)
    assert [c.indicator for c in cards] == ["critical", "critical"]
    assert cards[1].source.topic.code == "sorafenib-hypersensitivity"
    assert "contraindicated" in cards[1].detail
    for name in SCENARIOS:
        b = scenario_assessment(name, knowledge, today)
        assert all(c.indicator != "critical" for c in all_cards(b, knowledge)), name


def test_order_indicators_info_by_default_warning_for_order_problems_and_safety_notes(knowledge, settings):
    today = settings.today()
    resources = _without_safety_notes("sorafenib-plus-tace", knowledge, today)
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    plain = assess(map_to_snapshot(patient, [r for r in resources if r is not patient], knowledge), today, knowledge)
    by_id = {c.source.topic.code: c for c in all_cards(plain, knowledge)}
    assert by_id["dose-below-start"].indicator == "warning"  # order problems
    assert by_id["dose-above-label"].indicator == "warning"
    assert by_id["tace-resistant-combination"].indicator == "warning"
    # an informational order card stays info; a safety note bearing on the order makes it a warning
    info = OrderAlert("tace-resistant-no-sorafenib", "info", "TACE-resistant.", (), "c", "MedicationRequest/x")
    assert order_indicator(info, []) == "info"
    assert order_indicator(info, [SafetyNote("pregnancy", "Pregnancy recorded.", False, ("Condition/p",), "c")]) == "warning"
    pregnant = resources + [f.condition(PREGNANCY, (today - timedelta(days=30)).isoformat(), pid="demo-eligible", rid="preg-1")]
    a = assess(map_to_snapshot(patient, [r for r in pregnant if r is not patient], knowledge), today, knowledge)
    assert [n.id for n in a.safety] == ["pregnancy"]
    by_id = {c.source.topic.code: c for c in all_cards(a, knowledge)}
    assert by_id["dose-below-start"].indicator == "warning"
    assert "Pregnancy recorded" in by_id["dose-below-start"].detail
