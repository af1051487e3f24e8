"""The PLT chart of one course as geometry for a server-rendered inline SVG (no script, no style="").

CTCAE v5.0 bands are shaded AND labelled (G0–G4), draw days are dashed lines, decisions are
triangles with their dose written next to them: all of it survives a black-and-white printout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from flask_babel import gettext as _

from diary.models import DoseDecision, LabResult
from diary.study import StudyConfig

WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 52, 60, 28, 40
BAND_FILLS = {0: "#ffffff", 1: "#fdf6d8", 2: "#fbe3b0", 3: "#f6c59a", 4: "#eea39a"}


@dataclass(frozen=True)
class Band:
    grade: int
    y: float
    height: float
    fill: str
    label_y: float
    label: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    plt: float
    day: int


@dataclass(frozen=True)
class Marker:
    x: float
    day: int
    text: str
    path: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    title: str
    description: str
    bands: list[Band]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, int, bool]]  # x, day, draw day
    points: list[Point]
    line: str
    markers: list[Marker]
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def plt_chart(labs: Sequence[LabResult], decisions: Sequence[DoseDecision], cfg: StudyConfig,
              title: str) -> Chart:
    """Geometry for the course's current counts (day 0 = baseline) and signed decisions."""
    length = cfg.course_length_days
    top_value = max([150.0, cfg.plt_lln * 1.5] + [lab.plt * 1.1 for lab in labs])
    top_value = math.ceil(top_value / 50) * 50
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(day: float) -> float:
        return round(LEFT + plot_w * day / length, 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (1 - min(value, top_value) / top_value), 1)

    edges = [(4, 0, 25), (3, 25, 50), (2, 50, 75), (1, 75, cfg.plt_lln), (0, cfg.plt_lln, top_value)]
    bands = [Band(g, y(hi), round(y(lo) - y(hi), 1), BAND_FILLS[g], round((y(lo) + y(hi)) / 2 + 4, 1),
                  f"G{g}") for g, lo, hi in edges if hi > lo]
    y_ticks = [(y(v), f"{v:g}") for v in sorted({0, 25, 50, 75, cfg.plt_lln, top_value})]
    x_ticks = [(x(d), d, d in cfg.draw_days) for d in range(0, length + 1)]
    points = [Point(x(lab.course_day), y(lab.plt), lab.plt, lab.course_day)
              for lab in sorted(labs, key=lambda lab: (lab.course_day, lab.id))]
    markers = []
    for decision in decisions:
        mx = x(decision.effective_day - 0.5)  # a decision applies from the start of its day
        text = _("0 mg (hold)") if decision.dose_mg == 0 else _("%(mg)s mg", mg=f"{decision.dose_mg:g}")
        markers.append(Marker(mx, decision.effective_day, text,
                              f"M{mx - 6},{TOP - 14} L{mx + 6},{TOP - 14} L{mx},{TOP - 4} Z"))
    description = "; ".join(f"day {p.day}: PLT {p.plt:g}" for p in points) or "no blood counts yet"
    return Chart(WIDTH, HEIGHT, title, description, bands, y_ticks, x_ticks, points,
                 " ".join(f"{p.x},{p.y}" for p in points), markers,
                 (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM))
