"""Kaplan-Meier plots of the benchmark arms, rendered once when the tables are built.

``render_plots`` draws each arm's reconstructed curve (steps) with its 95% CI band
and the paper's published landmark points, and writes SVG and PNG beside the
tables, with a small JSON file giving the mapping from (month, survival) to the
SVG's coordinates. The request path never imports matplotlib: it serves the
files and draws the patient's position as an SVG overlay with that mapping
(:func:`svg_with_marker`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from service.benchmarks.tables import BenchmarkTables, CohortTable, load_benchmark_tables

PLOT_SUFFIXES = (".svg", ".png", ".plot.json")
FIGURE_INCHES = (6.4, 4.0)
DPI = 100
X_MAX_MONTHS = 50.0


def plot_stem(cohort_id: str, arm_id: str) -> str:
    return f"{cohort_id}.{arm_id}"


@dataclass(frozen=True)
class PlotMapping:
    """Data coordinates -> SVG user units (matplotlib's SVG uses points, y downwards)."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    left: float
    right: float
    top: float
    bottom: float

    def to_svg(self, month: float, survival: float) -> tuple[float, float]:
        fx = (month - self.x_min) / (self.x_max - self.x_min)
        fy = (survival - self.y_min) / (self.y_max - self.y_min)
        return self.left + fx * (self.right - self.left), self.bottom - fy * (self.bottom - self.top)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlotMapping:
        return cls(**{k: float(data[k]) for k in cls.__dataclass_fields__})


def _steps(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """A post-step polyline through (x, y) points."""
    sx, sy = [xs[0]], [ys[0]]
    for x, y in zip(xs[1:], ys[1:]):
        sx += [x, x]
        sy += [sy[-1], y]
    return sx, sy


def render_arm_plot(cohort: CohortTable, arm_id: str, out_dir: Path) -> list[Path]:
    """Render one arm's SVG, PNG and coordinate mapping into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "hcc-cds"  # deterministic ids in the SVG
    matplotlib.rcParams["svg.fonttype"] = "none"
    arm = cohort.arm(arm_id)
    months = [s.month for s in arm.km if s.estimate is not None]
    est = [s.estimate for s in arm.km if s.estimate is not None]
    low = [s.ci_lower if s.ci_lower is not None else s.estimate for s in arm.km if s.estimate is not None]
    high = [s.ci_upper if s.ci_upper is not None else s.estimate for s in arm.km if s.estimate is not None]
    fig, ax = plt.subplots(figsize=FIGURE_INCHES, dpi=DPI)
    sx, sy = _steps(months, est)
    _, slo = _steps(months, low)
    _, shi = _steps(months, high)
    ax.fill_between(sx, slo, shi, color="#9ecae1", alpha=0.5, linewidth=0, label="95% CI")
    ax.plot(sx, sy, color="#08519c", linewidth=2, label=f"{arm.label} (reconstructed, n={arm.n})")
    published = arm.document.get("published", {}).get("survival", [])
    px = [p["month"] for p in published if p.get("estimate") is not None]
    py = [p["estimate"] for p in published if p.get("estimate") is not None]
    if px:
        ax.scatter(px, py, marker="D", color="#d94801", zorder=5, label="published landmarks")
    ax.set_xlim(0, X_MAX_MONTHS)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Months from sorafenib start")
    ax.set_ylabel("Overall survival")
    ax.set_title(f"{arm.label}: benchmark from a 2008-2015 cohort (not a prediction)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    stem = plot_stem(cohort.cohort_id, arm_id)
    svg_path, png_path, map_path = (out_dir / f"{stem}{suffix}" for suffix in PLOT_SUFFIXES)
    fig.savefig(svg_path, format="svg", metadata={"Date": None, "Creator": None})
    fig.savefig(png_path, format="png", dpi=DPI, metadata={"Software": None})
    # SVG user units are points (72 per inch); figure coordinates have y upwards
    width_pt, height_pt = FIGURE_INCHES[0] * 72, FIGURE_INCHES[1] * 72
    box = ax.get_position()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    mapping = {
        "x_min": x0, "x_max": x1, "y_min": y0, "y_max": y1,
        "left": round(box.x0 * width_pt, 4), "right": round(box.x1 * width_pt, 4),
        "top": round((1 - box.y1) * height_pt, 4), "bottom": round((1 - box.y0) * height_pt, 4),
    }
    map_path.write_text(json.dumps(mapping, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    plt.close(fig)
    return [svg_path, png_path, map_path]


def render_plots(tables_dir: Path | None = None, out_dir: Path | None = None) -> list[Path]:
    """Render every arm of every cohort in ``tables_dir`` (default: the shipped tables)."""
    from service.benchmarks.tables import default_tables_dir

    tables = load_benchmark_tables(tables_dir)
    target = out_dir or tables_dir or Path(str(default_tables_dir()))
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for cohort in tables.cohorts.values():
        for arm_id in cohort.arm_ids:
            written += render_arm_plot(cohort, arm_id, target)
    return written


def svg_with_marker(svg: str, mapping: PlotMapping, month: float, survival: float, label: str) -> str:
    """The plot with the patient's position drawn on it (a marker, a guide line and a label)."""
    x, y = mapping.to_svg(min(max(month, mapping.x_min), mapping.x_max), survival)
    _, y_axis = mapping.to_svg(mapping.x_min, mapping.y_min)
    text = escape(label)
    # keep the label inside the axes: below the marker near the top, to its left near the right edge
    label_y = y + 18 if y - 8 < mapping.top + 14 else y - 8
    anchor, label_x = ("end", x - 8) if x > (mapping.left + mapping.right) / 2 else ("start", x + 8)
    overlay = (
        f'<g id="patient-position" aria-label="{text}">'
        f'<line x1="{x:.2f}" y1="{y:.2f}" x2="{x:.2f}" y2="{y_axis:.2f}" stroke="#a50f15" stroke-dasharray="4 3"/>'
        f'<circle cx="{x:.2f}" cy="{y:.2f}" r="6" fill="#a50f15" stroke="white" stroke-width="1.5"/>'
        f'<text x="{label_x:.2f}" y="{label_y:.2f}" text-anchor="{anchor}" font-size="10" fill="#a50f15" '
        f'font-family="sans-serif">{text}</text>'
        "</g>"
    )
    closing = svg.rfind("</svg>")
    if closing < 0:
        raise ValueError("not an SVG document")
    return svg[:closing] + overlay + svg[closing:]


@dataclass(frozen=True)
class PlotFiles:
    svg: str
    png: bytes
    mapping: PlotMapping


def load_plots(tables: BenchmarkTables, directory: Path | None = None) -> dict[tuple[str, str], PlotFiles]:
    """Every arm's pre-rendered plot, read once (the request path only serves and annotates them)."""
    from service.benchmarks.tables import default_tables_dir

    folder = directory or default_tables_dir()
    plots = {}
    for cohort in tables.cohorts.values():
        for arm_id in cohort.arm_ids:
            stem = plot_stem(cohort.cohort_id, arm_id)
            svg, png, mapping = (folder.joinpath(f"{stem}{suffix}") for suffix in PLOT_SUFFIXES)
            plots[(cohort.cohort_id, arm_id)] = PlotFiles(
                svg=svg.read_text(encoding="utf-8"),
                png=png.read_bytes(),
                mapping=PlotMapping.from_dict(json.loads(mapping.read_text(encoding="utf-8"))),
            )
    return plots
