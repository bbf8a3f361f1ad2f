"""BCLC staging, 2010 scheme (Pons, Varela, Llovet, HPB 2005), as the source study staged.

Dossier §3.2 (2010-era BCLC):

====== ================================ ============= =======
Stage  Tumour                           Child-Pugh    ECOG
====== ================================ ============= =======
0      single < 2 cm                    A             0
A      single, or up to 3 nodules <=3 cm A-B          0
B      multinodular                     A-B           0
C      portal invasion, N1 or M1        A-B           1-2
D      --                               C             >2
====== ================================ ============= =======

Stages A-C need ECOG 0-2 and Child-Pugh A-B; Child-Pugh C or ECOG >2 is D
whatever else is known (a *forced* stage). Under 2010 ECOG 1-2 alone makes a
patient C. The study's Table 1 instead staged by tumour extent
(:func:`tumour_extent_stage`: C when portal invasion or extrahepatic spread,
else 0/A/B by tumour burden), dossier §4.1 note 8.

Tumour burden comes from the latest imaging on or before the date, if at most
``freshness.imaging_max_age_days`` (90) days before it (older: unknown): nodules are
the lesions in the liver (or of unrecorded site) with a viable diameter > 0.
A thrombus or metastasis with no onset is present now but unknown at a past date
(dated only by recordedDate: present from then), so a stage it could change there
is None; a thrombus code that does not say tumour thrombus adds "tumour vs bland
thrombus to confirm".
Portal-vein tumour thrombus and extrahepatic metastases are recorded only when
present (PRODUCT.md, Three-valued findings): with no record they are absent,
and the result's ``assumptions`` say so. Child-Pugh class and ECOG are passed
in (computed elsewhere). Missing inputs give stage None with reasons, unless
the stage is forced by what is known. BCLC 2022 (Reig 2022) is noted, not used.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from operator import attrgetter
from typing import Any

from rules import wording
from rules.criteria import BclcCriteria
from rules.snapshot import ConditionFact, LesionMeasurement, Snapshot
from rules.timing import condition_presence, condition_present_at, days_before

PVTT = "portal_vein_tumour_thrombus"
METASTASIS = "extrahepatic_metastasis"
CHILD_PUGH_CLASSES = ("A", "B", "C")
NOT_COUNTED_VERIFICATION = ("refuted", "entered-in-error")
ABSENT_UNLESS_RECORDED = (
    wording.bclc_portal_vein_tumour_thrombus_extrahepatic()
)


def _exact(value: float | int) -> Fraction:
    return Fraction(value) if isinstance(value, int) else _decimal_fraction(float(value))


@functools.lru_cache(maxsize=4096)
def _decimal_fraction(value: float) -> Fraction:
    """``Fraction(repr(value))``, kept: the text parse is the cost, and the same diameters are read at each date."""
    return Fraction(repr(value))


def _usable_mm(value: float | None) -> Fraction | None:
    """A diameter as an exact rational, None when missing, not finite or negative."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return _exact(value)


def _mm(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def _criteria(criteria: Mapping[str, Any] | BclcCriteria) -> BclcCriteria:
    return criteria if isinstance(criteria, BclcCriteria) else BclcCriteria.from_dict(criteria)


# -- facts at a date -----------------------------------------------------------


@dataclass(frozen=True)
class TumourBurden:
    """Viable intrahepatic tumour on one imaging date: how many nodules and the largest."""

    imaging_date: date
    nodules: int  # lesions in the liver (or of unrecorded site) with viable diameter > 0
    largest_mm: Fraction | None  # None when no viable nodule
    diameters_mm: tuple[Fraction, ...]  # every viable nodule, largest first
    unknown_site_nodules: int
    evidence: tuple[str, ...]

    def describe(self) -> str:
        if self.nodules == 0:
            return wording.bclc_no_viable_tumour_imaging(self.imaging_date.isoformat())
        count = wording.bclc_a_single_nodule() if self.nodules == 1 else f"{self.nodules} nodules"
        largest = _mm(self.largest_mm) if self.largest_mm is not None else "?"
        return wording.bclc_largest_mm_viable_imaging(count, largest, self.imaging_date.isoformat())


@dataclass(frozen=True)
class StagingFacts:
    """What BCLC is staged from at one date, with reasons, evidence and assumptions."""

    day: date
    tumour: TumourBurden | None  # None: no imaging on or before the date, or only imaging too old
    vascular_invasion: bool | None  # None: unknown at that date (a thrombus with no usable date)
    extrahepatic_spread: bool | None
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    assumptions: tuple[str, ...]
    stale_imaging: date | None = None  # the latest imaging, when it is older than the window

    @property
    def tumour_unknown(self) -> str:
        """Why there is no tumour burden, in words."""
        if self.stale_imaging is not None:
            return wording.bclc_latest_tumour_imaging_too_old(self.stale_imaging.isoformat())
        return wording.bclc_no_tumour_imaging()


def _counts(condition: ConditionFact) -> bool:
    return condition.verification_status not in NOT_COUNTED_VERIFICATION


def conditions_present_at(conditions: Iterable[ConditionFact], concept: str, day: date) -> tuple[ConditionFact, ...]:
    """Conditions of ``concept`` present on ``day`` (``rules.timing.condition_present_at``), refuted ones left out."""
    return tuple(
        sorted(
            (c for c in conditions if c.concept == concept and _counts(c) and condition_present_at(c, day)),
            key=lambda c: c.ref,
        )
    )


def latest_imaging(lesions: Iterable[LesionMeasurement], day: date) -> tuple[date, tuple[LesionMeasurement, ...]] | None:
    """The latest imaging date on or before ``day`` and its lesion measurements, or None."""
    dated = [m for m in lesions if m.when <= day]
    if not dated:
        return None
    latest = max(m.when for m in dated)
    return latest, tuple(sorted((m for m in dated if m.when == latest), key=attrgetter("lesion", "ref")))


def tumour_burden_at(
    lesions: Iterable[LesionMeasurement], day: date, criteria: Mapping[str, Any] | BclcCriteria
) -> TumourBurden | None:
    """Viable nodules on the latest imaging on or before ``day`` (liver or unrecorded site), None without imaging."""
    return _burden_of(latest_imaging(lesions, day), _criteria(criteria))


_Imaging = tuple[date, tuple[LesionMeasurement, ...]]  # a date and its lesion measurements (see latest_imaging)


def _burden_of(found: _Imaging | None, crit: BclcCriteria) -> TumourBurden | None:
    """:func:`tumour_burden_at` of an imaging already found."""
    if found is None:
        return None
    imaging_date, readings = found
    per_lesion: dict[str, Fraction] = {}
    unknown_site: set[str] = set()
    evidence: list[str] = []
    for m in readings:
        if m.organ not in (None, crit.liver_organ):
            continue
        size = _usable_mm(m.viable_diameter_mm)
        if size is None:
            continue  # no usable diameter: mRECIST reports it; here it simply does not count
        evidence.append(m.ref)
        if size > 0:
            largest = per_lesion.get(m.lesion)
            if largest is None or size > largest:  # a lesion's largest reading of the date counts
                per_lesion[m.lesion] = size
            if m.organ is None:
                unknown_site.add(m.lesion)
    diameters = tuple(sorted(per_lesion.values(), reverse=True))
    return TumourBurden(
        imaging_date=imaging_date,
        nodules=len(diameters),
        largest_mm=diameters[0] if diameters else None,
        diameters_mm=diameters,
        unknown_site_nodules=len(unknown_site),
        evidence=tuple(dict.fromkeys(evidence)),
    )


def _presence_at(
    conditions: Iterable[ConditionFact], concepts: tuple[str, ...], day: date, as_of: date
) -> tuple[tuple[ConditionFact, ...], tuple[ConditionFact, ...]]:
    """Conditions of ``concepts`` present on ``day`` and those whose presence then is unknown (no usable date)."""
    chosen = sorted((c for c in conditions if c.concept in concepts and _counts(c)), key=lambda c: c.ref)
    presence = [(c, condition_presence(c, day, as_of)) for c in chosen]
    present = tuple(c for c, held in presence if held is True)
    unknown = tuple(c for c, held in presence if held is None)
    return present, unknown


def _undated_words(conditions: tuple[ConditionFact, ...], day: date) -> str:
    parts = []
    for c in conditions:
        if c.recorded is not None:
            parts.append(wording.bclc_has_no_onset_was_recorded(c.ref, c.recorded.isoformat(), day.isoformat()))
        else:
            parts.append(wording.bclc_has_no_onset_recorded_date(c.ref))
    return "; ".join(parts)


def _bland(conditions: tuple[ConditionFact, ...]) -> str:
    return wording.bclc_tumour_vs_bland_thrombus_confirm() if any(not c.specific for c in conditions) else ""


def _recent_tumour(
    imaging: _Imaging | None, day: date, crit: BclcCriteria, reasons: list[str], evidence: list[str]
) -> tuple[TumourBurden | None, date | None]:
    """Tumour burden from imaging at most ``imaging_max_age_days`` before ``day``: (burden, the stale imaging date).
    ``imaging``: the latest on or before ``day``."""
    tumour = _burden_of(imaging, crit)
    if tumour is None:
        reasons.append(wording.bclc_no_tumour_imaging_before(day.isoformat()))
        return None, None
    if tumour.imaging_date < days_before(day, crit.imaging_max_age_days):
        stale = tumour.imaging_date
        reasons.append(
            wording.bclc_latest_tumour_imaging_days_before(
                stale.isoformat(), (day - stale).days, day.isoformat(), crit.imaging_max_age_days
            )
        )
        return None, stale
    evidence.extend(tumour.evidence)
    if tumour.unknown_site_nodules:
        reasons.append(wording.bclc_viable_lesion_s_no_recorded(tumour.unknown_site_nodules))
    return tumour, None


def _vascular_invasion(
    snapshot: Snapshot, day: date, as_of: date, crit: BclcCriteria, reasons: list[str], evidence: list[str]
) -> bool | None:
    """Portal-vein tumour thrombus on ``day`` (a site's branch-only concepts too); None when its presence is unknown."""
    pvtt, pvtt_unknown = _presence_at(snapshot.conditions, (PVTT, *crit.branch_thrombus_concepts), day, as_of)
    if pvtt:
        reasons.append(wording.bclc_portal_vein_tumour_thrombus_present(', '.join(c.ref for c in pvtt), _bland(pvtt)))
        evidence.extend(c.ref for c in pvtt)
    elif pvtt_unknown:
        reasons.append(
            wording.bclc_portal_vein_thrombus_unknown_onset(
                day.isoformat(), _undated_words(pvtt_unknown, day), _bland(pvtt_unknown)
            )
        )
        evidence.extend(c.ref for c in pvtt_unknown)
    return True if pvtt else (None if pvtt_unknown else False)


def _extrahepatic_spread(
    snapshot: Snapshot,
    found: _Imaging | None,
    day: date,
    as_of: date,
    crit: BclcCriteria,
    reasons: list[str],
    evidence: list[str],
) -> bool | None:
    """A metastasis Condition or a viable lesion outside the liver on ``day`` (``found``: the latest imaging on or
    before it); None when a metastasis's presence is unknown."""
    metastases, metastases_unknown = _presence_at(snapshot.conditions, (METASTASIS,), day, as_of)
    extrahepatic_lesions: tuple[LesionMeasurement, ...] = ()
    if found is not None:
        extrahepatic_lesions = tuple(
            m for m in found[1] if m.organ not in (None, crit.liver_organ) and (_usable_mm(m.viable_diameter_mm) or 0) > 0
        )
    if metastases:
        reasons.append(wording.bclc_extrahepatic_metastasis_present(', '.join(c.ref for c in metastases)))
        evidence.extend(c.ref for c in metastases)
    if found is not None and extrahepatic_lesions:
        sites = ", ".join(f"{m.organ} ({m.ref})" for m in extrahepatic_lesions)
        reasons.append(wording.bclc_viable_lesion_outside_liver_imaging(found[0].isoformat(), sites))
        evidence.extend(m.ref for m in extrahepatic_lesions)
    spread: bool | None = bool(metastases or extrahepatic_lesions)
    if not spread and metastases_unknown:
        spread = None
        reasons.append(
            wording.bclc_extrahepatic_metastasis_unknown_onset_missing(
                day.isoformat(), _undated_words(metastases_unknown, day)
            )
        )
        evidence.extend(c.ref for c in metastases_unknown)
    return spread


def staging_facts_at(
    snapshot: Snapshot, day: date, criteria: Mapping[str, Any] | BclcCriteria, *, as_of: date | None = None
) -> StagingFacts:
    """Tumour burden, vascular invasion and extrahepatic spread on ``day`` (an assessment at ``as_of``).

    Imaging older than ``imaging_max_age_days`` before ``day`` gives no tumour burden. A thrombus or
    metastasis with no onset is present at ``as_of`` but unknown at an earlier ``day`` (one dated only
    by recordedDate is present from that date): invasion or spread is then None (unknown).
    """
    crit = _criteria(criteria)
    as_of = day if as_of is None else as_of
    reasons: list[str] = []
    evidence: list[str] = []
    imaging = latest_imaging(snapshot.lesions, day)  # read by the tumour burden and the extrahepatic lesions
    tumour, stale = _recent_tumour(imaging, day, crit, reasons, evidence)
    invasion = _vascular_invasion(snapshot, day, as_of, crit, reasons, evidence)
    spread = _extrahepatic_spread(snapshot, imaging, day, as_of, crit, reasons, evidence)
    assumptions = [ABSENT_UNLESS_RECORDED] if invasion is False or spread is False else []
    return StagingFacts(
        day=day,
        tumour=tumour,
        vascular_invasion=invasion,
        extrahepatic_spread=spread,
        reasons=tuple(reasons),
        evidence=tuple(dict.fromkeys(evidence)),
        assumptions=tuple(assumptions),
        stale_imaging=stale,
    )


# -- staging -------------------------------------------------------------------


@dataclass(frozen=True)
class BclcStage:
    """One BCLC stage (or None) with why, on what evidence, and the scheme's citation."""

    stage: str | None
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    citation: str
    forced: bool = False  # decided by Child-Pugh C / ECOG > 2 / invasion whatever the missing inputs


def burden_stage(tumour: TumourBurden, crit: BclcCriteria) -> str | None:
    """0 / A / B from tumour burden alone (2010 table), None when no viable nodule."""
    if tumour.nodules == 0 or tumour.largest_mm is None:
        return None
    if tumour.nodules == 1:
        return "0" if tumour.largest_mm < crit.very_early_single_nodule_below_mm else "A"
    if tumour.nodules <= crit.early_max_nodules and tumour.largest_mm <= crit.early_multiple_nodules_max_diameter_mm:
        return "A"
    return "B"


def _burden_words(stage: str, tumour: TumourBurden, crit: BclcCriteria) -> str:
    if stage == "0":
        return wording.bclc_single_nodule_mm(_mm(crit.very_early_single_nodule_below_mm))
    if stage == "A":
        if tumour.nodules == 1:
            return wording.bclc_single_nodule()
        return wording.bclc_nodules_up_all_mm(
            tumour.nodules, crit.early_max_nodules, _mm(crit.early_multiple_nodules_max_diameter_mm)
        )
    if tumour.nodules <= crit.early_max_nodules:
        return wording.bclc_multinodular_nodules_largest_over_mm(
            tumour.nodules, _mm(crit.early_multiple_nodules_max_diameter_mm)
        )
    return wording.bclc_multinodular_nodules_more_than(tumour.nodules, crit.early_max_nodules)


def _unknown_invasion(vascular_invasion: bool | None, extrahepatic_spread: bool | None) -> str:
    return " and ".join(
        w
        for w, flag in (
            (wording.bclc_portal_invasion(), vascular_invasion),
            (wording.bclc_extrahepatic_spread(), extrahepatic_spread),
        )
        if flag is None
    )


def tumour_extent_stage(
    *,
    tumour: TumourBurden | None,
    vascular_invasion: bool | None,
    extrahepatic_spread: bool | None,
    criteria: Mapping[str, Any] | BclcCriteria,
    evidence: Iterable[str] = (),
    tumour_unknown: str = wording.bclc_no_tumour_imaging(),
) -> BclcStage:
    """The study's Table 1 staging: C when portal invasion or extrahepatic spread, else 0/A/B by burden.

    Liver function and performance status are not used (dossier §4.1 note 8).
    None when there is no (recent) imaging, no viable tumour on it, or invasion / spread is unknown
    (None) and neither is known present.
    """
    crit = _criteria(criteria)
    if vascular_invasion or extrahepatic_spread:
        what = " and ".join(
            w
            for w, flag in (
                (wording.bclc_portal_invasion(), vascular_invasion),
                (wording.bclc_extrahepatic_spread(), extrahepatic_spread),
            )
            if flag
        )
        return BclcStage("C", (wording.bclc_tumour_extent_c(what),), tuple(evidence), crit.citation, forced=True)
    doubt = _unknown_invasion(vascular_invasion, extrahepatic_spread)
    if doubt:
        return BclcStage(
            None,
            (wording.bclc_tumour_extent_unknown_this_date(doubt),),
            tuple(evidence),
            crit.citation,
        )
    if tumour is None:
        return BclcStage(None, (wording.bclc_tumour_extent_unknown(tumour_unknown),), tuple(evidence), crit.citation)
    stage = burden_stage(tumour, crit)
    if stage is None:
        return BclcStage(
            None,
            (wording.bclc_tumour_extent_not_staged(tumour.describe()),),
            tuple(evidence),
            crit.citation,
        )
    return BclcStage(
        stage,
        (wording.bclc_tumour_extent_no_portal_invasion(stage, tumour.describe(), _burden_words(stage, tumour, crit)),),
        tuple(evidence),
        crit.citation,
    )


@dataclass(frozen=True)
class _StageInputs:
    """The inputs of a BCLC 2010 stage, with the words the reasons use."""

    tumour: TumourBurden | None
    vascular_invasion: bool | None
    extrahepatic_spread: bool | None
    cp: str | None  # A / B / C, None when unknown
    ecog: int | None
    tumour_unknown: str

    @property
    def cp_text(self) -> str:
        return f"Child-Pugh {self.cp}" if self.cp else wording.bclc_child_pugh_class_unknown()

    @property
    def ecog_text(self) -> str:
        return f"ECOG {self.ecog}" if self.ecog is not None else wording.bclc_ecog_unknown()

    @property
    def invasion(self) -> list[str]:
        return [
            w
            for w, flag in (
                (wording.bclc_portal_invasion(), self.vascular_invasion),
                (wording.bclc_extrahepatic_spread(), self.extrahepatic_spread),
            )
            if flag
        ]


_Decision = tuple[str | None, str, bool]  # (stage, reason, forced)


def _stage_d(i: _StageInputs, crit: BclcCriteria) -> _Decision | None:
    """Child-Pugh C or ECOG > 2: D whatever else is missing."""
    if i.cp == "C":
        return "D", wording.bclc_child_pugh_c_makes_d(i.ecog_text), True
    if i.ecog is not None and i.ecog > crit.advanced_max_ecog:
        return "D", wording.bclc_ecog_makes_d(i.ecog, crit.advanced_max_ecog, i.cp_text), True
    return None


def _not_staged_missing(i: _StageInputs, crit: BclcCriteria) -> _Decision | None:
    """Child-Pugh class or ECOG missing: not staged, with what it could be."""
    missing = [
        label for label, gap in ((wording.bclc_child_pugh_class(), i.cp is None), ("ECOG", i.ecog is None)) if gap
    ]
    if not missing:
        return None
    could_be = "C or D" if i.invasion or (i.ecog is not None and i.ecog > crit.early_intermediate_max_ecog) else "0 to D"
    known = ", ".join(x for x in (" and ".join(i.invasion), i.cp_text if i.cp else "", i.ecog_text if i.ecog is not None else "") if x)
    return (
        None,
        wording.bclc_not_staged_missing_so_could(" and ".join(missing), could_be) + (f" ({known})." if known else "."),
        False,
    )


def _stage_c(i: _StageInputs, crit: BclcCriteria) -> _Decision | None:
    """Portal invasion or extrahepatic spread (forced), or ECOG 1-2: C; invasion or spread unknown: not staged."""
    if i.invasion:
        return "C", wording.bclc_make_c(' and '.join(i.invasion).capitalize(), i.cp_text, i.ecog_text), True
    doubt = _unknown_invasion(i.vascular_invasion, i.extrahepatic_spread)
    if i.ecog is not None and i.ecog > crit.early_intermediate_max_ecog:
        spread_words = f"{doubt} unknown" if doubt else wording.bclc_no_invasion_or_spread()
        return "C", wording.bclc_makes_c_under_scheme(i.ecog_text, i.cp_text, spread_words), False
    if doubt:
        return None, wording.bclc_not_staged_this_date_unknown(doubt, i.cp_text, i.ecog_text), False
    return None


def _stage_by_burden(i: _StageInputs, crit: BclcCriteria) -> _Decision:
    """ECOG 0, Child-Pugh A-B, no invasion or spread: 0 / A / B by tumour burden (0 also needs Child-Pugh A)."""
    if i.tumour is None:
        return None, wording.bclc_not_staged_no_invasion_spread(i.tumour_unknown, i.cp_text, i.ecog_text), False
    by_burden = burden_stage(i.tumour, crit)
    if by_burden is None:
        return None, wording.bclc_not_staged_no_viable_tumour(i.cp_text, i.ecog_text), False
    if by_burden == "0" and (i.cp != "A" or (i.ecog or 0) > crit.very_early_max_ecog):
        return (
            "A",
            wording.bclc_single_nodule_mm_stage_needs(
                _mm(crit.very_early_single_nodule_below_mm), i.cp_text, i.ecog_text
            ),
            False,
        )
    words = _burden_words(by_burden, i.tumour, crit).capitalize()
    return by_burden, wording.bclc_stage_by_burden(words, i.ecog_text, i.cp_text, by_burden), False


def bclc_2010_stage(
    *,
    tumour: TumourBurden | None,
    vascular_invasion: bool | None,
    extrahepatic_spread: bool | None,
    child_pugh_class: str | None,
    ecog: int | None,
    criteria: Mapping[str, Any] | BclcCriteria,
    evidence: Iterable[str] = (),
    tumour_unknown: str = wording.bclc_no_tumour_imaging(),
) -> BclcStage:
    """BCLC 2010 stage from its inputs (dossier §3.2), None when a missing input could change it.

    Order: Child-Pugh C -> D; ECOG > 2 -> D (both forced whatever is missing);
    then Child-Pugh A-B and ECOG 0-2 are needed; portal invasion / extrahepatic
    spread -> C; ECOG 1-2 -> C; ECOG 0 -> 0 / A / B by tumour burden (0 also needs
    Child-Pugh A; a single nodule < 2 cm with Child-Pugh B is A).
    """
    crit = _criteria(criteria)
    cp = child_pugh_class if child_pugh_class in CHILD_PUGH_CLASSES else None
    inputs = _StageInputs(tumour, vascular_invasion, extrahepatic_spread, cp, ecog, tumour_unknown)
    decided = _stage_d(inputs, crit) or _not_staged_missing(inputs, crit) or _stage_c(inputs, crit) or _stage_by_burden(inputs, crit)
    stage, reason, forced = decided
    return BclcStage(stage, (reason,), tuple(dict.fromkeys(evidence)), crit.citation, forced=forced)


def bclc_at(
    snapshot: Snapshot,
    day: date,
    *,
    child_pugh_class: str | None,
    ecog: int | None,
    criteria: Mapping[str, Any] | BclcCriteria,
    supporting_evidence: Iterable[str] = (),
    as_of: date | None = None,
) -> tuple[BclcStage, BclcStage, StagingFacts]:
    """BCLC 2010 stage and tumour-extent stage on ``day`` (an assessment at ``as_of``, default ``day``).

    ``supporting_evidence``: the Child-Pugh and performance-status references, added to the 2010 stage's evidence.
    """
    crit = _criteria(criteria)
    facts = staging_facts_at(snapshot, day, crit, as_of=as_of)
    full = bclc_2010_stage(
        tumour=facts.tumour,
        vascular_invasion=facts.vascular_invasion,
        extrahepatic_spread=facts.extrahepatic_spread,
        child_pugh_class=child_pugh_class,
        ecog=ecog,
        criteria=crit,
        evidence=(*facts.evidence, *supporting_evidence),
        tumour_unknown=facts.tumour_unknown,
    )
    extent = tumour_extent_stage(
        tumour=facts.tumour,
        vascular_invasion=facts.vascular_invasion,
        extrahepatic_spread=facts.extrahepatic_spread,
        criteria=crit,
        evidence=facts.evidence,
        tumour_unknown=facts.tumour_unknown,
    )
    return full, extent, facts


# -- the schema's ``bclc`` object ------------------------------------------------


@dataclass(frozen=True)
class BclcAssessment:
    """BCLC 2010 at the first TACE and now, the study's tumour-extent stage, and the 2022 note."""

    at_first_tace: BclcStage | None  # None: no TACE recorded
    current: BclcStage
    tumour_extent: BclcStage  # at as_of (the study's Table 1 staged at sorafenib start)
    tumour_extent_at_first_tace: BclcStage | None
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    assumptions: tuple[str, ...]
    note: str
    citation: str


def _facts_sentence(facts: StagingFacts) -> str:
    def words(flag: bool | None, what: str) -> str:
        return what if flag else (f"{what} unknown" if flag is None else f"no {what}")

    parts = [facts.tumour.describe() if facts.tumour else facts.tumour_unknown]
    parts.append(words(facts.vascular_invasion, wording.bclc_portal_invasion()))
    parts.append(words(facts.extrahepatic_spread, wording.bclc_extrahepatic_spread()))
    return "; ".join(parts)


def _staged_at_first_tace(
    snapshot: Snapshot,
    as_of: date,
    first_tace: date | None,
    child_pugh_class: str | None,
    ecog: int | None,
    crit: BclcCriteria,
    supporting_evidence: Iterable[str],
    reasons: list[str],
    evidence: list[str],
    assumptions: list[str],
) -> tuple[BclcStage | None, BclcStage | None]:
    """BCLC 2010 and tumour extent at the first TACE (None, None without one), its reasons added."""
    if first_tace is None:
        reasons.append(wording.bclc_first_tace_not_staged_no())
        return None, None
    at_first, extent_first, facts = bclc_at(
        snapshot,
        first_tace,
        child_pugh_class=child_pugh_class,
        ecog=ecog,
        criteria=crit,
        supporting_evidence=supporting_evidence,
        as_of=as_of,
    )
    reasons.append(
        wording.bclc_first_tace(
            first_tace.isoformat(), at_first.stage or wording.bclc_not_staged(), " ".join(at_first.reasons)
        )
    )
    reasons.append(wording.bclc_findings_first_tace(_facts_sentence(facts)))
    reasons.extend(facts.reasons)
    evidence.extend(at_first.evidence)
    assumptions.extend(facts.assumptions)
    return at_first, extent_first


def _reasons_now(as_of: date, current: BclcStage, extent: BclcStage, facts: StagingFacts) -> list[str]:
    """The reasons of the stage at ``as_of``, and how tumour extent alone (the study's Table 1) stages it."""
    reasons = [f"Now ({as_of.isoformat()}): {current.stage or wording.bclc_not_staged()}. {' '.join(current.reasons)}"]
    reasons.append(wording.bclc_findings_now(_facts_sentence(facts)))
    reasons.extend(facts.reasons)
    if extent.stage != current.stage:
        reasons.append(wording.bclc_how_study_table_staged_tumour(' '.join(extent.reasons)))
    else:
        reasons.append(wording.bclc_tumour_extent_how_study_table(extent.stage or wording.bclc_not_staged()))
    return reasons


def assess_bclc(
    snapshot: Snapshot,
    *,
    as_of: date,
    first_tace: date | None,
    child_pugh_at_first_tace: str | None,
    ecog_at_first_tace: int | None,
    child_pugh_now: str | None,
    ecog_now: int | None,
    criteria: Mapping[str, Any] | BclcCriteria,
    evidence_at_first_tace: Iterable[str] = (),
    evidence_now: Iterable[str] = (),
) -> BclcAssessment:
    """The schema's ``bclc`` object: BCLC 2010 at the first TACE and at ``as_of``, tumour extent, reasons.

    ``evidence_*``: the Child-Pugh and performance-status references behind the passed-in classes.
    """
    crit = _criteria(criteria)
    reasons: list[str] = []
    evidence: list[str] = []
    assumptions: list[str] = []
    at_first, extent_first = _staged_at_first_tace(
        snapshot, as_of, first_tace, child_pugh_at_first_tace, ecog_at_first_tace, crit, evidence_at_first_tace,
        reasons, evidence, assumptions,
    )
    current, extent, facts_now = bclc_at(
        snapshot,
        as_of,
        child_pugh_class=child_pugh_now,
        ecog=ecog_now,
        criteria=crit,
        supporting_evidence=evidence_now,
    )
    reasons.extend(_reasons_now(as_of, current, extent, facts_now))
    reasons.append(crit.note_2022)
    evidence.extend(current.evidence)
    assumptions.extend(facts_now.assumptions)
    return BclcAssessment(
        at_first_tace=at_first,
        current=current,
        tumour_extent=extent,
        tumour_extent_at_first_tace=extent_first,
        reasons=tuple(dict.fromkeys(r for r in reasons if r)),
        evidence=tuple(dict.fromkeys(evidence)),
        assumptions=tuple(dict.fromkeys(assumptions)),
        note=crit.note_2022,
        citation=crit.citation,
    )
