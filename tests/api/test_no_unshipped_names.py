"""Every citation a user sees names a published source or the product's own references page (PRODUCT.md, Outputs).

No output may name a file or document that does not ship with the product: the project's research
notes, the product specification, the copy of the source paper, other repository folders. This renders
every output a user can see, for every embedded demo patient and every patient of the synthetic study
cohort: the assessment JSON and its FHIR form, the patient-view cards, the page each card links to, an
order-sign call, /about, /references (HTML and JSON), discovery, the benchmark endpoints and plots, the
CLI demo table and the benchmark report. It also reads every string of the shipped knowledge files
(citations, notes, sources and caveats are surfaced from there), so a citation no demo patient reaches
is checked too.

What counts as naming a non-shipping file: the words "dossier" or "PRODUCT.md", a path into the
project's ``shared/``, ``seed/``, ``research/`` or ``spec/`` folders, a section sign (the research notes
are cited by section), or a file name ending ``.md`` or ``.txt``. URLs are left out first: a published
source's address (a DOI, an HL7 page) and code-system URIs such as RxNorm's ``.../research/umls/rxnorm``
are not file names. ``.json`` is allowed: the product serves ``/references.json`` and its own data files
ship with it.
"""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from service.benchmarks.report import render_report
from service.benchmarks.tables import load_benchmark_tables
from service.cohort import demo_cli
from service.demo import DEMO_PATIENT_IDS, demo_bundles
from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view
from tests.api.test_order_hooks import order_call, sorafenib_order

FORBIDDEN = re.compile(
    r"dossier|PRODUCT\.md|\bshared/|\bseed/|\bresearch/|\bspec/|§|\w\.md\b|\w\.txt\b",
    re.IGNORECASE,
)
URL = re.compile(r"(?:https?|urn):[^\s\"'<>)\]]+")
FHIR = "application/fhir+json"


def unshipped_names(text: str) -> list[str]:
    """The forbidden names in ``text`` (URLs left out), each with some context."""
    bare = URL.sub("<url>", text)
    return [bare[max(0, m.start() - 60): m.end() + 30] for m in FORBIDDEN.finditer(bare)]


def assert_ships_only(what: str, text: str) -> None:
    found = unshipped_names(text)
    assert not found, f"{what} names a file or document that does not ship: {found[:5]}"


def _text(response) -> str:
    assert response.status_code == 200, (response.request.url, response.status_code, response.text[:300])
    if "json" in response.headers.get("content-type", ""):  # decoded: a \u00a7 escape is still a section sign
        return json.dumps(response.json(), ensure_ascii=False)
    return response.text


# --- the check itself -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Source study (shared/seed, Patients and methods)",
        "as tabulated in dossier §3.2",
        "hcc-cds PRODUCT.md recommendation decision table",
        "see sorafenib-tace-resistant-hcc.txt",
        "research/notes.md section 4",
        "spec/assessment.schema.json",
    ],
)
def test_the_check_finds_non_shipping_names(text):
    assert unshipped_names(text)


@pytest.mark.parametrize(
    "text",
    [
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "Kudo M et al., Oncology 2014 (JSH-LCSGJ 2014)",
        "hcc-cds references: freshness windows",
        "GET /references.json",
        "https://doi.org/10.1055/s-0030-1247132",
        "source-study inconsistency 9, hcc-cds references",
    ],
)
def test_the_check_lets_published_sources_and_product_pages_through(text):
    assert not unshipped_names(text)


# --- the shipped knowledge ------------------------------------------------------------------------


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _data_files():
    root = resources.files("rules").joinpath("data")
    stack = [root]
    while stack:
        folder = stack.pop()
        for item in folder.iterdir():
            if item.is_dir():
                stack.append(item)
            elif item.name.endswith(".json"):
                yield item


@pytest.mark.parametrize("path", sorted(_data_files(), key=lambda p: p.name), ids=lambda p: p.name)
def test_no_string_of_the_shipped_knowledge_names_a_non_shipping_file(path):
    document = json.loads(path.read_text(encoding="utf-8"))
    for text in _strings(document):
        assert_ships_only(f"{path.name}: {text[:80]!r}", text)


# --- what the service answers ---------------------------------------------------------------------


def _all_patients(today) -> list[tuple[str, dict, list[dict]]]:
    out = []
    for bundle in demo_bundles(today):
        resources_ = [e["resource"] for e in bundle["entry"]]
        patient = next(r for r in resources_ if r["resourceType"] == "Patient")
        out.append((patient["id"], patient, [r for r in resources_ if r is not patient]))
    return out


def test_every_patient_s_assessment_fhir_output_cards_and_page_name_only_shipped_sources(client, settings):
    patients = _all_patients(settings.today())
    ids = [pid for pid, _, _ in patients]
    assert set(DEMO_PATIENT_IDS) <= set(ids) and any(pid.startswith("cohort-") for pid in ids)
    pages = 0
    for pid, patient, resources_ in patients:
        assert_ships_only(f"{pid} assessment", _text(client.get(f"/api/v1/patients/{pid}/assessment")))
        fhir = client.get(f"/api/v1/patients/{pid}/assessment", headers={"Accept": FHIR})
        assert fhir.headers["content-type"].startswith(FHIR)
        assert_ships_only(f"{pid} FHIR output", _text(fhir))
        hook = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view(pid, prefetch=full_prefetch(resources_, patient)))
        assert_ships_only(f"{pid} patient-view cards", _text(hook))
        for card in hook.json()["cards"]:
            for link in card.get("links", []):
                if "/assessments/" in link["url"]:
                    assert_ships_only(f"{pid} page", _text(client.get("/" + link["url"].split("/", 3)[3])))
                    pages += 1
    assert pages >= len(DEMO_PATIENT_IDS) - 1  # a not-applicable patient may get no card


def test_order_sign_cards_name_only_shipped_sources(client, settings):
    for pid, patient, resources_ in _all_patients(settings.today()):
        if pid in DEMO_PATIENT_IDS:
            response = order_call(client, "order-sign", pid, [sorafenib_order(pid, 400)], resources_, patient)
            assert_ships_only(f"{pid} order-sign cards", _text(response))


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/about", None),
        ("/references", None),
        ("/references", "application/json"),
        ("/references.json", None),
        ("/cds-services", None),
        ("/api/v1/benchmarks", None),
    ],
)
def test_the_service_s_pages_and_lists_name_only_shipped_sources(client, path, accept):
    headers = {"Accept": accept} if accept else {}
    assert_ships_only(path, _text(client.get(path, headers=headers)))


def test_every_benchmark_arm_and_plot_names_only_shipped_sources(client):
    listing = client.get("/api/v1/benchmarks").json()
    hrefs = [arm["href"] for cohort in listing["cohorts"] for arm in cohort["arms"]]
    assert hrefs
    for href in hrefs:
        assert_ships_only(href, _text(client.get(href)))
        assert_ships_only(f"{href}/plot.svg", _text(client.get(f"{href}/plot.svg")))


def test_the_cli_demo_table_and_benchmark_report_name_only_shipped_sources(capsys):
    assert demo_cli.main([]) == 0
    assert demo_cli.main(["--json"]) == 0
    assert_ships_only("hcc-cds demo", capsys.readouterr().out)
    assert_ships_only("hcc-cds benchmarks --report", render_report(load_benchmark_tables()))


# --- the references page --------------------------------------------------------------------------


def test_the_references_page_names_each_published_source_the_study_and_the_product_s_choices(client):
    html = _text(client.get("/references"))
    for name in (
        "Pugh RNH et al.", "Br J Surg 1973", "Lencioni R, Llovet JM", "Semin Liver Dis 2010", "Kudo M et al.",
        "Dig Dis 2011", "Oncology 2014", "Reig M et al.", "J Hepatol 2022", "Pons F, Varela M, Llovet JM",
        "CDS Hooks", "mCODE", "CTCAE v4.0/4.03", "Nexavar (sorafenib) prescribing information",
        "N Engl J Med 2008", "Lancet Oncol 2009", "Cancers 2019", "BMC Med Res Methodol 2012",
    ):
        assert name in html, name
    assert "bibliographic record is unconfirmed" in html
    assert "not published rules" in html
    for anchor in ("choice-freshness", "choice-non-target-progression", "choice-portal-vein-thrombus",
                   "source-study", "inconsistency-9"):
        assert f'id="{anchor}"' in html, anchor
    assert "<script" not in html and "cdn" not in html.lower()


def test_the_references_json_lists_every_entry_with_its_fields(client):
    body = client.get("/references", headers={"Accept": "application/json"}).json()
    assert body == client.get("/references.json").json()
    entries = body["references"]
    assert {e["kind"] for e in entries} == {"published", "study", "product-choice"}
    for e in entries:
        assert e["id"] and e["authors"] and e["title"] and e["used_for"] and e["cited_as"], e
        if e["kind"] == "published" and e["year"] is not None:
            assert e["journal"], e
    study = next(e for e in entries if e["kind"] == "study")
    assert "unconfirmed" in study["details"] and "unconfirmed" in study["cited_as"]
    assert [i["number"] for i in body["study_inconsistencies"]] == list(range(1, 13))


def test_html_is_the_default_and_json_only_when_preferred(client):
    assert client.get("/references", headers={"Accept": "*/*"}).headers["content-type"].startswith("text/html")
    assert client.get("/references", headers={"Accept": "text/html,application/json;q=0.9"}).headers[
        "content-type"].startswith("text/html")
    assert client.get("/references", headers={"Accept": "application/json"}).headers[
        "content-type"].startswith("application/json")


def test_about_links_the_references_page(client):
    assert 'href="/references"' in _text(client.get("/about"))


def test_the_product_s_own_choices_cite_the_references_page(knowledge):
    for group in ("freshness", "recommendation", "tace_candidacy"):
        assert "hcc-cds references:" in knowledge.citation(group), group
    assert knowledge.thresholds["mrecist"]["non_target_progression"]["citation"].startswith("hcc-cds references:")
