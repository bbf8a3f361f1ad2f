"""The survival benchmark on the clinician page: both arms of the source study on one hand-built SVG.

The decision the page supports is between the two arms, so both reconstructed Kaplan-Meier curves
are drawn together; the patient's arm (when the assessment has a benchmark) is highlighted with its
95% CI band and the patient's position, the other arm is drawn thin and grey. The legend and the
patient's label sit in a band above the plot area, so no label ever overlaps a curve. No
matplotlib on the request path: the steps come from the built benchmark tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from service.benchmarks.tables import ArmTable

ARM_IDS = ("sorafenib-plus-tace", "sorafenib-alone")
WIDTH, HEIGHT = 760.0, 380.0
LEFT, RIGHT, TOP, BOTTOM = 58.0, 738.0, 78.0, 330.0
X_MAX_MONTHS = 50.0
INCLUSION_MONTHS = 3.0
HIGHLIGHT = "#08519c"  # 7.6:1 on white
OTHER = "#595959"  # 7:1 on white
BAND = "#c6dbef"
MARKER = "#a50f15"


@dataclass(frozen=True)
class SurvivalChart:
    svg: str
    summary: str


def _steps(arm: ArmTable, attr: str) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = [(0.0, 1.0)]
    for step in arm.km:
        value = getattr(step, attr)
        if value is None:
            value = step.estimate
        if value is None:
            continue
        month = min(step.month, X_MAX_MONTHS)
        pts += [(month, pts[-1][1]), (month, value)]
        if step.month >= X_MAX_MONTHS:
            break
    return pts


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def build_survival_chart(
    arms: dict[str, ArmTable],
    patient_arm: str | None,
    patient_month: float | None = None,
    patient_label: str | None = None,
) -> SurvivalChart:
    """Both arms; ``patient_arm`` highlighted and, with ``patient_month``, the patient's position on it."""
    parts = _frame()
    for arm_id in sorted(arms, key=lambda a: a == patient_arm):  # the patient's arm drawn last, on top
        parts += _arm_curve(arms[arm_id], arm_id, patient_arm)
    legend, legend_y = _legend(arms, patient_arm)
    parts += legend
    summary_bits = _arm_summaries(arms, patient_arm)
    if patient_arm and patient_month is not None and patient_arm in arms:
        point = arms[patient_arm].survival_at(patient_month)
        s = point.estimate if point and point.estimate is not None else None
        if s is not None:
            parts.append(_patient_marker(patient_month, s, patient_label, legend_y))
            summary_bits.append(f"{patient_label}: marked at month {patient_month:g} on the highlighted curve ({_pct(s)}).")
    summary = " ".join(summary_bits) + " Benchmark from a small retrospective cohort, not a prediction; arms not randomised."
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0f} {HEIGHT:.0f}" role="img" '
        'aria-labelledby="survival-title survival-desc" class="chart" id="survival-chart">'
        '<title id="survival-title">Overall survival in the source study: sorafenib + TACE and sorafenib alone</title>'
        f'<desc id="survival-desc">{escape(summary)}</desc>'
        "<style>text{font-family:system-ui,-apple-system,'Segoe UI',sans-serif}"
        ".tick{font-size:11px}.axis{font-size:12px}.legend{font-size:12px}.strong{font-weight:700}</style>"
        + "".join(parts)
        + "</svg>"
    )
    return SurvivalChart(svg=svg, summary=summary)


def _x(month: float) -> float:
    return LEFT + min(max(month, 0.0), X_MAX_MONTHS) / X_MAX_MONTHS * (RIGHT - LEFT)


def _y(s: float) -> float:
    return BOTTOM - s * (BOTTOM - TOP)


def _line(pts: list[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{_x(m):.1f},{_y(s):.1f}" for i, (m, s) in enumerate(pts))


def _arm_style(arm_id: str, patient_arm: str | None) -> tuple[bool, str, str]:
    """(the patient's arm?, stroke colour, dash attribute): the patient's arm, else the first arm, stands out."""
    mine = arm_id == patient_arm
    prominent = mine or patient_arm is None and arm_id == ARM_IDS[0]
    return mine, HIGHLIGHT if prominent else OTHER, "" if prominent else ' stroke-dasharray="7 4"'


def _frame() -> list[str]:
    """The inclusion period's shading, the grid with its ticks, the axes and their titles."""
    parts: list[str] = [
        f'<rect x="{_x(0):.1f}" y="{TOP}" width="{_x(INCLUSION_MONTHS) - _x(0):.1f}" height="{BOTTOM - TOP}" fill="#efefef">'
        "<title>First 3 months: 100% by design (the study included only patients treated at least 3 months)</title></rect>"
    ]
    for s in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{LEFT}" x2="{RIGHT}" y1="{_y(s):.1f}" y2="{_y(s):.1f}" stroke="#d9d9d9"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{_y(s) + 4:.1f}" text-anchor="end" class="tick">{s * 100:.0f}%</text>')
    for month in range(0, int(X_MAX_MONTHS) + 1, 6):
        parts.append(f'<line x1="{_x(month):.1f}" x2="{_x(month):.1f}" y1="{BOTTOM}" y2="{BOTTOM + 4}" stroke="#595959"/>')
        parts.append(f'<text x="{_x(month):.1f}" y="{BOTTOM + 17}" text-anchor="middle" class="tick">{month}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{RIGHT}" y1="{BOTTOM}" y2="{BOTTOM}" stroke="#595959"/>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{BOTTOM}" stroke="#595959"/>')
    parts.append(
        f'<text x="{(LEFT + RIGHT) / 2:.1f}" y="{BOTTOM + 36}" text-anchor="middle" class="axis">'
        "Months from sorafenib start</text>"
    )
    parts.append(
        f'<text x="16" y="{(TOP + BOTTOM) / 2:.1f}" transform="rotate(-90 16 {(TOP + BOTTOM) / 2:.1f})" '
        'text-anchor="middle" class="axis">Overall survival</text>'
    )
    return parts


def _arm_curve(arm: ArmTable, arm_id: str, patient_arm: str | None) -> list[str]:
    """One arm's curve (with its 95% CI band if it is the patient's) and its published landmarks."""
    mine, colour, dash = _arm_style(arm_id, patient_arm)
    width = 3.2 if mine else 1.8
    group = [f'<g class="arm{" patient-arm" if mine else ""}" data-arm="{escape(arm_id)}">']
    if mine:
        upper = _steps(arm, "ci_upper")
        lower = _steps(arm, "ci_lower")
        band = _line(upper) + " " + " ".join(f"L{_x(m):.1f},{_y(s):.1f}" for m, s in reversed(lower)) + " Z"
        group.append(f'<path d="{band}" fill="{BAND}" fill-opacity="0.7" stroke="none"><title>95% CI</title></path>')
    group.append(f'<path d="{_line(_steps(arm, "estimate"))}" fill="none" stroke="{colour}" stroke-width="{width}"{dash}/>')
    for p in arm.document.get("published", {}).get("survival", []):
        if p.get("estimate") is None:
            continue
        px, py = _x(float(p["month"])), _y(float(p["estimate"]))
        group.append(
            f'<path d="M{px:.1f},{py - 5:.1f} l5,5 l-5,5 l-5,-5 z" fill="white" stroke="{colour}" stroke-width="1.5">'
            f"<title>{escape(arm.label)}: published {p['month']:g}-month survival {_pct(p['estimate'])}</title></path>"
        )
    group.append("</g>")
    return group


def _legend(arms: dict[str, ArmTable], patient_arm: str | None) -> tuple[list[str], float]:
    """The legend rows (the patient's arm first) and the landmarks' key; returns them and the next row's y."""
    parts = []
    legend_y = 16.0
    for arm_id in sorted(arms, key=lambda a: a != patient_arm):
        arm = arms[arm_id]
        mine, colour, dash = _arm_style(arm_id, patient_arm)
        median = arm.median_os_months.estimate
        text = f"{arm.label} (n={arm.n}), median {median:g} months" if median is not None else f"{arm.label} (n={arm.n})"
        if mine:
            text += " — this patient's arm"
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + 28}" y1="{legend_y - 4:.1f}" y2="{legend_y - 4:.1f}" stroke="{colour}" '
            f'stroke-width="{3.2 if mine else 1.8}"{dash}/>'
            f'<text x="{LEFT + 34}" y="{legend_y:.1f}" class="{"legend strong" if mine else "legend"}">{escape(text)}</text>'
        )
        legend_y += 18
    parts.append(
        f'<path d="M{RIGHT - 150:.1f},{11:.1f} l5,5 l-5,5 l-5,-5 z" fill="white" stroke="#1b1b1b" stroke-width="1.5"/>'
        f'<text x="{RIGHT - 140:.1f}" y="20" class="legend">published landmarks</text>'
    )
    return parts, legend_y


def _arm_summaries(arms: dict[str, ArmTable], patient_arm: str | None) -> list[str]:
    """Each arm's median and landmark survival in words (the chart's text alternative)."""
    summary_bits = []
    for arm_id in ARM_IDS:
        if arm_id not in arms:
            continue
        arm = arms[arm_id]
        landmarks = ", ".join(f"{m} months {_pct(p.estimate if p else None)}" for m in (6, 12, 24) for p in [arm.survival_at(m)])
        median = arm.median_os_months.estimate
        summary_bits.append(
            f"{arm.label} (n={arm.n}{', this patient' + chr(39) + 's arm' if arm_id == patient_arm else ''}): "
            f"median {median:g} months; survival {landmarks}."
            if median is not None
            else f"{arm.label} (n={arm.n}): survival {landmarks}."
        )
    return summary_bits


def _patient_marker(month: float, survival: float, label: str | None, legend_y: float) -> str:
    """The patient's position on the highlighted curve, labelled under the legend."""
    mx, my = _x(month), _y(survival)
    text = escape(label or "This patient")
    anchor, tx = ("end", mx - 4) if mx > (LEFT + RIGHT) / 2 else ("start", max(mx - 4, LEFT))
    ty = legend_y + 4
    return (
        f'<g id="patient-position"><title>{text}</title>'
        f'<line x1="{mx:.1f}" y1="{ty + 4:.1f}" x2="{mx:.1f}" y2="{my - 7:.1f}" stroke="{MARKER}" stroke-width="1.2"/>'
        f'<circle cx="{mx:.1f}" cy="{my:.1f}" r="6" fill="{MARKER}" stroke="white" stroke-width="1.5"/>'
        f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" class="legend strong" fill="{MARKER}">{text}</text></g>'
    )
