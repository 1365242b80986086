"""The audit of auto-accept and the gate, on one error-rate axis: the audited candidates' error rate
with its exact 95 % interval, the one-sided 95 % upper bound of the images left to ship (what the
gate compares), the target, and, when the gate sent them to people, what the second wave found."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labeling_loop.finishing.report.charts.figure import figure
from labeling_loop.finishing.report.charts.svg import (
    BLACK,
    BLUE,
    GREEN,
    TARGET,
    VERMILLION,
    Chart,
    MarkerStyle,
    Scale,
    Stroke,
    axis_percent,
    error_bar,
    key_line,
    line,
    marker,
    nice_ceiling,
    percent,
    text,
)

DECISIONS = {
    "ship": "shipped: the audit vouches for them",
    "nothing-to-ship": "nothing left to ship unchecked",
    "review": "held: people reviewed them in a second wave",
    "defer": "held: deferred to the next run",
}
INTERVAL = Stroke(BLACK, 1.5)
PREDICTED = Stroke(BLUE, 1.5)


@dataclass(frozen=True)
class SecondWave:
    """What people found in the images the gate held, beside what the audit predicted for them."""

    wrong: object  # the counts as report.json has them, for the words
    reviewed: object
    found: float  # the share found wrong
    predicted: Sequence[Any] | None  # predicted95: how many wrong, at 95 %

    @classmethod
    def of(cls, audit: Mapping[str, Any]) -> SecondWave | None:
        second = audit.get("secondWave") or {}
        if not second.get("reviewed"):
            return None
        found = int(second["wrong"]) / int(second["reviewed"])
        return cls(second["wrong"], second["reviewed"], found, second.get("predicted95"))


@dataclass(frozen=True)
class Audit:
    """The audit's figures and the gate's decision, as the chart reads them from report.json."""

    target: float
    rate: float | None  # None: no audited image was answered
    low: float
    high: float
    left: int  # auto-accepted images not audited
    upper: float  # their one-sided 95 % upper bound, what the gate compares with the target
    decision: str
    second: SecondWave | None

    @classmethod
    def of(cls, audit: Mapping[str, Any], gate: Mapping[str, Any]) -> Audit:
        target = float(audit["target"])
        rate = None if audit.get("errorRate") is None else float(audit["errorRate"])
        low, high = (float(v) for v in audit["interval95"])
        left = int(audit["autoAcceptedImages"])
        upper = float(audit["shippedErrorUpperBound"])
        return cls(target, rate, low, high, left, upper, str(gate.get("decision")), SecondWave.of(audit))

    @property
    def outcome(self) -> str:
        return DECISIONS.get(self.decision, self.decision)

    def expected(self) -> list[float]:
        """The second wave's predicted count of wrong images, as shares of the images left."""
        if not self.left or self.second is None:
            return []
        return [int(v) / self.left for v in self.second.predicted or []]


def audit_chart(audit: Mapping[str, Any], gate: Mapping[str, Any]) -> str:
    figures = Audit.of(audit, gate)
    rows = _rows(figures, audit)
    chart = Chart(
        kind="audit",
        chart_id="audit-chart",
        title=f"Audit of auto-accept: gate {figures.decision}, {figures.outcome}",
        description=_description(figures, audit),
        width=640,
        height=70 + 34 * len(rows),
        left=230,
        right=120,
        bottom=64,
    )
    x = _x_axis(chart, figures)
    at = dict(zip(rows, chart.category_rows(list(rows.values()), 18, 34), strict=True))
    _draw_audited(chart, x, at["audited"], figures)
    if figures.left:
        _draw_bound(chart, x, at["bound"], figures)
    if figures.second is not None:
        _draw_second_wave(chart, x, at["second"], figures.second, figures.expected())
    chart.add(
        chart.vertical(x(figures.target), TARGET, class_="target"),
        text(x(figures.target) + 4, chart.plot_top + 8, f"target {percent(figures.target)}"),
    )
    keys = [(key_line(INTERVAL), "audit's 95 % interval"), (key_line(TARGET), "target")]
    if figures.second is not None:
        keys.append((key_line(PREDICTED), "what the audit predicted for the second wave"))
    chart.add_legend(keys)
    return figure(
        chart,
        "The gate ships the auto-accepted images only when their upper bound (triangle) is within the target "
        "(dashed line).",
        ["figure", "value", "interval"],
        _numbers(figures),
    )


def _rows(figures: Audit, audit: Mapping[str, Any]) -> dict[str, str]:
    """The chart's rows, by key, with the names written at their left."""
    rows = {"audited": f"audit: {audit['errors']} of {audit['reviewed']} wrong"}
    if figures.left:
        rows["bound"] = f"the {figures.left} not audited: upper bound"
    if figures.second is not None:
        rows["second"] = f"second wave: {figures.second.wrong} of {figures.second.reviewed} wrong"
    return rows


def _numbers(figures: Audit) -> list[list[str]]:
    """The table under the chart: each figure with its interval."""
    low, high, rate = figures.low, figures.high, figures.rate
    numbers = [
        [
            "audited candidates' error rate",
            "–" if rate is None else percent(rate),
            f"{percent(low)}-{percent(high)} (exact, 95 %)",
        ]
    ]
    if figures.left:
        numbers.append(["upper bound of the images left to ship", percent(figures.upper), "one-sided 95 %"])
    numbers.append(["target (auditErrorTarget)", percent(figures.target), ""])
    second = figures.second
    if second is not None:
        predicted = second.predicted or ["?", "?"]
        numbers.append(
            [
                "second wave: found wrong",
                percent(second.found),
                f"predicted {predicted[0]}-{predicted[1]} wrong of {second.reviewed}",
            ]
        )
    return numbers


def _description(figures: Audit, audit: Mapping[str, Any]) -> str:
    """The figures in words, for a screen reader."""
    rate, target, upper = figures.rate, figures.target, figures.upper
    said = (
        "no audited image was answered"
        if rate is None
        else f"{audit['errors']} of {audit['reviewed']} audited candidates wrong: error rate {percent(rate)}"
    )
    return (
        f"{said}, 95 % interval {percent(figures.low)}-{percent(figures.high)}."
        + (
            f" The {figures.left} auto-accepted images not audited are at most {percent(upper)} wrong "
            f"(95 % upper bound), against the target {percent(target)}."
            if figures.left
            else f" Target {percent(target)}."
        )
        + f" Gate: {figures.outcome}."
        + (
            f" The second wave found {percent(figures.second.found)} wrong."
            if figures.second is not None
            else ""
        )
    )


def _x_axis(chart: Chart, figures: Audit) -> Scale:
    """The share of images wrong, from 0 to past the highest figure drawn."""
    found = figures.second.found if figures.second is not None else 0.0
    highest = max(
        figures.high, figures.upper if figures.left else 0.0, figures.target, found, *figures.expected()
    )
    x = chart.x_scale(0.0, min(1.0, nice_ceiling(highest * 1.08)))
    chart.x_axis(x, "share of images wrong", axis_percent, grid=True)
    return x


def _draw_audited(chart: Chart, x: Scale, y: float, figures: Audit) -> None:
    """The audited candidates' exact interval, and their error rate on it when any was answered."""
    low, high, rate = figures.low, figures.high, figures.rate
    chart.add(error_bar(x(low), x(high), y, BLACK, horizontal=True))
    if rate is not None:
        title = f"error rate {percent(rate)} ({percent(low)}-{percent(high)})"
        chart.add(
            marker(x(rate), y, MarkerStyle("circle", BLACK), title, class_="point audited", data_value=rate)
        )


def _draw_bound(chart: Chart, x: Scale, y: float, figures: Audit) -> None:
    """The upper bound of the images left to ship, as a bar from 0: vermillion over the target."""
    upper = figures.upper
    over = upper > figures.target
    colour = VERMILLION if over else GREEN
    chart.add(
        line(x(0), y, x(upper), y, Stroke(colour, 6), class_="bound-bar", stroke_linecap="butt"),
        marker(
            x(upper),
            y,
            MarkerStyle("triangle", colour),
            f"upper bound {percent(upper)}: {'above' if over else 'within'} the target",
            class_="point bound",
            data_value=upper,
        ),
        text(x(upper) + 10, y + 4, f"{percent(upper)} {'>' if over else '<='} target"),
    )


def _draw_second_wave(
    chart: Chart, x: Scale, y: float, second: SecondWave, expected: Sequence[float]
) -> None:
    """What the second wave found, over what the audit predicted for it (`expected`, as shares)."""
    found = second.found
    if len(expected) == 2:
        chart.add(error_bar(x(expected[0]), x(expected[1]), y, BLUE, horizontal=True))
    chart.add(
        marker(
            x(found),
            y,
            MarkerStyle("diamond", BLUE),
            f"second wave: {percent(found)} wrong",
            class_="point second-wave",
            data_value=found,
        )
    )
