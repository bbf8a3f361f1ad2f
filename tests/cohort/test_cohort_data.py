"""The synthetic study cohort: deterministic, raw inputs only, and shaped after the paper (issue 10).

Counts here are computed by the service's own mapping and rules from the shipped bundles
(no FHIR server: ``test_cohort_end_to_end`` repeats Table 1 through the REST API).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections import Counter, defaultdict
from datetime import timedelta

import pytest

from offline.cohort import generate
from rules.assessment import assess
from rules.candidacy import extrahepatic_sites
from rules.ctcae import hypertension, platelet_grade
from rules.demographics import age_on
from rules.timing import condition_presence
from rules.treatment import completed_tace
from service.cohort.demo_cli import ARMS, arm_of, assess_cohort, main, summary
from service.cohort.load import COHORT_PATIENT_IDS
from service.knowledge import read_data_file
from service.render.clinical_json import eligibility_json

COMBO, MONO = ARMS
COHORT_DIR = generate.OUT_DIR

# Codings a raw record may carry besides the value sets' raw concepts (all of them input data, none derived).
RAW_ALLOWLIST = {
    ("http://terminology.hl7.org/CodeSystem/observation-category", code)
    for code in ("laboratory", "survey", "imaging", "vital-signs", "exam")
} | {
    ("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
    ("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
    ("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item"),
    ("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis"),
    ("http://snomed.info/sct", "255604002"),  # severity: mild (a recorded finding, read by the mapping)
    ("http://snomed.info/sct", "77477000"),  # imaging method: CT
    ("http://snomed.info/sct", "113091000"),  # imaging method: MRI
    ("http://snomed.info/sct", "1240414004"),  # BodyStructure morphology: malignant neoplasm
    ("http://snomed.info/sct", "26643006"),  # route: oral
    ("http://snomed.info/sct", "183944003"),  # Procedure.statusReason: procedure refused
    ("http://snomed.info/sct", "21522001"),  # abdominal pain (Table 2; not in the value sets)
}
# The value sets' concepts, classified: inputs a record may carry, and conclusions it must not carry
# (a radiologist's CancerDiseaseStatus is a reading of the imaging: the service derives mRECIST itself).
RAW_CONCEPTS = (
    "hcc", "ascites", "encephalopathy", "portal_vein_tumour_thrombus", "extrahepatic_metastasis", "hepatitis_b",
    "hepatitis_c", "cirrhosis", "pregnancy", "tace", "resection", "transplant", "sorafenib", "vitamin_k_antagonist",
    "diuretic", "lactulose", "rifaximin", "bilirubin", "albumin", "inr", "platelets", "creatinine", "afp", "alt", "ast",
    "ecog", "karnofsky", "tumour_size", "liver_structures", "extrahepatic_structures", "lesion_morphology", "hbv_antiviral", "cbc", "leukocytes", "prothrombin_time",
    "blood_pressure", "adverse_event_grade",
)
DERIVED_CONCEPTS = ("disease_status",)
ALLOWED_RESOURCE_TYPES = {"Patient", "Condition", "Procedure", "Observation", "MedicationRequest", "BodyStructure"}


def _codings(value, path="$"):
    """Every Coding (an object inside a ``coding`` list) in a resource, with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "coding" and isinstance(item, list):
                for i, coding in enumerate(item):
                    yield f"{path}.coding[{i}]", coding
            else:
                yield from _codings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _codings(item, f"{path}[{i}]")


def raw_code_check():
    """A function telling whether a (system, code) is a raw input: the value sets' raw concepts + RAW_ALLOWLIST."""
    concepts = read_data_file("value_sets.json")["concepts"]
    allowed, derived, prefixes = set(RAW_ALLOWLIST), set(), []
    for name, concept in concepts.items():
        if name not in RAW_CONCEPTS and name not in DERIVED_CONCEPTS:
            continue  # unclassified: not allowed (test_every_value_set_concept_is_classified says so)
        target = derived if name in DERIVED_CONCEPTS else allowed
        for entry in concept.get("codes", []):
            target.add((entry["system"], entry["code"]))
        for entry in [concept.get("component"), *(concept.get("components") or {}).values()]:
            if entry:
                target.add((entry["system"], entry["code"]))
        for group in concept.get("code_prefixes", []):
            prefixes.append((group["system"], tuple(group["prefixes"])))
        if name in DERIVED_CONCEPTS and "trends" in concept:
            derived.update((concept["trend_system"], code) for code in concept["trends"])

    def is_raw(system, code) -> bool:
        if (system, code) in derived:
            return False
        return (system, code) in allowed or any(system == s and str(code).startswith(p) for s, p in prefixes)

    return is_raw


def derived_problems(bundle: dict, is_raw) -> list[str]:
    problems = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        ref = f"{resource['resourceType']}/{resource['id']}"
        if resource["resourceType"] not in ALLOWED_RESOURCE_TYPES:
            problems.append(f"{ref}: resource type not an input")
        if resource["resourceType"] == "Condition" and "stage" in resource:
            problems.append(f"{ref}: Condition.stage is a derived stage")
        for path, coding in _codings(resource):
            if not is_raw(coding.get("system"), coding.get("code")):
                problems.append(f"{ref} {path}: {coding.get('system')}|{coding.get('code')} is not a raw input code")
    return problems


# -- determinism ----------------------------------------------------------------------------


def test_regenerating_gives_the_shipped_files_byte_for_byte():
    files = generate.render_all()
    assert sorted(files) == [f"{pid}.json" for pid in COHORT_PATIENT_IDS]
    shipped = sorted(p.name for p in COHORT_DIR.glob("*.json"))
    assert shipped == sorted(files), "run `python -m offline.cohort.generate`"
    for name, text in files.items():
        assert (COHORT_DIR / name).read_bytes() == text.encode("utf-8"), f"{name} differs: regenerate"
    assert generate.render_all() == files  # and twice in a row


def test_generate_check_mode_agrees(capsys):
    assert generate.main(["--check"]) == 0


def test_each_file_is_one_collection_bundle_of_one_patient():
    for path in sorted(COHORT_DIR.glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
        patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
        assert [p["id"] for p in patients] == [path.stem]


# -- raw inputs only ---------------------------------------------------------------------------


def test_bundles_carry_raw_inputs_only():
    is_raw = raw_code_check()
    problems = [p for path in sorted(COHORT_DIR.glob("*.json")) for p in derived_problems(json.loads(path.read_text()), is_raw)]
    assert problems == []


@pytest.mark.parametrize(
    "coding",
    [
        {"system": "http://loinc.org", "code": "97509-4"},  # CancerDiseaseStatus (derived from imaging)
        {"system": "http://snomed.info/sct", "code": "271299001"},  # disease status value "worsened"
        {"system": "http://snomed.info/sct", "code": "103338009"},  # "in full remission" (an mRECIST CR)
        {"system": "http://loinc.org", "code": "21908-9"},  # a stage group (not an input)
        {"system": "urn:local", "code": "child-pugh-b"},
    ],
)
def test_the_scan_catches_derived_codes(coding):
    bundle = {
        "entry": [
            {"resource": {"resourceType": "Observation", "id": "x", "code": {"coding": [coding]}, "valueCodeableConcept": {}}}
        ]
    }
    assert derived_problems(bundle, raw_code_check())


def test_every_value_set_concept_is_classified_as_raw_or_derived():
    concepts = set(read_data_file("value_sets.json")["concepts"])
    assert concepts - set(RAW_CONCEPTS) - set(DERIVED_CONCEPTS) == set(), "classify the new concept above"


def test_the_scan_catches_derived_resources():
    bundle = {"entry": [{"resource": {"resourceType": "RiskAssessment", "id": "r"}},
                        {"resource": {"resourceType": "Condition", "id": "c", "stage": [{}]}}]}
    assert len(derived_problems(bundle, raw_code_check())) == 2


def test_every_resource_maps_without_a_data_issue(cohort_snapshots):
    issues = {pid: s.data_issues for pid, s in cohort_snapshots.items() if s.data_issues}
    assert issues == {}


# -- the study's design -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rows(cohort, load_day, knowledge):
    return {r.patient: r for r in assess_cohort(cohort, load_day, knowledge)}


def test_table_1_is_reproduced_by_the_service(rows):
    table = summary(list(rows.values()))
    assert table == {
        "n": ("22", "12"),
        "male / female": ("20 / 2", "9 / 3"),
        "age, mean +/- SD": ("55.2 +/- 15.1", "61.1 +/- 12.0"),
        "ECOG 0-1 / 2": ("19 / 3", "5 / 7"),
        "hepatitis B / C": ("21 / 1", "12 / 0"),
        "BCLC B / C": ("17 / 5", "6 / 6"),
        "Child-Pugh A / B": ("9 / 13", "3 / 9"),
        "mRECIST CR / PR / SD / PD": ("3 / 10 / 2 / 7", "0 / 0 / 5 / 7"),
    }
    assert all(r.tace_resistance == "met" for r in rows.values())
    ages = [r.age for r in rows.values()]
    assert round(statistics.mean(ages), 1) == 57.3  # not the published 54.9 (inconsistency 2)


def test_resistance_follows_the_last_two_sessions_before_sorafenib(cohort_snapshots, cohort_dates, knowledge):
    for pid, snapshot in cohort_snapshots.items():
        start, study = cohort_dates[pid]
        result = assess(snapshot, start, knowledge).tace_resistance
        before = completed_tace(snapshot, start, inclusive=False)
        assert result.status.value == "met", (pid, result.finding.reasons)
        assert result.sessions == tuple(s.ref for s in before[-2:]), pid
        series = result.series_mrecist.timeline
        assert all(t.category == "PR" for t in series[:-2]) and series[-1].category == "PD", pid
        assert series[-2].category in ("SD", "PD") and (series[-1].date - before[-1].performed).days <= 92


def test_tace_sessions_and_months_to_sorafenib(cohort_snapshots, cohort_dates):
    sessions, months = [], []
    for pid, snapshot in cohort_snapshots.items():
        start, _ = cohort_dates[pid]
        before = completed_tace(snapshot, start, inclusive=False)
        sessions.append(len(before))
        months.append(round((start - before[0].performed).days / generate.MONTH_DAYS))
    assert (min(sessions), max(sessions)) == (2, 10)
    assert round(statistics.mean(sessions), 1) == 4.7 and round(statistics.stdev(sessions), 1) == 2.1
    assert statistics.median(months) == 21 and (min(months), max(months)) == (4, 37)


def test_bclc_b_by_tumour_extent_at_the_first_tace_and_eligibility(cohort_snapshots, cohort_dates, knowledge):
    for pid, snapshot in cohort_snapshots.items():
        start, _ = cohort_dates[pid]
        a = assess(snapshot, start, knowledge)
        assert a.bclc.tumour_extent_at_first_tace.stage == "B", pid
        assert a.child_pugh_at_first_tace.klass == "A", pid


def test_on_the_eve_of_sorafenib_the_study_criteria_recommend_the_patients_arm(cohort_snapshots, cohort_dates, knowledge):
    """The day before sorafenib start, with the (later) death left out of the snapshot.

    ``rules.recommendation`` answers ``not-applicable`` for a patient recorded as deceased whatever
    the date of death, so the death is removed here: at that date the patient was alive.

    One documented difference: the combination-arm patients with a portal-vein thrombosis recorded
    before the start (a branch thrombus in the generator's bodySite, coded only as SNOMED 17920008)
    (cohort-10, -15, -18) get ``sorafenib-alone``: PRODUCT.md makes any recorded portal-vein thrombosis stop TACE
    candidacy until main-trunk involvement is excluded, unless the site declares branch-only codes.
    Metastases are counted as distinct sites, not records (PRODUCT.md). Of the four patients with two
    metastasis records (the study's "multiple extrahepatic metastases"): both lungs (ICD-10-CM
    C78.01 + C78.02, cohort-26, -29) are two sites, as the study counted them; two "other specified
    sites" named only in bodySite text (cohort-30) leave the count unknown (``insufficient-data``);
    two intra-abdominal lymph-node records (C77.2, cohort-31) are one site, so TACE stays possible.
    """
    differ, unknown_sites, one_site = [], [], []
    for pid, snapshot in cohort_snapshots.items():
        start, _ = cohort_dates[pid]
        eve = start - timedelta(days=1)
        alive = dataclasses.replace(snapshot, patient=dataclasses.replace(snapshot.patient, deceased=None, deceased_date=None))
        a = assess(alive, eve, knowledge)
        assert a.sorafenib_eligibility.status == "eligible", (pid, eligibility_json(a.sorafenib_eligibility))
        expected = arm_of(snapshot, start)
        thrombus = [c for c in snapshot.conditions_of("portal_vein_tumour_thrombus") if condition_presence(c, eve, eve)]
        if expected == COMBO and thrombus:
            expected = MONO
            differ.append(pid)
            assert any("main portal trunk involvement not excluded: confirm" in r for r in a.tace_candidacy.finding.reasons)
        spread = extrahepatic_sites(alive, eve, eve)
        if expected == MONO and len(spread.sites) < 2 <= len(spread.sites) + len(spread.unknown_site):
            # metastases whose sites the snapshot does not carry: whether they are multiple sites is unknown
            expected = "insufficient-data"
            unknown_sites.append(pid)
            assert any("no recorded site" in r for r in a.tace_candidacy.finding.reasons)
        elif expected == MONO and len(spread.sites) == 1 and len(next(iter(spread.sites.values()))) >= 2:
            expected = COMBO  # several records of one site: not multiple metastatic sites
            one_site.append(pid)
        assert a.recommendation.code == expected, (pid, a.recommendation.reasons)
    assert differ == ["cohort-10", "cohort-15", "cohort-18"], differ
    assert unknown_sites == ["cohort-30"], unknown_sites
    assert one_site == ["cohort-31"], one_site


def test_reasons_for_sorafenib_alone(cohort_snapshots, cohort_dates):
    reasons = Counter()
    for pid, snapshot in cohort_snapshots.items():
        start, _ = cohort_dates[pid]
        if arm_of(snapshot, start) == COMBO:
            assert not [p for p in snapshot.procedures_of("tace") if p.status == "not-done"]
            continue
        not_done = [p for p in snapshot.procedures_of("tace") if p.status == "not-done"]
        metastases = snapshot.conditions_of("extrahepatic_metastasis")
        assert bool(not_done) != (len(metastases) >= 2), pid
        reasons.update(["metastases"] if metastases and not not_done else [p.status_reason for p in not_done])
    assert reasons == Counter({
        "Patient refused further TACE": 6,
        "Tumour-feeding artery not technically accessible on angiography (DSA)": 2,
        "metastases": 4,
    })


def test_ecog_2_patients_have_no_karnofsky_and_get_the_warning(cohort_snapshots, cohort_dates, knowledge):
    warned = 0
    for pid, snapshot in cohort_snapshots.items():
        start, _ = cohort_dates[pid]
        a = assess(snapshot, start, knowledge)
        karnofsky = [m for m in snapshot.series("karnofsky") if m.when > start - timedelta(days=90)]
        if a.performance_status.ecog == 2:
            assert not karnofsky and a.performance_status.source == "ecog"
            assert any("Karnofsky" in w and "ECOG 2" in w for w in a.warnings), pid
            warned += 1
        else:
            assert a.performance_status.karnofsky in (80, 90)
    assert warned == 10


def test_study_imaging_about_three_months_after_start_before_the_load_day_and_alive(cohort_snapshots, cohort_dates, load_day):
    for pid, snapshot in cohort_snapshots.items():
        start, study = cohort_dates[pid]
        assert 86 <= (study - start).days <= 94, pid
        assert study <= load_day
        death = snapshot.patient.deceased_date
        assert death is None or study < death <= load_day, pid


def test_deaths_and_censoring_are_the_reconstructed_pseudo_patients(cohort_snapshots, cohort_dates, load_day):
    observed = defaultdict(list)
    for pid, snapshot in cohort_snapshots.items():
        start, _ = cohort_dates[pid]
        end = snapshot.patient.deceased_date or load_day
        months = round((end - start).days / generate.MONTH_DAYS * 2) / 2
        observed[arm_of(snapshot, start)].append((months, snapshot.patient.deceased is True))
    expected = generate.pseudo_patients()
    for arm in ARMS:
        assert sorted(observed[arm]) == expected[arm], arm


def _km_median(times: list[tuple[float, bool]]) -> float | None:
    at_risk, survival = len(times), 1.0
    for t in sorted({t for t, _ in times}):
        deaths = sum(1 for u, d in times if u == t and d)
        survival *= (at_risk - deaths) / at_risk
        if survival <= 0.5:
            return t
        at_risk -= sum(1 for u, _ in times if u == t)
    return None


def test_median_survival_from_diagnosis_is_near_the_papers(cohort_snapshots, cohort_dates, load_day):
    times = defaultdict(list)
    for pid, snapshot in cohort_snapshots.items():
        start, _ = cohort_dates[pid]
        diagnosis = min(c.onset for c in snapshot.conditions_of("hcc"))
        end = snapshot.patient.deceased_date or load_day
        times[arm_of(snapshot, start)].append(((end - diagnosis).days / generate.MONTH_DAYS, snapshot.patient.deceased is True))
    assert abs(_km_median(times[MONO]) - 28.5) <= 1.0
    assert abs(_km_median(times[COMBO]) - 37.5) <= 1.0


def test_sorafenib_dose_reductions(cohort_snapshots, cohort_dates, knowledge):
    reduced = Counter()
    for pid, snapshot in cohort_snapshots.items():
        start, study = cohort_dates[pid]
        records = sorted(snapshot.medications_of("sorafenib"), key=lambda m: m.start)
        assert records[0].start == start and records[0].daily_dose_mg == 800
        severe = [e for e in snapshot.graded_events if e.grade >= 3]
        if len(records) == 1:
            assert not severe, pid
            continue
        first, second = records
        assert first.status == "stopped" and first.end < second.start < study, pid
        assert second.daily_dose_mg in (400, 200), pid
        assert severe and severe[0].when == first.end, pid
        reduced[(arm_of(snapshot, start), second.daily_dose_mg)] += 1
        assert assess(snapshot, study, knowledge).dose.current_mg_per_day == second.daily_dose_mg
    assert sum(reduced.values()) == 6
    assert sum(v for (arm, _), v in reduced.items() if arm == MONO) == 2


def test_adverse_events_are_table_2(cohort_snapshots, cohort_dates, knowledge):
    counts = {arm: Counter() for arm in ARMS}
    any_event = 0
    for pid, snapshot in cohort_snapshots.items():
        start, _ = cohort_dates[pid]
        c = counts[arm_of(snapshot, start)]
        terms = {}
        for e in snapshot.graded_events:
            if e.when >= start:
                terms[e.term] = max(terms.get(e.term, 0), e.grade)
        for term, grade in terms.items():
            c[term] += 1
            c[f"{term} grade 3-4"] += grade >= 3
        if any(platelet_grade(m.value, knowledge) >= 1 for m in snapshot.series("platelets") if m.when >= start):
            c["thrombocytopenia"] += 1
        if any((hypertension(snapshot, r.when, knowledge).grade or 0) >= 1 for r in snapshot.blood_pressures if r.when >= start):
            c["hypertension"] += 1
        any_event += bool(terms)
    combo = {"hand-foot skin reaction": 14, "hand-foot skin reaction grade 3-4": 1, "rash": 3, "diarrhoea": 12,
             "diarrhoea grade 3-4": 3, "fatigue": 9, "anorexia": 5, "thrombocytopenia": 1, "hypertension": 1,
             "abdominal pain": 1}
    mono = {"hand-foot skin reaction": 8, "rash": 2, "diarrhoea": 8, "diarrhoea grade 3-4": 2, "fatigue": 6, "anorexia": 4}
    assert +counts[COMBO] == Counter(combo)
    assert +counts[MONO] == Counter(mono)
    assert any_event >= 30  # the paper: sorafenib-related adverse events in about 90%


def test_abdominal_pain_is_recorded_once_as_in_table_2():
    pain = [
        path.stem
        for path in sorted(COHORT_DIR.glob("*.json"))
        for e in json.loads(path.read_text())["entry"]
        if any(c.get("code") == "21522001" for c in e["resource"].get("code", {}).get("coding", []))
    ]
    assert len(pain) == 1


def test_ages_at_sorafenib_start(cohort_snapshots, cohort_dates):
    ages = defaultdict(list)
    for pid, snapshot in cohort_snapshots.items():
        start, _ = cohort_dates[pid]
        ages[arm_of(snapshot, start)].append(age_on(snapshot.patient.birth_date, start))
    assert (round(statistics.mean(ages[COMBO]), 1), round(statistics.stdev(ages[COMBO]), 1)) == (55.2, 15.1)
    assert (round(statistics.mean(ages[MONO]), 1), round(statistics.stdev(ages[MONO]), 1)) == (61.1, 12.0)


# -- hcc-cds demo ---------------------------------------------------------------------------------


def test_demo_json_prints_one_object_per_patient(capsys, load_day):
    assert main(["--json", "--today", load_day.isoformat()]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 34
    objects = [json.loads(line) for line in lines]
    keys = {"patient", "arm", "tace_resistance", "mrecist", "child_pugh_class", "bclc", "ecog", "recommendation"}
    for obj in objects:
        assert keys <= set(obj)
        assert all(v is None or isinstance(v, (str, int)) for v in obj.values())
    assert [o["patient"] for o in objects] == list(COHORT_PATIENT_IDS)
    assert Counter(o["arm"] for o in objects) == {COMBO: 22, MONO: 12}
    assert Counter((o["arm"], o["mrecist"]) for o in objects) == {
        (COMBO, "CR"): 3, (COMBO, "PR"): 10, (COMBO, "SD"): 2, (COMBO, "PD"): 7, (MONO, "SD"): 5, (MONO, "PD"): 7,
    }
    assert {o["tace_resistance"] for o in objects} == {"met"}


def test_demo_table_shows_published_and_computed(capsys, load_day):
    assert main(["--today", load_day.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "Table 1, published vs computed by the service" in out
    assert out.count("cohort-") == 34
    assert "TACE-resistant (JSH 2010) at sorafenib start: 34 of 34." in out
