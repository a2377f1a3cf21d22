"""A line chart of model metrics over versions, as numbers for an inline SVG (no script,
nothing inline to allow in the CSP); the page shows the same numbers as a table too."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH = 640
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40
MAX_SERIES = 5


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    version: int
    value: float


@dataclass(frozen=True)
class Series:
    name: str
    points: list[Point]

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM


def metric_names(metrics: Sequence[dict[str, Any]], first: str | None = None) -> list[str]:
    """The ranking metrics (`name@k`, values 0 to 1) the versions recorded, gate metric first."""
    seen: list[str] = []
    for recorded in metrics:
        for name, value in recorded.items():
            if "@" in name and isinstance(value, int | float) and name not in seen:
                seen.append(name)
    seen.sort(key=lambda name: (name != first, name))
    return seen[:MAX_SERIES]


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def metrics_chart(
    versions: Sequence[tuple[int, dict[str, Any]]], names: Sequence[str]
) -> LineChart | None:
    """Each metric in `names` over the versions (oldest first); None with fewer than one point."""
    values = [
        float(metrics[name])
        for _, metrics in versions
        for name in names
        if isinstance(metrics.get(name), int | float) and math.isfinite(float(metrics[name]))
    ]
    if not versions or not values:
        return None
    top = _nice_ceiling(max(values))
    numbers = [number for number, _ in versions]
    low, high = min(numbers), max(numbers)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def x_of(number: int) -> float:
        return LEFT + (plot_w / 2 if high == low else (number - low) / (high - low) * plot_w)

    def y_of(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    series = []
    for name in names:
        points = [
            Point(x_of(number), y_of(float(metrics[name])), number, float(metrics[name]))
            for number, metrics in versions
            if isinstance(metrics.get(name), int | float) and math.isfinite(float(metrics[name]))
        ]
        if points:
            series.append(Series(name, points))
    step = max(1, math.ceil(len(numbers) / 10))
    x_ticks = [Tick(x_of(n), f"v{n}") for n in numbers[::step]]
    y_ticks = [Tick(y_of(top * i / 4), f"{top * i / 4:.3g}") for i in range(5)]
    return LineChart(WIDTH, HEIGHT, series, x_ticks, y_ticks)
