"""Where the run's money went: one bar per line of finishing/report/cost.py (inference-unit hours, review, the
engine, training, people), with its dollars and share, and the cost per correct image in the title."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labeling_loop.finishing.report.charts.figure import figure
from labeling_loop.finishing.report.charts.svg import BLUE, Chart, nice_ceiling, tag, text

LINES = {
    "inference": "inference (model hours)",
    "review": "review",
    "engine": "engine (Step Functions, Lambda)",
    "training": "training",
    "people": "people's time",
}
ROW = 30


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


def cost_chart(cost: Mapping[str, Any]) -> str:
    lines = [(name, cost[name]) for name in LINES if isinstance(cost.get(name), Mapping)]
    if not lines:  # no cost section: nothing to draw
        return ""
    total = float(cost["totalUsd"])
    best, worst = cost.get("perCorrectImageUsd95") or [None, None]
    per = (
        "no correct image"
        if best is None or worst is None
        else f"{_usd(float(best))} per correct image"
        if best == worst
        else f"{_usd(float(best))}-{_usd(float(worst))} per correct image"
    )
    usd = [(name, float(line["usd"]), line) for name, line in lines]
    chart = Chart(
        kind="cost",
        chart_id="cost-chart",
        title=f"Where the money went: {_usd(total)} in total, {per}",
        description="; ".join(
            f"{LINES[name]}: {_usd(value)} ({line.get('quantity')} {line.get('unit', '')})"
            for name, value, line in usd
        )
        + f". Total {_usd(total)}, {per}.",
        width=640,
        height=30 + ROW * len(usd) + 44,
        left=220,
        right=130,
    )
    x = chart.x_scale(0.0, nice_ceiling(max(value for _, value, _ in usd)) if total > 0 else 1.0)
    chart.x_axis(x, "US dollars (estimate, list prices)", lambda v: f"${v:g}", ticks=4, grid=True)
    for i, (name, value, line) in enumerate(usd):
        y = chart.plot_top + 6 + ROW * i
        share = "" if total <= 0 else f" ({value / total:.0%})" if value >= total / 100 else " (<1%)"
        chart.add(
            text(chart.plot_left - 8, y + 14, LINES[name], anchor="end"),
            tag(
                "rect",
                f"{LINES[name]}: {_usd(value)}{share}, {line.get('quantity')} {line.get('unit', '')}",
                x=chart.plot_left,
                y=float(y),
                width=max(x(value) - chart.plot_left, 1.0),
                height=20.0,
                fill=BLUE,
                class_="bar",
                data_line=name,
                data_usd=value,
            ),
            text(x(value) + 6, y + 14, f"{_usd(value)}{share}"),
        )
    return figure(
        chart,
        "Estimated from what the run used and list prices (several unconfirmed: see report.json). A correct "
        "image is one in the manifest that the audit does not estimate wrong.",
        ["line", "quantity", "unit", "USD"],
        [[LINES[name], line.get("quantity"), line.get("unit", ""), _usd(value)] for name, value, line in usd]
        + [["total", "", "", _usd(total)], ["per correct image", "", "", per]],
    )
