"""Writes the synthetic study cohort: 34 FHIR R4 patients shaped after the source study (issue 10).

Run from anywhere: ``python -m offline.cohort.generate`` writes
``service/demo/data/cohort/cohort-NN.json`` (one collection Bundle per patient);
``--check`` only compares what it would write with the files (exit 1 on a difference).
Deterministic: a fixed patient table plus per-patient ``random.Random`` streams seeded
by strings (stable across Python versions); no clock, no network.

Raw inputs only: demographics, diagnoses, procedures, medications, labs, performance
scores, per-lesion viable diameters, blood pressure and clinician-graded adverse events.
No Child-Pugh, BCLC, mRECIST, TACE-resistance or eligibility code is written: the
service must derive every one of them. Dates are ``@day-N`` tokens (N days before the
day the demo data is loaded), birth dates included, so ages at sorafenib start hold
whatever the load day.

How the study's figures are met (``PATIENTS`` is the table; ``_check_table`` asserts the counts):

* Arms: 22 sorafenib + TACE (TACE sessions after sorafenib start), 12 sorafenib alone
  (TACE not done: technically inaccessible 2, refused 6, as ``not-done`` Procedures with
  ``statusReason``; multiple extrahepatic metastases 4, as two or more metastasis Conditions).
* Sex 29 M / 5 F (9/3 alone, 20/2 combined). Age at sorafenib start: arm means and SDs
  of Table 1 (61.1 +/- 12.0 and 55.2 +/- 15.1); the overall mean is then 57.3, not the
  published 54.9, which no data can match (dossier §4.1, inconsistency 2). The 72- and
  77-year-old men of Figures 4 and 5 are combination patients with biloma.
* Hepatitis B 33 (all with entecavir), hepatitis C 1 (combined arm); cirrhosis for all.
* TACE before sorafenib: 2-10 sessions, mean 4.7 (SD 2.1), first TACE to sorafenib a
  median of 21 months (4-37). The series ends in resistance as JSH 2010 defines it:
  after the first sessions, imaging shows PR against the series baseline; the imaging
  after the second-to-last session is SD (no CR/PR) and the one after the last session,
  at most 62 days later, is PD (sum of viable target diameters >= 20% above the nadir).
  With two sessions only, the first is followed by SD. Sorafenib starts 8-19 days later.
* BCLC by tumour extent: B for all at the first TACE (no portal-vein tumour thrombus or
  metastasis; multinodular with the largest nodule > 30 mm); at sorafenib start C for 11
  (6 alone, 5 combined): a portal-vein tumour thrombus or an extrahepatic metastasis
  recorded on the date of the imaging that showed the last TACE failure.
* Child-Pugh at sorafenib start A 12 / B 22 (alone 3/9, combined 9/13), from bilirubin,
  albumin and INR taken 3 days before it (and mild ascites for some class B), the same
  class again 1 day before the study imaging; class A at the first TACE.
* ECOG at sorafenib start 0-1: 24, 2: 10 (alone 5/7, combined 19/3). ECOG 0-1 patients
  have a Karnofsky score the same day (90 for ECOG 0, 80 for ECOG 1); ECOG 2 patients
  have ECOG only, so the service warns that the study's Karnofsky > 70 criterion
  cannot be checked (inconsistency 1). ECOG 0 with Karnofsky 90 at the first TACE.
* Sorafenib: MedicationRequest (RxNorm 597747) 400 mg twice daily from the start date;
  6 patients (2 alone, 4 combined: those with a grade 3-4 adverse event) stop it on the
  event's day and resume 5-8 days later at 400 mg once daily (4) or every other day (2).
* mRECIST at the study imaging (the first tumour imaging at least 60 days after
  sorafenib start, 86-94 days after it): combined CR 3, PR 10, SD 2, PD 7; alone SD 5,
  PD 7, against the baseline imaging of the last TACE failure. PD is target growth
  (>= 30% above baseline), a new liver lesion >= 12 mm, a new portal-vein tumour
  thrombus, or a new metastasis.
* Adverse events (Table 2) per arm: clinician-graded hand-foot skin reaction, rash,
  diarrhoea, fatigue, anorexia (SNOMED, valueInteger = CTCAE grade) at the monthly
  visits; thrombocytopenia from platelets (one patient: 86 x10^9/L; everyone else stays
  >= 150); hypertension from two readings of 148/92 and 152/95 mm[Hg] a week apart
  (everyone else < 120/80); abdominal pain (SNOMED 21522001) for one patient, which the
  service does not read (not in its value sets).
* Survival: the reconstructed pseudo patients of each arm
  (``rules/data/benchmarks/tace-resistant-hcc.tables.json``, ``arms[].pseudo_ipd``)
  assigned by a clinical ranking (PD, ECOG 2, BCLC C shortest; CR longest). A death is
  ``Patient.deceasedDateTime`` = sorafenib start + months x 30.4375 days, on or before
  the load day; the 4 censored patients are alive and were followed up to the load day
  (the study end). The pairing of TACE counts and months from first TACE was chosen so
  that the median survival from diagnosis is 28.5 (alone) and 37.5 (combined) months.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

SEED = "hcc-cds-cohort-v1"
MONTH_DAYS = 30.4375
OUT_DIR = Path(__file__).resolve().parents[2] / "service" / "demo" / "data" / "cohort"
BENCHMARK_TABLES = ("data", "benchmarks", "tace-resistant-hcc.tables.json")
ARMS = ("sorafenib-plus-tace", "sorafenib-alone")
COMBO, MONO = ARMS
# enrolment April 2008 - January 2015, study end 31 December 2015 (= the load day)
ENROLMENT_FIRST_DAY = -2830
ENROLMENT_LAST_DAY = -335

LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CS_CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CS_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CS_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSCAT = "http://terminology.hl7.org/CodeSystem/observation-category"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
ID_SYSTEM = "urn:hcc-cds-demo"

# ---------------------------------------------------------------------------------------------
# The patient table. Columns:
#   no, arm, sex, age at sorafenib start, virus, ECOG at start, Child-Pugh class at start,
#   extent at start ("B", or "C:" + pvtt / met-lung / met-adrenal / mets-lung / mets-abdominal-wall
#   / mets-lymph-nodes), why no TACE with sorafenib (alone arm), mRECIST at ~3 months,
#   kind of PD, TACE sessions before sorafenib, months from the first TACE to sorafenib,
#   extras (g3-diarrhoea / g3-hfsr, reduce-qd / reduce-qod, biloma-fig4 / biloma-fig5 / biloma,
#   thrombocytopenia, hypertension, abdominal-pain).
# ---------------------------------------------------------------------------------------------
PATIENTS: tuple[tuple, ...] = (
    (1, COMBO, "male", 48, "B", 0, "A", "B", None, "CR", None, 8, 22, ()),
    (2, COMBO, "male", 77, "B", 1, "A", "B", None, "CR", None, 5, 33, ("biloma-fig5",)),
    (3, COMBO, "male", 55, "B", 0, "B", "B", None, "CR", None, 8, 37, ()),
    (4, COMBO, "male", 72, "B", 0, "A", "B", None, "PR", None, 5, 21, ("biloma-fig4",)),
    (5, COMBO, "male", 62, "B", 1, "A", "B", None, "PR", None, 9, 29, ("g3-diarrhoea", "reduce-qod")),
    (6, COMBO, "female", 45, "B", 1, "B", "B", None, "PR", None, 4, 30, ()),
    (7, COMBO, "male", 63, "B", 0, "B", "B", None, "PR", None, 4, 12, ("biloma", "abdominal-pain")),
    (8, COMBO, "male", 56, "B", 1, "B", "B", None, "PR", None, 2, 4, ("g3-hfsr", "reduce-qd")),
    (9, COMBO, "male", 39, "B", 0, "A", "B", None, "PR", None, 2, 4, ()),
    (10, COMBO, "male", 34, "B", 1, "B", "C:pvtt", None, "PR", None, 3, 8, ()),
    (11, COMBO, "male", 58, "B", 1, "A", "C:met-lung", None, "PR", None, 7, 21, ("hypertension",)),
    (12, COMBO, "male", 47, "C", 1, "B", "B", None, "PR", None, 2, 5, ("g3-diarrhoea", "reduce-qd")),
    (13, COMBO, "male", 76, "B", 2, "B", "B", None, "PR", None, 3, 17, ()),
    (14, COMBO, "female", 55, "B", 1, "B", "B", None, "SD", None, 4, 16, ("thrombocytopenia",)),
    (15, COMBO, "male", 40, "B", 1, "A", "C:pvtt", None, "SD", None, 7, 26, ()),
    (16, COMBO, "male", 64, "B", 1, "B", "B", None, "PD", "growth", 3, 11, ("g3-diarrhoea", "reduce-qd")),
    (17, COMBO, "male", 31, "B", 0, "A", "B", None, "PD", "new-lesion", 5, 15, ()),
    (18, COMBO, "male", 78, "B", 2, "B", "C:pvtt", None, "PD", "growth", 2, 6, ()),
    (19, COMBO, "male", 48, "B", 1, "B", "C:met-adrenal", None, "PD", "new-lesion", 7, 35, ()),
    (20, COMBO, "male", 79, "B", 2, "B", "B", None, "PD", "growth", 5, 24, ()),
    (21, COMBO, "male", 32, "B", 1, "A", "B", None, "PD", "new-pvtt", 4, 21, ()),
    (22, COMBO, "male", 55, "B", 1, "B", "B", None, "PD", "growth", 4, 25, ()),
    (23, MONO, "male", 47, "B", 1, "A", "B", "refused", "SD", None, 6, 31, ()),
    (24, MONO, "female", 56, "B", 0, "B", "B", "refused", "SD", None, 6, 21, ("g3-diarrhoea", "reduce-qd")),
    (25, MONO, "male", 69, "B", 2, "B", "C:pvtt", "inaccessible", "SD", None, 6, 18, ()),
    (26, MONO, "male", 58, "B", 1, "A", "C:mets-lung", "metastases", "SD", None, 5, 19, ()),
    (27, MONO, "female", 70, "B", 2, "B", "B", "refused", "SD", None, 5, 28, ()),
    (28, MONO, "male", 69, "B", 2, "B", "B", "refused", "PD", "new-metastasis", 2, 5, ()),
    (29, MONO, "male", 80, "B", 2, "B", "C:mets-lung", "metastases", "PD", "growth", 3, 27, ()),
    (30, MONO, "male", 60, "B", 2, "B", "C:mets-abdominal-wall", "metastases", "PD", "new-lesion", 5, 22, ()),
    (31, MONO, "male", 44, "B", 1, "B", "C:mets-lymph-nodes", "metastases", "PD", "growth", 10, 34,
     ("g3-diarrhoea", "reduce-qod")),
    (32, MONO, "male", 70, "B", 2, "B", "C:pvtt", "refused", "PD", "growth", 3, 23, ()),
    (33, MONO, "female", 68, "B", 2, "A", "B", "inaccessible", "PD", "new-lesion", 3, 20, ()),
    (34, MONO, "male", 42, "B", 1, "B", "B", "refused", "PD", "growth", 3, 14, ()),
)

# Survival ranking per arm, shortest first: the arm's pseudo patients, sorted by (month, died),
# are given to these patients in this order (PD, ECOG 2 and BCLC C first; CR last).
SURVIVAL_ORDER = {
    COMBO: (18, 20, 19, 16, 22, 15, 21, 17, 13, 14, 10, 11, 9, 12, 8, 2, 6, 3, 7, 5, 4, 1),
    MONO: (29, 30, 32, 28, 33, 31, 25, 34, 27, 26, 24, 23),
}

# Table 2, per arm: patients with the event (any grade); grade 3-4 patients are those marked in the table.
ADVERSE_EVENTS = {
    COMBO: {"hfsr": 14, "rash": 3, "diarrhoea": 12, "fatigue": 9, "anorexia": 5},
    MONO: {"hfsr": 8, "rash": 2, "diarrhoea": 8, "fatigue": 6, "anorexia": 4},
}
AE_TERMS = {  # the value set's adverse_event_grade concept (rules/data/value_sets.json)
    "hfsr": ("238996002", "Palmar-plantar erythrodysesthesia (hand-foot skin reaction)"),
    "rash": ("271807003", "Eruption of skin (rash)"),
    "diarrhoea": ("62315008", "Diarrhea"),
    "fatigue": ("84229001", "Fatigue"),
    "anorexia": ("79890006", "Loss of appetite (anorexia)"),
}
ABDOMINAL_PAIN = ("21522001", "Abdominal pain")  # Table 2, not in the service's value sets

METASTASES = {  # ICD-10-CM (value set prefixes C77-C79), one Condition per deposit
    "met-lung": (("C78.01", "Secondary malignant neoplasm of right lung", "right lower lobe, single nodule"),),
    "met-adrenal": (("C79.71", "Secondary malignant neoplasm of right adrenal gland", "right adrenal gland"),),
    "mets-lung": (
        ("C78.01", "Secondary malignant neoplasm of right lung", "right lung, multiple nodules"),
        ("C78.02", "Secondary malignant neoplasm of left lung", "left lung, multiple nodules"),
    ),
    "mets-abdominal-wall": (
        ("C79.89", "Secondary malignant neoplasm of other specified sites", "abdominal wall, right upper quadrant"),
        ("C79.89", "Secondary malignant neoplasm of other specified sites", "abdominal wall, left flank"),
    ),
    "mets-lymph-nodes": (
        ("C77.2", "Secondary malignant neoplasm of intra-abdominal lymph nodes", "retroperitoneal para-aortic lymph nodes"),
        ("C77.2", "Secondary malignant neoplasm of intra-abdominal lymph nodes", "retroperitoneal aortocaval lymph nodes"),
    ),
}
NEW_METASTASIS = ("C78.01", "Secondary malignant neoplasm of right lung", "right lung, new nodule")
NOT_DONE_REASONS = {
    "refused": {
        "coding": [{"system": SCT, "code": "183944003", "display": "Procedure refused"}],
        "text": "Patient refused further TACE",
    },
    "inaccessible": {"text": "Tumour-feeding artery not technically accessible on angiography (DSA)"},
}


@dataclass
class Plan:
    """One patient's plan: the table row plus the survival it was given."""

    no: int
    arm: str
    sex: str
    age: int
    virus: str
    ecog: int
    child_pugh: str
    extent: str
    no_tace_reason: str | None
    mrecist: str
    pd_kind: str | None
    tace_before: int
    months_to_sorafenib: int
    extras: tuple[str, ...]
    months: float = 0.0
    died: bool = True
    adverse: dict[str, int] = field(default_factory=dict)  # term -> grade

    @property
    def pid(self) -> str:
        return f"cohort-{self.no:02d}"

    @property
    def extent_kind(self) -> str | None:
        return self.extent.split(":", 1)[1] if self.extent.startswith("C:") else None


def pseudo_patients() -> dict[str, list[tuple[float, bool]]]:
    """The reconstructed pseudo patients of each arm, sorted by (month, died)."""
    text = resources.files("rules").joinpath(*BENCHMARK_TABLES).read_text(encoding="utf-8")
    tables = json.loads(text)
    out = {}
    for arm in tables["arms"]:
        if arm["arm"] in ARMS:
            out[arm["arm"]] = sorted((float(p["month"]), bool(p["died"])) for p in arm["pseudo_ipd"])
    return out


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join([SEED, *map(str, parts)]))


def _between(r: random.Random, low: int, high: int) -> int:
    """An integer in [low, high] from ``random()`` only (stable across Python versions)."""
    return low + int(r.random() * (high - low + 1))


def _uniform(r: random.Random, low: float, high: float, digits: int = 1) -> float:
    return round(low + r.random() * (high - low), digits)


def plans() -> list[Plan]:
    rows = [Plan(*row) for row in PATIENTS]
    by_no = {p.no: p for p in rows}
    survival = pseudo_patients()
    for arm in ARMS:
        order = SURVIVAL_ORDER[arm]
        if len(order) != len(survival[arm]):
            raise ValueError(f"{arm}: {len(survival[arm])} pseudo patients, {len(order)} in the ranking")
        for no, (months, died) in zip(order, survival[arm]):
            by_no[no].months, by_no[no].died = months, died
    _assign_adverse_events(rows)
    _check_table(rows)
    return rows


def _assign_adverse_events(rows: list[Plan]) -> None:
    for arm in ARMS:
        members = [p for p in rows if p.arm == arm]
        for term, count in ADVERSE_EVENTS[arm].items():
            severe = [p for p in members if f"g3-{term}" in p.extras]
            others = [p for p in members if p not in severe]
            _rng("ae", arm, term).shuffle(others)
            chosen = severe + others[: count - len(severe)]
            for p in chosen:
                p.adverse[term] = 3 if p in severe else 1 + int(_rng("grade", p.pid, term).random() * 2)


def _check_table(rows: list[Plan]) -> None:
    """The published counts the table must reproduce (Table 1, Table 2, Results)."""

    def count(arm: str, pred) -> int:
        return sum(1 for p in rows if p.arm == arm and pred(p))

    expected = {
        "n": ((22, 12), lambda p: True),
        "male": ((20, 9), lambda p: p.sex == "male"),
        "ecog 0-1": ((19, 5), lambda p: p.ecog <= 1),
        "hepatitis B": ((21, 12), lambda p: p.virus == "B"),
        "BCLC B": ((17, 6), lambda p: p.extent == "B"),
        "Child-Pugh A": ((9, 3), lambda p: p.child_pugh == "A"),
        "CR": ((3, 0), lambda p: p.mrecist == "CR"),
        "PR": ((10, 0), lambda p: p.mrecist == "PR"),
        "SD": ((2, 5), lambda p: p.mrecist == "SD"),
        "PD": ((7, 7), lambda p: p.mrecist == "PD"),
        "refused": ((0, 6), lambda p: p.no_tace_reason == "refused"),
        "inaccessible": ((0, 2), lambda p: p.no_tace_reason == "inaccessible"),
        "metastases": ((0, 4), lambda p: p.no_tace_reason == "metastases"),
        "dose reduced": ((4, 2), lambda p: any(x.startswith("reduce-") for x in p.extras)),
        "grade 3-4": ((4, 2), lambda p: any(g >= 3 for g in p.adverse.values())),
        "deaths": ((18, 12), lambda p: p.died),
    }
    for name, ((combo, mono), pred) in expected.items():
        got = (count(COMBO, pred), count(MONO, pred))
        if got != (combo, mono):
            raise AssertionError(f"patient table: {name} is {got}, expected {(combo, mono)}")
    sessions = [p.tace_before for p in rows]
    months = [p.months_to_sorafenib for p in rows]
    assert min(sessions) == 2 and max(sessions) == 10 and round(statistics.mean(sessions), 1) == 4.7
    assert round(statistics.stdev(sessions), 1) == 2.1
    assert statistics.median(months) == 21 and min(months) == 4 and max(months) == 37
    for arm, (mean, sd) in ((COMBO, (55.2, 15.1)), (MONO, (61.1, 12.0))):
        ages = [p.age for p in rows if p.arm == arm]
        assert (round(statistics.mean(ages), 1), round(statistics.stdev(ages), 1)) == (mean, sd), arm
    for p in rows:
        assert not (p.mrecist == "CR" and p.extent != "B"), "CR needs no thrombus or metastasis"
        assert (p.arm == MONO) == (p.no_tace_reason is not None)
        assert (p.no_tace_reason == "metastases") == (p.extent_kind or "").startswith("mets-")
        assert (p.mrecist == "PD") == (p.pd_kind is not None)


# ---------------------------------------------------------------------------------------------
# Timeline and tumour sizes
# ---------------------------------------------------------------------------------------------


def day(n: int) -> str:
    return f"@day{n:+d}"


@dataclass
class Timeline:
    """Day offsets (relative to the load day) of one patient's events."""

    start: int  # sorafenib start
    end: int  # death, or the load day (0) for the censored
    diagnosis: int
    baseline_imaging: int  # before the first TACE
    sessions: list[int]  # TACE before sorafenib
    series_imaging: list[int]  # after each session before sorafenib (the last one = progression)
    study_imaging: int  # the ~3-month study imaging (the assessment date)
    visits: tuple[int, int]  # monthly follow-ups after the start
    later_sessions: list[int]  # TACE after sorafenib start (combined arm)


def timeline(p: Plan) -> Timeline:
    r = _rng("timeline", p.pid)
    survival_days = round(p.months * MONTH_DAYS)
    if p.died:
        latest_start = min(ENROLMENT_LAST_DAY, -survival_days - 1)
        start = latest_start - int(r.random() * (latest_start - ENROLMENT_FIRST_DAY + 1))
        end = start + survival_days
    else:  # censored at the study end, which is the load day
        start, end = -survival_days, 0
    n = p.tace_before
    to_start = round(p.months_to_sorafenib * MONTH_DAYS)
    first = start - to_start
    start_gap = _between(r, 8, 19) if n > 2 else _between(r, 8, 12)  # progression imaging -> sorafenib
    pd_gap = _between(r, 38, 62) if n > 2 else _between(r, 38, 50)  # last TACE -> progression imaging
    progression = start - start_gap
    last = progression - pd_gap
    sessions: list[int]
    if n == 2:
        sessions = [first, last]
        if not 55 <= last - first <= 145:
            raise AssertionError(f"{p.pid}: {last - first} days between two sessions")
    else:
        before_last = last - _between(r, 60, 89)
        span = before_last - first
        if span < 50 * (n - 2):
            raise AssertionError(f"{p.pid}: {n} sessions do not fit in {p.months_to_sorafenib} months")
        middle = []
        for i in range(1, n - 2):
            share = span * i / (n - 2)
            middle.append(first + round(share + (r.random() - 0.5) * min(20, span / (n - 2) - 50)))
        sessions = [first, *middle, before_last, last]
    imaging = []
    for i, s in enumerate(sessions[:-1]):
        after = s + _between(r, 30, 41) if i < len(sessions) - 2 else s + _between(r, 35, 44)
        assert after < sessions[i + 1] - 5
        imaging.append(after)
    imaging.append(progression)
    study = start + min(_between(r, 86, 94), survival_days - 5)
    assert study - start >= 60 and study < end
    visits = (start + _between(r, 27, 30), start + _between(r, 55, 58))
    later: list[int] = []
    if p.arm == COMBO:
        t = start + _between(r, 14, 28)
        limit = end - 60
        if "biloma-fig4" in p.extras:
            limit = end - 150  # biloma 2 months after the last TACE, death from liver failure 3 months later
        elif "biloma-fig5" in p.extras:
            limit = end - 75
        elif "biloma" in p.extras:
            limit = end - 210
        biloma = any(x.startswith("biloma") for x in p.extras)
        while t <= (limit - 80 if biloma else limit) and len(later) < 8:
            later.append(t)
            t += _between(r, 80, 130)
        if biloma:  # the last session on the planned day
            later.append(limit)
        assert later and later[0] < study and later == sorted(later)
    return Timeline(
        start=start,
        end=end,
        diagnosis=first - _between(r, 25, 35),
        baseline_imaging=first - _between(r, 3, 10),
        sessions=sessions,
        series_imaging=imaging,
        study_imaging=study,
        visits=visits,
        later_sessions=later,
    )


@dataclass
class Sizes:
    """Viable diameters (mm) per lesion on each imaging day; absent = lesion not yet seen."""

    lesions: dict[str, dict[int, int]]  # lesion letter -> {day: mm}


def _split(total: int, a0: int, b0: int) -> tuple[int, int]:
    a = round(total * a0 / (a0 + b0))
    return a, total - a


def sizes(p: Plan, tl: Timeline) -> Sizes:
    """Viable diameters that give the TACE-series course and the study's response at ~3 months."""
    r = _rng("sizes", p.pid)
    a0, b0 = _between(r, 46, 76), _between(r, 21, 36)
    c0 = _between(r, 10, 18) if r.random() < 0.6 else None
    d0 = _between(r, 6, 9) if r.random() < 0.3 else None
    s0 = a0 + b0
    lesions: dict[str, dict[int, int]] = {"a": {}, "b": {}}
    if c0:
        lesions["c"] = {}
    if d0:
        lesions["d"] = {}
    days = [tl.baseline_imaging, *tl.series_imaging]
    n = p.tace_before

    # target sums on each imaging day of the TACE series (series baseline first)
    sums = [s0]
    if n == 2:
        stable = round(s0 * _uniform(r, 0.82, 1.02, 3))
        nadir = min(s0, stable)
        sums.append(stable)
    else:
        nadir = math.ceil(s0 * _uniform(r, 0.635, 0.66, 3))
        high = math.floor(s0 * 0.70)
        for i in range(1, n - 1):  # PR after sessions 1 .. n-2, ending at the nadir
            value = nadir if i == n - 2 else max(nadir, high - round((high - nadir) * i / (n - 2)))
            sums.append(value)
        stable = math.floor(s0 * 0.70) + 1 + _between(r, 0, 2)  # SD: not PR, not 20% above the nadir
        sums.append(stable)
        for value in sums[1:-1]:
            assert value * 100 <= s0 * 70, "PR"
        assert stable * 100 > s0 * 70 and stable * 100 < nadir * 120, f"{p.pid}: SD {stable} vs nadir {nadir}"
    progression = math.ceil(nadir * _uniform(r, 1.28, 1.45, 3))
    assert progression * 100 >= nadir * 120
    sums.append(progression)
    for when, total in zip(days, sums):
        a, b = _split(total, a0, b0)
        lesions["a"][when], lesions["b"][when] = a, b
        ratio = total / s0
        if c0:
            lesions["c"][when] = max(0, round(c0 * ratio) - (3 if ratio < 0.72 else 0))
        if d0:
            lesions["d"][when] = round(d0 * ratio) if ratio >= 0.72 else 0
    pd_day = tl.series_imaging[-1]
    a_p, b_p = lesions["a"][pd_day], lesions["b"][pd_day]
    if p.extent == "B":
        assert a_p > 30, f"{p.pid}: largest nodule {a_p} mm at sorafenib start is not BCLC B by extent"
    if r.random() < 0.3 and b_p > 13:  # a new liver nodule on the imaging of the last TACE failure
        lesions["e"] = {pd_day: _between(r, 10, min(15, b_p - 1))}

    # the ~3-month study imaging, against the baseline (the progression imaging)
    baseline = a_p + b_p
    m = tl.study_imaging
    others = [x for x in lesions if x not in ("a", "b")]
    if p.mrecist == "CR":
        total = 0
    elif p.mrecist == "PR":
        total = round(baseline * _uniform(r, 0.34, 0.62, 3))
        assert total * 100 <= baseline * 70
    elif p.mrecist == "SD" or p.pd_kind != "growth":
        total = round(baseline * _uniform(r, 0.84, 1.08, 3))
        assert baseline * 70 < total * 100 < baseline * 120
    else:
        total = math.ceil(baseline * _uniform(r, 1.3, 1.55, 3))
    a, b = _split(total, a_p, b_p)
    lesions["a"][m], lesions["b"][m] = a, b
    for x in others:
        at_pd = lesions[x].get(pd_day, 0)
        lesions[x][m] = 0 if p.mrecist in ("CR", "PR") else round(at_pd * total / baseline)
    if p.pd_kind == "new-lesion":
        lesions["f"] = {m: _between(r, 12, 22)}
    return Sizes(lesions)


# ---------------------------------------------------------------------------------------------
# Labs
# ---------------------------------------------------------------------------------------------


def child_pugh_points(bilirubin: float, albumin: float, inr: float, ascites: bool) -> int:
    """Pugh's score with the service's cut-offs (thresholds.json), for the generator's own check."""
    points = 1 if bilirubin < 2.0 else 2 if bilirubin <= 3.0 else 3
    points += 1 if albumin > 3.5 else 2 if albumin >= 2.8 else 3
    points += 1 if inr < 1.7 else 2 if inr <= 2.3 else 3
    return points + (2 if ascites else 1) + 1


# Child-Pugh B patterns: (bilirubin range, albumin range, INR range, mild ascites) -> 7, 7, 8, 8, 9 points
B_PATTERNS = (
    ((2.1, 2.8), (3.0, 3.4), (1.05, 1.45), False),
    ((1.0, 1.8), (2.9, 3.4), (1.05, 1.45), True),
    ((2.1, 2.8), (3.0, 3.4), (1.75, 2.1), False),
    ((2.1, 2.8), (2.9, 3.3), (1.1, 1.5), True),
    ((2.2, 2.8), (2.5, 2.7), (1.75, 2.0), False),
)
A_PATTERNS = (
    ((0.5, 1.6), (3.7, 4.6), (0.95, 1.3)),
    ((0.7, 1.8), (3.6, 4.2), (1.0, 1.35)),
    ((0.8, 1.8), (3.0, 3.4), (1.0, 1.4)),  # 6 points
)


def liver_values(p: Plan) -> tuple[tuple, tuple, bool]:
    """(labs at sorafenib start, labs before the study imaging, mild ascites) as (bili, alb, INR)."""
    r = _rng("liver", p.pid)
    if p.child_pugh == "A":
        bili, alb, inr = A_PATTERNS[_between(r, 0, len(A_PATTERNS) - 1)]
        ascites = False
    else:
        bili, alb, inr, ascites = B_PATTERNS[_between(r, 0, len(B_PATTERNS) - 1)]
    values = []
    for _ in range(2):
        values.append((_uniform(r, *bili), _uniform(r, *alb), _uniform(r, *inr, digits=2)))
    for v in values:
        points = child_pugh_points(*v, ascites)
        klass = "A" if points <= 6 else "B" if points <= 9 else "C"
        assert klass == p.child_pugh and v[0] <= 3.0, f"{p.pid}: Child-Pugh {points} ({klass})"
    return values[0], values[1], ascites


# ---------------------------------------------------------------------------------------------
# FHIR resources
# ---------------------------------------------------------------------------------------------


class Builder:
    def __init__(self, pid: str) -> None:
        self.pid = pid
        self.entries: list[dict] = []
        self.counter = 0

    def add(self, resource: dict) -> dict:
        self.entries.append({"fullUrl": f"{ID_SYSTEM}:{resource['resourceType']}/{resource['id']}", "resource": resource})
        return resource

    def new_id(self, kind: str) -> str:
        self.counter += 1
        return f"{self.pid}-{kind}-{self.counter}"

    @property
    def subject(self) -> dict:
        return {"reference": f"Patient/{self.pid}"}

    @property
    def hcc_ref(self) -> dict:
        return {"reference": f"Condition/{self.pid}-hcc"}

    # -- resources --------------------------------------------------------------------------
    def patient(self, p: Plan, birth: int, deceased: int | None) -> None:
        resource = {
            "resourceType": "Patient",
            "id": self.pid,
            "meta": {"profile": [US_CORE + "us-core-patient", MCODE + "mcode-cancer-patient"]},
            "identifier": [{"system": f"{ID_SYSTEM}:mrn", "value": self.pid.upper()}],
            "name": [{"family": "Cohort", "given": [f"Patient {p.no:02d}"]}],
            "gender": p.sex,
            "birthDate": day(birth),
        }
        if deceased is not None:
            resource["deceasedDateTime"] = day(deceased)
        self.add(resource)

    def condition(
        self,
        codings: list[dict] | None,
        text: str,
        onset: int,
        *,
        rid: str | None = None,
        severity: str | None = None,
        body_site: dict | None = None,
        profile: str | None = None,
        category: str = "problem-list-item",
    ) -> dict:
        resource: dict = {"resourceType": "Condition", "id": rid or self.new_id("cond")}
        if profile:
            resource["meta"] = {"profile": [profile]}
        resource.update(
            {
                "clinicalStatus": {"coding": [{"system": CS_CLIN, "code": "active"}]},
                "verificationStatus": {"coding": [{"system": CS_VER, "code": "confirmed"}]},
                "category": [{"coding": [{"system": CS_CAT, "code": category}]}],
            }
        )
        if severity:
            resource["severity"] = {"coding": [{"system": SCT, "code": "255604002", "display": "Mild"}]}
        code: dict = {"text": text}
        if codings:
            code = {"coding": codings, "text": text}
        resource["code"] = code
        if body_site:
            resource["bodySite"] = [body_site]
        resource.update({"subject": self.subject, "onsetDateTime": day(onset), "recordedDate": day(onset)})
        return self.add(resource)

    def tace(self, when: int, *, status: str = "completed", reason: dict | None = None) -> None:
        resource: dict = {
            "resourceType": "Procedure",
            "id": self.new_id("tace"),
            "meta": {"profile": [US_CORE + "us-core-procedure"]},
            "status": status,
        }
        if reason:
            resource["statusReason"] = reason
        resource.update(
            {
                "code": {
                    "coding": [
                        {"system": SCT, "code": "441525007", "display": "Percutaneous transluminal chemoembolisation of artery"},
                        {"system": CPT, "code": "37243", "display": "Vascular embolization or occlusion for tumors"},
                    ],
                    "text": "Transarterial chemoembolization (TACE) of liver tumour",
                },
                "subject": self.subject,
                "performedDateTime": day(when),
                "bodySite": [{"coding": [{"system": SCT, "code": "10200004", "display": "Liver structure"}]}],
                "reasonReference": [self.hcc_ref],
            }
        )
        if status == "completed":
            resource["note"] = [
                {"text": "Epirubicin and oxaliplatin emulsified with lipiodol, gelatin sponge; superselective catheterisation."}
            ]
        self.add(resource)

    def procedure_text(self, text: str, when: int) -> None:
        self.add(
            {
                "resourceType": "Procedure",
                "id": self.new_id("proc"),
                "status": "completed",
                "code": {"text": text},
                "subject": self.subject,
                "performedDateTime": day(when),
                "reasonReference": [self.hcc_ref],
            }
        )

    def lab(self, code: str, display: str, value: float, unit: str, when: int) -> None:
        self.add(
            {
                "resourceType": "Observation",
                "id": self.new_id("lab"),
                "meta": {"profile": [US_CORE + "us-core-observation-lab"]},
                "status": "final",
                "category": [{"coding": [{"system": OBSCAT, "code": "laboratory"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                "subject": self.subject,
                "effectiveDateTime": day(when),
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            }
        )

    def score(self, code: str, display: str, value: int, when: int, profile: str) -> None:
        self.add(
            {
                "resourceType": "Observation",
                "id": self.new_id("ps"),
                "meta": {"profile": [MCODE + profile]},
                "status": "final",
                "category": [{"coding": [{"system": OBSCAT, "code": "survey"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                "subject": self.subject,
                "effectiveDateTime": day(when),
                "valueInteger": value,
            }
        )

    def performance(self, ecog: int, when: int) -> None:
        self.score("89247-1", "ECOG Performance Status score", ecog, when, "mcode-ecog-performance-status")
        if ecog <= 1:  # the study's Karnofsky > 70; ECOG 2 patients have none (inconsistency 1)
            kps = 90 if ecog == 0 else 80
            self.score("89243-0", "Karnofsky Performance Status score", kps, when, "mcode-karnofsky-performance-status")

    def blood_pressure(self, systolic: int, diastolic: int, when: int) -> None:
        def component(code: str, display: str, value: int) -> dict:
            return {
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
            }

        self.add(
            {
                "resourceType": "Observation",
                "id": self.new_id("bp"),
                "meta": {"profile": [US_CORE + "us-core-blood-pressure"]},
                "status": "final",
                "category": [{"coding": [{"system": OBSCAT, "code": "vital-signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}], "text": "Blood pressure"},
                "subject": self.subject,
                "effectiveDateTime": day(when),
                "component": [
                    component("8480-6", "Systolic blood pressure", systolic),
                    component("8462-4", "Diastolic blood pressure", diastolic),
                ],
            }
        )

    def graded_event(self, code: str, display: str, grade: int, when: int) -> None:
        self.add(
            {
                "resourceType": "Observation",
                "id": self.new_id("ae"),
                "status": "final",
                "category": [{"coding": [{"system": OBSCAT, "code": "exam"}]}],
                "code": {"coding": [{"system": SCT, "code": code, "display": display}], "text": display},
                "subject": self.subject,
                "effectiveDateTime": day(when),
                "valueInteger": grade,
                "note": [{"text": "Adverse event of sorafenib; valueInteger is the NCI-CTCAE v4.0 grade."}],
            }
        )

    def lesion(self, letter: str, segment: str) -> None:
        self.add(
            {
                "resourceType": "BodyStructure",
                "id": f"{self.pid}-lesion-{letter}",
                "meta": {"profile": [MCODE + "mcode-tumor"]},
                "identifier": [{"system": f"{ID_SYSTEM}:lesion", "value": f"{self.pid}-{letter}"}],
                "morphology": {"coding": [{"system": SCT, "code": "1240414004", "display": "Malignant neoplasm"}]},
                "location": {"coding": [{"system": SCT, "code": "10200004", "display": "Liver structure"}]},
                "description": f"Liver lesion {letter.upper()}, {segment}",
                "patient": self.subject,
            }
        )

    def tumour_size(self, letter: str, mm: int, when: int, mri: bool) -> None:
        method = (
            {"system": SCT, "code": "113091000", "display": "Magnetic resonance imaging"}
            if mri
            else {"system": SCT, "code": "77477000", "display": "Computerized axial tomography"}
        )
        self.add(
            {
                "resourceType": "Observation",
                "id": self.new_id("size"),
                "meta": {"profile": [MCODE + "mcode-tumor-size"]},
                "status": "final",
                "category": [{"coding": [{"system": OBSCAT, "code": "imaging"}]}],
                "code": {"coding": [{"system": LOINC, "code": "21889-1", "display": "Size Tumor"}], "text": "Viable tumour size"},
                "subject": self.subject,
                "focus": [{"reference": f"BodyStructure/{self.pid}-lesion-{letter}"}],
                "effectiveDateTime": day(when),
                "method": {"coding": [method]},
                "component": [
                    {
                        "code": {"coding": [{"system": LOINC, "code": "33728-7", "display": "Size.maximum dimension in Tumor"}]},
                        "valueQuantity": {"value": mm, "unit": "mm", "system": UCUM, "code": "mm"},
                    }
                ],
                "note": [{"text": "Longest diameter of the arterially enhancing (viable) tumour (mRECIST)."}],
            }
        )

    def medication(
        self,
        code: str,
        display: str,
        *,
        start: int,
        end: int | None,
        status: str,
        text: str,
        dose_mg: float,
        frequency: int,
        period: int,
        kind: str = "medrx",
    ) -> None:
        bounds: dict = {"start": day(start)}
        if end is not None:
            bounds["end"] = day(end)
        self.add(
            {
                "resourceType": "MedicationRequest",
                "id": self.new_id(kind),
                "meta": {"profile": [MCODE + "mcode-cancer-related-medication-request"]}
                if kind == "sorafenib"
                else {"profile": [US_CORE + "us-core-medicationrequest"]},
                "status": status,
                "intent": "order",
                "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display},
                "subject": self.subject,
                "authoredOn": day(start),
                "reasonReference": [self.hcc_ref] if kind == "sorafenib" else [{"reference": f"Condition/{self.pid}-virus"}],
                "dosageInstruction": [
                    {
                        "text": text,
                        "timing": {"repeat": {"boundsPeriod": bounds, "frequency": frequency, "period": period, "periodUnit": "d"}},
                        "route": {"coding": [{"system": SCT, "code": "26643006", "display": "Oral route"}]},
                        "doseAndRate": [{"doseQuantity": {"value": dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}}],
                    }
                ],
            }
        )

    def bundle(self) -> dict:
        return {"resourceType": "Bundle", "id": f"{self.pid}-bundle", "type": "collection", "entry": self.entries}


SEGMENTS = ("segment VII", "segment VIII", "segment VI", "segment V", "segment IVa", "segment II", "segment III")


def build(p: Plan) -> dict:
    """One patient's collection Bundle."""
    tl = timeline(p)
    sz = sizes(p, tl)
    r = _rng("record", p.pid)
    b = Builder(p.pid)
    birth = tl.start - round(p.age * 365.25) - _between(r, 120, 240)
    b.patient(p, birth, tl.end if p.died else None)

    # diagnoses
    b.condition(
        [
            {"system": SCT, "code": "109841003", "display": "Liver cell carcinoma"},
            {"system": ICD, "code": "C22.0", "display": "Liver cell carcinoma"},
        ],
        "Hepatocellular carcinoma",
        tl.diagnosis,
        rid=f"{p.pid}-hcc",
        body_site={"coding": [{"system": SCT, "code": "10200004", "display": "Liver structure"}]},
        profile=MCODE + "mcode-primary-cancer-condition",
        category="encounter-diagnosis",
    )
    virus_onset = tl.diagnosis - _between(r, 1500, 7000)
    if p.virus == "B":
        b.condition([{"system": ICD, "code": "B18.1", "display": "Chronic viral hepatitis B without delta-agent"}],
                    "Chronic hepatitis B", virus_onset, rid=f"{p.pid}-virus")
    else:
        b.condition([{"system": ICD, "code": "B18.2", "display": "Chronic viral hepatitis C"}],
                    "Chronic hepatitis C", virus_onset, rid=f"{p.pid}-virus")
    b.condition([{"system": SCT, "code": "19943007", "display": "Cirrhosis of liver"}], "Liver cirrhosis",
                tl.diagnosis - _between(r, 60, 900))
    if p.virus == "B":
        b.medication("306266", "entecavir", start=tl.diagnosis - _between(r, 0, 20), end=tl.end if p.died else None,
                     status="stopped" if p.died else "active", text="0.5 mg once daily", dose_mg=0.5, frequency=1, period=1)

    # lesions
    letters = sorted(sz.lesions)
    for i, letter in enumerate(letters):
        b.lesion(letter, SEGMENTS[(i + p.no) % len(SEGMENTS)])

    # before the first TACE: imaging, labs, performance status
    first = tl.sessions[0]
    imaging_days = sorted({d for sizes_ in sz.lesions.values() for d in sizes_})
    liver_start, liver_study, ascites = liver_values(p)
    pre = (_uniform(r, 0.5, 1.4), _uniform(r, 3.7, 4.5), _uniform(r, 0.95, 1.25, 2))
    assert child_pugh_points(*pre, False) <= 6
    labs_first = first - 2
    afp = _between(r, 8, 1800)
    _panel(b, r, labs_first, pre, afp)
    b.performance(0, labs_first)

    # the TACE series, its imaging
    for s in tl.sessions:
        b.tace(s)
    for i, when in enumerate(imaging_days):
        for letter in letters:
            if when in sz.lesions[letter]:
                b.tumour_size(letter, sz.lesions[letter][when], when, mri=(i + p.no) % 3 == 0)

    # thrombus / metastases appear on the imaging of the last TACE failure
    progression = tl.series_imaging[-1]
    kind = p.extent_kind
    if kind == "pvtt":
        b.condition([{"system": SCT, "code": "17920008", "display": "Portal vein thrombosis"}],
                    "Portal vein tumour thrombus", progression, body_site={"text": "right branch of the portal vein"})
    elif kind:
        for code, display, site in METASTASES[kind]:
            b.condition([{"system": ICD, "code": code, "display": display}], display, progression,
                        body_site={"text": site}, profile=MCODE + "mcode-secondary-cancer-condition")

    # TACE not done (alone arm): the decision before sorafenib
    if p.no_tace_reason in NOT_DONE_REASONS:
        b.tace(tl.start - _between(r, 2, 6), status="not-done", reason=NOT_DONE_REASONS[p.no_tace_reason])

    # sorafenib start: labs, performance, blood pressure
    before_start = tl.start - 3
    if ascites:
        b.condition([{"system": SCT, "code": "389026000", "display": "Ascites"}], "Ascites", tl.start - _between(r, 20, 60),
                    severity="mild")
    _panel(b, r, before_start, liver_start, afp + _between(r, 20, 900))
    b.performance(p.ecog, before_start)
    b.blood_pressure(_between(r, 104, 118), _between(r, 64, 78), before_start)
    _sorafenib(b, p, tl, r)

    # monthly visits: liver labs, platelets, adverse events
    events = _adverse_event_days(p, tl, r)
    for i, visit in enumerate(tl.visits):
        platelets = _between(r, 152, 260)
        if "thrombocytopenia" in p.extras and i == 1:
            platelets = 86
        weight = (i + 1) / 3  # between the values at sorafenib start and before the study imaging (same class)
        liver = tuple(round(x + (y - x) * weight, n) for x, y, n in zip(liver_start, liver_study, (1, 1, 2)))
        _short_panel(b, r, visit, liver, platelets)
        for term, grade, when in events:
            if when == visit:
                b.graded_event(*AE_TERMS[term], grade, when)
    if "hypertension" in p.extras:
        b.blood_pressure(148, 92, tl.visits[0] - 7)
        b.blood_pressure(152, 95, tl.visits[0])
    if "abdominal-pain" in p.extras:
        b.graded_event(*ABDOMINAL_PAIN, 1, tl.visits[1])

    # TACE with sorafenib (combined arm), new thrombus / metastasis at the study imaging
    for s in tl.later_sessions:
        b.tace(s)
    if p.pd_kind == "new-pvtt":
        b.condition([{"system": SCT, "code": "17920008", "display": "Portal vein thrombosis"}],
                    "Portal vein tumour thrombus", tl.study_imaging, body_site={"text": "left branch of the portal vein"})
    if p.pd_kind == "new-metastasis":
        code, display, site = NEW_METASTASIS
        b.condition([{"system": ICD, "code": code, "display": display}], display, tl.study_imaging,
                    body_site={"text": site}, profile=MCODE + "mcode-secondary-cancer-condition")

    # before the study imaging: labs, performance, blood pressure
    before_study = tl.study_imaging - 1
    _panel(b, r, before_study, liver_study, afp + _between(r, -5, 1500) if p.mrecist == "PD" else max(4, afp // 3),
           platelets=110 if "thrombocytopenia" in p.extras else None)
    b.performance(p.ecog, before_study)
    b.blood_pressure(_between(r, 104, 118), _between(r, 64, 78), before_study)

    # biloma after the last TACE with sorafenib (Figures 4 and 5)
    if any(x.startswith("biloma") for x in p.extras):
        biloma = tl.later_sessions[-1] + _between(r, 55, 62)
        b.condition(None, "Intrahepatic biloma after TACE", biloma)
        if "biloma-fig4" in p.extras:
            b.procedure_text("Percutaneous drainage of biloma", biloma + _between(r, 5, 9))
    return b.bundle()


def _panel(b: Builder, r: random.Random, when: int, liver: tuple, afp: int, platelets: int | None = None) -> None:
    bili, alb, inr = liver
    b.lab("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", bili, "mg/dL", when)
    b.lab("1751-7", "Albumin [Mass/volume] in Serum or Plasma", alb, "g/dL", when)
    b.lab("6301-6", "INR in Platelet poor plasma by Coagulation assay", inr, "{INR}", when)
    b.lab("777-3", "Platelets [#/volume] in Blood by Automated count", platelets or _between(r, 152, 260), "10*9/L", when)
    b.lab("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", _uniform(r, 0.6, 1.1), "mg/dL", when)
    b.lab("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", _between(r, 18, 85), "U/L", when)
    b.lab("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", _between(r, 22, 95), "U/L", when)
    b.lab("1834-1", "Alpha-1-Fetoprotein [Mass/volume] in Serum or Plasma", afp, "ng/mL", when)


def _short_panel(b: Builder, r: random.Random, when: int, liver: tuple, platelets: int) -> None:
    bili, alb, inr = liver
    b.lab("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", bili, "mg/dL", when)
    b.lab("1751-7", "Albumin [Mass/volume] in Serum or Plasma", alb, "g/dL", when)
    b.lab("6301-6", "INR in Platelet poor plasma by Coagulation assay", inr, "{INR}", when)
    b.lab("777-3", "Platelets [#/volume] in Blood by Automated count", platelets, "10*9/L", when)


def _adverse_event_days(p: Plan, tl: Timeline, r: random.Random) -> list[tuple[str, int, int]]:
    """(term, grade, visit day): grade 3 at the first monthly visit, others at either visit."""
    out = []
    for term in AE_TERMS:
        if term in p.adverse:
            grade = p.adverse[term]
            when = tl.visits[0] if grade >= 3 else tl.visits[int(r.random() * 2)]
            out.append((term, grade, when))
    return out


def _sorafenib(b: Builder, p: Plan, tl: Timeline, r: random.Random) -> None:
    """400 mg twice daily from the start; after a grade 3-4 event, stopped and resumed one or two levels lower."""
    stop = None
    if p.died:
        stop = max(tl.end - _between(r, 0, 20), tl.study_imaging + 1)
    name, display = "597747", "sorafenib 200 MG Oral Tablet"
    reduced = next((x for x in p.extras if x.startswith("reduce-")), None)
    if reduced is None:
        b.medication(name, display, start=tl.start, end=stop, status="stopped" if p.died else "active",
                     text="400 mg twice daily", dose_mg=400, frequency=2, period=1, kind="sorafenib")
        return
    interrupted = tl.visits[0]  # the grade 3-4 event's visit
    b.medication(name, display, start=tl.start, end=interrupted, status="stopped",
                 text="400 mg twice daily", dose_mg=400, frequency=2, period=1, kind="sorafenib")
    resume = interrupted + _between(r, 5, 8)
    every = 2 if reduced == "reduce-qod" else 1
    b.medication(name, display, start=resume, end=stop, status="stopped" if p.died else "active",
                 text="400 mg every other day" if every == 2 else "400 mg once daily",
                 dose_mg=400, frequency=1, period=every, kind="sorafenib")


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def render(bundle: dict) -> str:
    """The Bundle as JSON with one entry per line (valid JSON, compact, diff-friendly)."""
    head = {k: v for k, v in bundle.items() if k != "entry"}
    lines = [json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1] + ',"entry":[']
    entries = [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in bundle["entry"]]
    lines.append(",\n".join(entries))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def render_all() -> dict[str, str]:
    """File name -> content of every cohort bundle."""
    return {f"{p.pid}.json": render(build(p)) for p in plans()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.cohort.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output folder (default {OUT_DIR})")
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    args = parser.parse_args(argv)
    files = render_all()
    if args.check:
        stale = [name for name, text in files.items() if not (args.out / name).is_file()
                 or (args.out / name).read_text(encoding="utf-8") != text]
        extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in files) if args.out.is_dir() else []
        for name in stale:
            print(f"differs: {name}", file=sys.stderr)
        for name in extra:
            print(f"not generated: {name}", file=sys.stderr)
        return 1 if stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("cohort-*.json"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} bundles to {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
