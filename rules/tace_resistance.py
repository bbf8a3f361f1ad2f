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

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from rules.findings import Finding, Status, finding
from rules.findings import finding as _finding
from rules.knowledge import Knowledge
from rules.mrecist import CR, PD, PR, MrecistResult, TimepointEvaluation, evaluate_mrecist
from rules.snapshot import LesionMeasurement, ProcedureFact, Snapshot
from rules.timing import days_after, days_before
from rules.treatment import completed_tace, same_day_duplicates

RESPONSE_CATEGORIES = (CR, PR)
EVALUABLE_CATEGORIES = ("CR", "PR", "SD", "PD")
PROGRESSION_CONDITIONS = {
    "portal_vein_tumour_thrombus": "new vascular invasion (portal-vein tumour thrombus)",
    "extrahepatic_metastasis": "new extrahepatic spread",
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

    def as_dict(self) -> dict:
        data = self.finding.as_dict()
        data["definition"] = "JSH-2010"
        data["tace_sessions"] = list(self.sessions)
        data["jsh_2014"] = self.jsh_2014.as_dict()
        return data


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
            events.append(ProgressionEvent(point.date, f"mRECIST PD on imaging ({kinds})", point.evidence))
    for report in snapshot.disease_status:
        if report.trend == "worsened" and series_start < report.when <= end:
            events.append(ProgressionEvent(report.when, "disease status reported as worsened", (report.ref,)))
    for concept, label in PROGRESSION_CONDITIONS.items():
        for cond in snapshot.conditions_of(concept):
            if cond.onset is not None and series_start < cond.onset <= end:
                events.append(ProgressionEvent(cond.onset, label, (cond.ref,)))
    return sorted(events, key=lambda e: (e.when, e.what))


def _present_before_series(snapshot: Snapshot, series_start: date) -> tuple:
    """The conditions for the series' mRECIST: a thrombus or metastasis recorded on or before the first
    session is pre-existing disease at baseline, not new spread during the series."""
    return tuple(
        replace(c, onset=None) if c.onset is not None and c.onset <= series_start else c for c in snapshot.conditions
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
                out.append(f"{what} {cond.ref} recorded on {_d(cond.recorded)} has no onset date")
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


def evaluate_jsh_2010(
    snapshot: Snapshot,
    as_of: date,
    k: Knowledge,
    *,
    sorafenib_start: date | None,
) -> tuple[Finding, tuple[str, ...], MrecistResult | None]:
    group = "tace_resistance"
    citation = k.citation(group)
    needed = int(k.threshold(group, "min_consecutive_sessions"))
    window = int(k.threshold(group, "progression_window_days"))
    end = min(sorafenib_start, as_of) if sorafenib_start else as_of
    before_what = f"sorafenib start {_d(sorafenib_start)}" if sorafenib_start else f"{_d(as_of)}"
    sessions = completed_tace(snapshot, end, inclusive=sorafenib_start is None)
    refs = tuple(s.ref for s in sessions)
    merged = [
        f"{len(others) + 1} TACE records on {_d(s.performed)} ({', '.join((s.ref, *others))}) are one session."
        for s in sessions
        if s.performed is not None and (others := same_day_duplicates(snapshot, sessions).get(s.ref))
    ]

    def finding(status: Status, reasons: list[str], evidence, citation: str) -> Finding:
        return _finding(status, [*reasons, *merged], evidence, citation=citation)

    if len(sessions) < needed:
        what = "No completed TACE session" if not sessions else f"Only {len(sessions)} completed TACE session"
        return (
            finding(
                Status.NOT_MET,
                [f"{what} before {before_what}; at least {needed} consecutive sessions are needed."],
                refs,
                citation=citation,
            ),
            refs,
            None,
        )
    series_start = sessions[0].performed
    assert series_start is not None
    mrecist = evaluate_mrecist(
        snapshot.lesions,
        treatment_start=series_start,
        as_of=end,
        criteria=k.thresholds["mrecist"],
        conditions=_present_before_series(snapshot, series_start),
        new_since_sessions=tuple(s.performed for s in sessions if s.performed is not None),
    )
    events = _progression_events(snapshot, series_start, end, mrecist.timeline)
    dismissed: list[str] = []
    dismissed_in_window: list[ProgressionEvent] = []
    for event in events:
        series, last_response = _series_before(sessions, event.when, mrecist.timeline)
        if len(series) < needed:
            broken = f" after the response on {_d(last_response.date)}" if last_response else ""
            dismissed.append(
                f"{_sentence(event.what)} on {_d(event.when)} followed only {len(series)} session(s){broken}."
            )
            if series and (event.when - series[-1].performed).days <= window:  # type: ignore[operator]
                dismissed_in_window.append(event)
            continue
        later = series[-1].performed
        assert later is not None
        gap = (event.when - later).days
        if gap > window:
            dismissed.append(
                f"{_sentence(event.what)} on {_d(event.when)} came {gap} days after the session of {_d(later)} "
                f"(more than {window})."
            )
            continue
        series_refs = tuple(s.ref for s in series)
        dates = ", ".join(_d(s.performed) for s in series if s.performed)
        reasons = [
            f"{len(series)} consecutive TACE sessions ({dates}); {event.what} on {_d(event.when)}, "
            f"{gap} days after the last (at most {window})."
        ]
        cpt_only = [s.ref for s in series if not s.specific]
        if cpt_only:
            return (
                finding(
                    Status.UNKNOWN,
                    reasons
                    + [
                        "Sessions coded only by CPT 37243 (" + ", ".join(cpt_only) + "), which also codes bland and "
                        "Y-90 embolization: not known to be TACE."
                    ],
                    series_refs + event.evidence,
                    citation=citation,
                ),
                series_refs,
                mrecist,
            )
        return finding(Status.MET, reasons, series_refs + event.evidence, citation=citation), series_refs, mrecist

    last = sessions[-1].performed
    assert last is not None
    in_window = [
        t
        for t in mrecist.timeline
        if last < t.date <= days_after(last, window) and t.category in EVALUABLE_CATEGORIES
    ]
    undated = _undatable_spread(snapshot, series_start, end)
    if in_window and in_window[-1].category != PD and undated:
        return (
            finding(
                Status.UNKNOWN,
                dismissed
                + [
                    f"Imaging on {_d(in_window[-1].date)} was {in_window[-1].category}, but "
                    + "; ".join(undated)
                    + ": it may be new vascular invasion or spread within the window."
                ],
                refs + in_window[-1].evidence,
                citation=citation,
            ),
            refs,
            mrecist,
        )
    if in_window or dismissed_in_window:
        if in_window and in_window[-1].category != PD:
            shown = in_window[-1]
            closing = (
                f"No progression within {window} days after the last TACE ({_d(last)}): imaging on "
                f"{_d(shown.date)} was {shown.category}."
            )
            evidence = refs + shown.evidence
        else:
            closing = f"The progression after the last TACE ({_d(last)}) did not follow {needed} consecutive sessions without response."
            evidence = refs + tuple(e for ev in dismissed_in_window for e in ev.evidence)
        return finding(Status.NOT_MET, dismissed + [closing], evidence, citation=citation), refs, mrecist
    later_imaging = [t for t in mrecist.timeline if t.date > last]
    reports = [r for r in snapshot.disease_status if last < r.when <= end]
    if later_imaging:
        why = f"the first imaging after it ({_d(later_imaging[0].date)}) was {later_imaging[0].category or 'not evaluable'}"
    elif reports:
        why = "no sized imaging after it (" + "; ".join(
            f"disease status reported {r.trend} on {_d(r.when)}, {r.ref}" for r in reports
        ) + ": a trend other than worsened does not measure a response)"
    else:
        why = "there is no imaging after it"
    if not later_imaging and (end - last).days <= window:
        why += f" yet (the {window}-day window ends {_d(days_after(last, window))})"
    return (
        finding(
            Status.UNKNOWN,
            dismissed
            + [f"Progression within {window} days after the last TACE ({_d(last)}) cannot be judged: {why}."],
            refs,
            citation=citation,
        ),
        refs,
        mrecist,
    )


# -- JSH-LCSGJ 2014 ----------------------------------------------------------------


def _viable(readings: list[LesionMeasurement], liver_only: bool = False) -> list[LesionMeasurement]:
    return [r for r in readings if r.viable_diameter_mm > 0 and (not liver_only or r.organ in (None, "liver"))]


def _imaging_by_date(snapshot: Snapshot) -> dict[date, list[LesionMeasurement]]:
    by_date: dict[date, list[LesionMeasurement]] = {}
    for m in snapshot.lesions:
        by_date.setdefault(m.when, []).append(m)
    return by_date


def _session_windows(
    sessions: tuple[ProcedureFact, ...], g: Mapping[str, Any], max_days_key: str = "response_imaging_max_days"
) -> list[tuple[ProcedureFact, date, date]]:
    """For each session: the window (up to ``g[max_days_key]`` days, and the next session) in which its
    response imaging or markers are read."""
    out = []
    for i, s in enumerate(sessions):
        assert s.performed is not None
        start = days_after(s.performed, int(g["response_imaging_min_days"]))
        stop = days_after(s.performed, int(g[max_days_key]))
        if i + 1 < len(sessions) and sessions[i + 1].performed is not None:
            stop = min(stop, sessions[i + 1].performed)  # type: ignore[type-var]
        out.append((s, start, stop))
    return out


def _imaging_response(snapshot: Snapshot, sessions: tuple[ProcedureFact, ...], g: Mapping[str, Any]) -> list[tuple[str, bool | None, bool | None, tuple[str, ...]]]:
    """Per session: (text, insufficient response?, more liver lesions?, evidence); None = cannot tell."""
    imaging = _imaging_by_date(snapshot)
    dates = sorted(imaging)
    results = []
    for s, start, stop in _session_windows(sessions, g):
        assert s.performed is not None
        before = [d for d in dates if d <= s.performed]
        after = [d for d in dates if start <= d <= stop]
        if not before or not after:
            results.append((f"TACE {s.performed.isoformat()}: no imaging before and 1-3 months after.", None, None, ()))
            continue
        pre, post = imaging[before[-1]], imaging[after[0]]
        # judged per treated lesion (JSH-LCSGJ 2014: the treated tumour's viable part): the lesions in the
        # liver (or of unknown organ) viable before the session; extrahepatic lesions are not treated by it
        treated = {r.lesion: r for r in _viable(pre, liver_only=True)}
        after_by_lesion = {r.lesion: r for r in post}
        evidence = tuple(r.ref for r in pre + post)
        if not treated:
            results.append((f"TACE {s.performed.isoformat()}: no viable tumour before it.", None, None, evidence))
            continue
        parts: list[str] = []
        flags: list[bool | None] = []
        for lesion, r in sorted(treated.items()):
            later = after_by_lesion.get(lesion)
            if later is None:
                parts.append(f"{lesion} {r.viable_diameter_mm:g} mm -> not measured")
                flags.append(None)
                continue
            fraction = later.viable_diameter_mm / r.viable_diameter_mm
            parts.append(f"{lesion} {r.viable_diameter_mm:g} -> {later.viable_diameter_mm:g} mm ({fraction:.0%})")
            flags.append(fraction > float(g["insufficient_viable_fraction_above"]))
        insufficient: bool | None = True if any(flags) else (None if None in flags else False)
        more = len(_viable(post, liver_only=True)) > len(_viable(pre, liver_only=True))
        results.append(
            (
                f"TACE {s.performed.isoformat()}: viable diameter per treated lesion {'; '.join(parts)}; "
                f"liver lesions {len(_viable(pre, True))} -> {len(_viable(post, True))}.",
                insufficient,
                more,
                evidence,
            )
        )
    return results


def _marker_rises(snapshot: Snapshot, sessions: tuple[ProcedureFact, ...], g: Mapping[str, Any]) -> list[tuple[str, bool | None, tuple[str, ...]]]:
    afp = snapshot.series("afp")
    results = []
    for s, _, stop in _session_windows(sessions, g, "marker_after_max_days"):
        assert s.performed is not None
        lookback = days_before(s.performed, int(g["marker_baseline_max_days_before"]))
        before = [m for m in afp if lookback <= m.when <= s.performed]
        after = [m for m in afp if s.performed < m.when <= stop]
        if not before or not after:
            results.append((f"TACE {s.performed.isoformat()}: no AFP before and after.", None, ()))
            continue
        rose = after[-1].value > before[-1].value
        results.append(
            (
                f"TACE {s.performed.isoformat()}: AFP {before[-1].value:g} -> {after[-1].value:g} ng/mL.",
                rose,
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


def evaluate_jsh_2014(
    snapshot: Snapshot, as_of: date, k: Knowledge, *, sorafenib_start: date | None, series_mrecist: MrecistResult | None
) -> Finding:
    g = k.thresholds["jsh_2014"]
    citation = k.citation("jsh_2014")
    end = min(sorafenib_start, as_of) if sorafenib_start else as_of
    sessions = completed_tace(snapshot, end, inclusive=sorafenib_start is None)
    needed = int(g["min_consecutive_sessions"])
    if len(sessions) < needed:
        return finding(
            Status.NOT_MET,
            [f"{len(sessions)} completed TACE session(s): at least {needed} are needed."],
            [s.ref for s in sessions],
            citation=citation,
        )
    first = sessions[0].performed
    assert first is not None
    appeared = []
    for concept, label in PROGRESSION_CONDITIONS.items():
        for cond in snapshot.conditions_of(concept):
            if cond.onset is not None and first < cond.onset <= end:
                appeared.append((label, cond.ref, cond.onset))
    if series_mrecist is not None:
        for point in series_mrecist.timeline:
            if point.imaging and "new_extrahepatic_spread" in point.progression:
                appeared.append(("new extrahepatic spread on imaging", point.evidence[0] if point.evidence else "", point.date))
    if appeared:
        return finding(
            Status.MET,
            [f"Appearance of {label} on {when.isoformat()} after TACE began." for label, _, when in appeared],
            [ref for _, ref, _ in appeared],
            citation=citation,
        )
    imaging = _imaging_response(snapshot, sessions, g)
    markers = _marker_rises(snapshot, sessions, g)
    insufficient = _two_consecutive([i[1] for i in imaging])
    more_lesions = _two_consecutive([i[2] for i in imaging])
    rising = _two_consecutive([m[1] for m in markers])
    texts = [i[0] for i in imaging] + [m[0] for m in markers] + [
        "Approximation: the response is read per treated lesion from viable longest diameters (the criterion "
        "speaks of the viable tumour, not a diameter)."
    ]
    evidence = [e for i in imaging for e in i[3]] + [e for m in markers for e in m[2]]
    if insufficient or more_lesions or rising:
        which = [
            name
            for name, flag in (
                ("two consecutive insufficient responses (viable > 50%)", insufficient),
                ("two consecutive increases in liver lesions", more_lesions),
                ("AFP higher after two consecutive sessions", rising),
            )
            if flag
        ]
        return finding(Status.MET, [f"Refractory: {', '.join(which)}."] + texts, evidence, citation=citation)
    if insufficient is False and more_lesions is False and rising is False:
        return finding(
            Status.NOT_MET,
            ["No refractoriness criterion met after the last two sessions; no new vascular invasion or extrahepatic spread."]
            + texts,
            evidence,
            citation=citation,
        )
    missing = []
    if insufficient is None:
        missing.append("imaging before and 1-3 months after each of the last two sessions")
    if rising is None:
        missing.append("AFP before and after each of the last two sessions")
    return finding(
        Status.UNKNOWN,
        [f"Cannot decide: missing {' and '.join(missing)}."] + texts,
        evidence,
        citation=citation,
    )


def evaluate_tace_resistance(
    snapshot: Snapshot, as_of: date, k: Knowledge, *, sorafenib_start: date | None
) -> TaceResistance:
    jsh_2010, sessions, mrecist = evaluate_jsh_2010(snapshot, as_of, k, sorafenib_start=sorafenib_start)
    jsh_2014 = evaluate_jsh_2014(snapshot, as_of, k, sorafenib_start=sorafenib_start, series_mrecist=mrecist)
    return TaceResistance(finding=jsh_2010, sessions=sessions, jsh_2014=jsh_2014, series_mrecist=mrecist)
