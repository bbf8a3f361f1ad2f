"""The CDS services this server offers, with their prefetch templates."""

from __future__ import annotations

from dataclasses import dataclass

from rules import Knowledge
from service.cds.models import ServiceDescription
from service.fhir.source import token_value

PATIENT_TOKEN = "{{context.patientId}}"


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    usage_requirements: str | None = None

    def describe(self) -> ServiceDescription:
        return ServiceDescription(
            hook=self.hook,
            title=self.title,
            description=self.description,
            id=self.id,
            prefetch=self.prefetch,
            usage_requirements=self.usage_requirements,
        )


def observation_codes(k: Knowledge) -> str:
    """Every Observation code of the value sets, once each, as a token list ``system|code,...``.

    Codes are FHIR-escaped and URL-encoded (a site's local code may hold ``,`` or ``&``).
    """
    tokens = [
        token_value(entry.system, entry.code)
        for concept in k.concepts_for_resource("Observation")
        for entry in k.codes_of(concept)
    ]
    return ",".join(dict.fromkeys(tokens))


def patient_record_templates(k: Knowledge) -> dict[str, str]:
    """Prefetch templates for one patient's record, in the query forms CDS Hooks recommends.

    Instance read of the Patient; type-level searches by reference (``patient``);
    Observations by token equality on the value sets' codes (the only filter on
    codes: Conditions, Procedures and medications are few per patient, and a code
    filter there would miss descendants such as metastasis sub-codes). No
    ``_count``: in a template it is read as a limit, and a truncated record would
    change the assessment. BodyStructure is asked by ``patient`` for clients whose
    servers support it; when the service fetches itself, it resolves lesions from
    the TumorSize Observations' ``focus`` references (``service.gather``).
    """
    p = PATIENT_TOKEN
    return {
        "patient": f"Patient/{p}",
        "conditions": f"Condition?patient={p}",
        "procedures": f"Procedure?patient={p}",
        "observations": f"Observation?patient={p}&code={observation_codes(k)}",
        "medicationRequests": f"MedicationRequest?patient={p}",
        "medicationStatements": f"MedicationStatement?patient={p}",
        "bodyStructures": f"BodyStructure?patient={p}",
        "allergies": f"AllergyIntolerance?patient={p}",
    }


def build_services(k: Knowledge) -> dict[str, CdsService]:
    templates = patient_record_templates(k)
    services = [
        CdsService(
            id="hcc-tace-resistance",
            hook="patient-view",
            title="Sorafenib after TACE failure in HCC",
            description=(
                "For a patient with hepatocellular carcinoma: Child-Pugh, performance status and sorafenib "
                "eligibility by the criteria of a 2008-2015 study of TACE-resistant HCC, with reasons and evidence."
            ),
            prefetch=templates,
            usage_requirements=(
                "Needs the patient's Conditions, Procedures, Observations (labs, performance status, tumour size), "
                "medications and lesion BodyStructures, by prefetch or through fhirServer with a token."
            ),
        )
    ]
    order_description = (
        "When sorafenib (MedicationRequest) or TACE (ServiceRequest) is ordered for a patient with hepatocellular "
        "carcinoma: the study's criteria, dose, baseline labs and drug-label contraindications; for TACE in a "
        "TACE-resistant patient, the study's alternative."
    )
    for hook, title in (("order-select", "Sorafenib or TACE selected"), ("order-sign", "Sorafenib or TACE signed")):
        services.append(
            CdsService(
                id=f"hcc-{hook}",
                hook=hook,
                title=title,
                description=order_description,
                prefetch=templates,
                usage_requirements=(
                    "Reads context.draftOrders (MedicationRequest coded as sorafenib by RxNorm, ServiceRequest coded "
                    "as TACE) and the patient's record by prefetch or through fhirServer."
                ),
            )
        )
    return {s.id: s for s in services}
