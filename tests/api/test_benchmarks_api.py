"""REST benchmarks: ``GET /api/v1/benchmarks`` and ``GET /api/v1/benchmarks/{cohort}/{arm}``.

A tiny app that includes only the benchmarks router and holds the shipped tables and plots as
``create_app`` does (``app.state.hcc``), so these tests do not depend on the rest of the service.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.api.benchmarks import get_benchmark_tables, router
from service.benchmarks.plots import load_plots
from service.benchmarks.tables import default_tables_dir as shipped_tables_dir
from service.benchmarks.tables import load_benchmark_tables

COHORT = "tace-resistant-hcc"
ARMS = ("sorafenib-plus-tace", "sorafenib-alone", "overall")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    application = FastAPI()
    application.include_router(router)
    tables = load_benchmark_tables()
    application.state.hcc = SimpleNamespace(benchmarks=tables, plots=load_plots(tables))
    return application


@pytest.fixture(scope="module")
def api(app) -> TestClient:
    with TestClient(app) as client:
        yield client


def test_list_names_the_cohort_its_arms_citation_and_external_references(api):
    response = api.get("/api/v1/benchmarks")
    assert response.status_code == 200
    (cohort,) = response.json()["cohorts"]
    assert cohort["id"] == COHORT
    assert [(arm["id"], arm["n"]) for arm in cohort["arms"]] == [(ARMS[0], 22), (ARMS[1], 12), (ARMS[2], 34)]
    assert cohort["arms"][0]["href"] == f"/api/v1/benchmarks/{COHORT}/{ARMS[0]}"
    assert cohort["citation"]["status"] == "citation unconfirmed"
    assert "retrospective" in cohort["citation"]["design"] and cohort["citation"]["n"] == 34
    assert {ref["id"] for ref in cohort["external_references"]} == {"sharp", "asia-pacific", "kok-2019-taiwan"}
    sharp = next(ref for ref in cohort["external_references"] if ref["id"] == "sharp")
    assert sharp["figures"][0]["values"] == {"sorafenib": 10.7, "placebo": 7.9}
    logrank = next(c for c in cohort["comparisons"] if c["id"] == "os-logrank")
    assert logrank["p_value"] == 0.002 and logrank["reconstructed_p_value"] < 0.01


@pytest.mark.parametrize("arm", ARMS)
def test_each_arm_serves_survival_median_published_figures_rates_and_caveats(api, arm):
    response = api.get(f"/api/v1/benchmarks/{COHORT}/{arm}")
    assert response.status_code == 200
    body = response.json()
    assert (body["cohort"], body["arm"]) == (COHORT, arm)
    assert body["events"] + body["censored"] == body["n"]
    assert set(body["median_os_months"]) == {"estimate", "ci_lower", "ci_upper"}
    months = {point["month"] for point in body["survival"]}
    assert {6, 12, 24} <= months
    for point in body["survival"]:
        assert 0 <= point["ci_lower"] <= point["estimate"] <= point["ci_upper"] <= 1
    assert [point["month"] for point in body["published"]["survival"]] == [6, 12, 24]
    assert body["published"]["median_os_months"]["ci_lower"] is None
    assert [c["category"] for c in body["response"]["categories"]] == ["CR", "PR", "SD", "PD"]
    assert body["adverse_events"] and body["ttp_illustrative"]["status"] == "illustrative"
    assert body["km"][0] == {
        "month": 0.0,
        "at_risk": body["n"],
        "events": 0,
        "censored": 0,
        "estimate": 1.0,
        "ci_lower": 1.0,
        "ci_upper": 1.0,
    }
    assert "pseudo" in body["method"].lower()
    assert any("immortal" in caveat.lower() for caveat in body["caveats"])
    assert any("not randomised" in caveat for caveat in body["caveats"])
    assert "pseudo_ipd" not in body


def test_combination_arm_reports_24_months_against_the_published_25(api):
    body = api.get(f"/api/v1/benchmarks/{COHORT}/sorafenib-plus-tace").json()
    assert body["median_os_months"]["estimate"] == 24.0
    assert body["published"]["median_os_months"]["estimate"] == 25
    check = next(c for c in body["checks"] if c["id"] == "median-os")
    assert check["within_target"] == "yes" and "inconsistency 9" in check["note"]


def test_unknown_cohort_is_404_naming_the_valid_cohorts(api):
    response = api.get("/api/v1/benchmarks/sharp/overall")
    assert response.status_code == 404
    assert response.json() == {"detail": f"Unknown benchmark cohort 'sharp'. Valid cohorts: {COHORT}."}


def test_unknown_arm_is_404_naming_the_valid_arms(api):
    response = api.get(f"/api/v1/benchmarks/{COHORT}/tace-alone")
    assert response.status_code == 404
    assert response.json() == {
        "detail": f"Unknown arm 'tace-alone' of cohort '{COHORT}'. Valid arms: {', '.join(ARMS)}."
    }


def test_openapi_documents_the_response_models(app):
    schema = app.openapi()
    arm_get = schema["paths"]["/api/v1/benchmarks/{cohort}/{arm}"]["get"]
    assert arm_get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ArmBenchmark")
    assert arm_get["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorMessage")
    assert {"ArmBenchmark", "BenchmarkList", "PublishedFigures", "TtpIllustration"} <= set(
        schema["components"]["schemas"]
    )


def test_the_tables_dependency_can_be_overridden(tmp_path):
    shipped = shipped_tables_dir().joinpath(f"{COHORT}.tables.json")
    document = json.loads(shipped.read_text(encoding="utf-8"))
    document["cohort"]["id"] = "another-cohort"
    (tmp_path / "another-cohort.tables.json").write_text(json.dumps(document), encoding="utf-8")
    application = FastAPI()
    application.include_router(router)
    application.dependency_overrides[get_benchmark_tables] = lambda: load_benchmark_tables(tmp_path)
    with TestClient(application) as client:
        assert [c["id"] for c in client.get("/api/v1/benchmarks").json()["cohorts"]] == ["another-cohort"]
        assert client.get("/api/v1/benchmarks/another-cohort/overall").status_code == 200
        assert client.get(f"/api/v1/benchmarks/{COHORT}/overall").status_code == 404
