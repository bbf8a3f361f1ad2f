"""The course-of-disease chart on the clinician page: one hand-built SVG, no JavaScript, no network.

From the stored page data (:mod:`service.render.course`) and the stored assessment's mRECIST, it
draws each lesion's viable diameter and the sum of the target lesions over time, the TACE sessions
and the sorafenib start as markers, the TACE-resistance evaluation windows after the last two
sessions of the series (their length read from the stored data, which took it from the rules' data),
the mRECIST category at each follow-up study, the baseline and the nadir. It returns the SVG (with
<title> and <desc>) and a plain-data summary the page shows as a table: the chart's text alternative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 760.0, 330.0
LEFT, RIGHT, TOP, BOTTOM = 58.0, 712.0, 62.0, 286.0
# (stroke colour, dash pattern): every colour at least 4.5:1 on white; dashes tell lesions apart in print
LESION_STYLES = (
    ("#0b5394", ""),
    ("#a63603", "6 3"),
    ("#1b7837", "2 3"),
    ("#6a3d9a", "8 3 2 3"),
    ("#7f5700", "4 2"),
)
SUM_COLOUR = "#1b1b1b"
TACE_COLOUR = "#4d4d4d"
SORAFENIB_COLOUR = "#6a1b9a"
WINDOW_FILL = "#fdd0a2"
CATEGORY_COLOURS = {"CR": "#1b5e20", "PR": "#1b5e20", "SD": "#4d4d4d", "PD": "#a50f15", "NE": "#7f5700"}
CATEGORY_WORDS = {
    "CR": "complete response",
    "PR": "partial response",
    "SD": "stable disease",
    "PD": "progressive disease",
    "NE": "not evaluable",
}


@dataclass
class Timeline:
    svg: str | None  # None: nothing to draw (no imaging and no TACE)
    summary: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per imaging date: the data table
    lesion_labels: list[str] = field(default_factory=list)
    legend: list[dict[str, str]] = field(default_factory=list)
    windows: list[str] = field(default_factory=list)  # "W1: 92 days after TACE 2024-01-04 (to 2024-04-05)"


def _d(text: str) -> date:
    return date.fromisoformat(text)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _windows(course: dict[str, Any]) -> list[tuple[date, date]]:
    """The evaluation windows after the last two sessions of the TACE series (else of all sessions)."""
    days = int(course["window_days"])
    sessions = [s for s in course.get("tace_sessions", []) if s.get("in_series")] or course.get("tace_sessions", [])
    return [(_d(s["date"]), _d(s["date"]) + timedelta(days=days)) for s in sessions[-2:]]


def _sum_points(mrecist: dict[str, Any] | None) -> list[dict[str, Any]]:
    """(date, sum, category) of the baseline and every follow-up with a measured target sum."""
    if not mrecist or not mrecist.get("baseline"):
        return []
    base = mrecist["baseline"]
    points = [{"date": _d(base["date"]), "sum": base.get("sum_mm"), "category": None, "baseline": True}]
    for t in mrecist.get("timeline") or []:
        points.append({"date": _d(t["date"]), "sum": t.get("sum_mm"), "category": t.get("category"), "baseline": False})
    return points


@dataclass(frozen=True)
class _Course:
    """What the chart draws, read from the stored page data and mRECIST."""

    window_days: Any
    lesions: list[dict[str, Any]]
    sessions: list[date]
    not_done: list[date]
    sorafenib: date | None
    windows: list[tuple[date, date]]
    sums: list[dict[str, Any]]
    nadir: dict[str, Any] | None
    nadir_date: date | None

    @classmethod
    def read(cls, course: dict[str, Any], mrecist: dict[str, Any] | None) -> _Course:
        nadir = (mrecist or {}).get("nadir")
        return cls(
            window_days=course.get("window_days"),
            lesions=course.get("lesions") or [],
            sessions=[_d(s["date"]) for s in course.get("tace_sessions") or []],
            not_done=[_d(s["date"]) for s in course.get("tace_not_done") or []],
            sorafenib=_d(course["sorafenib_start"]) if course.get("sorafenib_start") else None,
            windows=_windows(course) if course.get("window_days") else [],
            sums=_sum_points(mrecist),
            nadir=nadir,
            nadir_date=_d(nadir["date"]) if nadir else None,
        )

    def readings(self) -> list[tuple[date, float]]:
        return [(_d(r["date"]), float(r["mm"])) for lesion in self.lesions for r in lesion["readings"]]

    def dates(self) -> list[date]:
        """Every date with something to draw (the windows' ends aside)."""
        dates = [d for d, _ in self.readings()] + self.sessions + self.not_done + [p["date"] for p in self.sums]
        return dates + ([self.sorafenib] if self.sorafenib else [])


@dataclass(frozen=True)
class _Scale:
    """Days and millimetres to SVG coordinates."""

    start: date
    end: date
    y_max: float

    @classmethod
    def fitting(cls, c: _Course, as_of: str) -> _Scale:
        dates = c.dates()
        end_dates = dates + [b for _, b in c.windows]
        values = [mm for _, mm in c.readings()] + [float(p["sum"]) for p in c.sums if p["sum"] is not None]
        return cls(
            start=min(dates) - timedelta(days=14),
            end=max(max(end_dates), _d(as_of)) + timedelta(days=14),
            y_max=max(values + [10.0]) * 1.15,
        )

    def x(self, day: date) -> float:
        return LEFT + (day - self.start).days / ((self.end - self.start).days or 1) * (RIGHT - LEFT)

    def y(self, mm: float) -> float:
        return BOTTOM - mm / self.y_max * (BOTTOM - TOP)


def build_timeline(course: dict[str, Any] | None, mrecist: dict[str, Any] | None, as_of: str) -> Timeline:
    """The chart and its text alternative; ``course`` None (stored before page data existed): sums only."""
    course = course or {"window_days": None, "lesions": [], "tace_sessions": [], "tace_not_done": []}
    c = _Course.read(course, mrecist)
    if not c.dates():
        return Timeline(svg=None, summary="No tumour measurements or TACE sessions recorded: nothing to draw.")
    scale = _Scale.fitting(c, as_of)
    legend: list[dict[str, str]] = []
    parts = _window_bands(c, scale) + _axes(scale) + _treatment_markers(c, scale)
    parts += _lesion_lines(c, scale, legend) + _target_sums(c, scale, legend)
    summary = _summary(course, c.lesions, c.sessions, c.sorafenib, c.windows, c.sums, c.nadir)
    return Timeline(
        svg=_svg_document(parts, summary),
        summary=summary,
        rows=_rows(c.lesions, c.sums),
        lesion_labels=[lesion["label"] for lesion in c.lesions],
        legend=legend,
        windows=[
            f"W{i + 1}: {course['window_days']} days after TACE {a.isoformat()} (to {b.isoformat()})"
            for i, (a, b) in enumerate(c.windows)
        ],
    )


def _window_bands(c: _Course, s: _Scale) -> list[str]:
    """The evaluation windows (behind everything): each outlined, overlaps darker."""
    parts = []
    for i, (a, b) in enumerate(c.windows):
        # a short tag under the band, below the month labels (W1, W2: named under the chart); labels of narrow bands would collide
        parts.append(
            f'<g class="window"><rect x="{s.x(a):.1f}" y="{TOP:.1f}" width="{s.x(b) - s.x(a):.1f}" height="{BOTTOM - TOP:.1f}" '
            f'fill="{WINDOW_FILL}" fill-opacity="0.45"/>'
            f'<line x1="{s.x(b):.1f}" x2="{s.x(b):.1f}" y1="{TOP:.1f}" y2="{BOTTOM:.1f}" stroke="#b34700" stroke-width="1.2"/>'
            f'<text x="{(s.x(a) + s.x(b)) / 2:.1f}" y="{BOTTOM + 34:.1f}" text-anchor="middle" class="small" '
            f'fill="#7f2704">W{i + 1}</text>'
            f'<title>{c.window_days}-day window after TACE {a.isoformat()} (to {b.isoformat()})</title></g>'
        )
    return parts


def _axes(s: _Scale) -> list[str]:
    """Axes, the horizontal grid with its millimetre ticks, the month ticks and the axis title."""
    parts = []
    step = _nice_step(s.y_max)
    tick = 0.0
    while tick <= s.y_max:
        parts.append(f'<line x1="{LEFT}" x2="{RIGHT}" y1="{s.y(tick):.1f}" y2="{s.y(tick):.1f}" stroke="#d9d9d9"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{s.y(tick) + 4:.1f}" text-anchor="end" class="tick">{_fmt(tick)}</text>')
        tick += step
    parts.append(f'<line x1="{LEFT}" x2="{RIGHT}" y1="{BOTTOM}" y2="{BOTTOM}" stroke="#595959"/>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{BOTTOM}" stroke="#595959"/>')
    for month in _month_ticks(s.start, s.end):
        parts.append(f'<line x1="{s.x(month):.1f}" x2="{s.x(month):.1f}" y1="{BOTTOM}" y2="{BOTTOM + 4}" stroke="#595959"/>')
        parts.append(f'<text x="{s.x(month):.1f}" y="{BOTTOM + 17}" text-anchor="middle" class="tick">{month.strftime("%b %Y")}</text>')
    parts.append(
        f'<text x="16" y="{(TOP + BOTTOM) / 2:.1f}" transform="rotate(-90 16 {(TOP + BOTTOM) / 2:.1f})" '
        'text-anchor="middle" class="axis">Viable diameter (mm)</text>'
    )
    return parts


def _treatment_markers(c: _Course, s: _Scale) -> list[str]:
    """TACE sessions, TACE not done, sorafenib start: vertical markers with a label in the top band."""
    parts = []
    for day in c.sessions:
        parts.append(
            f'<g class="tace"><line x1="{s.x(day):.1f}" x2="{s.x(day):.1f}" y1="{TOP - 14}" y2="{BOTTOM}" '
            f'stroke="{TACE_COLOUR}" stroke-dasharray="3 3"/>'
            f'<path d="M{s.x(day) - 5:.1f},{TOP - 22} h10 l-5,8 z" fill="{TACE_COLOUR}"/>'
            f"<title>TACE {day.isoformat()}</title></g>"
        )
    for day in c.not_done:
        parts.append(
            f'<g class="tace-not-done"><text x="{s.x(day):.1f}" y="{TOP - 12}" text-anchor="middle" '
            f'class="mark" fill="{TACE_COLOUR}">✕</text><title>TACE not done {day.isoformat()}</title></g>'
        )
    if c.sessions:
        parts.append(f'<text x="{s.x(c.sessions[0]) + 7:.1f}" y="{TOP - 24}" class="mark" fill="{TACE_COLOUR}">TACE</text>')
    if c.sorafenib:
        parts.append(
            f'<g class="sorafenib"><line x1="{s.x(c.sorafenib):.1f}" x2="{s.x(c.sorafenib):.1f}" y1="{TOP - 40}" y2="{BOTTOM}" '
            f'stroke="{SORAFENIB_COLOUR}" stroke-width="2"/>'
            f'<text x="{s.x(c.sorafenib) + 5:.1f}" y="{TOP - 42}" class="mark" fill="{SORAFENIB_COLOUR}">'
            f"Sorafenib {c.sorafenib.isoformat()}</text></g>"
        )
    return parts


def _lesion_lines(c: _Course, s: _Scale, legend: list[dict[str, str]]) -> list[str]:
    """Each lesion's diameters as a styled line with dots and an end label; adds it to ``legend``."""
    parts = []
    label_at = _end_label_positions(
        [(s.x(_d(les["readings"][-1]["date"])) + 6, s.y(float(les["readings"][-1]["mm"])) + 4) for les in c.lesions]
    )
    for i, lesion in enumerate(c.lesions):
        colour, dash = LESION_STYLES[i % len(LESION_STYLES)]
        pts = [(_d(r["date"]), float(r["mm"])) for r in lesion["readings"]]
        organ = "" if lesion.get("organ") in (None, "liver") else f" ({lesion['organ']})"
        name = f"Lesion {lesion['label']}{organ}"
        legend.append({"name": name, "colour": colour, "dash": dash, "kind": "lesion"})
        path = " ".join(f"{'M' if j == 0 else 'L'}{s.x(d):.1f},{s.y(mm):.1f}" for j, (d, mm) in enumerate(pts))
        dots = "".join(
            f'<circle cx="{s.x(d):.1f}" cy="{s.y(mm):.1f}" r="3" fill="{colour}"><title>{escape(name)} '
            f"{d.isoformat()}: {_fmt(mm)} mm</title></circle>"
            for d, mm in pts
        )
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<g class="lesion"><path d="{path}" fill="none" stroke="{colour}" stroke-width="1.8"{dash_attr}/>{dots}'
            f'<text x="{label_at[i][0]:.1f}" y="{label_at[i][1]:.1f}" class="small" fill="{colour}">'
            f"{escape(lesion['label'])}</text></g>"
        )
    return parts


def _target_sums(c: _Course, s: _Scale, legend: list[dict[str, str]]) -> list[str]:
    """The target sum line (with the baseline marked), the mRECIST category at each study and the nadir."""
    parts = []
    measured = [p for p in c.sums if p["sum"] is not None]
    if measured:
        legend.append({"name": "Sum of target lesions", "colour": SUM_COLOUR, "dash": "", "kind": "sum"})
        path = " ".join(f"{'M' if j == 0 else 'L'}{s.x(p['date']):.1f},{s.y(p['sum']):.1f}" for j, p in enumerate(measured))
        parts.append(f'<path class="target-sum" d="{path}" fill="none" stroke="{SUM_COLOUR}" stroke-width="3"/>')
        for p in measured:
            parts.append(
                f'<rect x="{s.x(p["date"]) - 4:.1f}" y="{s.y(p["sum"]) - 4:.1f}" width="8" height="8" fill="{SUM_COLOUR}">'
                f"<title>Target sum {p['date'].isoformat()}: {_fmt(p['sum'])} mm</title></rect>"
            )
        base = measured[0]
        if base["baseline"]:
            parts.append(
                f'<text x="{s.x(base["date"]) - 6:.1f}" y="{s.y(base["sum"]) - 8:.1f}" text-anchor="end" class="small">'
                "baseline</text>"
            )
    parts += _categories(c, s)
    nadir = c.nadir
    if c.nadir_date and nadir and nadir.get("sum_mm") is not None:
        nx, ny = s.x(c.nadir_date), s.y(float(nadir["sum_mm"]))
        parts.append(
            f'<g class="nadir"><circle cx="{nx:.1f}" cy="{ny:.1f}" r="8" fill="none" stroke="{SUM_COLOUR}" stroke-width="1.5"/>'
            f'<text x="{nx:.1f}" y="{ny + 22:.1f}" text-anchor="middle" class="small">nadir {_fmt(nadir["sum_mm"])} mm</text></g>'
        )
    parts.append(
        f'<text x="{LEFT}" y="{TOP - 48}" class="small" fill="#4d4d4d">mRECIST at each study ↓</text>'
        if any(p["category"] for p in c.sums)
        else ""
    )
    return parts


def _categories(c: _Course, s: _Scale) -> list[str]:
    """The mRECIST category of each follow-up study, above the chart."""
    parts = []
    for p in c.sums:
        if p["baseline"] or not p["category"]:
            continue
        colour = CATEGORY_COLOURS.get(p["category"], "#1b1b1b")
        parts.append(
            f'<g class="category"><text x="{s.x(p["date"]):.1f}" y="{TOP - 2}" text-anchor="middle" class="cat" '
            f'fill="{colour}">{escape(p["category"])}</text><title>mRECIST {p["date"].isoformat()}: '
            f"{escape(CATEGORY_WORDS.get(p['category'], p['category']))}</title></g>"
        )
    return parts


def _svg_document(parts: list[str], summary: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0f} {HEIGHT:.0f}" role="img" '
        'aria-labelledby="timeline-title timeline-desc" class="chart" id="timeline-chart">'
        '<title id="timeline-title">Course of the disease: viable tumour diameters, TACE sessions and sorafenib</title>'
        f'<desc id="timeline-desc">{escape(summary)}</desc>'
        "<style>text{font-family:system-ui,-apple-system,'Segoe UI',sans-serif}"
        ".tick{font-size:11px}.axis{font-size:12px}.small{font-size:11px}.mark{font-size:12px;font-weight:600}"
        ".cat{font-size:12px;font-weight:700}</style>"
        + "".join(parts)
        + "</svg>"
    )


def _end_label_positions(wanted: list[tuple[float, float]], gap: float = 11.0) -> list[tuple[float, float]]:
    """Each lesion's end label where it was wanted, moved up until it is ``gap`` px clear of the labels
    already placed near the same x (several lesions ending at one size, e.g. all 0 mm at a CR)."""
    placed: list[tuple[float, float]] = []
    for lx, ly in wanted:
        while any(abs(lx - px) < 14 and abs(ly - py) < gap for px, py in placed):
            ly -= gap
        placed.append((lx, ly))
    return placed


def _nice_step(y_max: float) -> float:
    for step in (5, 10, 20, 25, 50, 100, 200, 500):
        if y_max / step <= 6:
            return float(step)
    return float(int(y_max / 5) or 1)


def _month_ticks(start: date, end: date) -> list[date]:
    """First days of months between start and end, thinned to at most about eight labels."""
    months = []
    day = date(start.year, start.month, 1)
    while day <= end:
        if day >= start:
            months.append(day)
        day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    every = max(1, -(-len(months) // 8))
    return months[::every]


def _summary(course, lesions, sessions, sorafenib, windows, sums, nadir) -> str:
    bits = []
    if sessions:
        bits.append(f"{len(sessions)} TACE session(s): " + ", ".join(d.isoformat() for d in sessions) + ".")
    if windows:
        bits.append(
            f"{course['window_days']}-day evaluation windows after "
            + " and ".join(a.isoformat() for a, _ in windows)
            + "."
        )
    if sorafenib:
        bits.append(f"Sorafenib started {sorafenib.isoformat()}.")
    for lesion in lesions:
        sizes = ", ".join(f"{r['date']} {_fmt(float(r['mm']))} mm" for r in lesion["readings"])
        bits.append(f"Lesion {lesion['label']}: {sizes}.")
    measured = [p for p in sums if p["sum"] is not None]
    if measured:
        bits.append(
            "Target sum: "
            + ", ".join(
                f"{p['date'].isoformat()} {_fmt(p['sum'])} mm"
                + (" (baseline)" if p["baseline"] else f" ({p['category']})" if p["category"] else "")
                for p in measured
            )
            + "."
        )
    if nadir:
        bits.append(f"Nadir {_fmt(nadir['sum_mm'])} mm on {nadir['date']}.")
    return " ".join(bits)


def _rows(lesions, sums) -> list[dict[str, Any]]:
    by_date: dict[str, dict[str, Any]] = {}
    for lesion in lesions:
        for r in lesion["readings"]:
            row = by_date.setdefault(r["date"], {"date": r["date"], "modality": r.get("modality"), "sizes": {}})
            row["sizes"][lesion["label"]] = _fmt(float(r["mm"]))
    for p in sums:
        row = by_date.setdefault(p["date"].isoformat(), {"date": p["date"].isoformat(), "modality": None, "sizes": {}})
        row["sum"] = _fmt(p["sum"]) if p["sum"] is not None else None
        row["category"] = "baseline" if p["baseline"] else p["category"]
    return [by_date[k] for k in sorted(by_date)]

