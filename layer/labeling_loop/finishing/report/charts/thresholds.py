"""Per label: how wrong are the images an auto-accept threshold would accept, against the threshold.
The tested steps of `thresholds.byLabel.<label>.curve` (evaluation/thresholds.py): the error rate
with its exact lower and upper bounds as a band, the target, and the recommended threshold, the
lowest whose upper bound the fixed-sequence test showed under the target."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from labeling_loop.finishing.report.charts.figure import figure
from labeling_loop.finishing.report.charts.svg import (
    BLACK,
    BLUE,
    RECOMMENDED_DASH,
    SKY,
    VERMILLION,
    Chart,
    ConfidenceScale,
    axis_percent,
    key_box,
    key_line,
    line,
    marker,
    nice_ceiling,
    percent,
    polygon,
    polyline,
    text,
)


def threshold_chart(chart_id: str, label: str, row: Mapping[str, Any]) -> str:
    """The chart of one label, or "" when no threshold was tested (too few images: the table says why)."""
    curve = sorted(row.get("curve") or [], key=lambda p: float(p["threshold"]))
    if not curve:
        return ""
    target = float(row["target"])
    recommended = row.get("recommended")
    points = [
        (
            float(p["threshold"]),
            int(p["images"]),
            float(p["errorRate"]),
            float(p["errorLowerBound"]),
            float(p["errorUpperBound"]),
        )
        for p in curve
    ]
    if recommended is None:
        verdict = f"No threshold: {row.get('reason', 'none passed')}."
    else:
        verdict = (
            f"Recommended: {float(recommended):g} ({row.get('images')} reviewed images at or above it, "
            f"{percent(float(row['errorRate']))} wrong, at most {percent(float(row['errorUpperBound']))}); "
            f"target {percent(target)}."
        )
    chart = Chart(
        kind="threshold",
        chart_id=chart_id,
        title=f"{label}: error of the images a threshold would auto-accept",
        description=(
            f"{len(points)} thresholds tested from {points[-1][0]:g} down to {points[0][0]:g}: "
            + "; ".join(
                f">= {t:g}: {n} images, {percent(e)} wrong ({percent(lo)}-{percent(hi)})"
                for t, n, e, lo, hi in reversed(points)
            )
            + f". {verdict}"
        ),
        height=300,
        bottom=80,
    )
    low = max(0.0, math.floor((points[0][0] - 1) / 10) * 10)
    x = ConfidenceScale(low, 100.0, chart.plot_left, chart.plot_right)
    y = chart.y_scale(0.0, min(1.0, nice_ceiling(max(max(p[4] for p in points), target) * 1.05)))
    chart.y_axis(y, "wrong images among those accepted", axis_percent)
    chart.x_axis(x, "auto-accept threshold (confidence, stretched toward 100)", grid=True)
    band = [(x(t), y(lo)) for t, _, _, lo, _ in points] + [
        (x(t), y(hi)) for t, _, _, _, hi in reversed(points)
    ]
    chart.add(
        polygon(band, SKY, fill_opacity="0.35", class_="band"),
        polyline(
            [(x(p[0]), y(p[4])) for p in points], BLUE, 1.5, stroke_dasharray="5 3", class_="upper-bound"
        ),
        polyline([(x(p[0]), y(p[2])) for p in points], BLUE, 2, class_="error-rate"),
        line(
            chart.plot_left,
            y(target),
            chart.plot_right,
            y(target),
            VERMILLION,
            2,
            stroke_dasharray="8 4",
            class_="target",
        ),
        text(chart.plot_left + 4, y(target) - 4, f"target {percent(target)}"),
    )
    for t, n, e, lo, hi in points:
        chart.add(
            marker(
                x(t),
                y(e),
                "circle",
                BLUE,
                f">= {t:g}: {n} images, {percent(e)} wrong (bounds {percent(lo)}-{percent(hi)})",
                class_="point",
                data_threshold=t,
                data_error_rate=e,
            )
        )
    if recommended is not None:
        chart.mark_threshold(x(float(recommended)), float(recommended))
    keys = [
        (key_line(BLUE), "error rate"),
        (key_box(SKY), "exact bounds"),
        (key_line(BLUE, 1.5, "5 3"), "upper bound"),
        (key_line(VERMILLION, 2, "8 4"), "target"),
    ]
    if recommended is not None:
        keys.append((key_line(BLACK, 2, RECOMMENDED_DASH), "recommended"))
    chart.add_legend(keys)
    return figure(
        chart,
        verdict,
        ["threshold", "images", "error rate", "lower bound", "upper bound"],
        [[f"{t:g}", n, percent(e), percent(lo), percent(hi)] for t, n, e, lo, hi in reversed(points)],
    )
