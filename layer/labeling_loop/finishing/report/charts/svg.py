"""The few SVG pieces the report's charts are drawn with: linear scales with round ticks, axes, marks
that carry their own numbers (`<title>` on each data point, shown on hover and read by screen
readers), and the chart's frame (`role="img"`, a title and a description with the numbers).

Hand-written rather than a charting library: the charts need bands, error bars and reference lines
that a library's defaults do not draw, the SVG must be inline and script-free (the S3 console opens
the report as one file), and the layer stays free of dependencies for it.

Colours are the Okabe-Ito palette (Okabe and Ito 2008, "Color Universal Design"), told apart by
people with any common colour-vision deficiency; every series differs by line style, marker shape
or hatching as well, so the charts also read in grey print.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

BLUE = "#0072B2"
ORANGE = "#E69F00"
VERMILLION = "#D55E00"
GREEN = "#009E73"
SKY = "#56B4E9"
BLACK = "#000000"
GRID = "#dddddd"
INK = "#222222"

RECOMMENDED_DASH = "2 3"
FONT = 12  # px, the axis labels; titles are drawn by the page, outside the SVG
Format = Callable[[float], str]


def plain(value: float) -> str:
    return f"{value:g}"


def num(value: float) -> str:
    """A coordinate, short: 0.1 px is finer than any screen shows."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def percent(rate: float, digits: int = 1) -> str:
    return f"{rate * 100:.{digits}f} %"


def axis_percent(rate: float) -> str:
    return f"{rate * 100:g} %"


def nice_step(span: float, ticks: int) -> float:
    raw = span / max(ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def nice_ceiling(value: float, ticks: int = 5) -> float:
    """The round number at or above `value` an axis from 0 should end at."""
    if value <= 0:
        return 1.0
    step = nice_step(value, ticks)
    return math.ceil(value / step - 1e-9) * step


@dataclass(frozen=True)
class Scale:
    """Maps a domain [low, high] linearly onto pixels [start, end] (end < start for a y axis)."""

    low: float
    high: float
    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.high <= self.low:
            raise ValueError(f"empty or invalid scale domain [{self.low}, {self.high}]")

    def __call__(self, value: float) -> float:
        clipped = min(max(float(value), self.low), self.high)
        return self.start + (clipped - self.low) / (self.high - self.low) * (self.end - self.start)

    def ticks(self, count: int = 5) -> list[float]:
        step = nice_step(self.high - self.low, count)
        first = math.ceil(self.low / step - 1e-9) * step
        out = []
        value = first
        while value <= self.high + step * 1e-6:
            out.append(round(value, 10))
            value += step
        return out


@dataclass(frozen=True)
class ConfidenceScale(Scale):
    """A confidence axis (0-100) stretched toward 100, where thresholds are chosen: positions follow
    -log10(100.5 - confidence), so 99 to 100 is as wide as 90 to 97, or 50 to 84."""

    OFFSET = 0.5
    TICKS = (0.0, 20.0, 40.0, 60.0, 70.0, 80.0, 90.0, 95.0, 98.0, 99.0, 100.0)

    @classmethod
    def _g(cls, value: float) -> float:
        return -math.log10(100.0 + cls.OFFSET - min(max(value, 0.0), 100.0))

    def __call__(self, value: float) -> float:
        clipped = min(max(float(value), self.low), self.high)
        g_low, g_high = self._g(self.low), self._g(self.high)
        return self.start + (self._g(clipped) - g_low) / (g_high - g_low) * (self.end - self.start)

    def ticks(self, count: int = 5) -> list[float]:
        """The round confidences in the domain, none closer than 26 px to the last one kept."""
        out: list[float] = []
        for value in reversed(self.TICKS):
            if self.low <= value <= self.high and (not out or abs(self(out[-1]) - self(value)) >= 26):
                out.append(value)
        return sorted(out)


def attributes(**attrs: object) -> str:
    """`key="value"` pairs, escaped; `class_` for class, `data_x` for data-x; None is left out."""
    parts = []
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        if isinstance(value, float):  # a data-* value keeps its digits; a coordinate needs 0.1 px
            text = f"{value:.6g}" if key.startswith("data_") else num(value)
        else:
            text = str(value)
        parts.append(f'{name}="{escape(text)}"')
    return " ".join(parts)


def tag(name: str, title: str | None = None, /, **attrs: object) -> str:
    """An element; with `title`, its text alternative as a `<title>` child (a tooltip too)."""
    if title is None:
        return f"<{name} {attributes(**attrs)}/>"
    return f"<{name} {attributes(**attrs)}><title>{escape(title)}</title></{name}>"


def text(
    x: float, y: float, content: str, *, anchor: str = "start", size: int = FONT, **attrs: object
) -> str:
    return (
        f"<text {attributes(x=float(x), y=float(y), text_anchor=anchor, font_size=size, fill=INK, **attrs)}>"
        f"{escape(content)}</text>"
    )


def line(
    x1: float, y1: float, x2: float, y2: float, colour: str = INK, width: float = 1, **attrs: object
) -> str:
    return tag(
        "line",
        x1=float(x1),
        y1=float(y1),
        x2=float(x2),
        y2=float(y2),
        stroke=colour,
        stroke_width=float(width),
        **attrs,
    )


def polyline(points: Iterable[tuple[float, float]], colour: str, width: float = 2, **attrs: object) -> str:
    coords = " ".join(f"{num(x)},{num(y)}" for x, y in points)
    return tag("polyline", points=coords, fill="none", stroke=colour, stroke_width=float(width), **attrs)


def polygon(points: Iterable[tuple[float, float]], fill: str, **attrs: object) -> str:
    coords = " ".join(f"{num(x)},{num(y)}" for x, y in points)
    return tag("polygon", points=coords, fill=fill, **attrs)


def marker(
    x: float, y: float, shape: str, colour: str, title: str | None, size: float = 4, **attrs: object
) -> str:
    """A data point: circle, square, diamond or triangle (shapes tell series apart in grey too)."""
    if shape == "circle":
        return tag(
            "circle", title, cx=float(x), cy=float(y), r=float(size), fill=colour, stroke="#fff", **attrs
        )
    s = size * 1.15
    corners = {
        "square": [(x - s, y - s), (x + s, y - s), (x + s, y + s), (x - s, y + s)],
        "diamond": [(x, y - s * 1.3), (x + s * 1.3, y), (x, y + s * 1.3), (x - s * 1.3, y)],
        "triangle": [(x, y - s * 1.3), (x + s * 1.2, y + s), (x - s * 1.2, y + s)],
    }[shape]
    coords = " ".join(f"{num(a)},{num(b)}" for a, b in corners)
    return tag("polygon", title, points=coords, fill=colour, stroke="#fff", **attrs)


def error_bar(low: float, high: float, at: float, colour: str, *, horizontal: bool, cap: float = 4) -> str:
    """An interval drawn from `low` to `high` (pixels) at `at`, with caps at both ends."""
    if horizontal:
        return (
            line(low, at, high, at, colour, 1.5)
            + line(low, at - cap, low, at + cap, colour, 1.5)
            + line(high, at - cap, high, at + cap, colour, 1.5)
        )
    return (
        line(at, low, at, high, colour, 1.5)
        + line(at - cap, low, at + cap, low, colour, 1.5)
        + line(at - cap, high, at + cap, high, colour, 1.5)
    )


def hatch(pattern_id: str, colour: str) -> str:
    """A diagonal hatching of `colour`: a fill that stays distinct from a solid one in grey print."""
    return (
        f'<pattern id="{escape(pattern_id)}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
        f'<rect width="3" height="6" fill="{colour}"/></pattern>'
    )


@dataclass
class Chart:
    """One SVG chart: a plot area inside margins, and the marks drawn on it, in order."""

    kind: str  # data-chart: what the chart shows ("threshold", "histogram", ...)
    chart_id: str  # unique in the page: the ids of the title, description and patterns start with it
    title: str
    description: str  # the numbers, in words: what a screen reader says instead of the picture
    width: int = 420
    height: int = 260
    left: int = 56
    right: int = 16
    top: int = 14
    bottom: int = 44
    defs: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)

    @property
    def plot_left(self) -> float:
        return float(self.left)

    @property
    def plot_right(self) -> float:
        return float(self.width - self.right)

    @property
    def plot_top(self) -> float:
        return float(self.top)

    @property
    def plot_bottom(self) -> float:
        return float(self.height - self.bottom)

    def x_scale(self, low: float, high: float) -> Scale:
        return Scale(low, high, self.plot_left, self.plot_right)

    def y_scale(self, low: float, high: float) -> Scale:
        return Scale(low, high, self.plot_bottom, self.plot_top)

    def add(self, *marks: str) -> None:
        self.marks.extend(marks)

    def x_axis(
        self, scale: Scale, label: str, fmt: Format = plain, ticks: int = 6, grid: bool = False
    ) -> None:
        """Along the bottom of the plot, from the scale's start to its end (a panel's, when several)."""
        bottom = self.plot_bottom
        marks = [line(scale.start, bottom, scale.end, bottom, INK)]
        for value in scale.ticks(ticks):
            x = scale(value)
            if grid:
                marks.append(line(x, self.plot_top, x, bottom, GRID))
            marks += [line(x, bottom, x, bottom + 4, INK), text(x, bottom + 16, fmt(value), anchor="middle")]
        marks.append(text((scale.start + scale.end) / 2, bottom + 32, label, anchor="middle"))
        self.add(f'<g class="axis x-axis">{"".join(marks)}</g>')

    def y_axis(self, scale: Scale, label: str, fmt: Format = plain, ticks: int = 5) -> None:
        left = self.plot_left
        marks = [line(left, self.plot_top, left, self.plot_bottom, INK)]
        for value in scale.ticks(ticks):
            y = scale(value)
            marks += [
                line(left, y, self.plot_right, y, GRID),
                line(left - 4, y, left, y, INK),
                text(left - 6, y + 4, fmt(value), anchor="end"),
            ]
        middle = (self.plot_top + self.plot_bottom) / 2
        marks.append(
            f'<text x="12" y="{num(middle)}" text-anchor="middle" font-size="{FONT}" fill="{INK}" '
            f'transform="rotate(-90 12 {num(middle)})">{escape(label)}</text>'
        )
        self.add(f'<g class="axis y-axis">{"".join(marks)}</g>')

    def mark_threshold(self, at: float, value: float) -> None:
        """The recommended threshold: a dotted vertical line at pixel `at`, named at its top."""
        self.add(
            line(at, self.plot_top, at, self.plot_bottom, BLACK, 2, stroke_dasharray=RECOMMENDED_DASH,
                 class_="recommended", data_threshold=value),
            text(at - 4, self.plot_top + 12, f"recommended {value:g}", anchor="end"),
        )  # fmt: skip

    def category_axis(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Names at the left of rows (a dot plot's labels)."""
        marks = [
            text(self.plot_left - 8, y + 4, name, anchor="end")
            for name, y in zip(names, positions, strict=True)
        ]
        self.add(f'<g class="axis category-axis">{"".join(marks)}</g>')

    def add_legend(self, items: Sequence[tuple[str, str]]) -> None:
        """The keys under the x axis's label; the chart grows to fit their rows."""
        drawn, rows = legend(items, self.plot_left, self.plot_bottom + 44, self.plot_right - self.plot_left)
        needed = 44 + 16 * rows + 4
        if needed > self.bottom:
            self.height += needed - self.bottom
            self.bottom = needed
        self.add(drawn)

    def svg(self) -> str:
        ids = f"{self.chart_id}-title {self.chart_id}-desc"
        defs = f"<defs>{''.join(self.defs)}</defs>" if self.defs else ""
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(self.kind)}" '
            f'id="{escape(self.chart_id)}" role="img" aria-labelledby="{escape(ids)}" '
            f'viewBox="0 0 {self.width} {self.height}" width="{self.width}" height="{self.height}">'
            f'<title id="{escape(self.chart_id)}-title">{escape(self.title)}</title>'
            f'<desc id="{escape(self.chart_id)}-desc">{escape(self.description)}</desc>'
            f"{defs}{''.join(self.marks)}</svg>"
        )


def legend(items: Sequence[tuple[str, str]], x: float, y: float, width: float) -> tuple[str, int]:
    """Keys (SVG fragments 18 wide and 10 high, drawn at 0,0) with their text, in rows that fit
    `width` (text taken as about 6.5 px a character); and how many rows that took."""
    rows, cx, cy = [], 0.0, 0.0
    for key, label in items:
        size = 24 + len(label) * 6.5 + 24
        if cx and cx + size > width:
            cx, cy = 0.0, cy + 16
        rows.append(f'<g transform="translate({num(x + cx)},{num(y + cy)})">{key}{text(24, 9, label)}</g>')
        cx += size
    return f'<g class="legend">{"".join(rows)}</g>', int(cy // 16) + 1


def key_line(colour: str, width: float = 2, dash: str | None = None) -> str:
    return line(0, 5, 18, 5, colour, width, stroke_dasharray=dash)


def key_box(fill: str, stroke: str | None = None) -> str:
    return tag("rect", x=0.0, y=0.0, width=18.0, height=10.0, fill=fill, stroke=stroke)
