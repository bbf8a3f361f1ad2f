"""The SMART app's scenario (design note, section 5): ``demo-missing-data`` one study earlier.

The demo patient without its last study (day -20) and with a stable-disease study at day -50
(34 and 19 mm on its two lesions, against the 32 + 18 mm baseline of day -130): the assessment says
mRECIST SD, and TACE resistance not-met (its two TACE sessions are coded only CPT 37243, not known to be
chemoembolisation). :func:`progression_form` records day -20 (40 and 22 mm, CT) and confirms both
sessions: PD (62 mm, +24 % from the 50 mm nadir) within three months of two consecutive TACE, so met.

The last study's two Observations are written with status ``entered-in-error`` rather than left out, so
that the scenario also holds on a server the plain demo patients were loaded into first (PUT by the same
ids replaces them; the mapping ignores entered-in-error).
"""

from __future__ import annotations

import copy
from datetime import date, timedelta

from service.demo import as_transaction, demo_bundles
from service.smart.capture import CONFIRM_TACE_PREFIX, MODALITY, SIZE_PREFIX, STUDY_DATE, CaptureContext

SCENARIO_PATIENT = "demo-missing-data"
LAST_STUDY = ("demo-missing-data-size-4", "demo-missing-data-size-5")
LESION_A, LESION_B = "demo-missing-data-lesion-a", "demo-missing-data-lesion-b"
SD_DAY, PROGRESSION_DAY = -50, -20
SD_SIZES = {LESION_A: 34, LESION_B: 19}
PROGRESSION_SIZES = {LESION_A: "40", LESION_B: "22"}
TACE_SESSIONS = ("demo-missing-data-tace-6", "demo-missing-data-tace-7")


def _sd_study(today: date, template: dict) -> list[dict]:
    """Two TumorSize Observations of day -50 shaped as the demo's own (CT)."""
    day = (today + timedelta(days=SD_DAY)).isoformat()
    studies = []
    for lesion, size in SD_SIZES.items():
        obs = copy.deepcopy(template)
        obs["id"] = f"{lesion.replace('-lesion-', '-sd-')}"
        obs["focus"] = [{"reference": f"BodyStructure/{lesion}"}]
        obs["effectiveDateTime"] = day
        obs["method"] = {"coding": [{"system": "http://snomed.info/sct", "code": "77477000",
                                     "display": "Computerized axial tomography"}]}
        obs["component"][0]["valueQuantity"]["value"] = size
        studies.append(obs)
    return studies


def scenario_resources(today: date) -> list[dict]:
    """The scenario patient's resources, dates resolved against ``today``."""
    bundle = next(b for b in demo_bundles(today) if any(
        e["resource"]["resourceType"] == "Patient" and e["resource"]["id"] == SCENARIO_PATIENT for e in b["entry"]))
    resources = [copy.deepcopy(e["resource"]) for e in bundle["entry"]]
    template = copy.deepcopy(next(r for r in resources if r["id"] == LAST_STUDY[0]))
    for resource in resources:
        if resource["id"] in LAST_STUDY:
            resource["status"] = "entered-in-error"
    return resources + _sd_study(today, template)


def scenario_bundle(today: date) -> dict:
    """A transaction Bundle (PUT by id) loading the scenario into a FHIR server."""
    return as_transaction([{"entry": [{"resource": r} for r in scenario_resources(today)]}])


def progression_form(ctx: CaptureContext) -> dict[str, str]:
    """The form fields recording day -20 (40 and 22 mm, CT) and confirming both CPT-only TACE sessions."""
    fields = {STUDY_DATE: (ctx.today + timedelta(days=PROGRESSION_DAY)).isoformat(), MODALITY: "CT"}
    for lesion, size in PROGRESSION_SIZES.items():
        fields[f"{SIZE_PREFIX}{lesion}"] = size
    for procedure_id in TACE_SESSIONS:  # by id: a context that does not offer them makes read_form refuse
        fields[f"{CONFIRM_TACE_PREFIX}{procedure_id}"] = "1"
    return fields
