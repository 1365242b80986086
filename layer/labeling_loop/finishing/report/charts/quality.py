"""Quality with its intervals: precision, recall and F1 per label as points with 95 % error bars, on
the reviewed images and on the whole run side by side (evaluation/quality.py); and, when the run
trained, the two versions' F1 on the same test images and their paired difference against 0
(evaluation/promotion.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from labeling_loop.finishing.report.charts.figure import figure
from labeling_loop.finishing.report.charts.svg import (
    BLACK,
    BLUE,
    GRID,
    INK,
    ORANGE,
    Chart,
    Scale,
    error_bar,
    line,
    marker,
    tag,
    text,
)

MEASURES = (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))
SERIES = (("reviewed images", "circle", BLUE, -5.0), ("whole run", "diamond", ORANGE, 5.0))
ROW = 30  # px per label


def _figure_of(table: Mapping[str, Any] | None, name: str) -> tuple[float, float, float] | None:
    found = (table or {}).get(name) or {}
    if found.get("value") is None or not found.get("interval95"):
        return None
    low, high = found["interval95"]
    return float(found["value"]), float(low), float(high)


def _key(shape: str, colour: str) -> str:
    return line(0, 5, 18, 5, colour, 1.5) + marker(9, 5, shape, colour, None, 3.5)


def quality_chart(quality: Mapping[str, Any]) -> str:
    reviewed = quality.get("reviewedImages") or {}
    whole = quality.get("wholeRun") or {}
    labels = sorted(set(reviewed.get("byLabel") or {}) | set(whole.get("byLabel") or {}))
    rows = [("all labels", reviewed.get("overall"), whole.get("overall"))] + [
        (label, (reviewed.get("byLabel") or {}).get(label), (whole.get("byLabel") or {}).get(label))
        for label in labels
    ]
    found = {
        (name, series, measure): _figure_of(table, measure)
        for name, *tables in rows
        for series, table in zip((s[0] for s in SERIES), tables, strict=True)
        for measure, _ in MEASURES
    }
    lows = [f[1] for f in found.values() if f is not None]
    if not lows:  # nothing was measured (no prediction, no object): the table says n/a
        return ""
    low = min(0.9, math.floor(min(lows) * 10) / 10)
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
        height=14 + ROW * len(rows) + 80,
        left=130,
        bottom=80,
    )
    gap, span = 24.0, (chart.plot_right - chart.plot_left - 2 * 24.0) / 3
    positions = [chart.plot_top + ROW / 2 + ROW * i for i in range(len(rows))]
    chart.category_axis([name for name, *_ in rows], positions)
    for k, (measure, title) in enumerate(MEASURES):
        start = chart.plot_left + k * (span + gap)
        x = Scale(low, 1.0, start, start + span)
        for value in x.ticks(4):
            chart.add(line(x(value), chart.plot_top, x(value), chart.plot_bottom, GRID))
        chart.x_axis(x, title, ticks=4)
        for (name, *_), y in zip(rows, positions, strict=True):
            for series, shape, colour, offset in SERIES:
                f = found[(name, series, measure)]
                if f is None:
                    continue
                value, a, b = f
                chart.add(
                    error_bar(x(a), x(b), y + offset, colour, horizontal=True, cap=3),
                    marker(
                        x(value),
                        y + offset,
                        shape,
                        colour,
                        f"{name}, {title} on the {series}: {value:g} (95 % interval {a:g}-{b:g})",
                        class_="point",
                        data_label=name,
                        data_measure=measure,
                        data_series=series,
                        data_value=value,
                    ),
                )
    chart.add_legend([(_key(shape, colour), series) for series, shape, colour, _ in SERIES])
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
            [name, title, *(_text(found[(name, series, measure)]) for series, *_ in SERIES)]
            for name, *_ in rows
            for measure, title in MEASURES
        ],
    )


def _text(f: tuple[float, float, float] | None) -> str:
    return "–" if f is None else f"{f[0]:g} ({f[1]:g}-{f[2]:g})"


def _estimate(found: Mapping[str, Any]) -> tuple[float, float, float]:
    low, high = found["interval95"]
    return float(found["estimate"]), float(low), float(high)


def comparison_chart(comparison: Mapping[str, Any], decision: Mapping[str, Any] | None) -> str:
    """The promotion decision's figures (only when the comparison was possible)."""
    names = (("current version", "f1Before", "circle", BLUE), ("new version", "f1After", "diamond", ORANGE))
    figures = {key: comparison[key] for key in ("f1Before", "f1After", "difference")}
    values = {k: _estimate(v) for k, v in figures.items()}
    d, d_low, d_high = values["difference"]
    promoted = bool((decision or {}).get("promote"))
    verdict = "better: the whole interval is above 0" if d_low > 0 else "not shown to be better"
    chart = Chart(
        kind="comparison",
        chart_id="comparison-chart",
        title=f"Is the new version better? {verdict}" + ("; promoted" if promoted else "; not promoted"),
        description=(
            f"On the same {comparison.get('testImages')} test images: F1 of the current version "
            f"{_text(values['f1Before'])}, of the new version {_text(values['f1After'])}; paired difference "
            f"(new - current) {d:+g}, 95 % interval {d_low:+g} to {d_high:+g}."
        ),
        width=900,
        height=200,
        left=130,
        bottom=80,
    )
    positions = [chart.plot_top + 20, chart.plot_top + 56]
    chart.category_axis([n for n, *_ in names], positions)
    gap, span = 40.0, (chart.plot_right - chart.plot_left - 40.0) / 2
    lows = [values[k][1] for k in ("f1Before", "f1After")]
    f1 = Scale(min(0.9, math.floor(min(lows) * 10) / 10), 1.0, chart.plot_left, chart.plot_left + span)
    reach = max(abs(d_low), abs(d_high), 0.01) * 1.15
    diff = Scale(-reach, reach, chart.plot_left + span + gap, chart.plot_right)
    for scale in (f1, diff):
        for value in scale.ticks(4):
            chart.add(line(scale(value), chart.plot_top, scale(value), chart.plot_bottom, GRID))
    chart.x_axis(f1, "F1 on the test images", ticks=4)
    chart.x_axis(diff, "F1 difference, new - current", lambda v: f"{v:+g}" if v else "0", ticks=4)
    for (name, key, shape, colour), y in zip(names, positions, strict=True):
        value, a, b = values[key]
        chart.add(
            error_bar(f1(a), f1(b), y, colour, horizontal=True),
            marker(
                f1(value),
                y,
                shape,
                colour,
                f"{name}: F1 {value:g} (95 % interval {a:g}-{b:g})",
                5,
                class_="point",
                data_series=name,
                data_value=value,
            ),
        )
    middle = (positions[0] + positions[1]) / 2
    colour = BLACK  # its place against 0 says better or not; the title says it in words
    chart.add(
        line(diff(0), chart.plot_top, diff(0), chart.plot_bottom, INK, 2, class_="zero"),
        error_bar(diff(d_low), diff(d_high), middle, colour, horizontal=True, cap=6),
        marker(
            diff(d),
            middle,
            "square",
            colour,
            f"difference {d:+g} (95 % interval {d_low:+g} to {d_high:+g})",
            5,
            class_="point difference",
            data_value=d,
        ),
        text(diff(d), middle - 12, f"{d:+.3f}", anchor="middle"),
    )
    chart.add_legend(
        [
            (_key("circle", BLUE), "current version"),
            (_key("diamond", ORANGE), "new version"),
            (tag("rect", x=0.0, y=3.0, width=18.0, height=4.0, fill=colour), "difference and its interval"),
        ]
    )
    return figure(
        chart,
        "Both versions tested on the same frozen TEST images, image by image. The new version is better only "
        "when the whole interval of the difference lies right of 0.",
        ["", "estimate", "95 % interval"],
        [
            [n, f"{values[k][0]:g}", f"{values[k][1]:g} to {values[k][2]:g}"]
            for n, k in (
                ("F1, current version", "f1Before"),
                ("F1, new version", "f1After"),
                ("difference", "difference"),
            )
        ],
    )
