"""TACE candidacy for the combination: can TACE still be given with sorafenib?

Met when imaging at most ``freshness.imaging_max_age_days`` (90) days old shows viable
tumour **in the liver** (lesions outside the liver do not count; a lesion of unknown organ
cannot make it met) and no contraindication is recorded. The contraindications are the
study's reasons for giving sorafenib alone plus the usual TACE limits
(``rules/data/thresholds.json``, group ``tace_candidacy``): Child-Pugh C, bilirubin > 3
mg/dL, multiple extrahepatic metastases (counted as distinct sites, not records), a TACE
not done (technically impossible or refused) after the last completed session, and a
main portal-vein tumour thrombus. The record cannot tell a main-trunk thrombus from a
branch one, so any recorded portal-vein thrombosis makes candidacy ``not-met`` with "main
portal trunk involvement not excluded: confirm", unless the site declared its concept
branch-only (``portal_vein_branch_only_concepts``); a code that does not say *tumour*
thrombus adds "tumour vs bland thrombus to confirm". Missing labs or imaging older than
the window make it ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from rules import wording
from rules.child_pugh import ChildPugh
from rules.criteria import TaceCandidacyCriteria
from rules.findings import Finding, Status, finding
from rules.knowledge import Knowledge
from rules.snapshot import ConditionFact, LesionMeasurement, Snapshot
from rules.timing import condition_presence, days_before, latest_within
from rules.treatment import tace_not_done

LIVER = "liver"
PVTT = "portal_vein_tumour_thrombus"
METASTASIS = "extrahepatic_metastasis"
MAIN_TRUNK_TO_CONFIRM = wording.candidacy_main_portal_trunk_involvement_not()
BLAND_TO_CONFIRM = wording.candidacy_tumour_vs_bland_thrombus_confirm()


@dataclass(frozen=True)
class Candidacy:
    finding: Finding
    to_confirm: tuple[str, ...]

    @property
    def status(self) -> Status:
        return self.finding.status


def branch_only_concepts(k: Knowledge) -> tuple[str, ...]:
    """Condition concepts a site declared to be portal-vein thrombus confined to a branch."""
    return k.criteria.tace_candidacy.portal_vein_branch_only_concepts


def thrombus_words(conditions: list[ConditionFact] | tuple[ConditionFact, ...]) -> str:
    """The references, and "tumour vs bland thrombus to confirm" when a code does not say tumour thrombus."""
    refs = ", ".join(c.ref for c in conditions)
    if any(not c.specific for c in conditions):
        return f"{refs}; {BLAND_TO_CONFIRM}"
    return refs


@dataclass(frozen=True)
class ExtrahepaticSites:
    """Distinct extrahepatic metastatic sites at a date, from Conditions and lesions outside the liver."""

    sites: dict[str, tuple[str, ...]]  # site -> evidence
    unknown_site: tuple[str, ...]  # metastasis records with no recorded site
    presence_unknown: tuple[str, ...]  # metastasis records whose presence at the date is unknown
    side_unknown: tuple[str, ...] = ()  # a site without its side ("lung") beside the same with one: maybe the same

    @property
    def undecided(self) -> int:
        """Records that may or may not add a site."""
        return len(self.unknown_site) + len(self.presence_unknown) + len(self.side_unknown)

    @property
    def evidence(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e for refs in self.sites.values() for e in refs))

    def describe(self) -> str:
        return ", ".join(f"{site} ({', '.join(refs)})" for site, refs in sorted(self.sites.items()))


def extrahepatic_sites(snapshot: Snapshot, day: date, as_of: date) -> ExtrahepaticSites:
    """Distinct sites of extrahepatic disease on ``day``: metastasis Conditions by ``site`` and viable lesions by organ.

    A lesion counts by its latest measurement on or before ``day`` (viable diameter > 0, organ
    neither the liver nor unknown). A site named without its side ("lung") beside the same site
    with a side ("right lung") may be that one or the other: its records go to ``side_unknown``.
    """
    sites: dict[str, list[str]] = {}
    unknown_site: list[str] = []
    presence_unknown: list[str] = []
    for c in sorted(snapshot.conditions_of(METASTASIS), key=lambda c: c.ref):
        present = condition_presence(c, day, as_of)
        if present is None:
            presence_unknown.append(c.ref)
        elif present:
            if c.site:
                sites.setdefault(c.site.strip().lower(), []).append(c.ref)
            else:
                unknown_site.append(c.ref)
    latest: dict[str, tuple[date, str, float, str | None]] = {}
    for m in snapshot.lesions:
        if m.when <= day and (m.lesion not in latest or (m.when, m.ref) > latest[m.lesion][:2]):
            latest[m.lesion] = (m.when, m.ref, m.viable_diameter_mm, m.organ)
    for _, ref, mm, organ in sorted(latest.values(), key=lambda v: v[1]):
        if organ is not None and organ != LIVER and mm > 0:
            sites.setdefault(organ.strip().lower(), []).append(ref)
    side_unknown = [ref for generic in sorted(s for s in sites if any(o.endswith(f" {s}") for o in sites))
                    for ref in sites.pop(generic)]
    return ExtrahepaticSites(
        {s: tuple(r) for s, r in sites.items()}, tuple(unknown_site), tuple(presence_unknown), tuple(side_unknown)
    )


def _viable_liver_tumour(snapshot: Snapshot, as_of: date, max_age: int) -> tuple[bool | None, str, tuple[str, ...]]:
    """Whether imaging at most ``max_age`` days old shows viable liver tumour: (True/False/None, text, evidence)."""
    outside = sorted({m.lesion for m in snapshot.lesions if m.when <= as_of and m.organ not in (None, LIVER)})
    outside_note = wording.candidacy_lesions_outside_liver_do_not(', '.join(outside)) if outside else ""
    liver_or_unknown = [m for m in snapshot.lesions if m.when <= as_of and m.organ in (None, LIVER)]
    if not liver_or_unknown:
        return None, wording.candidacy_no_liver_tumour_imaging_recorded() + outside_note, ()
    latest = max(m.when for m in liver_or_unknown)
    at_latest = sorted((m for m in liver_or_unknown if m.when == latest), key=lambda m: m.ref)
    evidence = tuple(m.ref for m in at_latest)
    if latest < days_before(as_of, max_age):
        age = (as_of - latest).days
        return (
            None,
            wording.candidacy_latest_liver_imaging_days_old(latest.isoformat(), age, max_age),
            evidence,
        )
    return _viable_on(latest, at_latest, evidence, outside_note)


def _viable_on(
    latest: date, at_latest: list[LesionMeasurement], evidence: tuple[str, ...], outside_note: str
) -> tuple[bool | None, str, tuple[str, ...]]:
    """Whether the latest (recent) imaging shows viable liver tumour; a viable lesion of unknown organ leaves it unknown."""
    liver_sum = sum(m.viable_diameter_mm for m in at_latest if m.organ == LIVER)
    unknown_organ = [m for m in at_latest if m.organ is None and m.viable_diameter_mm > 0]
    if liver_sum > 0:
        return (
            True,
            wording.candidacy_viable_liver_tumour_latest_imaging(latest.isoformat(), liver_sum),
            evidence,
        )
    if unknown_organ:
        return (
            None,
            wording.candidacy_no_viable_liver_tumour_latest(
                latest.isoformat(), len(unknown_organ), ", ".join(m.lesion for m in unknown_organ)
            )
            + outside_note,
            evidence,
        )
    return (
        False,
        wording.candidacy_no_viable_arterially_enhancing_liver(latest.isoformat())
        + outside_note,
        evidence,
    )


@dataclass
class _Contraindications:
    """What the checks found, in the order PRODUCT.md lists the contraindications."""

    present: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (words, evidence)
    unknown: list[str] = field(default_factory=list)
    to_confirm: list[str] = field(default_factory=list)


def _check_child_pugh(child_pugh: ChildPugh, crit: TaceCandidacyCriteria, found: _Contraindications) -> None:
    """Child-Pugh C (``child_pugh_class_excluded``) is a contraindication; an unknown class cannot exclude it."""
    if child_pugh.klass == crit.child_pugh_class_excluded:
        found.present.append((f"Child-Pugh {child_pugh.klass}", child_pugh.evidence))
    elif child_pugh.klass is None:
        found.unknown.append(wording.candidacy_child_pugh_class_unknown())


def _check_bilirubin(snapshot: Snapshot, as_of: date, k: Knowledge, found: _Contraindications) -> None:
    """Bilirubin above ``bilirubin_mg_dl_max`` (3 mg/dL) within the lab freshness window."""
    limit = float(k.criteria.tace_candidacy.bilirubin_mg_dl_max)
    bili = latest_within(snapshot.series("bilirubin"), as_of, k.criteria.freshness.lab_max_age_days)
    if bili is None:
        found.unknown.append(wording.candidacy_no_bilirubin_within_freshness_window())
    elif bili.value > limit:
        found.present.append((wording.candidacy_bilirubin_mg_dl(bili.value, limit), (bili.ref,)))


def _spread_doubts(spread: ExtrahepaticSites, as_of: date) -> list[str]:
    doubts = []
    if spread.unknown_site:
        doubts.append(wording.candidacy_metastasis_no_recorded_site(', '.join(spread.unknown_site)))
    if spread.side_unknown:
        doubts.append(wording.candidacy_metastasis_site_recorded_without_side(', '.join(spread.side_unknown)))
    if spread.presence_unknown:
        doubts.append(
            wording.candidacy_metastasis_recorded_after_presence_then(
                as_of.isoformat(), ", ".join(spread.presence_unknown)
            )
        )
    if spread.sites:
        doubts.append(wording.candidacy_known_sites(spread.describe()))
    return doubts


def _check_metastases(snapshot: Snapshot, as_of: date, minimum: int, found: _Contraindications) -> None:
    """Multiple extrahepatic metastases: at least ``minimum`` distinct sites (not records)."""
    spread = extrahepatic_sites(snapshot, as_of, as_of)
    if len(spread.sites) >= minimum:
        found.present.append(
            (
                wording.candidacy_multiple_extrahepatic_metastases_sites(len(spread.sites), spread.describe()),
                spread.evidence,
            )
        )
    elif len(spread.sites) + spread.undecided >= minimum:
        doubts = _spread_doubts(spread, as_of)
        found.unknown.append(wording.candidacy_whether_extrahepatic_metastases_involve_more(minimum, '; '.join(doubts)))


def _check_tace_not_done(snapshot: Snapshot, as_of: date, found: _Contraindications) -> None:
    """A TACE not done (refused, technically impossible) after the last completed session."""
    last_done = max((p.performed for p in snapshot.procedures_of("tace") if p.status == "completed" and p.performed), default=None)
    for p in tace_not_done(snapshot, as_of):
        when = p.performed
        if last_done is None or when is None or when >= last_done:
            reason = p.status_reason or wording.candidacy_no_reason_recorded()
            dated = when.isoformat() if when else "undated"
            after = wording.candidacy_after_last_completed_session(last_done.isoformat()) if last_done and when else ""
            found.present.append((wording.candidacy_tace_not_done(reason, dated, after), (p.ref,)))


def _portal_vein_thrombi(
    snapshot: Snapshot, as_of: date, branch_only: set[str]
) -> tuple[list[ConditionFact], list[ConditionFact], list[ConditionFact]]:
    """Portal-vein thrombosis records at ``as_of``: (present, site-declared branch-only, presence unknown)."""
    present: list[ConditionFact] = []
    branch: list[ConditionFact] = []
    unknown: list[ConditionFact] = []
    for concept in (PVTT, *sorted(branch_only - {PVTT})):
        for c in sorted(snapshot.conditions_of(concept), key=lambda c: c.ref):
            presence = condition_presence(c, as_of, as_of)
            if presence is None:
                unknown.append(c)
            elif presence:
                (branch if concept in branch_only else present).append(c)
    return present, branch, unknown


def _check_portal_vein(snapshot: Snapshot, as_of: date, k: Knowledge, found: _Contraindications) -> None:
    """Any recorded portal-vein thrombosis stops candidacy until main-trunk involvement is excluded."""
    present, branch, unknown = _portal_vein_thrombi(snapshot, as_of, set(branch_only_concepts(k)))
    if present:
        found.present.append(
            (
                wording.candidacy_portal_vein_thrombosis(thrombus_words(present), MAIN_TRUNK_TO_CONFIRM),
                tuple(c.ref for c in present),
            )
        )
        found.to_confirm.append(
            wording.candidacy_portal_vein_thrombosis_recorded_confirm()
            + (f"; {BLAND_TO_CONFIRM}." if any(not c.specific for c in present) else ".")
        )
    if branch:
        found.to_confirm.append(
            wording.candidacy_portal_vein_thrombus_recorded_confined(thrombus_words(branch))
        )
    if unknown:
        found.unknown.append(
            wording.candidacy_whether_portal_vein_thrombosis_recorded(as_of.isoformat(), thrombus_words(unknown))
        )


def _decide(
    viable: bool | None, viable_text: str, evidence: tuple[str, ...], found: _Contraindications, citation: str
) -> Candidacy:
    """Not met on a contraindication or no viable liver tumour; unknown when either cannot be told; else met."""
    to_confirm = tuple(found.to_confirm)
    if found.present:
        reasons = [viable_text, wording.candidacy_tace_contraindicated("; ".join(words for words, _ in found.present))]
        return Candidacy(finding(Status.NOT_MET, reasons, evidence, citation=citation), to_confirm)
    if viable is False:
        return Candidacy(finding(Status.NOT_MET, [viable_text], evidence, citation=citation), to_confirm)
    if viable is None or found.unknown:
        reasons = [viable_text] + (
            [wording.candidacy_cannot_exclude_contraindication(", ".join(found.unknown))] if found.unknown else []
        )
        return Candidacy(finding(Status.UNKNOWN, reasons, evidence, citation=citation), to_confirm)
    return Candidacy(
        finding(
            Status.MET,
            [viable_text, wording.candidacy_no_tace_contraindication_recorded()],
            evidence,
            citation=citation,
        ),
        to_confirm,
    )


def evaluate_tace_candidacy(snapshot: Snapshot, as_of: date, k: Knowledge, *, child_pugh: ChildPugh) -> Candidacy:
    """TACE candidacy at ``as_of``: viable liver tumour on recent imaging, then each contraindication in turn."""
    crit = k.criteria.tace_candidacy
    viable, viable_text, viable_evidence = _viable_liver_tumour(snapshot, as_of, k.criteria.freshness.imaging_max_age_days)
    found = _Contraindications()
    _check_child_pugh(child_pugh, crit, found)
    _check_bilirubin(snapshot, as_of, k, found)
    _check_metastases(snapshot, as_of, crit.multiple_extrahepatic_metastases_min, found)
    _check_tace_not_done(snapshot, as_of, found)
    _check_portal_vein(snapshot, as_of, k, found)
    evidence = tuple(dict.fromkeys(viable_evidence + tuple(e for _, ev in found.present for e in ev)))
    return _decide(viable, viable_text, evidence, found, crit.citation)
