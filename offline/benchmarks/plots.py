"""Kaplan-Meier plots of the benchmark arms, rendered once when the tables are built (needs matplotlib).

``render_plots`` draws each arm's reconstructed curve (steps) with its 95% CI band and the paper's
published landmark points, and writes SVG and PNG beside the tables, with a small JSON file giving
the mapping from (month, survival) to the SVG's coordinates (read by ``service.benchmarks.plots``).
"""

from __future__ import annotations

import json
from pathlib import Path

from service.benchmarks.plots import PLOT_SUFFIXES, plot_stem
from service.benchmarks.tables import CohortTable, default_tables_dir, load_benchmark_tables

FIGURE_INCHES = (6.4, 4.0)
DPI = 100
X_MAX_MONTHS = 50.0


def _steps(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """A post-step polyline through (x, y) points."""
    sx, sy = [xs[0]], [ys[0]]
    for x, y in zip(xs[1:], ys[1:]):
        sx += [x, x]
        sy += [sy[-1], y]
    return sx, sy


def render_arm_plot(cohort: CohortTable, arm_id: str, out_dir: Path) -> list[Path]:
    """Render one arm's SVG, PNG and coordinate mapping into ``out_dir``."""
    import matplotlib  # here, not at the top: the Agg backend must be chosen before pyplot is imported

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
    tables = load_benchmark_tables(tables_dir)
    target = out_dir or tables_dir or Path(str(default_tables_dir()))
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for cohort in tables.cohorts.values():
        for arm_id in cohort.arm_ids:
            written += render_arm_plot(cohort, arm_id, target)
    return written
