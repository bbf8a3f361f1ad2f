"""Realistic record shapes end to end (clinical core III): same-day duplicate TACE records, a growing
non-target lesion, one new lesion across several sessions — through POST /api/v1/assessments and the
patient-view hook with prefetch, from the demo's eligible patient."""

from __future__ import annotations

from datetime import date

import pytest

from tests import fhir_factories as f
from tests.api.hook_requests import SERVICE_ID, full_prefetch, patient_view
from tests.api.test_recommendations import eligible_resources, is_size, when

PID = "demo-eligible"
CPT = "http://www.ama-assn.org/go/cpt"


def lesion(rid: str) -> dict:
    return {
        "resourceType": "BodyStructure", "id": rid, "patient": {"reference": f"Patient/{PID}"},
        "location": {"coding": [{"system": "http://snomed.info/sct", "code": "10200004", "display": "Liver structure"}]},
    }


def size(rid: str, lesion_id: str, day: date, mm: float) -> dict:
    return {
        "resourceType": "Observation", "id": rid, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "21889-1"}]},
        "subject": {"reference": f"Patient/{PID}"}, "focus": [{"reference": f"BodyStructure/{lesion_id}"}],
        "effectiveDateTime": day.isoformat(),
        "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "33728-7"}]},
                       "valueQuantity": {"value": mm, "unit": "mm", "system": f.UCUM, "code": "mm"}}],
    }


def imaging_dates(resources: list[dict]) -> list[date]:
    return sorted({when(r) for r in resources if is_size(r)})


def sessions(resources: list[dict]) -> list[dict]:
    return sorted((r for r in resources if r["resourceType"] == "Procedure"), key=lambda r: r["performedDateTime"])


def assess_both_ways(client, resources: list[dict]) -> tuple[dict, dict]:
    """The assessment JSON through POST, and the stored assessment behind the patient-view card."""
    posted = client.post("/api/v1/assessments", json=f.bundle(*resources))
    assert posted.status_code == 200, posted.text
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    others = [r for r in resources if r is not patient]
    hook = client.post(f"/cds-services/{SERVICE_ID}", json=patient_view(PID, prefetch=full_prefetch(others, patient)))
    assert hook.status_code == 200, hook.text
    return posted.json(), hook.json()


def stable_last_imaging(resources: list[dict]) -> list[dict]:
    """The demo's eligible patient with its last two imaging studies at the nadir (lesion a 30, b 20 mm):
    stable disease after the last sessions, TACE resistance not met."""
    last_two = imaging_dates(resources)[-2:]

    def at_nadir(r: dict) -> dict:
        mm = 30 if r["focus"][0]["reference"].endswith("lesion-a") else 20
        quantity = {**r["component"][0]["valueQuantity"], "value": mm}
        return {**r, "component": [{**r["component"][0], "valueQuantity": quantity}]}

    return [at_nadir(r) if is_size(r) and when(r) in last_two else r for r in resources]


def test_the_stable_variant_is_not_resistant(client, settings):
    body, _ = assess_both_ways(client, stable_last_imaging(eligible_resources(settings.today())))
    assert body["tace_resistance"]["status"] == "not-met"


def test_same_day_duplicate_tace_records_are_one_session(client, settings):
    resources = eligible_resources(settings.today())
    deciding = sessions(resources)[2]  # the third session: the last before the progression
    duplicate = {**deciding, "id": "tace-cpt-copy", "code": {"coding": [{"system": CPT, "code": "37243"}]}}
    alone, _ = assess_both_ways(client, resources)
    body, hook = assess_both_ways(client, resources + [duplicate])
    assert body["tace_resistance"]["tace_sessions"] == alone["tace_resistance"]["tace_sessions"]
    assert "Procedure/tace-cpt-copy" not in body["tace_resistance"]["tace_sessions"]
    assert any("are one session" in r and "Procedure/tace-cpt-copy" in r for r in body["tace_resistance"]["reasons"])
    assert body["tace_resistance"]["status"] == "met"
    assert hook["cards"]


def test_two_records_of_one_session_never_make_two_consecutive_sessions(client, settings):
    resources = eligible_resources(settings.today())
    last = sessions(resources)[-1]
    only_last = [r for r in resources if r["resourceType"] != "Procedure"] + [last, {**last, "id": "tace-report-copy"}]
    body, _ = assess_both_ways(client, only_last)
    assert body["tace_resistance"]["status"] == "not-met"
    assert "Only 1 completed TACE session" in body["tace_resistance"]["reasons"][0]


def test_a_growing_non_target_liver_lesion_is_progression_end_to_end(client, settings):
    resources = stable_last_imaging(eligible_resources(settings.today()))
    dates = imaging_dates(resources)
    grown = [lesion("lesion-c")] + [size(f"c-{i}", "lesion-c", d, 20) for i, d in enumerate(dates[:-1])]
    body, hook = assess_both_ways(client, resources + grown + [size("c-last", "lesion-c", dates[-1], 70)])
    assert body["tace_resistance"]["status"] == "met", body["tace_resistance"]["reasons"]
    assert any("unequivocal non-target progression" in r for r in body["tace_resistance"]["reasons"] + body["mrecist"]["reasons"])
    # a smaller rise (20 -> 26 mm) is only to confirm
    small = resources + grown + [size("c-last", "lesion-c", dates[-1], 26)]
    body, _ = assess_both_ways(client, small)
    assert body["tace_resistance"]["status"] == "not-met"


@pytest.mark.parametrize("stays", [True, False])
def test_one_new_lesion_does_not_make_every_later_window_progression(client, settings, stays):
    # a 12 mm lesion appears after the first session (one session: not resistance) and stays 12 mm on every
    # later study: after each later session it is tracked, not new again; growing to 30 mm it is progression
    resources = stable_last_imaging(eligible_resources(settings.today()))
    dates = imaging_dates(resources)
    first_session = date.fromisoformat(sessions(resources)[0]["performedDateTime"])
    later = [d for d in dates if d > first_session]
    extra = [lesion("lesion-x")] + [
        size(f"x-{i}", "lesion-x", d, 12 if stays or d != later[-1] else 30) for i, d in enumerate(later)
    ]
    body, _ = assess_both_ways(client, resources + extra)
    assert body["tace_resistance"]["status"] == ("not-met" if stays else "met"), body["tace_resistance"]["reasons"]
