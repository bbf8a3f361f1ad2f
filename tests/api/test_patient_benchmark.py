"""The patient-specific benchmark in the assessment JSON, and the Kaplan-Meier plots."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from service.benchmarks.plots import PlotMapping, svg_with_marker
from tests import fhir_factories as f
from tests.api.test_recommendations import ago, scenario, sorafenib


def assess(client, resources, today):
    return client.post(f"/api/v1/assessments?as_of={today.isoformat()}", json=f.bundle(*resources)).json()


def test_a_combination_recommendation_carries_that_arm_with_landmarks_and_median(client, settings):
    today = settings.today()
    bench = assess(client, scenario("sorafenib-plus-tace", today), today)["benchmark"]
    assert bench["arm"] == "sorafenib-plus-tace" and bench["n"] == 22
    assert [p["month"] for p in bench["survival"]] == [6, 12, 24]
    assert all(p["ci_lower"] <= p["estimate"] <= p["ci_upper"] for p in bench["survival"])
    assert bench["median_os_months"]["estimate"] == 24
    assert bench["conditional_on_months_on_sorafenib"] is None and bench["conditional_survival"] == []
    assert any("not a treatment effect" in c for c in bench["caveats"])
    assert bench["response"]["orr"]["count"] == 13


def test_sorafenib_alone_carries_the_monotherapy_arm(client, settings):
    today = settings.today()
    assert assess(client, scenario("sorafenib-alone", today), today)["benchmark"]["arm"] == "sorafenib-alone"


@pytest.mark.parametrize("name", ["outside-study-criteria", "insufficient-data", "continue-tace", "refer-mdt", "not-applicable:deceased"])
def test_other_recommendations_have_no_benchmark(client, settings, name):
    today = settings.today()
    assert assess(client, scenario(name, today), today)["benchmark"] is None


def test_on_sorafenib_for_100_days_gets_conditional_survival_of_its_actual_arm(client, settings):
    today = settings.today()
    bench = assess(client, scenario("on-sorafenib", today), today)["benchmark"]
    # no TACE after the sorafenib start in this record: the monotherapy arm
    assert bench["arm"] == "sorafenib-alone"
    assert bench["conditional_on_months_on_sorafenib"] == pytest.approx(3.3, abs=0.05)
    rows = {r["months_ahead"]: r for r in bench["conditional_survival"]}
    assert 0 < rows[6]["estimate"] <= 1
    assert rows[24]["estimate"] is None and "fewer than 5" in rows[24]["suppressed"]


def test_on_sorafenib_with_tace_after_its_start_is_the_combination_arm(client, settings):
    today = settings.today()
    later_tace = f.procedure("441525007", {"performedDateTime": ago(today, 30)}, pid="demo-eligible", rid="tace-after")
    bench = assess(client, scenario("on-sorafenib", today) + [later_tace], today)["benchmark"]
    assert bench["arm"] == "sorafenib-plus-tace"


def test_under_3_months_on_sorafenib_shows_no_conditional_survival(client, settings):
    today = settings.today()
    resources = [r for r in scenario("sorafenib-plus-tace", today)] + [sorafenib(today, 60)]
    bench = assess(client, resources, today)["benchmark"]
    assert bench["conditional_on_months_on_sorafenib"] is None and bench["conditional_survival"] == []
    assert "only after 3 months" in bench["conditional_note"]


@pytest.mark.parametrize("arm", ["sorafenib-plus-tace", "sorafenib-alone", "overall"])
def test_plots_are_served_as_svg_and_png(client, arm):
    svg = client.get(f"/api/v1/benchmarks/tace-resistant-hcc/{arm}/plot.svg")
    png = client.get(f"/api/v1/benchmarks/tace-resistant-hcc/{arm}/plot.png")
    assert svg.headers["content-type"] == "image/svg+xml" and ElementTree.fromstring(svg.content).tag.endswith("svg")
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_plot_is_404_with_the_valid_values(client):
    r = client.get("/api/v1/benchmarks/tace-resistant-hcc/nope/plot.svg")
    assert r.status_code == 404 and "sorafenib-alone" in r.json()["detail"]


def test_the_marker_lands_on_the_data_point():
    mapping = PlotMapping(x_min=0, x_max=50, y_min=0, y_max=1, left=10, right=110, top=5, bottom=105)
    assert mapping.to_svg(25, 0.5) == (60, 55)
    svg = svg_with_marker("<svg><g/></svg>", mapping, 25, 0.5, "Patient <3 months>")
    root = ElementTree.fromstring(svg)
    circle = root.find(".//{*}circle") if root.find(".//{*}circle") is not None else root.find(".//circle")
    assert circle is not None and (circle.get("cx"), circle.get("cy")) == ("60.00", "55.00")
    assert "Patient &lt;3 months&gt;" in svg


def test_the_biloma_warning_goes_with_the_combination_only(client, settings):
    today = settings.today()
    later_tace = f.procedure("441525007", {"performedDateTime": ago(today, 30)}, pid="demo-eligible", rid="tace-after")
    on_combination = assess(client, scenario("on-sorafenib", today) + [later_tace], today)
    on_alone = assess(client, scenario("on-sorafenib", today), today)
    assert any("Biloma" in w for w in on_combination["warnings"])
    assert not any("Biloma" in w for w in on_alone["warnings"])
