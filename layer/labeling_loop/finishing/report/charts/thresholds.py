"""Per label: how wrong are the images an auto-accept threshold would accept, against the threshold.
The tested steps of `thresholds.byLabel.<label>.curve` (evaluation/thresholds.py): the error rate
with its exact lower and upper bounds as a band, the target, and the recommended threshold, the
lowest whose upper bound the fixed-sequence test showed under the target."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labeling_loop.finishing.report.charts.figure import figure
from labeling_loop.finishing.report.charts.svg import (
    BLUE,
    RECOMMENDED,
    SKY,
    TARGET,
    Chart,
    ConfidenceScale,
    MarkerStyle,
    Scale,
    Stroke,
    axis_percent,
    key_box,
    key_line,
    marker,
    nice_ceiling,
    percent,
    polygon,
    polyline,
    text,
)

ERROR_RATE = Stroke(BLUE, 2)
UPPER_BOUND = Stroke(BLUE, 1.5, "5 3")
STEP = MarkerStyle("circle", BLUE)


@dataclass(frozen=True)
class Step:
    """One tested threshold: the reviewed images at or above it, and their error rate with its exact
    lower and upper bounds."""

    threshold: float
    images: int
    error: float
    lower: float
    upper: float

    @classmethod
    def of(cls, point: Mapping[str, Any]) -> Step:
        return cls(
            float(point["threshold"]),
            int(point["images"]),
            float(point["errorRate"]),
            float(point["errorLowerBound"]),
            float(point["errorUpperBound"]),
        )


def threshold_chart(chart_id: str, label: str, row: Mapping[str, Any]) -> str:
    """The chart of one label, or "" when no threshold was tested (too few images: the table says why)."""
    steps = [Step.of(p) for p in sorted(row.get("curve") or [], key=lambda p: float(p["threshold"]))]
    if not steps:
        return ""
    target = float(row["target"])
    recommended = None if row.get("recommended") is None else float(row["recommended"])
    verdict = _verdict(row, target)
    chart = Chart(
        kind="threshold",
        chart_id=chart_id,
        title=f"{label}: error of the images a threshold would auto-accept",
        description=_description(steps, verdict),
        height=300,
        bottom=80,
    )
    x, y = _axes(chart, steps, target)
    _draw_band(chart, x, y, steps)
    chart.add(
        chart.horizontal(y(target), TARGET, class_="target"),
        text(chart.plot_left + 4, y(target) - 4, f"target {percent(target)}"),
    )
    _draw_steps(chart, x, y, steps)
    if recommended is not None:
        chart.mark_threshold(x(recommended), recommended)
    chart.add_legend(_keys(recommended is not None))
    return figure(
        chart,
        verdict,
        ["threshold", "images", "error rate", "lower bound", "upper bound"],
        [
            [f"{s.threshold:g}", s.images, percent(s.error), percent(s.lower), percent(s.upper)]
            for s in reversed(steps)
        ],
    )


def _verdict(row: Mapping[str, Any], target: float) -> str:
    if row.get("recommended") is None:
        return f"No threshold: {row.get('reason', 'none passed')}."
    return (
        f"Recommended: {float(row['recommended']):g} ({row.get('images')} reviewed images at or above it, "
        f"{percent(float(row['errorRate']))} wrong, at most {percent(float(row['errorUpperBound']))}); "
        f"target {percent(target)}."
    )


def _description(steps: Sequence[Step], verdict: str) -> str:
    return (
        f"{len(steps)} thresholds tested from {steps[-1].threshold:g} down to {steps[0].threshold:g}: "
        + "; ".join(
            f">= {s.threshold:g}: {s.images} images, {percent(s.error)} wrong "
            f"({percent(s.lower)}-{percent(s.upper)})"
            for s in reversed(steps)
        )
        + f". {verdict}"
    )


def _axes(chart: Chart, steps: Sequence[Step], target: float) -> tuple[Scale, Scale]:
    """The threshold axis from the ten below the lowest step tested; the error axis to the highest
    upper bound or the target, whichever is higher."""
    low = max(0.0, math.floor((steps[0].threshold - 1) / 10) * 10)
    x = ConfidenceScale(low, 100.0, chart.plot_left, chart.plot_right)
    y = chart.y_scale(0.0, min(1.0, nice_ceiling(max(max(s.upper for s in steps), target) * 1.05)))
    chart.y_axis(y, "wrong images among those accepted", axis_percent)
    chart.x_axis(x, "auto-accept threshold (confidence, stretched toward 100)", grid=True)
    return x, y


def _draw_band(chart: Chart, x: Scale, y: Scale, steps: Sequence[Step]) -> None:
    """The exact bounds as a band, the upper bound dashed over it and the error rate solid."""
    band = [(x(s.threshold), y(s.lower)) for s in steps] + [
        (x(s.threshold), y(s.upper)) for s in reversed(steps)
    ]
    chart.add(
        polygon(band, SKY, fill_opacity="0.35", class_="band"),
        polyline([(x(s.threshold), y(s.upper)) for s in steps], UPPER_BOUND, class_="upper-bound"),
        polyline([(x(s.threshold), y(s.error)) for s in steps], ERROR_RATE, class_="error-rate"),
    )


def _draw_steps(chart: Chart, x: Scale, y: Scale, steps: Sequence[Step]) -> None:
    for s in steps:
        chart.add(
            marker(
                x(s.threshold),
                y(s.error),
                STEP,
                f">= {s.threshold:g}: {s.images} images, {percent(s.error)} wrong "
                f"(bounds {percent(s.lower)}-{percent(s.upper)})",
                class_="point",
                data_threshold=s.threshold,
                data_error_rate=s.error,
            )
        )


def _keys(recommended: bool) -> list[tuple[str, str]]:
    keys = [
        (key_line(ERROR_RATE), "error rate"),
        (key_box(SKY), "exact bounds"),
        (key_line(UPPER_BOUND), "upper bound"),
        (key_line(TARGET), "target"),
    ]
    if recommended:
        keys.append((key_line(RECOMMENDED), "recommended"))
    return keys
