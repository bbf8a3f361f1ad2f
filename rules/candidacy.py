"""TACE candidacy for the combination: can TACE still be given with sorafenib?

Met when the latest imaging shows viable tumour and no contraindication is
recorded; the contraindications are the study's reasons for giving sorafenib
alone plus the usual TACE limits (``rules/data/thresholds.json``, group
``tace_candidacy``): Child-Pugh C, bilirubin > 3 mg/dL, multiple extrahepatic
metastases, a TACE recently not done (technically impossible or refused). A
portal-vein tumour thrombus contraindicates TACE only in the main trunk, which
the record cannot tell: it is listed for the clinician to confirm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules.child_pugh import ChildPugh
from rules.findings import Finding, Status, finding
from rules.knowledge import Knowledge
from rules.snapshot import Snapshot
from rules.timing import condition_present_at, days_before, latest_within
from rules.treatment import tace_not_done


@dataclass(frozen=True)
class Candidacy:
    finding: Finding
    to_confirm: tuple[str, ...]

    @property
    def status(self) -> Status:
        return self.finding.status


def evaluate_tace_candidacy(snapshot: Snapshot, as_of: date, k: Knowledge, *, child_pugh: ChildPugh) -> Candidacy:
    g = "tace_candidacy"
    citation = k.citation(g)
    contraindications: list[tuple[str, tuple[str, ...]]] = []
    unknowns: list[str] = []
    to_confirm: list[str] = []

    # viable tumour on the latest imaging
    dated = [m for m in snapshot.lesions if m.when <= as_of]
    viable_evidence: tuple[str, ...] = ()
    viable: bool | None = None
    if dated:
        latest = max(m.when for m in dated)
        at_latest = [m for m in dated if m.when == latest]
        viable_sum = sum(m.viable_diameter_mm for m in at_latest)
        viable = viable_sum > 0
        viable_evidence = tuple(m.ref for m in at_latest)
        viable_text = (
            f"Viable tumour on the latest imaging ({latest.isoformat()}: sum of viable diameters {viable_sum:g} mm)."
            if viable
            else f"No viable (arterially enhancing) tumour on the latest imaging ({latest.isoformat()}): nothing to embolise."
        )
    else:
        viable_text = "No tumour imaging recorded: whether viable tumour remains is unknown."

    if child_pugh.klass == k.threshold(g, "child_pugh_class_excluded"):
        contraindications.append((f"Child-Pugh {child_pugh.klass}", child_pugh.evidence))
    elif child_pugh.klass is None:
        unknowns.append("Child-Pugh class unknown")

    limit = float(k.threshold(g, "bilirubin_mg_dl_max"))
    bili = latest_within(snapshot.series("bilirubin"), as_of, int(k.threshold("freshness", "lab_max_age_days")))
    if bili is None:
        unknowns.append("no bilirubin within the freshness window")
    elif bili.value > limit:
        contraindications.append((f"bilirubin {bili.value:g} mg/dL > {limit:g}", (bili.ref,)))

    metastases = [c for c in snapshot.conditions_of("extrahepatic_metastasis") if condition_present_at(c, as_of)]
    if len(metastases) >= int(k.threshold(g, "multiple_extrahepatic_metastases_min")):
        contraindications.append((f"multiple extrahepatic metastases ({len(metastases)})", tuple(c.ref for c in metastases)))

    recent = days_before(as_of, int(k.threshold(g, "not_done_tace_max_age_days")))
    last_done = max((p.performed for p in snapshot.procedures_of("tace") if p.status == "completed" and p.performed), default=None)
    for p in tace_not_done(snapshot, as_of):
        when = p.performed
        if (when is None or when >= recent) and (last_done is None or when is None or when >= last_done):
            reason = p.status_reason or "no reason recorded"
            contraindications.append((f"TACE not done ({reason})", (p.ref,)))

    pvtt = [c for c in snapshot.conditions_of("portal_vein_tumour_thrombus") if condition_present_at(c, as_of)]
    if pvtt:
        to_confirm.append("Portal-vein tumour thrombus recorded: confirm it does not involve the main portal trunk (a TACE contraindication).")

    evidence = viable_evidence + tuple(e for _, ev in contraindications for e in ev)
    if contraindications:
        return Candidacy(
            finding(
                Status.NOT_MET,
                [viable_text] + ["TACE contraindicated: " + "; ".join(text for text, _ in contraindications) + "."],
                evidence,
                citation=citation,
            ),
            tuple(to_confirm),
        )
    if viable is False:
        return Candidacy(finding(Status.NOT_MET, [viable_text], evidence, citation=citation), tuple(to_confirm))
    if viable is None or unknowns:
        reasons = [viable_text] + ([f"Cannot exclude a contraindication: {', '.join(unknowns)}."] if unknowns else [])
        return Candidacy(finding(Status.UNKNOWN, reasons, evidence, citation=citation), tuple(to_confirm))
    return Candidacy(
        finding(Status.MET, [viable_text, "No TACE contraindication recorded."], evidence, citation=citation),
        tuple(to_confirm),
    )
