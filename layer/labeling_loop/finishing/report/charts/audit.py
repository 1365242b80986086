"""The audit of auto-accept and the gate, on one error-rate axis: the audited candidates' error rate
with its exact 95 % interval, the one-sided 95 % upper bound of the images left to ship (what the
gate compares), the target, and, when the gate sent them to people, what the second wave found."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labeling_loop.finishing.report.charts.figure import figure
from labeling_loop.finishing.report.charts.svg import (
    BLACK,
    BLUE,
    GREEN,
    VERMILLION,
    Chart,
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


def audit_chart(audit: Mapping[str, Any], gate: Mapping[str, Any]) -> str:
    target = float(audit["target"])
    rate = None if audit.get("errorRate") is None else float(audit["errorRate"])  # None: none answered
    low, high = (float(v) for v in audit["interval95"])
    left = int(audit["autoAcceptedImages"])
    upper = float(audit["shippedErrorUpperBound"])
    decision = str(gate.get("decision"))
    outcome = DECISIONS.get(decision, decision)
    second = audit.get("secondWave") or {}
    found = int(second["wrong"]) / int(second["reviewed"]) if second.get("reviewed") else None
    rows = [("audited", f"audit: {audit['errors']} of {audit['reviewed']} wrong")]
    numbers = [
        [
            "audited candidates' error rate",
            "–" if rate is None else percent(rate),
            f"{percent(low)}-{percent(high)} (exact, 95 %)",
        ]
    ]
    if left:
        rows.append(("bound", f"the {left} not audited: upper bound"))
        numbers.append(["upper bound of the images left to ship", percent(upper), "one-sided 95 %"])
    numbers.append(["target (auditErrorTarget)", percent(target), ""])
    if found is not None:
        rows.append(("second", f"second wave: {second['wrong']} of {second['reviewed']} wrong"))
        predicted = second.get("predicted95") or ["?", "?"]
        numbers.append(
            [
                "second wave: found wrong",
                percent(found),
                f"predicted {predicted[0]}-{predicted[1]} wrong of {second['reviewed']}",
            ]
        )
    said = (
        "no audited image was answered"
        if rate is None
        else (
            f"{audit['errors']} of {audit['reviewed']} audited candidates wrong: error rate {percent(rate)}"
        )
    )
    chart = Chart(
        kind="audit",
        chart_id="audit-chart",
        title=f"Audit of auto-accept: gate {decision}, {outcome}",
        description=(
            f"{said}, 95 % interval {percent(low)}-{percent(high)}."
            + (
                f" The {left} auto-accepted images not audited are at most {percent(upper)} wrong "
                f"(95 % upper bound), against the target {percent(target)}."
                if left
                else f" Target {percent(target)}."
            )
            + f" Gate: {outcome}."
            + (f" The second wave found {percent(found)} wrong." if found is not None else "")
        ),
        width=640,
        height=70 + 34 * len(rows),
        left=230,
        right=120,
        bottom=64,
    )
    expected = [int(v) / left for v in second.get("predicted95") or []] if left and found is not None else []
    highest = max(high, upper if left else 0.0, target, found or 0.0, *expected)
    x = chart.x_scale(0.0, min(1.0, nice_ceiling(highest * 1.08)))
    chart.x_axis(x, "share of images wrong", axis_percent, grid=True)
    positions = [chart.plot_top + 18 + 34 * i for i in range(len(rows))]
    chart.category_axis([name for _, name in rows], positions)
    at = dict(zip((key for key, _ in rows), positions, strict=True))
    chart.add(error_bar(x(low), x(high), at["audited"], BLACK, horizontal=True))
    if rate is not None:
        chart.add(
            marker(
                x(rate),
                at["audited"],
                "circle",
                BLACK,
                f"error rate {percent(rate)} ({percent(low)}-{percent(high)})",
                class_="point audited",
                data_value=rate,
            )
        )
    if left:
        over = upper > target
        colour = VERMILLION if over else GREEN
        chart.add(
            line(
                x(0), at["bound"], x(upper), at["bound"], colour, 6, class_="bound-bar", stroke_linecap="butt"
            ),
            marker(
                x(upper),
                at["bound"],
                "triangle",
                colour,
                f"upper bound {percent(upper)}: {'above' if over else 'within'} the target",
                class_="point bound",
                data_value=upper,
            ),
            text(x(upper) + 10, at["bound"] + 4, f"{percent(upper)} {'>' if over else '<='} target"),
        )
    if found is not None:
        if len(expected) == 2:  # what the audit predicted for them, as a share
            chart.add(error_bar(x(expected[0]), x(expected[1]), at["second"], BLUE, horizontal=True))
        chart.add(
            marker(
                x(found),
                at["second"],
                "diamond",
                BLUE,
                f"second wave: {percent(found)} wrong",
                class_="point second-wave",
                data_value=found,
            )
        )
    chart.add(
        line(
            x(target),
            chart.plot_top,
            x(target),
            chart.plot_bottom,
            VERMILLION,
            2,
            stroke_dasharray="8 4",
            class_="target",
        ),
        text(x(target) + 4, chart.plot_top + 8, f"target {percent(target)}"),
    )
    keys = [(key_line(BLACK, 1.5), "audit's 95 % interval"), (key_line(VERMILLION, 2, "8 4"), "target")]
    if found is not None:
        keys.append((key_line(BLUE, 1.5), "what the audit predicted for the second wave"))
    chart.add_legend(keys)
    return figure(
        chart,
        "The gate ships the auto-accepted images only when their upper bound (triangle) is within the target "
        "(dashed line).",
        ["figure", "value", "interval"],
        numbers,
    )
