"""Quality with its intervals: precision, recall and F1 per label as points with 95 % error bars, on
the reviewed images and on the whole run side by side (evaluation/quality.py); and, when the run
trained, the two versions' F1 on the same test images and their paired difference against 0
(evaluation/promotion.py)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from labeling_loop.finishing.report.charts.figure import figure
from labeling_loop.finishing.report.charts.svg import (
    BLACK,
    BLUE,
    INK,
    ORANGE,
    Chart,
    MarkerStyle,
    Scale,
    Stroke,
    error_bar,
    line,
    marker,
    tag,
    text,
)

MEASURES = (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))
ROW = 30  # px per label
# The two series of a chart (reviewed images and whole run; current and new version), in this order.
FIRST = MarkerStyle("circle", BLUE)
SECOND = MarkerStyle("diamond", ORANGE)


@dataclass(frozen=True)
class Series:
    """A set of figures drawn side by side with another in each row, `offset` px off the row's middle."""

    name: str
    style: MarkerStyle
    offset: float


SERIES = (Series("reviewed images", FIRST, -5.0), Series("whole run", SECOND, 5.0))


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % interval."""

    value: float
    low: float
    high: float

    @classmethod
    def of_figure(cls, table: Mapping[str, Any] | None, name: str) -> Estimate | None:
        """A quality figure (`value`), None when it was not measured."""
        found = (table or {}).get(name) or {}
        if found.get("value") is None or not found.get("interval95"):
            return None
        low, high = found["interval95"]
        return cls(float(found["value"]), float(low), float(high))

    @classmethod
    def of_comparison(cls, found: Mapping[str, Any]) -> Estimate:
        """A comparison figure (`estimate`)."""
        low, high = found["interval95"]
        return cls(float(found["estimate"]), float(low), float(high))


# (row's name, series, measure) -> its estimate, None when not measured
Found = dict[tuple[str, str, str], Estimate | None]


def _text(f: Estimate | None) -> str:
    return "–" if f is None else f"{f.value:g} ({f.low:g}-{f.high:g})"


def _key(style: MarkerStyle) -> str:
    return line(0, 5, 18, 5, Stroke(style.colour, 1.5)) + marker(9, 5, replace(style, size=3.5), None)


def _axis_low(lows: Iterable[float]) -> float:
    """Where an axis of figures up to 1 starts: the tenth at or below the lowest, 0.9 at most."""
    return min(0.9, math.floor(min(lows) * 10) / 10)


def _panel(chart: Chart, x: Scale, title: str) -> None:
    """One panel's x axis, its grid drawn under the points."""
    chart.vertical_grid(x, 4)
    chart.x_axis(x, title, ticks=4)


def quality_chart(quality: Mapping[str, Any]) -> str:
    reviewed = quality.get("reviewedImages") or {}
    whole = quality.get("wholeRun") or {}
    names, found = _found(reviewed, whole)
    lows = [f.low for f in found.values() if f is not None]
    if not lows:  # nothing was measured (no prediction, no object): the table says n/a
        return ""
    low = _axis_low(lows)
    titles = dict(MEASURES)
    described = "; ".join(
        f"{name}, {titles[measure]} on the {series}: {_text(f)}"
        for (name, series, measure), f in found.items()
        if f is not None
    )
    chart = Chart(
        kind="quality",
        chart_id="quality-chart",
        title="Precision, recall and F1 per label, with 95 % intervals",
        description=f"{described}.",
        width=900,
        height=14 + ROW * len(names) + 80,
        left=130,
        bottom=80,
    )
    rows = list(zip(names, chart.category_rows(names, ROW / 2, ROW), strict=True))
    gap, span = 24.0, (chart.plot_right - chart.plot_left - 2 * 24.0) / 3
    for k, measure in enumerate(MEASURES):
        start = chart.plot_left + k * (span + gap)
        x = Scale(low, 1.0, start, start + span)
        _panel(chart, x, measure[1])
        _draw_measure(chart, x, measure, rows, found)
    chart.add_legend([(_key(series.style), series.name) for series in SERIES])
    note = (
        "Whole run: not measured (the auto-accepted images were not audited)."
        if not whole
        else "Whole run: reviewed images weighted by their stratum, intervals for this run's images."
    )
    return figure(
        chart,
        "Each point with its 95 % interval (a point without bars is exact). " + note,
        ["label", "measure", "reviewed images", "whole run"],
        [
            [name, title, *(_text(found[(name, series.name, measure)]) for series in SERIES)]
            for name in names
            for measure, title in MEASURES
        ],
    )


def _found(reviewed: Mapping[str, Any], whole: Mapping[str, Any]) -> tuple[list[str], Found]:
    """The rows (all labels, then each label) and every figure of theirs, on both series."""
    labels = sorted(set(reviewed.get("byLabel") or {}) | set(whole.get("byLabel") or {}))
    rows = [("all labels", reviewed.get("overall"), whole.get("overall"))] + [
        (label, (reviewed.get("byLabel") or {}).get(label), (whole.get("byLabel") or {}).get(label))
        for label in labels
    ]
    found = {
        (name, series.name, measure): Estimate.of_figure(table, measure)
        for name, *tables in rows
        for series, table in zip(SERIES, tables, strict=True)
        for measure, _ in MEASURES
    }
    return [name for name, *_ in rows], found


def _draw_measure(
    chart: Chart, x: Scale, measure: tuple[str, str], rows: Sequence[tuple[str, float]], found: Found
) -> None:
    """One measure's panel: each row's figure on each series, with its interval."""
    key, title = measure
    for name, y in rows:
        for series in SERIES:
            f = found[(name, series.name, key)]
            if f is None:
                continue
            at = y + series.offset
            chart.add(
                error_bar(x(f.low), x(f.high), at, series.style.colour, horizontal=True, cap=3),
                marker(
                    x(f.value),
                    at,
                    series.style,
                    f"{name}, {title} on the {series.name}: {f.value:g} (95 % interval {f.low:g}-{f.high:g})",
                    class_="point",
                    data_label=name,
                    data_measure=key,
                    data_series=series.name,
                    data_value=f.value,
                ),
            )


VERSIONS = (("current version", "f1Before"), ("new version", "f1After"))


def comparison_chart(comparison: Mapping[str, Any], decision: Mapping[str, Any] | None) -> str:
    """The promotion decision's figures (only when the comparison was possible)."""
    values = {k: Estimate.of_comparison(comparison[k]) for k in ("f1Before", "f1After", "difference")}
    difference = values["difference"]
    promoted = bool((decision or {}).get("promote"))
    verdict = "better: the whole interval is above 0" if difference.low > 0 else "not shown to be better"
    chart = Chart(
        kind="comparison",
        chart_id="comparison-chart",
        title=f"Is the new version better? {verdict}" + ("; promoted" if promoted else "; not promoted"),
        description=(
            f"On the same {comparison.get('testImages')} test images: F1 of the current version "
            f"{_text(values['f1Before'])}, of the new version {_text(values['f1After'])}; paired difference "
            f"(new - current) {difference.value:+g}, "
            f"95 % interval {difference.low:+g} to {difference.high:+g}."
        ),
        width=900,
        height=200,
        left=130,
        bottom=80,
    )
    positions = chart.category_rows([name for name, _ in VERSIONS], 20, 36)
    f1, diff = _comparison_axes(chart, values)
    for (name, key), style, y in zip(VERSIONS, (FIRST, SECOND), positions, strict=True):
        _draw_version(chart, f1, y, name, values[key], replace(style, size=5))
    _draw_difference(chart, diff, (positions[0] + positions[1]) / 2, difference)
    chart.add_legend(
        [
            (_key(FIRST), "current version"),
            (_key(SECOND), "new version"),
            (tag("rect", x=0.0, y=3.0, width=18.0, height=4.0, fill=BLACK), "difference and its interval"),
        ]
    )
    return figure(
        chart,
        "Both versions tested on the same frozen TEST images, image by image. The new version is better only "
        "when the whole interval of the difference lies right of 0.",
        ["", "estimate", "95 % interval"],
        [
            [n, f"{values[k].value:g}", f"{values[k].low:g} to {values[k].high:g}"]
            for n, k in (
                ("F1, current version", "f1Before"),
                ("F1, new version", "f1After"),
                ("difference", "difference"),
            )
        ],
    )


def _comparison_axes(chart: Chart, values: Mapping[str, Estimate]) -> tuple[Scale, Scale]:
    """Two panels: the versions' F1, and their difference on an axis centred on 0."""
    span = (chart.plot_right - chart.plot_left - 40.0) / 2
    low = _axis_low(values[k].low for k in ("f1Before", "f1After"))
    f1 = Scale(low, 1.0, chart.plot_left, chart.plot_left + span)
    difference = values["difference"]
    reach = max(abs(difference.low), abs(difference.high), 0.01) * 1.15
    diff = Scale(-reach, reach, chart.plot_left + span + 40.0, chart.plot_right)
    chart.vertical_grid(f1, 4)
    chart.vertical_grid(diff, 4)
    chart.x_axis(f1, "F1 on the test images", ticks=4)
    chart.x_axis(diff, "F1 difference, new - current", lambda v: f"{v:+g}" if v else "0", ticks=4)
    return f1, diff


def _draw_version(chart: Chart, f1: Scale, y: float, name: str, f: Estimate, style: MarkerStyle) -> None:
    chart.add(
        error_bar(f1(f.low), f1(f.high), y, style.colour, horizontal=True),
        marker(
            f1(f.value),
            y,
            style,
            f"{name}: F1 {f.value:g} (95 % interval {f.low:g}-{f.high:g})",
            class_="point",
            data_series=name,
            data_value=f.value,
        ),
    )


def _draw_difference(chart: Chart, diff: Scale, y: float, d: Estimate) -> None:
    """The paired difference against 0: its place against 0 says better or not (the title says it in
    words), so it is drawn in black."""
    chart.add(
        chart.vertical(diff(0), Stroke(INK, 2), class_="zero"),
        error_bar(diff(d.low), diff(d.high), y, BLACK, horizontal=True, cap=6),
        marker(
            diff(d.value),
            y,
            MarkerStyle("square", BLACK, 5),
            f"difference {d.value:+g} (95 % interval {d.low:+g} to {d.high:+g})",
            class_="point difference",
            data_value=d.value,
        ),
        text(diff(d.value), y - 12, f"{d.value:+.3f}", anchor="middle"),
    )
