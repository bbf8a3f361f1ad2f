"""Every sentence the service says to a clinician, in one place (issue 21).

This module is where a reviewer or a translator reads the clinician-facing English: finding reasons,
recommendation texts, warnings, assumptions, notes and citations. Each phrase is a function named after
the rule and the situation, with typed parameters; the rules call ``wording.<name>(...)`` and hold no
prose of their own (``tests/unit/rules/test_wording_in_one_module.py`` keeps it so). Numbers and dates
are formatted by the callers' helpers as before (a phrase that needs a number printed a set way, such as
``{dose:g}``, says so in its format spec); changing a sentence here changes the service's output, which
the tests pin word for word.

Phrases are grouped by the rules module that says them (``# --- bclc.py ---``), then by the function
that calls them (``# bclc._stage_at``); a phrase's name is its module and the first words of its text.

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


def diagnosis_not_recorded() -> str:
    return "not recorded"


def diagnosis_no_hcc_diagnosis_recorded() -> str:
    return "No HCC diagnosis recorded."


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


def registry_no_treatment_to_measure() -> str:
    return "No TACE or sorafenib recorded: no treatment to measure a response against."


# --- treatment.py ---------------------------------------------------------------------------------

# treatment.describe

def treatment_earlier_sorafenib_course(start: str, end: str, status: str, reason: str, ref: str) -> str:
    return f"Earlier sorafenib course {start} to {end} ({status}; {reason}; {ref})."


def treatment_start_not_recorded() -> str:
    return "start not recorded"


def treatment_end_date_not_recorded() -> str:
    return "end date not recorded"


def treatment_no_stop_reason_recorded() -> str:
    return "no stop reason recorded"


# --- assessment.py --------------------------------------------------------------------------------

# assessment._disease_status_warnings

def assessment_disease_status_reported_worsened_beside(when: str, ref: str, category: str, date: str) -> str:
    return f"Disease status reported worsened on {when} ({ref}) beside an mRECIST {category} on sorafenib ({date}): review the imaging for progression that the measurements do not show."


# --- orders.py ------------------------------------------------------------------------------------

# orders.reduced_dose_reasons

def orders_prior_dose_reduction(ref: str) -> str:
    return f"a prior dose reduction ({ref})"


# orders._study_criteria

def orders_sorafenib_outside_study_criteria() -> str:
    return "Sorafenib ordered outside the study's criteria: see reasons (not a contraindication)."


def orders_sorafenib_criteria_unconfirmed() -> str:
    return "Sorafenib ordered: the study's criteria cannot be confirmed from the record."


# orders._dose

def orders_sorafenib_mg_day_exceeds_mg(dose: float) -> str:
    return f"Sorafenib {dose:g} mg/day exceeds the 800 mg/day label dose."


def orders_ordered_mg_day_label_study(dose: float) -> str:
    return f"Ordered {dose:g} mg/day; the label and the study start at 400 mg twice daily."


def orders_sorafenib_mg_day_below_mg(dose: float) -> str:
    return f"Sorafenib {dose:g} mg/day is below the 400 mg twice-daily start, with no recorded reason."


def orders_ordered_mg_day_no_prior(dose: float) -> str:
    return f"Ordered {dose:g} mg/day. No prior reduction, Child-Pugh B or grade 2+ adverse event is recorded; the study started every patient at 800 mg/day."


def orders_dose_unreadable() -> str:
    return "The sorafenib order's daily dose could not be read; check it."


def orders_dose_unreadable_detail() -> str:
    return "The order gives no dose in mg (or in tablets of a known strength) with how often to take it."


# orders._baseline_labs

def orders_baseline_labs_missing_before_sorafenib(labels: str) -> str:
    return f"Baseline labs missing before sorafenib: {labels}."


def orders_not_within_days_study_monitored(baseline_lab_max_age_days: int, labels: str) -> str:
    return f"Not within {baseline_lab_max_age_days:g} days: {labels}. The study monitored these before and during sorafenib."


# orders.review_tace_order

def orders_tace_resistant_study_added_sorafenib() -> str:
    return "TACE-resistant: the study added sorafenib to further TACE (biloma risk 13.6%)."


def orders_tace_resistant_tace_not_possible() -> str:
    return "TACE-resistant and TACE not possible: the study gave sorafenib alone."


def orders_tace_resistant_but_sorafenib_not(recommendation: str) -> str:
    return f"TACE-resistant, but sorafenib is not suggested: {recommendation}."


# orders (module level)

def orders_complete_blood_count() -> str:
    return "complete blood count"


def orders_platelet_count() -> str:
    return "platelet count"


def orders_total_bilirubin() -> str:
    return "total bilirubin"


def orders_coagulation_inr() -> str:
    return "coagulation (INR)"


# --- ctcae.py -------------------------------------------------------------------------------------

# ctcae.thrombocytopenia

def ctcae_no_platelet_count_within_days(window: int) -> str:
    return f"No platelet count within {window} days."


def ctcae_platelets_x10_l_grade(value: float, when: str, grade: int) -> str:
    return f"Platelets {value:g} x10^9/L on {when}: grade {grade}."


# ctcae.hypertension

def ctcae_blood_pressure_readings_within(readings: int, window: int, needed: int) -> str:
    return f"{readings} blood-pressure reading(s) within {window} days: at least {needed} are needed to grade."


def ctcae_grade_reached_readings_within_days(grade: int, reaching: int, readings: int, window: int, shown: str) -> str:
    return f"Grade {grade}: reached by {reaching} of {readings} readings within {window} days ({shown} mm[Hg])."


# ctcae.clinician_graded

def ctcae_grade_recorded(grade: int, when: str) -> str:
    return f"Grade {grade} as recorded on {when}."


# ctcae.adverse_events

def ctcae_baseline_before_sorafenib_grade_worse(grade: int, when: str) -> str:
    return f" Baseline before sorafenib: grade {grade} ({when}); worse than baseline."


def ctcae_already_grade_before_sorafenib_not(grade: int, when: str) -> str:
    return f" Already grade {grade} before sorafenib ({when}): not worse than baseline, so it does not change the dose unless it worsens."


# --- dose.py --------------------------------------------------------------------------------------

# dose (module level)

def dose_cardiac_ischaemia_infarction_haemorrhage_needing() -> str:
    return "cardiac ischaemia or infarction, haemorrhage needing intervention, GI perforation"


# dose._level_reason

def dose_current_sorafenib_dose_not_recorded() -> str:
    return "The current sorafenib dose is not recorded in a form that gives mg per day."


def dose_current_dose_mg_day_not(mg: float, names: str) -> str:
    return f"Current dose {mg:g} mg/day is not one of the study's levels ({names})."


def dose_current_dose_mg_day(mg: float, name: str) -> str:
    return f"Current dose {mg:g} mg/day: {name}."


# dose._interrupt

def dose_interrupt_next_level_cannot_named(worst: str) -> str:
    return f"{worst}: interrupt; the next level cannot be named from this dose."


def dose_lowest_level_study_had_no(worst: str) -> str:
    return f"{worst} at the lowest level: the study had no further step; stop."


def dose_interrupt_until_grade_less_then(worst: str, nxt: str) -> str:
    return f"{worst}: interrupt until grade 1 or less, then resume at {nxt}."


# dose.dose_advice

def dose_grade_hypertension_label_stops_sorafenib() -> str:
    return "Grade 4 hypertension: the label stops sorafenib."


def dose_label_events_that_stop_drug(label_stop_not_assessed: str) -> str:
    return f"Label events that stop the drug and are not graded here: {label_stop_not_assessed}."


def dose_grade_was_already_grade_before(term: str, grade: int | None, baseline_grade: int | None) -> str:
    return f"{term} grade {grade} was already grade {baseline_grade} before sorafenib: not a reason to interrupt unless it worsens beyond that baseline."


def dose_no_grade_adverse_event_beyond() -> str:
    return "No grade 3-4 adverse event beyond its baseline: continue."


def dose_no_grade_adverse_event_continue() -> str:
    return "No grade 3-4 adverse event: continue."


# --- performance_status.py ------------------------------------------------------------------------

# performance_status._valid_series

def performance_status_not_whole_number_not_used(label: str, recorded: str | float, when: str, ref: str, low: int, high: int) -> str:
    return f"{label} {recorded} on {when} ({ref}) is not a whole number from {low} to {high}; not used."


def performance_status_could_not_used(label: str, when: str, ref: str, problem: str) -> str:
    return f"{label} on {when} ({ref}) could not be used: {problem}."


def performance_status_unknown_date() -> str:
    return "an unknown date"


# performance_status._none_counts

def performance_status_no_ecog_karnofsky(window: str, latest: str) -> str:
    return f"No ECOG or Karnofsky {window} ({latest})."


def performance_status_no_ecog_karnofsky_recorded_before(anchor: str) -> str:
    return f"No ECOG or Karnofsky recorded on or before {anchor}."


# performance_status._same_day

def performance_status_ecog_karnofsky_both_recorded_same(ecog: int, kps: int, when: str, window: str) -> str:
    return f"ECOG {ecog} and Karnofsky {kps} on {when} ({window}); both recorded the same day, Karnofsky (the study's criterion) is named the source."


# performance_status._ecog_decides

def performance_status_older_karnofsky_superseded_karnofsky_not(kps: int, when: str) -> str:
    return f"An older Karnofsky {kps} on {when} is superseded; Karnofsky is not reported."


def performance_status_no_karnofsky_window_none_inferred() -> str:
    return "No Karnofsky in the window; none is inferred from ECOG."


# performance_status._karnofsky_decides

def performance_status_older_ecog_superseded_ecog_not(ecog: int, when: str) -> str:
    return f"An older ECOG {ecog} on {when} is superseded; ECOG is not reported."


def performance_status_no_ecog_window_none_inferred() -> str:
    return "No ECOG in the window; none is inferred from Karnofsky."


# performance_status.performance_status_at

def performance_status_within_days_before(max_age_days: int, anchor: str) -> str:
    return f"within {max_age_days} days before {anchor}"


# performance_status.approximate_equivalent

def performance_status_ecog_corresponds_approximately_karnofsky_prasad(ecog: int, text: str) -> str:
    return f"ECOG {ecog} corresponds approximately to Karnofsky {text} (Prasad et al., World J Clin Oncol 2018; not a measured value)."


def performance_status_karnofsky_corresponds_approximately_ecog_prasad(karnofsky: int, text: str) -> str:
    return f"Karnofsky {karnofsky} corresponds approximately to ECOG {text} (Prasad et al., World J Clin Oncol 2018; not a measured value)."


# --- child_pugh.py --------------------------------------------------------------------------------

# child_pugh._score_lab

def child_pugh_no_within_days_before_latest(label: str, max_age: int, anchor: str, when: str, recorded: str) -> str:
    return f"No {label} within {max_age} days before {anchor} (latest {when}, {recorded}, is stale)."


def child_pugh_no_usable_result_before(label: str, anchor: str) -> str:
    return f"No usable {label} result on or before {anchor}."


def child_pugh_not_used(ref: str, label: str, problem: str) -> str:
    return f"{ref} ({label}) not used: {problem}."


# child_pugh._score_condition

def child_pugh_not_known_have_been_present(ref: str, label: str, dated: str, anchor: str) -> str:
    return f"{ref}: {label} ({dated}) is not known to have been present on {anchor}: {label} points unknown."


def child_pugh_no_recorded_scored_none(label: str) -> str:
    return f"No {label} recorded: scored as none."


def child_pugh_recorded_without_severity_scored_mild(ref: str, label: str, missing_severity_points: int) -> str:
    return f"{ref}: {label} recorded without severity, scored as mild ({missing_severity_points} points)."


def child_pugh_none_assumed() -> str:
    return "none (assumed)"


def child_pugh_present_severity_not_recorded() -> str:
    return "present, severity not recorded"


# child_pugh._cautions

def child_pugh_inr_was_taken_vitamin_k(value: str | None, ref: str) -> str:
    return f"INR {value} was taken on a vitamin-K antagonist ({ref}): it does not reflect liver synthetic function; confirm before relying on the INR points."


def child_pugh_without_recorded_encephalopathy_encephalopathy_controlled(concept: str, ref: str) -> str:
    return f"{concept} ({ref}) without a recorded encephalopathy: encephalopathy controlled by medication scores 2 points; confirm."


def child_pugh_diuretic_without_recorded_ascites_ascites(ref: str) -> str:
    return f"Diuretic ({ref}) without recorded ascites: ascites controlled by diuretics scores 2 points; confirm."


# child_pugh.evaluate_child_pugh

def child_pugh_class_whatever_missing_known_items(klass: str, missing_text: str, base: int) -> str:
    return f"Class {klass} whatever the missing {missing_text}: the known items already give {base} points; score not computed."


def child_pugh_incomplete_missing_class_could_any(missing_text: str, classes: str) -> str:
    return f"Incomplete: {missing_text} missing; the class could be any of {classes}."


# child_pugh (module level)

def child_pugh_hepatic_encephalopathy() -> str:
    return "hepatic encephalopathy"


# --- candidacy.py ---------------------------------------------------------------------------------

# candidacy (module level)

def candidacy_main_portal_trunk_involvement_not() -> str:
    return "main portal trunk involvement not excluded: confirm"


def candidacy_tumour_vs_bland_thrombus_confirm() -> str:
    return "tumour vs bland thrombus to confirm"


# candidacy._viable_liver_tumour

def candidacy_lesions_outside_liver_do_not(outside: str) -> str:
    return f" Lesions outside the liver ({outside}) do not count."


def candidacy_no_liver_tumour_imaging_recorded() -> str:
    return "No liver tumour imaging recorded: whether viable liver tumour remains is unknown."


def candidacy_latest_liver_imaging_days_old(latest: str, age: int, max_age: int) -> str:
    return f"Latest liver imaging ({latest}) is {age} days old, more than {max_age}: whether viable liver tumour remains is unknown (new imaging needed)."


# candidacy._viable_on

def candidacy_viable_liver_tumour_latest_imaging(latest: str, liver_sum: float) -> str:
    return f"Viable liver tumour on the latest imaging ({latest}: sum of viable diameters {liver_sum:g} mm)."


def candidacy_no_viable_liver_tumour_latest(latest: str, unknown_organ: int, value: str) -> str:
    return f"No viable liver tumour on the latest imaging ({latest}), but {unknown_organ} viable lesion(s) of unknown organ ({value}): whether viable liver tumour remains is unknown."


def candidacy_no_viable_arterially_enhancing_liver(latest: str) -> str:
    return f"No viable (arterially enhancing) liver tumour on the latest imaging ({latest}): nothing to embolise."


# candidacy._check_bilirubin

def candidacy_bilirubin_mg_dl(value: float, limit: float) -> str:
    return f"bilirubin {value:g} mg/dL > {limit:g}"


def candidacy_no_bilirubin_within_freshness_window() -> str:
    return "no bilirubin within the freshness window"


# candidacy._spread_doubts

def candidacy_metastasis_no_recorded_site(unknown_site: str) -> str:
    return f"metastasis with no recorded site: {unknown_site}"


def candidacy_metastasis_site_recorded_without_side(side_unknown: str) -> str:
    return f"metastasis site recorded without its side: {side_unknown}"


def candidacy_metastasis_recorded_after_presence_then(as_of: str, presence_unknown: str) -> str:
    return f"metastasis recorded after {as_of}, presence then unknown: {presence_unknown}"


def candidacy_known_sites(spread: str) -> str:
    return f"known sites: {spread}"


# candidacy._check_metastases

def candidacy_multiple_extrahepatic_metastases_sites(sites: int, spread: str) -> str:
    return f"multiple extrahepatic metastases ({sites} sites: {spread})"


def candidacy_whether_extrahepatic_metastases_involve_more(minimum: int, doubts: str) -> str:
    return f"whether extrahepatic metastases involve {minimum} or more distinct sites ({doubts})"


# candidacy._check_tace_not_done

def candidacy_after_last_completed_session(last_done: str) -> str:
    return f", after the last completed session ({last_done})"


def candidacy_tace_not_done(reason: str, dated: str, after: str) -> str:
    return f"TACE not done ({reason}; {dated}{after})"


def candidacy_no_reason_recorded() -> str:
    return "no reason recorded"


# candidacy._check_portal_vein

def candidacy_portal_vein_thrombosis(present: str, main_trunk_to_confirm: str) -> str:
    return f"portal-vein thrombosis ({present}): {main_trunk_to_confirm}"


def candidacy_portal_vein_thrombosis_recorded_confirm() -> str:
    return "Portal-vein thrombosis recorded: confirm whether it involves the main portal trunk (a TACE contraindication)"


def candidacy_portal_vein_thrombus_recorded_confined(branch: str) -> str:
    return f"Portal-vein thrombus recorded as confined to a branch ({branch}): not a TACE contraindication by the site's codes; confirm the main trunk is free."


def candidacy_whether_portal_vein_thrombosis_recorded(as_of: str, unknown: str) -> str:
    return f"whether the portal-vein thrombosis recorded after {as_of} was present ({unknown})"


# candidacy._decide

def candidacy_cannot_exclude_contraindication(unknown: str) -> str:
    return f"Cannot exclude a contraindication: {unknown}."


def candidacy_tace_contraindicated(contraindications: str) -> str:
    return f"TACE contraindicated: {contraindications}."


def candidacy_no_tace_contraindication_recorded() -> str:
    return "No TACE contraindication recorded."


# candidacy._check_child_pugh

def candidacy_child_pugh_class_unknown() -> str:
    return "Child-Pugh class unknown"


# --- recommendation.py ----------------------------------------------------------------------------

# recommendation (module level)

def recommendation_not_applicable_study_question_does() -> str:
    return "Not applicable: the study's question does not arise for this patient."


def recommendation_sorafenib_response_toxicity_study_survival() -> str:
    return "On sorafenib: response, toxicity and the study's survival benchmark below."


def recommendation_not_tace_resistant_study_definition() -> str:
    return "Not TACE-resistant by the study's definition and TACE still possible: TACE may continue."


def recommendation_discuss_multidisciplinary_tumour_board_tace() -> str:
    return "Discuss at the multidisciplinary tumour board: TACE is not straightforward or sorafenib was given before (see reasons)."


def recommendation_cannot_decide_data_study_criteria() -> str:
    return "Cannot decide: data the study's criteria need is missing or stale (see reasons)."


def recommendation_outside_study_criteria_sorafenib_see() -> str:
    return "Outside the study's criteria for sorafenib (see reasons)."


def recommendation_tace_resistant_sorafenib_with_tace() -> str:
    return "TACE-resistant HCC within the study's criteria: consider sorafenib with continued TACE."


def recommendation_tace_resistant_sorafenib_alone() -> str:
    return "TACE-resistant HCC within the study's criteria, TACE not possible: consider sorafenib alone."


# recommendation._invasion_or_spread

def recommendation_recorded_after_presence_then_unknown(label: str, as_of: str, doubtful: str) -> str:
    return f"{label}: recorded after {as_of}, presence then unknown ({doubtful})"


def recommendation_extrahepatic_lesions(extrahepatic: str) -> str:
    return f"extrahepatic lesions ({extrahepatic})"


def recommendation_extrahepatic_spread_viable_lesion_s(unknown_organ: str) -> str:
    return f"extrahepatic spread: viable lesion(s) of unknown organ ({unknown_organ})"


def recommendation_vascular_invasion() -> str:
    return "vascular invasion"


def recommendation_extrahepatic_spread() -> str:
    return "extrahepatic spread"


# recommendation._row_1_not_applicable

def recommendation_patient_recorded_deceased(when: str) -> str:
    return f"The patient is recorded as deceased{when}."


def recommendation_no_active_confirmed_hcc_diagnosis() -> str:
    return "No active, confirmed HCC diagnosis."


# recommendation._rows_2_to_4

def recommendation_sorafenib_recorded_current_response_toxicity() -> str:
    return "Sorafenib is recorded as current: response, toxicity and survival information apply."


def recommendation_no_completed_tace_session_recorded() -> str:
    return "No completed TACE session recorded (planned, in-progress or not-done sessions do not count): the study concerns HCC after TACE."


def recommendation_sorafenib_was_given_before_has() -> str:
    return "Sorafenib was given before and has ended: the study's question (starting sorafenib) no longer arises as such."


# recommendation._row_5_not_resistant

def recommendation_tace_candidacy_met_no_vascular() -> str:
    return "TACE candidacy met; no vascular invasion or extrahepatic spread; performance status allows TACE."


def recommendation_no_performance_status_within_days(window: int) -> str:
    return f"no performance status within {window} days"


def recommendation_performance_status_beyond_ecog(ecog_max: int, reasons: str) -> str:
    return f"Performance status beyond ECOG {ecog_max}: {reasons}"


def recommendation_tace_resistance_not_met_jsh() -> str:
    return "TACE resistance not met (JSH 2010)."


def recommendation_tace_candidacy_unknown(reasons: str) -> str:
    return f"TACE candidacy unknown: {reasons}"


def recommendation_tace_candidacy_not_met(reasons: str) -> str:
    return f"TACE candidacy not met: {reasons}"


# recommendation._rows_6_to_8

def recommendation_tace_resistance_met_eligibility_indeterminate() -> str:
    return "TACE resistance met; eligibility indeterminate."


def recommendation_tace_resistance_met_eligible_study() -> str:
    return "TACE resistance met; eligible by the study's criteria."


def recommendation_tace_candidacy_unknown_so_neither(reasons: str) -> str:
    return f"TACE candidacy unknown, so neither arm can be chosen: {reasons}"


def recommendation_tace_resistance_met() -> str:
    return "TACE resistance met."


def recommendation_tace_resistance_unknown() -> str:
    return "TACE resistance unknown."


def recommendation_eligible_study_criteria() -> str:
    return "Eligible by the study's criteria."


def recommendation_tace_still_possible(reasons: str) -> str:
    return f"TACE still possible: {reasons}"


# --- eligibility.py -------------------------------------------------------------------------------

# eligibility (module level)

def eligibility_nutritional_status_study_excluded_nutritional() -> str:
    return "Nutritional status (the study excluded nutritional impairment)"


def eligibility_feeding_artery_access_tace_digital() -> str:
    return "Feeding-artery access for TACE (digital subtraction angiography)"


def eligibility_written_informed_consent() -> str:
    return "Written informed consent"


# eligibility._child_pugh

def eligibility_child_pugh_b_sorafenib_exposure() -> str:
    return "Child-Pugh B: sorafenib exposure and tolerance are less certain; the study included 22 of 34 such patients."


def eligibility_child_pugh_class_unknown() -> str:
    return "Child-Pugh class unknown."


# eligibility._prior_surgery

def eligibility_prior_liver(concept: str, performed: str) -> str:
    return f"Prior liver {concept} ({performed})."


def eligibility_no_prior_liver_treatment_assumed() -> str:
    return "No liver resection or transplant recorded: assumed none."


def eligibility_no_prior_liver_treatment_assumed_note() -> str:
    return "No liver resection or transplant recorded (assumed none)."


# eligibility._performance

def eligibility_ecog_only_excluded(ecog: int) -> str:
    return f"ECOG {ecog} (no more recent Karnofsky): corresponds to Karnofsky 40 or less, excluded."


def eligibility_karnofsky_all_which_study_excluded(kps_range: int, kps_range_2: int) -> str:
    return f"Karnofsky {kps_range}-{kps_range_2}, all of which the study excluded"


def eligibility_karnofsky_which_study_excluded_included(kps_range: int, kps_range_2: int, low: str) -> str:
    return f"Karnofsky {kps_range}-{kps_range_2}, of which the study excluded {low} and included {kps_range_2}"


def eligibility_karnofsky_which_study_included(kps_range: int, kps_range_2: int) -> str:
    return f"Karnofsky {kps_range}-{kps_range_2}, which the study included"


def eligibility_only_ecog_recorded_may_correspond(ecog: int, band: str, kps_cut: int) -> str:
    return f"Only ECOG {ecog} recorded: it may correspond to {band}; the study's criterion was Karnofsky > {kps_cut}, and it nevertheless included ECOG 2 patients. Record a Karnofsky score to decide."


def eligibility_ecog_only_not_excluded(ecog: int) -> str:
    return f"ECOG {ecog} (no more recent Karnofsky): not excluded by the study's practice (ECOG 0-2 included)."


def eligibility_unknown_karnofsky_score() -> str:
    return "an unknown Karnofsky score"


# eligibility._bilirubin

def eligibility_latest_bilirubin_older_than_days(when: str, max_age: int) -> str:
    return f"Latest bilirubin {when} is older than {max_age} days."


def eligibility_not_used(ref: str, problem: str) -> str:
    return f"{ref} not used: {problem}."


def eligibility_bilirubin_above_limit(value: float, limit: float) -> str:
    return f"Bilirubin {value:g} mg/dL > {limit:g}."


def eligibility_bilirubin_within_limit(value: float, limit: float) -> str:
    return f"Bilirubin {value:g} mg/dL <= {limit:g}."


def eligibility_no_usable_bilirubin_result() -> str:
    return "No usable bilirubin result."


# eligibility.bclc_b_at_first_tace

def eligibility_no_tace_recorded_no_stage() -> str:
    return "No TACE recorded: no stage at the first TACE."


def eligibility_at_first_tace_on(anchor: str) -> str:
    return f"at the first TACE ({anchor})"


def eligibility_tumour_extent_stage_unknown(when: str) -> str:
    return f"Tumour-extent stage {when} unknown."


def eligibility_tumour_extent_stage_not_b(stage: str, when: str) -> str:
    return f"Tumour-extent stage {stage} {when}, not B."


def eligibility_stage_b_child_pugh_unknown(when: str) -> str:
    return f"Tumour-extent stage B {when}, but Child-Pugh at that date is unknown."


def eligibility_stage_b_child_pugh_c(when: str) -> str:
    return f"Tumour-extent stage B but Child-Pugh C {when}: BCLC D."


def eligibility_tumour_extent_stage_b_child(klass: str, when: str) -> str:
    return f"Tumour-extent stage B with Child-Pugh {klass} {when}."


def eligibility_at_first_tace() -> str:
    return "at the first TACE"


# eligibility.evaluate_eligibility

def eligibility_judged_sorafenib_start_study_did(day: str) -> str:
    return f"Judged at the sorafenib start ({day}), as the study did."


# eligibility._age

def eligibility_no_birth_date_recorded() -> str:
    return "No birth date recorded."


# --- bclc.py --------------------------------------------------------------------------------------

# bclc (module level)

def bclc_portal_vein_tumour_thrombus_extrahepatic() -> str:
    return "Portal-vein tumour thrombus and extrahepatic metastases are recorded only when present: with no such Condition on record they are taken as absent for BCLC staging."


# bclc.describe

def bclc_no_viable_tumour_imaging(imaging_date: str) -> str:
    return f"no viable tumour on imaging of {imaging_date}"


def bclc_largest_mm_viable_imaging(count: str, largest: str, imaging_date: str) -> str:
    return f"{count}, largest {largest} mm viable, on imaging of {imaging_date}"


def bclc_a_single_nodule() -> str:
    return "a single nodule"


# bclc.tumour_unknown

def bclc_latest_tumour_imaging_too_old(stale_imaging: str) -> str:
    return f"latest tumour imaging ({stale_imaging}) too old"


def bclc_no_tumour_imaging() -> str:
    return "no tumour imaging"


# bclc._undated_words

def bclc_has_no_onset_was_recorded(ref: str, recorded: str, day: str) -> str:
    return f"{ref} has no onset and was recorded on {recorded}, after {day}"


def bclc_has_no_onset_recorded_date(ref: str) -> str:
    return f"{ref} has no onset or recorded date"


# bclc._recent_tumour

def bclc_no_tumour_imaging_before(day: str) -> str:
    return f"No tumour imaging on or before {day}."


def bclc_latest_tumour_imaging_days_before(stale: str, days: int, day: str, imaging_max_age_days: int) -> str:
    return f"Latest tumour imaging ({stale}) is {days} days before {day}, more than {imaging_max_age_days}: tumour burden unknown."


def bclc_viable_lesion_s_no_recorded(unknown_site_nodules: int) -> str:
    return f"{unknown_site_nodules} viable lesion(s) with no recorded site counted as liver nodules."


# bclc._vascular_invasion

def bclc_portal_vein_tumour_thrombus_present(value: str, pvtt: str) -> str:
    return f"Portal-vein tumour thrombus present ({value}){pvtt}."


def bclc_portal_vein_thrombus_unknown_onset(day: str, pvtt_unknown: str, pvtt_unknown_2: str) -> str:
    return f"Portal-vein thrombus on {day} unknown, onset missing ({pvtt_unknown}){pvtt_unknown_2}."


# bclc._extrahepatic_spread

def bclc_extrahepatic_metastasis_present(value: str) -> str:
    return f"Extrahepatic metastasis present ({value})."


def bclc_viable_lesion_outside_liver_imaging(found: str, sites: str) -> str:
    return f"Viable lesion outside the liver on imaging of {found}: {sites}."


def bclc_extrahepatic_metastasis_unknown_onset_missing(day: str, metastases_unknown: str) -> str:
    return f"Extrahepatic metastasis on {day} unknown, onset missing ({metastases_unknown})."


# bclc._burden_words

def bclc_single_nodule_mm(very_early_single_nodule_below_mm: str) -> str:
    return f"single nodule < {very_early_single_nodule_below_mm} mm"


def bclc_nodules_up_all_mm(nodules: int, early_max_nodules: int, early_multiple_nodules_max_diameter_mm: str) -> str:
    return f"{nodules} nodules (up to {early_max_nodules}), all <= {early_multiple_nodules_max_diameter_mm} mm"


def bclc_multinodular_nodules_largest_over_mm(nodules: int, early_multiple_nodules_max_diameter_mm: str) -> str:
    return f"multinodular: {nodules} nodules, largest over {early_multiple_nodules_max_diameter_mm} mm"


def bclc_multinodular_nodules_more_than(nodules: int, early_max_nodules: int) -> str:
    return f"multinodular: {nodules} nodules (more than {early_max_nodules})"


def bclc_single_nodule() -> str:
    return "single nodule"


# bclc.tumour_extent_stage

def bclc_tumour_extent_c(what: str) -> str:
    return f"Tumour extent C: {what}."


def bclc_tumour_extent_unknown_this_date(doubt: str) -> str:
    return f"Tumour extent unknown: {doubt} at this date unknown (onset missing); C if present."


def bclc_tumour_extent_unknown(tumour_unknown: str) -> str:
    return f"Tumour extent unknown: {tumour_unknown}."


def bclc_tumour_extent_not_staged(tumour: str) -> str:
    return f"Tumour extent not staged: {tumour}."


def bclc_tumour_extent_no_portal_invasion(stage: str, tumour: str, stage_2: str) -> str:
    return f"Tumour extent {stage}: {tumour} ({stage_2}); no portal invasion or extrahepatic spread."


# bclc._stage_d

def bclc_child_pugh_c_makes_d(ecog_text: str) -> str:
    return f"Child-Pugh C makes it D ({ecog_text})."


def bclc_ecog_makes_d(ecog: int, advanced_max_ecog: int, cp_text: str) -> str:
    return f"ECOG {ecog} (> {advanced_max_ecog}) makes it D ({cp_text})."


# bclc._not_staged_missing

def bclc_not_staged_missing_so_could(missing: str, could_be: str) -> str:
    return f"Not staged: {missing} missing, so it could be {could_be}"


def bclc_child_pugh_class() -> str:
    return "Child-Pugh class"


# bclc._stage_c

def bclc_make_c(invasion: str, cp_text: str, ecog_text: str) -> str:
    return f"{invasion} with {cp_text} and {ecog_text} make it C."


def bclc_makes_c_under_scheme(ecog_text: str, cp_text: str, spread_words: str) -> str:
    return f"{ecog_text} makes it C under the 2010 scheme ({cp_text}, {spread_words})."


def bclc_not_staged_this_date_unknown(doubt: str, cp_text: str, ecog_text: str) -> str:
    return f"Not staged: {doubt} at this date unknown (onset missing), so it could be C ({cp_text}, {ecog_text})."


def bclc_no_invasion_or_spread() -> str:
    return "no invasion or spread"


# bclc._stage_by_burden

def bclc_not_staged_no_invasion_spread(tumour_unknown: str, cp_text: str, ecog_text: str) -> str:
    return f"Not staged: {tumour_unknown} ({cp_text}, {ecog_text}, no invasion or spread)."


def bclc_not_staged_no_viable_tumour(cp_text: str, ecog_text: str) -> str:
    return f"Not staged: no viable tumour on the latest imaging ({cp_text}, {ecog_text})."


def bclc_single_nodule_mm_stage_needs(very_early_single_nodule_below_mm: str, cp_text: str, ecog_text: str) -> str:
    return f"Single nodule < {very_early_single_nodule_below_mm} mm with {cp_text} and {ecog_text}: A (stage 0 needs Child-Pugh A and ECOG 0)."


def bclc_stage_by_burden(words: str, ecog_text: str, cp_text: str, by_burden: str) -> str:
    return f"{words}, no invasion or spread, {ecog_text}, {cp_text}: {by_burden}."


# bclc._staged_at_first_tace

def bclc_first_tace_not_staged_no() -> str:
    return "At the first TACE: not staged, no TACE recorded."


def bclc_first_tace(first_tace: str, stage: str, reasons: str) -> str:
    return f"At the first TACE ({first_tace}): {stage}. {reasons}"


def bclc_findings_first_tace(facts: str) -> str:
    return f"Findings at the first TACE: {facts}."


def bclc_not_staged() -> str:
    return "not staged"


# bclc._reasons_now

def bclc_findings_now(facts: str) -> str:
    return f"Findings now: {facts}."


def bclc_how_study_table_staged_tumour(reasons: str) -> str:
    return f"How the study's Table 1 staged (tumour extent only): {reasons}"


def bclc_tumour_extent_how_study_table(stage: str) -> str:
    return f"Tumour extent (how the study's Table 1 staged) is also {stage}."


# bclc._bland

def bclc_tumour_vs_bland_thrombus_confirm() -> str:
    return ": tumour vs bland thrombus to confirm"


# bclc._unknown_invasion

def bclc_portal_invasion() -> str:
    return "portal invasion"


def bclc_extrahepatic_spread() -> str:
    return "extrahepatic spread"


# bclc.cp_text

def bclc_child_pugh_class_unknown() -> str:
    return "Child-Pugh class unknown"


# bclc.ecog_text

def bclc_ecog_unknown() -> str:
    return "ECOG unknown"


# --- tace_resistance.py ---------------------------------------------------------------------------

# tace_resistance (module level)

def tace_resistance_new_vascular_invasion_portal_vein() -> str:
    return "new vascular invasion (portal-vein tumour thrombus)"


def tace_resistance_new_extrahepatic_spread() -> str:
    return "new extrahepatic spread"


# tace_resistance._progression_events

def tace_resistance_mrecist_pd_imaging(kinds: str) -> str:
    return f"mRECIST PD on imaging ({kinds})"


def tace_resistance_disease_status_reported_worsened() -> str:
    return "disease status reported as worsened"


# tace_resistance._undatable_spread

def tace_resistance_recorded_has_no_onset_date(what: str, ref: str, recorded: str) -> str:
    return f"{what} {ref} recorded on {recorded} has no onset date"


# tace_resistance._series

def tace_resistance_tace_records_are_one_session(value: int, performed: str, value_2: str) -> str:
    return f"{value} TACE records on {performed} ({value_2}) are one session."


# tace_resistance._too_few_sessions

def tace_resistance_sorafenib_start(sorafenib_start: str) -> str:
    return f"sorafenib start {sorafenib_start}"


def tace_resistance_only_completed_tace_session(count: int) -> str:
    return f"Only {count} completed TACE session"


def tace_resistance_before_least_consecutive_sessions_are(what: str, before_what: str, needed: int) -> str:
    return f"{what} before {before_what}; at least {needed} consecutive sessions are needed."


def tace_resistance_no_completed_tace_session() -> str:
    return "No completed TACE session"


# tace_resistance._judge_event

def tace_resistance_after_response(date: str) -> str:
    return f" after the response on {date}"


def tace_resistance_followed_only_session_s(what: str, when: str, before: int, broken: str) -> str:
    return f"{what} on {when} followed only {before} session(s){broken}."


def tace_resistance_came_days_after_session_more(what: str, when: str, gap: int, later: str, window: int) -> str:
    return f"{what} on {when} came {gap} days after the session of {later} (more than {window})."


# tace_resistance._progression_after_series

def tace_resistance_consecutive_tace_sessions_days_after(sessions: int, dates: str, what: str, when: str, gap: int, window: int) -> str:
    return f"{sessions} consecutive TACE sessions ({dates}); {what} on {when}, {gap} days after the last (at most {window})."


def tace_resistance_sessions_coded_only_cpt(refs: str) -> str:
    return f"Sessions coded only by CPT 37243 ({refs}), which also codes bland and Y-90 embolization: not known to be TACE."


# tace_resistance._no_progression_in_window

def tace_resistance_no_progression_within_days_after(window: int, last: str, date: str, category: str | None) -> str:
    return f"No progression within {window} days after the last TACE ({last}): imaging on {date} was {category}."


def tace_resistance_progression_after_last_tace_did(last: str, needed: int) -> str:
    return f"The progression after the last TACE ({last}) did not follow {needed} consecutive sessions without response."


# tace_resistance._cannot_judge

def tace_resistance_first_imaging_after_was(date: str, category: str) -> str:
    return f"the first imaging after it ({date}) was {category}"


def tace_resistance_disease_status_reported(trend: str, when: str, ref: str) -> str:
    return f"disease status reported {trend} on {when}, {ref}"


def tace_resistance_yet_day_window_ends(window: int, last: str) -> str:
    return f" yet (the {window}-day window ends {last})"


def tace_resistance_progression_within_days_after_last(window: int, last: str, why: str) -> str:
    return f"Progression within {window} days after the last TACE ({last}) cannot be judged: {why}."


def tace_resistance_not_evaluable() -> str:
    return "not evaluable"


def tace_resistance_no_sized_imaging_after(reports: str) -> str:
    return f"no sized imaging after it ({reports}: a trend other than worsened does not measure a response)"


def tace_resistance_there_no_imaging_after() -> str:
    return "there is no imaging after it"


# tace_resistance._without_progression

def tace_resistance_imaging_was_but(date: str, category: str | None) -> str:
    return f"Imaging on {date} was {category}, but "


def tace_resistance_may_new_vascular_invasion_spread() -> str:
    return ": it may be new vascular invasion or spread within the window."


# tace_resistance._per_treated_lesion

def tace_resistance_mm_not_measured(lesion: str, viable_diameter_mm: float) -> str:
    return f"{lesion} {viable_diameter_mm:g} mm -> not measured"


# tace_resistance._session_imaging

def tace_resistance_tace_no_viable_tumour_before(performed: str) -> str:
    return f"TACE {performed}: no viable tumour before it."


def tace_resistance_tace_viable_diameter_per_treated(performed: str, parts: str, pre: int, post: int) -> str:
    return f"TACE {performed}: viable diameter per treated lesion {parts}; liver lesions {pre} -> {post}."


# tace_resistance._imaging_response

def tace_resistance_tace_no_imaging_before_months(performed: str) -> str:
    return f"TACE {performed}: no imaging before and 1-3 months after."


# tace_resistance._marker_rises

def tace_resistance_tace_no_afp_before_after(performed: str) -> str:
    return f"TACE {performed}: no AFP before and after."


def tace_resistance_tace_afp_ng_ml(performed: str, value: float, value_2: float) -> str:
    return f"TACE {performed}: AFP {value:g} -> {value_2:g} ng/mL."


# tace_resistance._refractoriness

def tace_resistance_approximation_response_read_per_treated() -> str:
    return "Approximation: the response is read per treated lesion from viable longest diameters (the criterion speaks of the viable tumour, not a diameter)."


# tace_resistance._refractoriness_verdict

def tace_resistance_two_consecutive_insufficient_responses_viable() -> str:
    return "two consecutive insufficient responses (viable > 50%)"


def tace_resistance_two_consecutive_increases_liver_lesions() -> str:
    return "two consecutive increases in liver lesions"


def tace_resistance_afp_higher_after_two_consecutive() -> str:
    return "AFP higher after two consecutive sessions"


def tace_resistance_no_refractoriness_criterion_met_after() -> str:
    return "No refractoriness criterion met after the last two sessions; no new vascular invasion or extrahepatic spread."


def tace_resistance_imaging_before_months_after_each() -> str:
    return "imaging before and 1-3 months after each of the last two sessions"


def tace_resistance_afp_before_after_each_last() -> str:
    return "AFP before and after each of the last two sessions"


def tace_resistance_cannot_decide_missing(missing: str) -> str:
    return f"Cannot decide: missing {missing}."


# tace_resistance.evaluate_jsh_2014

def tace_resistance_completed_tace_session_s_least(sessions: int, needed: int) -> str:
    return f"{sessions} completed TACE session(s): at least {needed} are needed."


def tace_resistance_appearance_after_tace_began(label: str, when: str) -> str:
    return f"Appearance of {label} on {when} after TACE began."


# tace_resistance._appearances

def tace_resistance_new_extrahepatic_spread_imaging() -> str:
    return "new extrahepatic spread on imaging"


# --- mrecist.py -----------------------------------------------------------------------------------

# mrecist (module level)

def mrecist_unequivocal_progression_non_target_lesions() -> str:
    return "unequivocal progression of non-target lesions"


def mrecist_portal_vein_tumour_thrombus() -> str:
    return "portal-vein tumour thrombus"


def mrecist_extrahepatic_metastasis() -> str:
    return "extrahepatic metastasis"


def mrecist_new_vascular_invasion() -> str:
    return "new vascular invasion"


def mrecist_new_extrahepatic_spread() -> str:
    return "new extrahepatic spread"


# mrecist.lesion_studies

def mrecist_lesion_measurement_has_no_usable(ref: str, lesion: str, when: str) -> str:
    return f"Lesion measurement {ref} ({lesion}, {when}) has no usable diameter; not used."


def mrecist_has_measurements_largest_mm_used(lesion: str, readings: int, when: str, diameter_mm: str, ref: str) -> str:
    return f"{lesion} has {readings} measurements on {when}; the largest ({diameter_mm} mm, {ref}) is used."


# mrecist._classify_new_lesion

def mrecist_new_lesion_outside_liver_first(lesion: str, organ: str | None, first_seen: str, since: str, largest: str) -> str:
    return f"New lesion {lesion} outside the liver ({organ}), first seen {first_seen}{since}, viable {largest} mm: new extrahepatic spread (PD)."


def mrecist_new_lesion_pd(lesion: str, where: str, first_seen: str, since: str, largest: str, new_lesion_min_viable_diameter_mm: str) -> str:
    return f"New lesion {lesion}{where} first seen {first_seen}{since}, viable {largest} mm (>= {new_lesion_min_viable_diameter_mm} mm): PD."


def mrecist_outside_liver(organ: str | None) -> str:
    return f" outside the liver ({organ})"


def mrecist_new_lesion_equivocal(lesion: str, where: str, first_seen: str, diameter_mm: str, limit: str) -> str:
    return f"New lesion {lesion}{where} first seen {first_seen}, viable {diameter_mm} mm (< {limit} mm): equivocal, not PD; it rules out CR."


def mrecist_organ_unknown() -> str:
    return " (organ unknown)"


# mrecist._new_lesions

def mrecist_new_since_imaging_before_latest(reference: str) -> str:
    return f" (new since the imaging of {reference}, before the latest session)"


# mrecist._new_conditions_step

def mrecist_onset_after_pd(condition_labels: str, ref: str, onset: str, after: str, reference: str, what: str) -> str:
    return f"{condition_labels} {ref} with onset {onset}, after {after} {reference}: {what} (PD)."


def mrecist_imaging() -> str:
    return "the imaging of"


# mrecist._non_target_growth_step

def mrecist_non_target_unequivocal_progression(lesion: str, now: str, day: str, smallest: str, when_smallest: str, non_target_progression_min_ratio: str, non_target_progression_min_increase_mm: str) -> str:
    return f"Non-target lesion {lesion} viable {now} mm on {day}, up from its smallest {smallest} mm ({when_smallest}): unequivocal non-target progression (PD; >= {non_target_progression_min_ratio}x and >= {non_target_progression_min_increase_mm} mm larger, or regrowth to >= 10 mm after 0)."


def mrecist_non_target_possible_progression(lesion: str, now: str, day: str, smallest: str, when_smallest: str) -> str:
    return f"Non-target lesion {lesion} viable {now} mm on {day}, up from {smallest} mm ({when_smallest}): possible progression to confirm (below the unequivocal rule; the category is not changed)."


def mrecist_non_target_lesions_viable_diameters(sizes: str) -> str:
    return f"Non-target lesions (viable diameters since baseline): {sizes}."


# mrecist.subset_note

def mrecist_sum_over_targets_measured_not(measured: int, value: int, day: str, missing: str) -> str:
    return f"Sum over the {measured} of {value} targets measured on {day} ({missing} not measured), against the nadir of the full target sum."


# mrecist._sum_progression_reason

def mrecist_sum_viable_target_diameters_mm(current: str, date: str) -> str:
    return f"Sum of viable target diameters {current} mm after a nadir of 0 mm ({date}): viable tumour reappeared (PD)."


def mrecist_sum_viable_diameters_mm_above(current: str, change_from_nadir: str, sum_mm: str, date: str, progression_increase_from_nadir_pct: str) -> str:
    return f"Sum of viable diameters {current} mm is {change_from_nadir} above the nadir of {sum_mm} mm ({date}) (PD at >={progression_increase_from_nadir_pct}%)."


# mrecist._missing_targets_reason

def mrecist_measured_sum_mm_nadir_full(measured: int, current: str, change_from_nadir: float, sum_mm: str, date: str, progression_increase_from_nadir_pct: str) -> str:
    return f"; the {measured} measured sum to {current} mm, {change_from_nadir:+.1f}% from the nadir of the full sum, {sum_mm} mm ({date}), short of PD (>=+{progression_increase_from_nadir_pct}%)"


def mrecist_measured_sum_mm_not_above(measured: int, current: str) -> str:
    return f"; the {measured} measured sum to {current} mm, not above the nadir of 0 mm"


def mrecist_target_s_not_measured_not(missing: str, day: str, growth: str) -> str:
    return f"Target(s) {missing} not measured on {day}: not evaluable (NE){growth}."


def mrecist_no_target_measured() -> str:
    return "; no target measured"


# mrecist._pd_context

def mrecist_change_from_nadir(change_from_nadir: float, sum_mm: str) -> str:
    return f", {change_from_nadir:+.1f}% from the nadir of {sum_mm} mm."


def mrecist_targets_measured_sum_mm_baseline(day: str, current: str, change_from_baseline: float, baseline: str) -> str:
    return f"Targets measured on {day}: sum {current} mm, {change_from_baseline:+.1f}% from baseline {baseline} mm"


# mrecist._complete_target_response_reason

def mrecist_every_target_lesion_has_no(day: str) -> str:
    return f"Every target lesion has no viable tumour (0 mm) on {day}, no new lesion"


def mrecist_non_target_lesion_s_still(viable: str) -> str:
    return f"non-target lesion(s) still viable ({viable})"


def mrecist_equivocal_new_lesion(equivocal: str) -> str:
    return f"an equivocal new lesion ({equivocal})"


def mrecist_non_target_lesion_s_not(unassessed: str) -> str:
    return f"non-target lesion(s) not assessed ({unassessed})"


def mrecist_every_target_lesion_mm_but(day: str, why: str) -> str:
    return f"Every target lesion is at 0 mm on {day}, but {why}: PR by the overall-response table (CR needs all of them gone)."


def mrecist_no_viable_non_target_tumour() -> str:
    return " and no viable non-target tumour"


def mrecist_still_present() -> str:
    return " still present"


# mrecist._partial_response_reason

def mrecist_sum_viable_diameters_mm_below(current: str, change: str, baseline: str, partial_response_decrease_from_baseline_pct: str) -> str:
    return f"Sum of viable diameters {current} mm is {change} below baseline {baseline} mm (PR at >={partial_response_decrease_from_baseline_pct}% decrease)."


# mrecist._stable_disease_reason

def mrecist_relative_to_nadir(change_from_nadir: str, value: str, sum_mm: str, date: str) -> str:
    return f"{change_from_nadir} {value} the nadir of {sum_mm} mm ({date})"


def mrecist_at_nadir(sum_mm: str) -> str:
    return f"at the nadir of {sum_mm} mm"


def mrecist_sum_viable_diameters_mm_baseline(current: str, change: str, direction: str, baseline: str, from_nadir: str, partial_response_decrease_from_baseline_pct: str, progression_increase_from_nadir_pct: str) -> str:
    return f"Sum of viable diameters {current} mm is {change} {direction} baseline {baseline} mm and {from_nadir}: neither PR (>={partial_response_decrease_from_baseline_pct}% decrease) nor PD (>={progression_increase_from_nadir_pct}% increase), SD."


# mrecist._explanation

def mrecist_no_measurable_target_lesion_mm(target_min_viable_diameter_mm: str, date: str) -> str:
    return f"No measurable target lesion (>= {target_min_viable_diameter_mm} mm viable) at baseline {date}, and no progression: no mRECIST category."


# mrecist._no_baseline_reason

def mrecist_first_imaging_after(later: str) -> str:
    return f" (first imaging {later}, after it)"


def mrecist_no_baseline_no_tumour_imaging(treatment_start: str, tail: str) -> str:
    return f"No baseline: no tumour imaging on or before the treatment start {treatment_start}{tail}."


# mrecist._baseline_reasons

def mrecist_baseline_with_targets(base_day: str, treatment_start: str, targets: int, listed: str, sum_mm: str) -> str:
    return f"Baseline: imaging of {base_day} (latest on or before the treatment start {treatment_start}); {targets} target(s): {listed}; sum {sum_mm} mm."


def mrecist_baseline_without_target(base_day: str, treatment_start: str, target_min_viable_diameter_mm: str) -> str:
    return f"Baseline: imaging of {base_day} (latest on or before the treatment start {treatment_start}) has no measurable target lesion (>= {target_min_viable_diameter_mm} mm viable)."


def mrecist_treatment_start_after_assessment_date(treatment_start: str, as_of: str) -> str:
    return f"The treatment start {treatment_start} is after the assessment date {as_of}."


def mrecist_has_no_onset_date_only(condition_labels: str, ref: str, recorded: str) -> str:
    return f"{condition_labels} {ref} has no onset date, only a recordedDate ({recorded}, after baseline): it cannot be dated as new; counted as non-target tumour."


def mrecist_has_no_onset_date_taken(condition_labels: str, ref: str) -> str:
    return f"{condition_labels} {ref} has no onset date: taken as present before baseline (non-target), not as new."


# mrecist._clinical_progression

def mrecist_onset_after_latest_sized_imaging(condition_labels: str, ref: str, onset: str, date: str, what: str) -> str:
    return f"{condition_labels} {ref} with onset {onset}, after the latest sized imaging and after baseline {date}: {what} (PD from that date)."


# mrecist.evaluate_mrecist

def mrecist_no_follow_up_imaging_after(date: str, as_of: str) -> str:
    return f"No follow-up imaging after baseline {date} up to {as_of}: no mRECIST category."
