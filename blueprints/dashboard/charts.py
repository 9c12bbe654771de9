"""Chart geometry: where the bars, ticks and labels of a grouped bar chart go. Numbers only, no markup.

The chart takes the width of whatever holds it, from a phone to a desktop, and its text stays
the size of the page's: the SVG has no viewBox. So across, positions are percentages of the
plot's width; down, they are pixels of the chart's fixed height; and the tick labels sit left
of the plot, at pixel offsets into the margin the stylesheet keeps for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SERIES = ("sent", "delivered", "read", "failed")


@dataclass(frozen=True)
class Box:
    """The plot area inside the axes: left and right in percent of the width, top and bottom in pixels."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Bar:
    """One bar: x and width in percent of the width, y and height in pixels."""

    series: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Group:
    """One day: its label, where the label goes (the middle of the day, in percent), and one bar per series."""

    label: str
    label_lines: tuple[str, ...]
    x: float
    bars: tuple[Bar, ...]
    values: dict[str, int]


@dataclass(frozen=True)
class BarChart:
    height: int
    plot: Box
    ticks: tuple[Tick, ...]
    groups: tuple[Group, ...]
    series: tuple[str, ...]
    totals: dict[str, int]

    @property
    def is_empty(self) -> bool:
        return not any(self.totals.values())

    @property
    def tick_label_x(self) -> float:
        """Right edge of the y-axis labels, in pixels left of the plot (into the margin kept for them)."""
        return -8

    @property
    def day_label_y(self) -> float:
        """Baseline of the first line of the day labels, just below the x axis."""
        return self.plot.bottom + 18


def nice_step(raw: float) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least `raw` (and at least 1: counts are whole)."""
    if raw <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(int(f * magnitude) for f in (1, 2, 5, 10) if f * magnitude >= raw)


def nice_ticks(max_value: int, intervals: int = 4) -> list[int]:
    """Round axis values from 0 to just above `max_value`, about `intervals` steps apart.

    An empty chart still gets a 0..`intervals` scale, so its gridlines look like any other chart's.
    """
    step = nice_step(max_value / intervals)
    top = math.ceil(max_value / step) * step or intervals * step
    return list(range(0, top + 1, step))


def rate(part: int, whole: int) -> float | None:
    """`part` as a percentage of `whole`, to one decimal; None when there is no whole to share."""
    if whole <= 0:
        return None
    return round(100 * part / whole, 1)


def _round(value: float) -> float:
    return round(value, 2)


def bar_chart(
    chart: dict,
    *,
    series: tuple[str, ...] = SERIES,
    height: int = 260,
    margin: tuple[int, int] = (12, 44),
    group_padding: float = 0.25,
    bar_gap: float = 0.3,
) -> BarChart:
    """Lay out `chart` (stats_get()'s {"labels": [...], "<series>": [...]}) as grouped bars per label.

    `margin` is (top, bottom) in pixels: room for the top tick's label, and the day labels below.
    `group_padding` is the share of each day's slot left empty between groups; `bar_gap` is the
    space between two bars of a day, in percent of the width.
    """
    top, bottom = margin
    plot = Box(left=0, top=top, right=100, bottom=height - bottom)
    labels = list(chart["labels"])
    values = {name: [int(v) for v in chart[name]] for name in series}
    ticks = nice_ticks(max((v for name in series for v in values[name]), default=0))
    scale = plot.height / ticks[-1]

    slot = plot.width / max(len(labels), 1)
    inner = slot * (1 - group_padding)
    bar_width = (inner - bar_gap * (len(series) - 1)) / len(series)
    groups = []
    for index, label in enumerate(labels):
        center = plot.left + slot * (index + 0.5)
        start = center - inner / 2
        bars = []
        for position, name in enumerate(series):
            value = values[name][index]
            bar_height = value * scale
            bars.append(
                Bar(
                    series=name,
                    value=value,
                    x=_round(start + position * (bar_width + bar_gap)),
                    y=_round(plot.bottom - bar_height),
                    width=_round(bar_width),
                    height=_round(bar_height),
                )
            )
        groups.append(
            Group(
                label=label,
                label_lines=tuple(label.split(", ", 1)),
                x=_round(center),
                bars=tuple(bars),
                values={name: values[name][index] for name in series},
            )
        )
    return BarChart(
        height=height,
        plot=plot,
        ticks=tuple(Tick(value=t, y=_round(plot.bottom - t * scale)) for t in ticks),
        groups=tuple(groups),
        series=series,
        totals={name: sum(values[name]) for name in series},
    )
