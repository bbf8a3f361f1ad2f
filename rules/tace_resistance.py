"""TACE resistance: the study's definition (JSH 2010) and JSH-LCSGJ 2014 refractoriness beside it.

JSH 2010, as the study applied it (``status``): at least two consecutive completed
TACE sessions before sorafenib start, and progression at most 92 days after the
later one. Progression is mRECIST PD against the nadir of the TACE series (new
lesion >= 10 mm, new vascular invasion or extrahepatic spread included), or a
CancerDiseaseStatus "worsened" report, or a portal-vein tumour thrombus or an
extrahepatic metastasis first recorded after the series began. An objective
response (CR/PR) on imaging breaks the series: sessions before it do not count
towards the next progression. Sessions coded only by CPT 37243 (which also codes
bland and Y-90 embolization) can make the result at most ``unknown``.

JSH-LCSGJ 2014 (``jsh_2014``): any of (1a) two consecutive insufficient responses
(viable tumour > 50% of the pre-TACE viable sum on imaging 1-3 months after
TACE), (1b) two consecutive increases in the number of viable liver lesions,
(2) tumour marker (AFP) higher after each of two consecutive sessions than
before, (3) appearance of vascular invasion, (4) appearance of extrahepatic
spread.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

from rules import wording
from rules.criteria import Jsh2014Criteria
from rules.findings import Finding, Status, finding
from rules.findings import finding as _finding
from rules.knowledge import Knowledge
from rules.mrecist import (
    CR,
    MRECIST_CONDITIONS,
    PD,
    PR,
    LesionStudies,
    MrecistResult,
    TimepointEvaluation,
    evaluate_mrecist,
)
from rules.snapshot import ConditionFact, LesionMeasurement, ProcedureFact, Snapshot
from rules.timing import days_after, days_before
from rules.treatment import completed_tace, same_day_duplicates

RESPONSE_CATEGORIES = (CR, PR)
EVALUABLE_CATEGORIES = ("CR", "PR", "SD", "PD")
PROGRESSION_CONDITIONS = {
    "portal_vein_tumour_thrombus": wording.tace_resistance_new_vascular_invasion_portal_vein(),
    "extrahepatic_metastasis": wording.tace_resistance_new_extrahepatic_spread(),
}


@dataclass(frozen=True)
class ProgressionEvent:
    when: date
    what: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class TaceResistance:
    finding: Finding
    sessions: tuple[str, ...]
    jsh_2014: Finding
    series_mrecist: MrecistResult | None

    @property
    def status(self) -> Status:
        return self.finding.status


def _d(day: date) -> str:
    return day.isoformat()


def _sentence(text: str) -> str:
    """Capitalised for the start of a sentence, leaving a word like "mRECIST" as it is."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].upper() + text[1:]


def _progression_events(
    snapshot: Snapshot, series_start: date, end: date, timeline: tuple[TimepointEvaluation, ...]
) -> list[ProgressionEvent]:
    events: list[ProgressionEvent] = []
    for point in timeline:
        # PD without imaging (a thrombus or metastasis after the latest sized imaging) comes in as its Condition
        if point.category == PD and point.imaging:
            kinds = ", ".join(k.replace("_", " ") for k in point.progression) or "progression"
            events.append(
                ProgressionEvent(point.date, wording.tace_resistance_mrecist_pd_imaging(kinds), point.evidence)
            )
    for report in snapshot.disease_status:
        if report.trend == "worsened" and series_start < report.when <= end:
            events.append(
                ProgressionEvent(report.when, wording.tace_resistance_disease_status_reported_worsened(), (report.ref,))
            )
    for concept, label in PROGRESSION_CONDITIONS.items():
        for cond in snapshot.conditions_of(concept):
            if cond.onset is not None and series_start < cond.onset <= end:
                events.append(ProgressionEvent(cond.onset, label, (cond.ref,)))
    return sorted(events, key=lambda e: (e.when, e.what))


def _present_before_series(snapshot: Snapshot, series_start: date) -> tuple[ConditionFact, ...]:
    """The conditions for the series' mRECIST: a thrombus or metastasis recorded on or before the first
    session is pre-existing disease at baseline, not new spread during the series. (Only thrombi and
    metastases, the only conditions mRECIST reads: ``rules.mrecist.MRECIST_CONDITIONS``.)"""
    return tuple(
        replace(c, onset=None) if c.onset is not None and c.onset <= series_start else c
        for c in snapshot.conditions
        if c.concept in MRECIST_CONDITIONS
    )


def _undatable_spread(snapshot: Snapshot, series_start: date, end: date) -> list[str]:
    """Thrombi or metastases dated only by recordedDate after the series began: present by then, but their
    onset is missing, so they may be new within the window (PRODUCT.md: cannot date a new invasion or spread)."""
    out = []
    for concept, label in PROGRESSION_CONDITIONS.items():
        for cond in snapshot.conditions_of(concept):
            if cond.onset is None and cond.recorded is not None and series_start < cond.recorded <= end:
                if cond.verification_status in ("refuted", "entered-in-error"):
                    continue
                what = label.replace("new ", "", 1)
                out.append(wording.tace_resistance_recorded_has_no_onset_date(what, cond.ref, _d(cond.recorded)))
    return out


def _series_before(
    sessions: tuple[ProcedureFact, ...], day: date, timeline: tuple[TimepointEvaluation, ...]
) -> tuple[tuple[ProcedureFact, ...], TimepointEvaluation | None]:
    """The sessions before ``day`` that follow the last objective response before ``day``."""
    responses = [t for t in timeline if t.category in RESPONSE_CATEGORIES and t.date < day]
    last_response = responses[-1] if responses else None
    series = tuple(
        s
        for s in sessions
        if s.performed is not None
        and s.performed < day
        # a session on the day of the imaging that shows the response follows it (as on a progression day)
        and (last_response is None or s.performed >= last_response.date)
    )
    return series, last_response


@dataclass(frozen=True)
class _Series:
    """The completed TACE sessions JSH 2010 reads (before sorafenib start, or up to ``as_of``), with its numbers."""

    sessions: tuple[ProcedureFact, ...]
    needed: int  # consecutive sessions
    window: int  # days after the later session in which progression counts
    end: date  # sorafenib start, or as_of
    citation: str
    merged: tuple[str, ...]  # records of one date counted as one session, said in every finding

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(s.ref for s in self.sessions)

    def finding(self, status: Status, reasons: list[str], evidence: Iterable[str]) -> Finding:
        return _finding(status, [*reasons, *self.merged], evidence, citation=self.citation)


def _series(snapshot: Snapshot, as_of: date, k: Knowledge, sorafenib_start: date | None) -> _Series:
    """The completed sessions before sorafenib start (up to ``as_of`` without it), records of one date merged."""
    criteria = k.criteria.tace_resistance
    citation = criteria.citation
    needed = criteria.min_consecutive_sessions
    window = criteria.progression_window_days
    end = min(sorafenib_start, as_of) if sorafenib_start else as_of
    sessions = completed_tace(snapshot, end, inclusive=sorafenib_start is None)
    duplicates = same_day_duplicates(snapshot, sessions)
    merged = tuple(
        wording.tace_resistance_tace_records_are_one_session(
            len(others) + 1, _d(s.performed), ", ".join((s.ref, *others))
        )
        for s in sessions
        if s.performed is not None and (others := duplicates.get(s.ref))
    )
    return _Series(
        sessions=sessions,
        needed=needed,
        window=window,
        end=end,
        citation=citation,
        merged=merged,
    )


def _too_few_sessions(series: _Series, as_of: date, sorafenib_start: date | None) -> Finding:
    before_what = wording.tace_resistance_sorafenib_start(_d(sorafenib_start)) if sorafenib_start else f"{_d(as_of)}"
    count = len(series.sessions)
    what = (
        wording.tace_resistance_no_completed_tace_session()
        if not count
        else wording.tace_resistance_only_completed_tace_session(count)
    )
    return series.finding(
        Status.NOT_MET,
        [wording.tace_resistance_before_least_consecutive_sessions_are(what, before_what, series.needed)],
        series.refs,
    )


def _series_mrecist(
    snapshot: Snapshot, series: _Series, series_start: date, k: Knowledge, studies: LesionStudies | None
) -> MrecistResult:
    """mRECIST from the imaging before the first session, new lesions judged since the imaging before each."""
    return evaluate_mrecist(
        snapshot.lesions,
        treatment_start=series_start,
        as_of=series.end,
        criteria=k.mrecist,
        conditions=_present_before_series(snapshot, series_start),
        new_since_sessions=tuple(s.performed for s in series.sessions if s.performed is not None),
        prepared=studies,
    )


@dataclass(frozen=True)
class _Judgement:
    """A progression event judged against the sessions before it (since the last response)."""

    sessions: tuple[ProcedureFact, ...]
    gap: int  # days from the later of those sessions (0 when there are too few)
    dismissed: str | None  # why the event does not make TACE resistance; None: it does
    in_window: bool = False  # dismissed for too few sessions, but within the window after the last of them


def _judge_event(event: ProgressionEvent, series: _Series, timeline: tuple[TimepointEvaluation, ...]) -> _Judgement:
    """Progression counts when it follows at least ``needed`` sessions without response, within the window."""
    before, last_response = _series_before(series.sessions, event.when, timeline)
    if len(before) < series.needed:
        broken = wording.tace_resistance_after_response(_d(last_response.date)) if last_response else ""
        last = before[-1].performed if before else None
        return _Judgement(
            before,
            0,
            wording.tace_resistance_followed_only_session_s(_sentence(event.what), _d(event.when), len(before), broken),
            in_window=last is not None and (event.when - last).days <= series.window,
        )
    later = before[-1].performed
    assert later is not None
    gap = (event.when - later).days
    if gap > series.window:
        return _Judgement(
            before,
            gap,
            wording.tace_resistance_came_days_after_session_more(
                _sentence(event.what), _d(event.when), gap, _d(later), series.window
            ),
        )
    return _Judgement(before, gap, None)


def _progression_after_series(
    event: ProgressionEvent, judged: _Judgement, series: _Series
) -> tuple[Finding, tuple[str, ...]]:
    """TACE resistance met, or unknown when a session of the series is coded only by CPT 37243."""
    refs = tuple(s.ref for s in judged.sessions)
    dates = ", ".join(_d(s.performed) for s in judged.sessions if s.performed)
    reasons = [
        wording.tace_resistance_consecutive_tace_sessions_days_after(
            len(judged.sessions), dates, event.what, _d(event.when), judged.gap, series.window
        )
    ]
    cpt_only = [s.ref for s in judged.sessions if not s.specific]
    if cpt_only:
        reasons.append(
            wording.tace_resistance_sessions_coded_only_cpt(", ".join(cpt_only))
        )
        return series.finding(Status.UNKNOWN, reasons, refs + event.evidence), refs
    return series.finding(Status.MET, reasons, refs + event.evidence), refs


def _no_progression_in_window(
    series: _Series,
    last: date,
    in_window: list[TimepointEvaluation],
    dismissed: list[str],
    dismissed_in_window: list[ProgressionEvent],
) -> Finding:
    """Not met: evaluable imaging in the window without PD, or progression there after too few sessions."""
    if in_window and in_window[-1].category != PD:
        shown = in_window[-1]
        closing = wording.tace_resistance_no_progression_within_days_after(
            series.window, _d(last), _d(shown.date), shown.category
        )
        evidence = series.refs + shown.evidence
    else:
        closing = (
            wording.tace_resistance_progression_after_last_tace_did(_d(last), series.needed)
        )
        evidence = series.refs + tuple(e for ev in dismissed_in_window for e in ev.evidence)
    return series.finding(Status.NOT_MET, dismissed + [closing], evidence)


def _cannot_judge(
    snapshot: Snapshot, series: _Series, last: date, timeline: tuple[TimepointEvaluation, ...], dismissed: list[str]
) -> Finding:
    """Unknown: no evaluable imaging in the window after the last session, and no progression shown otherwise."""
    later_imaging = [t for t in timeline if t.date > last]
    reports = [r for r in snapshot.disease_status if last < r.when <= series.end]
    if later_imaging:
        first = later_imaging[0]
        why = wording.tace_resistance_first_imaging_after_was(
            _d(first.date), first.category or wording.tace_resistance_not_evaluable()
        )
    elif reports:
        why = wording.tace_resistance_no_sized_imaging_after("; ".join(
            wording.tace_resistance_disease_status_reported(r.trend, _d(r.when), r.ref) for r in reports
        ))
    else:
        why = wording.tace_resistance_there_no_imaging_after()
    if not later_imaging and (series.end - last).days <= series.window:
        why += wording.tace_resistance_yet_day_window_ends(series.window, _d(days_after(last, series.window)))
    return series.finding(
        Status.UNKNOWN,
        dismissed
        + [wording.tace_resistance_progression_within_days_after_last(series.window, _d(last), why)],
        series.refs,
    )


def _without_progression(
    snapshot: Snapshot,
    series: _Series,
    series_start: date,
    timeline: tuple[TimepointEvaluation, ...],
    dismissed: list[str],
    dismissed_in_window: list[ProgressionEvent],
) -> Finding:
    """No event made TACE resistance: what the imaging in the window after the last session shows."""
    last = series.sessions[-1].performed
    assert last is not None
    in_window = [
        t
        for t in timeline
        if last < t.date <= days_after(last, series.window) and t.category in EVALUABLE_CATEGORIES
    ]
    undated = _undatable_spread(snapshot, series_start, series.end)
    if in_window and in_window[-1].category != PD and undated:
        return series.finding(
            Status.UNKNOWN,
            dismissed
            + [
                wording.tace_resistance_imaging_was_but(_d(in_window[-1].date), in_window[-1].category)
                + "; ".join(undated)
                + wording.tace_resistance_may_new_vascular_invasion_spread()
            ],
            series.refs + in_window[-1].evidence,
        )
    if in_window or dismissed_in_window:
        return _no_progression_in_window(series, last, in_window, dismissed, dismissed_in_window)
    return _cannot_judge(snapshot, series, last, timeline, dismissed)


def evaluate_jsh_2010(
    snapshot: Snapshot,
    as_of: date,
    k: Knowledge,
    *,
    sorafenib_start: date | None,
    studies: LesionStudies | None = None,
) -> tuple[Finding, tuple[str, ...], MrecistResult | None]:
    """JSH 2010 as the study applied it; with the sessions it rests on and the series' mRECIST.

    Steps: the completed sessions before sorafenib start (too few: not met); mRECIST over the series; each
    progression event, oldest first, judged against the sessions before it since the last response (the first
    that follows enough of them within the window: met, or unknown when CPT-coded only); else what the imaging
    in the window after the last session shows.
    """
    series = _series(snapshot, as_of, k, sorafenib_start)
    if len(series.sessions) < series.needed:
        return _too_few_sessions(series, as_of, sorafenib_start), series.refs, None
    series_start = series.sessions[0].performed
    assert series_start is not None
    mrecist = _series_mrecist(snapshot, series, series_start, k, studies)
    dismissed: list[str] = []
    dismissed_in_window: list[ProgressionEvent] = []
    for event in _progression_events(snapshot, series_start, series.end, mrecist.timeline):
        judged = _judge_event(event, series, mrecist.timeline)
        if judged.dismissed is None:
            found, refs = _progression_after_series(event, judged, series)
            return found, refs, mrecist
        dismissed.append(judged.dismissed)
        if judged.in_window:
            dismissed_in_window.append(event)
    found = _without_progression(snapshot, series, series_start, mrecist.timeline, dismissed, dismissed_in_window)
    return found, series.refs, mrecist


# -- JSH-LCSGJ 2014 ----------------------------------------------------------------


def _viable(readings: list[LesionMeasurement], liver_only: bool = False) -> list[LesionMeasurement]:
    return [r for r in readings if r.viable_diameter_mm > 0 and (not liver_only or r.organ in (None, "liver"))]


def _imaging_by_date(snapshot: Snapshot) -> dict[date, list[LesionMeasurement]]:
    by_date: dict[date, list[LesionMeasurement]] = {}
    for m in snapshot.lesions:
        by_date.setdefault(m.when, []).append(m)
    return by_date


def _session_windows(
    sessions: tuple[ProcedureFact, ...], g: Jsh2014Criteria, max_days: int | None = None
) -> list[tuple[ProcedureFact, date, date]]:
    """For each session: the window (up to ``max_days`` days, default ``g.response_imaging_max_days``, and the
    next session) in which its response imaging or markers are read."""
    out = []
    for i, s in enumerate(sessions):
        assert s.performed is not None
        start = days_after(s.performed, g.response_imaging_min_days)
        stop = days_after(s.performed, g.response_imaging_max_days if max_days is None else max_days)
        following = sessions[i + 1].performed if i + 1 < len(sessions) else None
        if following is not None:
            stop = min(stop, following)
        out.append((s, start, stop))
    return out


@dataclass(frozen=True)
class _SessionImaging:
    """The imaging before one session and 1-3 months after it; None: cannot tell."""

    text: str
    insufficient: bool | None  # a treated lesion's viable diameter > 50% of what it was before
    more_lesions: bool | None  # more viable liver lesions after than before
    evidence: tuple[str, ...] = ()


def _per_treated_lesion(
    treated: dict[str, LesionMeasurement], after: dict[str, LesionMeasurement], g: Jsh2014Criteria
) -> tuple[list[str], list[bool | None]]:
    """Each treated lesion's viable diameter before and after, and whether it stayed above the limit."""
    parts: list[str] = []
    flags: list[bool | None] = []
    for lesion, r in sorted(treated.items()):
        later = after.get(lesion)
        if later is None:
            parts.append(wording.tace_resistance_mm_not_measured(lesion, r.viable_diameter_mm))
            flags.append(None)
            continue
        fraction = later.viable_diameter_mm / r.viable_diameter_mm
        parts.append(f"{lesion} {r.viable_diameter_mm:g} -> {later.viable_diameter_mm:g} mm ({fraction:.0%})")
        flags.append(fraction > g.insufficient_viable_fraction_above)
    return parts, flags


def _session_imaging(
    performed: date, pre: list[LesionMeasurement], post: list[LesionMeasurement], g: Jsh2014Criteria
) -> _SessionImaging:
    """Judged per treated lesion (JSH-LCSGJ 2014: the treated tumour's viable part): the lesions in the liver
    (or of unknown organ) viable before the session; extrahepatic lesions are not treated by it."""
    treated = {r.lesion: r for r in _viable(pre, liver_only=True)}
    evidence = tuple(r.ref for r in pre + post)
    if not treated:
        return _SessionImaging(
            wording.tace_resistance_tace_no_viable_tumour_before(performed.isoformat()), None, None, evidence
        )
    parts, flags = _per_treated_lesion(treated, {r.lesion: r for r in post}, g)
    insufficient: bool | None = True if any(flags) else (None if None in flags else False)
    more = len(_viable(post, liver_only=True)) > len(_viable(pre, liver_only=True))
    return _SessionImaging(
        wording.tace_resistance_tace_viable_diameter_per_treated(
            performed.isoformat(), "; ".join(parts), len(_viable(pre, True)), len(_viable(post, True))
        ),
        insufficient,
        more,
        evidence,
    )


def _imaging_response(
    snapshot: Snapshot, sessions: tuple[ProcedureFact, ...], g: Jsh2014Criteria
) -> list[_SessionImaging]:
    """Per session: the latest imaging on or before it against the first in its response window."""
    imaging = _imaging_by_date(snapshot)
    dates = sorted(imaging)
    results = []
    for s, start, stop in _session_windows(sessions, g):
        assert s.performed is not None
        before = [d for d in dates if d <= s.performed]
        after = [d for d in dates if start <= d <= stop]
        if not before or not after:
            results.append(
                _SessionImaging(
                    wording.tace_resistance_tace_no_imaging_before_months(s.performed.isoformat()), None, None
                )
            )
            continue
        results.append(_session_imaging(s.performed, imaging[before[-1]], imaging[after[0]], g))
    return results


@dataclass(frozen=True)
class _SessionMarker:
    """AFP before one session and after it; ``rose`` None: cannot tell."""

    text: str
    rose: bool | None
    evidence: tuple[str, ...] = ()


def _marker_rises(snapshot: Snapshot, sessions: tuple[ProcedureFact, ...], g: Jsh2014Criteria) -> list[_SessionMarker]:
    afp = snapshot.series("afp")
    results = []
    for s, _, stop in _session_windows(sessions, g, g.marker_after_max_days):
        assert s.performed is not None
        lookback = days_before(s.performed, g.marker_baseline_max_days_before)
        before = [m for m in afp if lookback <= m.when <= s.performed]
        after = [m for m in afp if s.performed < m.when <= stop]
        if not before or not after:
            results.append(
                _SessionMarker(wording.tace_resistance_tace_no_afp_before_after(s.performed.isoformat()), None)
            )
            continue
        results.append(
            _SessionMarker(
                wording.tace_resistance_tace_afp_ng_ml(s.performed.isoformat(), before[-1].value, after[-1].value),
                after[-1].value > before[-1].value,
                (before[-1].ref, after[-1].ref),
            )
        )
    return results


def _two_consecutive(flags: list[bool | None]) -> bool | None:
    """True if two consecutive True; False if the last two are known and not both True; else None."""
    for a, b in zip(flags, flags[1:]):
        if a is True and b is True:
            return True
    if len(flags) >= 2 and flags[-1] is not None and flags[-2] is not None:
        return False
    return None


def _appearances(
    snapshot: Snapshot, first: date, end: date, series_mrecist: MrecistResult | None
) -> list[tuple[str, str, date]]:
    """Vascular invasion or extrahepatic spread appearing after TACE began: (what, reference, when)."""
    appeared = []
    for concept, label in PROGRESSION_CONDITIONS.items():
        for cond in snapshot.conditions_of(concept):
            if cond.onset is not None and first < cond.onset <= end:
                appeared.append((label, cond.ref, cond.onset))
    if series_mrecist is not None:
        for point in series_mrecist.timeline:
            if point.imaging and "new_extrahepatic_spread" in point.progression:
                appeared.append(
                    (
                        wording.tace_resistance_new_extrahepatic_spread_imaging(),
                        point.evidence[0] if point.evidence else "",
                        point.date,
                    )
                )
    return appeared


def _refractoriness(
    snapshot: Snapshot, sessions: tuple[ProcedureFact, ...], g: Jsh2014Criteria, citation: str
) -> Finding:
    """Criteria 1a, 1b and 2 over the sessions: met when two consecutive sessions show one of them."""
    imaging = _imaging_response(snapshot, sessions, g)
    markers = _marker_rises(snapshot, sessions, g)
    insufficient = _two_consecutive([i.insufficient for i in imaging])
    more_lesions = _two_consecutive([i.more_lesions for i in imaging])
    rising = _two_consecutive([m.rose for m in markers])
    texts = [i.text for i in imaging] + [m.text for m in markers] + [
        wording.tace_resistance_approximation_response_read_per_treated()
    ]
    evidence = [e for i in imaging for e in i.evidence] + [e for m in markers for e in m.evidence]
    status, verdict = _refractoriness_verdict(insufficient, more_lesions, rising)
    return finding(status, [verdict] + texts, evidence, citation=citation)


def _refractoriness_verdict(
    insufficient: bool | None, more_lesions: bool | None, rising: bool | None
) -> tuple[Status, str]:
    if insufficient or more_lesions or rising:
        which = [
            name
            for name, flag in (
                (wording.tace_resistance_two_consecutive_insufficient_responses_viable(), insufficient),
                (wording.tace_resistance_two_consecutive_increases_liver_lesions(), more_lesions),
                (wording.tace_resistance_afp_higher_after_two_consecutive(), rising),
            )
            if flag
        ]
        return Status.MET, f"Refractory: {', '.join(which)}."
    if insufficient is False and more_lesions is False and rising is False:
        return (
            Status.NOT_MET,
            wording.tace_resistance_no_refractoriness_criterion_met_after(),
        )
    missing = []
    if insufficient is None:
        missing.append(wording.tace_resistance_imaging_before_months_after_each())
    if rising is None:
        missing.append(wording.tace_resistance_afp_before_after_each_last())
    return Status.UNKNOWN, wording.tace_resistance_cannot_decide_missing(' and '.join(missing))


def evaluate_jsh_2014(
    snapshot: Snapshot, as_of: date, k: Knowledge, *, sorafenib_start: date | None, series_mrecist: MrecistResult | None
) -> Finding:
    """JSH-LCSGJ 2014 refractoriness: appearance of vascular invasion or extrahepatic spread (criteria 3, 4), else
    two consecutive insufficient responses, increases in liver lesions or AFP rises (criteria 1a, 1b, 2)."""
    g = k.criteria.jsh_2014
    citation = g.citation
    end = min(sorafenib_start, as_of) if sorafenib_start else as_of
    sessions = completed_tace(snapshot, end, inclusive=sorafenib_start is None)
    needed = g.min_consecutive_sessions
    if len(sessions) < needed:
        return finding(
            Status.NOT_MET,
            [wording.tace_resistance_completed_tace_session_s_least(len(sessions), needed)],
            [s.ref for s in sessions],
            citation=citation,
        )
    first = sessions[0].performed
    assert first is not None
    appeared = _appearances(snapshot, first, end, series_mrecist)
    if appeared:
        return finding(
            Status.MET,
            [
                wording.tace_resistance_appearance_after_tace_began(label, when.isoformat())
                for label, _, when in appeared
            ],
            [ref for _, ref, _ in appeared],
            citation=citation,
        )
    return _refractoriness(snapshot, sessions, g, citation)


def evaluate_tace_resistance(
    snapshot: Snapshot, as_of: date, k: Knowledge, *, sorafenib_start: date | None, studies: LesionStudies | None = None
) -> TaceResistance:
    """JSH 2010 with JSH 2014 beside it. ``studies``: the snapshot's lesions as ``rules.mrecist.lesion_studies``
    reads them, when the caller has them already (read here otherwise)."""
    jsh_2010, sessions, mrecist = evaluate_jsh_2010(snapshot, as_of, k, sorafenib_start=sorafenib_start, studies=studies)
    jsh_2014 = evaluate_jsh_2014(snapshot, as_of, k, sorafenib_start=sorafenib_start, series_mrecist=mrecist)
    return TaceResistance(finding=jsh_2010, sessions=sessions, jsh_2014=jsh_2014, series_mrecist=mrecist)
