"""``hcc-cds demo``: the synthetic study cohort assessed by the service, beside the paper's Table 1.

Each bundle goes through the path of ``POST /api/v1/assessments`` (the patient's
resources, ``map_to_snapshot``, ``rules.assessment.assess``); nothing here
re-implements a rule. From each record:

* sorafenib start = the service's sorafenib start (``rules.treatment.sorafenib_history``);
* study assessment date = the first tumour imaging (TumorSize) at least 60 days after it;
* arm = ``sorafenib-plus-tace`` when a completed TACE is recorded after sorafenib start,
  else ``sorafenib-alone``.

Each patient is assessed ``as_of`` the study assessment date (TACE resistance,
mRECIST, recommendation) and ``as_of`` sorafenib start (Child-Pugh, tumour-extent
BCLC and ECOG, the baseline of Table 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from rules.assessment import assess
from rules.demographics import age_on
from rules.knowledge import Knowledge
from rules.snapshot import Snapshot
from rules.treatment import completed_tace, sorafenib_history
from service.build_info import build_id
from service.cohort.load import cohort_bundles
from service.gather import restrict_to_patient
from service.knowledge import load_knowledge
from service.mapping import map_to_snapshot
from service.settings import Settings, SettingsError

ARMS = ("sorafenib-plus-tace", "sorafenib-alone")
STUDY_IMAGING_MIN_DAYS = 60
# Table 1 of the source study (shared/seed), per arm: sorafenib + TACE (n=22), sorafenib alone (n=12)
PUBLISHED = {
    "n": (22, 12),
    "male / female": ("20 / 2", "9 / 3"),
    "age, mean +/- SD": ("55.2 +/- 15.1", "61.1 +/- 12.0"),
    "ECOG 0-1 / 2": ("19 / 3", "5 / 7"),
    "hepatitis B / C": ("21 / 1", "12 / 0"),
    "BCLC B / C": ("17 / 5", "6 / 6"),
    "Child-Pugh A / B": ("9 / 13", "3 / 9"),
    "mRECIST CR / PR / SD / PD": ("3 / 10 / 2 / 7", "0 / 0 / 5 / 7"),
}


class CohortError(ValueError):
    """A record lacks what the study's reading needs (sorafenib start, the study imaging)."""


@dataclass(frozen=True)
class CohortRow:
    patient: str
    arm: str
    tace_resistance: str
    mrecist: str | None
    child_pugh_class: str | None
    child_pugh_score: int | None
    bclc: str | None
    ecog: int | None
    recommendation: str
    sex: str | None
    age: int | None
    virology: str
    tace_sessions_before_sorafenib: int
    sorafenib_start: date
    assessment_date: date
    deceased: date | None

    def as_json(self) -> dict:
        """The scalar fields of ``hcc-cds demo --json`` (dates as ISO strings)."""
        return {
            "patient": self.patient,
            "arm": self.arm,
            "tace_resistance": self.tace_resistance,
            "mrecist": self.mrecist,
            "child_pugh_class": self.child_pugh_class,
            "bclc": self.bclc,
            "ecog": self.ecog,
            "recommendation": self.recommendation,
            "sorafenib_start": self.sorafenib_start.isoformat(),
            "assessment_date": self.assessment_date.isoformat(),
            "sex": self.sex,
            "age": self.age,
            "tace_sessions_before_sorafenib": self.tace_sessions_before_sorafenib,
            "deceased": self.deceased.isoformat() if self.deceased else None,
        }


def snapshot_of(bundle: dict, k: Knowledge) -> Snapshot:
    """The bundle's one patient as the REST API maps a posted Bundle (restricted to that patient)."""
    resources = [e["resource"] for e in bundle.get("entry", [])]
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise CohortError(f"bundle {bundle.get('id')}: {len(patients)} Patient resources, expected 1")
    patient = patients[0]
    kept, issues = restrict_to_patient([r for r in resources if r is not patient], str(patient["id"]))
    return map_to_snapshot(patient, kept, k, prior_issues=issues)


def study_dates(snapshot: Snapshot, today: date) -> tuple[date, date]:
    """(sorafenib start, study assessment date: the first tumour imaging >= 60 days after the start)."""
    start = sorafenib_history(snapshot, today).start
    if start is None:
        raise CohortError(f"{snapshot.patient.id}: no sorafenib start on record")
    earliest = start + timedelta(days=STUDY_IMAGING_MIN_DAYS)
    imaging = sorted({m.when for m in snapshot.lesions if earliest <= m.when <= today})
    if not imaging:
        raise CohortError(f"{snapshot.patient.id}: no tumour imaging {STUDY_IMAGING_MIN_DAYS} days or more after sorafenib start")
    return start, imaging[0]


def arm_of(snapshot: Snapshot, start: date) -> str:
    """``sorafenib-plus-tace`` when a completed TACE is recorded after sorafenib start."""
    after = [p for p in snapshot.procedures_of("tace") if p.status == "completed" and p.performed and p.performed > start]
    return ARMS[0] if after else ARMS[1]


def assess_row(snapshot: Snapshot, today: date, k: Knowledge, build: str = "unknown") -> CohortRow:
    start, study = study_dates(snapshot, today)
    at_study = assess(snapshot, study, k, build=build)
    at_start = assess(snapshot, start, k, build=build)
    facts = snapshot.patient
    virology = "/".join(
        label for concept, label in (("hepatitis_b", "B"), ("hepatitis_c", "C")) if snapshot.conditions_of(concept)
    ) or "-"
    return CohortRow(
        patient=facts.id,
        arm=arm_of(snapshot, start),
        tace_resistance=at_study.tace_resistance.status.value,
        mrecist=at_study.mrecist.category if at_study.mrecist else None,
        child_pugh_class=at_start.child_pugh.klass,
        child_pugh_score=at_start.child_pugh.score,
        bclc=at_start.bclc.tumour_extent.stage,
        ecog=at_start.performance_status.ecog,
        recommendation=at_study.recommendation.code,
        sex=facts.sex,
        age=age_on(facts.birth_date, start) if facts.birth_date else None,
        virology=virology,
        tace_sessions_before_sorafenib=len(completed_tace(snapshot, start, inclusive=False)),
        sorafenib_start=start,
        assessment_date=study,
        deceased=facts.deceased_date,
    )


def assess_cohort(bundles: Iterable[dict], today: date, k: Knowledge, build: str = "unknown") -> list[CohortRow]:
    return [assess_row(snapshot_of(b, k), today, k, build) for b in bundles]


# -- output -------------------------------------------------------------------------------


def _count(rows: list[CohortRow], *values: object, field: str) -> str:
    return " / ".join(str(sum(1 for r in rows if getattr(r, field) == v)) for v in values)


def summary(rows: list[CohortRow]) -> dict[str, tuple[str, str]]:
    """Table 1 as computed, per arm, in the order of :data:`PUBLISHED`."""
    out: dict[str, list[str]] = {name: [] for name in PUBLISHED}
    for arm in ARMS:
        rs = [r for r in rows if r.arm == arm]
        ages = [r.age for r in rs if r.age is not None]
        out["n"].append(str(len(rs)))
        out["male / female"].append(_count(rs, "male", "female", field="sex"))
        out["age, mean +/- SD"].append(
            f"{statistics.mean(ages):.1f} +/- {statistics.stdev(ages):.1f}" if len(ages) > 1 else "-"
        )
        out["ECOG 0-1 / 2"].append(
            f"{sum(1 for r in rs if r.ecog is not None and r.ecog <= 1)} / {sum(1 for r in rs if r.ecog == 2)}"
        )
        out["hepatitis B / C"].append(_count(rs, "B", "C", field="virology"))
        out["BCLC B / C"].append(_count(rs, "B", "C", field="bclc"))
        out["Child-Pugh A / B"].append(_count(rs, "A", "B", field="child_pugh_class"))
        out["mRECIST CR / PR / SD / PD"].append(_count(rs, "CR", "PR", "SD", "PD", field="mrecist"))
    return {name: (values[0], values[1]) for name, values in out.items()}


def render_table(rows: list[CohortRow], today: date) -> str:
    header = (
        "patient", "arm", "sex", "age", "TACE", "sorafenib", "assessed", "resistance", "mRECIST",
        "C-P", "BCLC", "ECOG", "recommendation", "deceased",
    )
    body = [
        (
            r.patient, r.arm, (r.sex or "-")[:1].upper(), str(r.age if r.age is not None else "-"),
            str(r.tace_sessions_before_sorafenib), r.sorafenib_start.isoformat(), r.assessment_date.isoformat(),
            r.tace_resistance, r.mrecist or "-",
            f"{r.child_pugh_class or '-'}{r.child_pugh_score if r.child_pugh_score is not None else ''}",
            r.bclc or "-", str(r.ecog if r.ecog is not None else "-"), r.recommendation,
            r.deceased.isoformat() if r.deceased else "alive",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = [
        f"Synthetic study cohort (n={len(rows)}), dated from {today.isoformat()}; assessed by the service "
        "as of each patient's study imaging (~3 months after sorafenib start); Child-Pugh, BCLC (tumour extent) "
        "and ECOG as of sorafenib start.",
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
    computed = summary(rows)
    name_w = max(len(n) for n in PUBLISHED)
    lines += [
        "",
        "Table 1, published vs computed by the service",
        f"{'':{name_w}}  {'sorafenib + TACE':>31}  {'sorafenib alone':>31}",
        f"{'':{name_w}}  {'paper':>15} {'service':>15}  {'paper':>15} {'service':>15}",
    ]
    for name, (combo, mono) in PUBLISHED.items():
        got = computed[name]
        lines.append(f"{name:{name_w}}  {str(combo):>15} {got[0]:>15}  {str(mono):>15} {got[1]:>15}")
    resistant = sum(1 for r in rows if r.tace_resistance == "met")
    lines += [
        "",
        f"TACE-resistant (JSH 2010) at sorafenib start: {resistant} of {len(rows)}.",
        "Age: the paper's overall mean (54.9) cannot match its own arm means (61.1, 55.2; weighted 57.3): "
        "source-study inconsistency 2 (hcc-cds references). ECOG 2 patients have no Karnofsky score (inconsistency 1).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hcc-cds demo", description="Assess the synthetic study cohort (Table 1).")
    parser.add_argument("--json", action="store_true", help="one JSON object per line per patient")
    parser.add_argument("--today", type=date.fromisoformat, default=None,
                        help="the load day the demo dates are resolved against (default: today in HCC_TIMEZONE)")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        k = load_knowledge(settings.clinical_overrides)
    except (SettingsError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"hcc-cds demo: {exc}", file=sys.stderr)
        return 2
    today = args.today or settings.today()
    bundles = cohort_bundles(today)
    if not bundles:
        print("hcc-cds demo: no cohort bundles in service/demo/data/cohort/", file=sys.stderr)
        return 1
    try:
        rows = assess_cohort(bundles, today, k, build=build_id())
    except CohortError as exc:
        print(f"hcc-cds demo: {exc}", file=sys.stderr)
        return 1
    if args.json:
        for row in rows:
            sys.stdout.write(json.dumps(row.as_json(), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_table(rows, today))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
