"""Property: removing observations never turns an ``unknown`` finding into ``met``.

Findings recorded only when present (prior resection or transplant; ascites, encephalopathy,
portal-vein tumour thrombus and extrahepatic metastases are Conditions) are outside the
property, as PRODUCT.md says. What is removed: results (labs, scores, disease status
reports, unusable results) and whole follow-up imaging studies — the data whose absence must
make a finding unknown, never normal. Procedures and medications define the treatment
timeline and are kept. So are the baseline imaging studies and single lesion measurements
inside a study: by mRECIST's definition a lesion absent from the baseline study and present
later is a new lesion (progression), so removing a lesion's baseline measurement is not
"less data" but a different finding.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.assessment import assess
from rules.findings import Status
from service.demo import DEMO_PATIENT_IDS, demo_resources
from service.knowledge import load_knowledge
from service.mapping import map_to_snapshot

TODAY = date(2026, 11, 28)
KNOWLEDGE = load_knowledge()
RECORDED_ONLY_WHEN_PRESENT = {"prior_resection_or_transplant"}


def _snapshots():
    resources = demo_resources(TODAY)
    out = []
    for pid in DEMO_PATIENT_IDS:
        mine = [r for r in resources if (r.get("subject") or r.get("patient") or {}).get("reference") == f"Patient/{pid}"]
        patient = next(r for r in resources if r["resourceType"] == "Patient" and r["id"] == pid)
        out.append(map_to_snapshot(patient, mine, KNOWLEDGE))
    return out


SNAPSHOTS = _snapshots()
FIELDS = ("measurements", "disease_status", "unusable")


def _baseline_dates(snapshot) -> set[date]:
    """Imaging dates kept: the latest study on or before each TACE session."""
    dates = sorted({m.when for m in snapshot.lesions})
    kept = set()
    for p in snapshot.procedures_of("tace"):
        before = [d for d in dates if p.performed and d <= p.performed]
        if before:
            kept.add(before[-1])
    return kept


def findings(snapshot):
    a = assess(snapshot, TODAY, KNOWLEDGE)
    out = {
        "tace_resistance": a.tace_resistance.status,
        "jsh_2014": a.tace_resistance.jsh_2014.status,
        "tace_candidacy": a.tace_candidacy.status,
        "hcc_diagnosis": a.hcc_diagnosis.status,
    }
    for c in a.sorafenib_eligibility.criteria:
        if c.id not in RECORDED_ONLY_WHEN_PRESENT and c.kind == "inclusion":
            out[c.id] = c.status
    return out


@st.composite
def nested_subsets(draw):
    snap = draw(st.sampled_from(SNAPSHOTS))
    full: dict = {}
    reduced: dict = {}
    for name in FIELDS:
        items = getattr(snap, name)
        keep = draw(st.lists(st.booleans(), min_size=len(items), max_size=len(items)))
        keep_less = draw(st.lists(st.booleans(), min_size=len(items), max_size=len(items)))
        full[name] = tuple(i for i, k in zip(items, keep) if k)
        reduced[name] = tuple(i for i, k, k2 in zip(items, keep, keep_less) if k and k2)
    baseline = _baseline_dates(snap)
    follow_up = sorted({m.when for m in snap.lesions} - baseline)
    keep = dict(zip(follow_up, draw(st.lists(st.booleans(), min_size=len(follow_up), max_size=len(follow_up)))))
    keep_less = dict(zip(follow_up, draw(st.lists(st.booleans(), min_size=len(follow_up), max_size=len(follow_up)))))
    full["lesions"] = tuple(m for m in snap.lesions if m.when in baseline or keep[m.when])
    reduced["lesions"] = tuple(m for m in snap.lesions if m.when in baseline or (keep[m.when] and keep_less[m.when]))
    return replace(snap, **full), replace(snap, **reduced)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested_subsets())
def test_removing_results_never_turns_unknown_into_met(pair):
    full, reduced = pair
    before, after = findings(full), findings(reduced)
    for name, status in before.items():
        if status is Status.UNKNOWN:
            assert after.get(name) is not Status.MET, name


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested_subsets())
def test_removing_results_never_makes_an_eligible_patient_from_an_indeterminate_one(pair):
    full, reduced = pair
    if assess(full, TODAY, KNOWLEDGE).sorafenib_eligibility.status == "indeterminate":
        assert assess(reduced, TODAY, KNOWLEDGE).sorafenib_eligibility.status != "eligible"
