"""Every sentence the service says to a clinician, in one place (issue 21).

This module is where a reviewer or a translator reads the clinician-facing English: finding reasons,
recommendation texts, warnings, assumptions, notes and citations. Each phrase is a function named after
the rule and the situation, with typed parameters; the rules call ``wording.<name>(...)`` and hold no
prose of their own (``tests/unit/rules/test_wording_in_one_module.py`` keeps it so). Numbers and dates
arrive already formatted by the callers' helpers, as before, unless a format spec in the phrase says
otherwise; changing a sentence here changes the service's output, which the tests pin word for word.

Standard library only, like the rest of ``rules/``.
"""

from __future__ import annotations

# --- safety.py ------------------------------------------------------------------------------------

# safety.safety_notes

def safety_sorafenib_hypersensitivity_recorded_sorafenib_contraindicated() -> str:
    return "Sorafenib hypersensitivity recorded: sorafenib is contraindicated (drug label)."


def safety_hepatitis_b_without_recorded_antiviral() -> str:
    return "Hepatitis B without recorded antiviral therapy: TACE can reactivate HBV; start antiviral prophylaxis before further TACE."


def safety_pregnancy_recorded_sorafenib_can_cause() -> str:
    return "Pregnancy recorded: sorafenib can cause fetal harm; exclude pregnancy before starting it."


# --- diagnosis.py ---------------------------------------------------------------------------------

# diagnosis (module level)

def diagnosis_hcc_cds_references_hcc_diagnosis() -> str:
    return "hcc-cds references: HCC diagnosis rule (the product's own choice): an active, confirmed Condition (SNOMED CT 109841003; ICD-10-CM C22.0, as in mCODE STU3)"


# diagnosis.evaluate_hcc_diagnosis

def diagnosis_active_confirmed_hcc_diagnosis(ref: str, dated: str) -> str:
    return f"Active confirmed HCC diagnosis ({ref}, {dated})."


def diagnosis_hcc_recorded_but_not_active(ref: str, as_of: str, clinical_status: str, verification_status: str) -> str:
    return f"{ref}: HCC recorded but not active and confirmed at {as_of} (clinical status {clinical_status}, verification {verification_status})."


# diagnosis._dated

def diagnosis_recorded_onset_not_recorded(recorded: str) -> str:
    return f"recorded {recorded}, onset not recorded"


# --- registry.py ----------------------------------------------------------------------------------

# registry.hcc_diagnosis

def registry_hcc_diagnosis_has_no_verificationstatus(ref: str) -> str:
    return f"HCC diagnosis {ref} has no verificationStatus: taken as confirmed."


# registry.mrecist

def registry_response_sorafenib_started(start: str) -> str:
    return f"Response to sorafenib (started {start})."


def registry_response_tace_series_first_session(first_tace: str) -> str:
    return f"Response of the TACE series (first session {first_tace})."


def registry_no_tace_sorafenib_recorded_no() -> str:
    return "No TACE or sorafenib recorded: no treatment to measure a response against."


# --- treatment.py ---------------------------------------------------------------------------------

# treatment.describe

def treatment_earlier_sorafenib_course(start: str, end: str, status: str, reason: str, ref: str) -> str:
    return f"Earlier sorafenib course {start} to {end} ({status}; {reason}; {ref})."


# --- assessment.py --------------------------------------------------------------------------------

# assessment._disease_status_warnings

def assessment_disease_status_reported_worsened_beside(when: str, ref: str, category: str, date: str) -> str:
    return f"Disease status reported worsened on {when} ({ref}) beside an mRECIST {category} on sorafenib ({date}): review the imaging for progression that the measurements do not show."
