"""Kaplan-Meier plots of the benchmark arms: the files rendered offline, read once at start-up.

``offline.benchmarks.plots`` draws each arm's reconstructed curve when the tables are built and
writes SVG and PNG beside the tables, with a small JSON file giving the mapping from (month,
survival) to the SVG's coordinates. The service never imports matplotlib: it serves the files
(:func:`load_plots`) and draws the patient's position as an SVG overlay with that mapping
(:func:`svg_with_marker`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from service.benchmarks.tables import BenchmarkTables, default_tables_dir

PLOT_SUFFIXES = (".svg", ".png", ".plot.json")


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
