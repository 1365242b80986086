"""Per label: the predictions people reviewed, by confidence, split into the ones they kept (unchanged
or moved within tolerance) and the ones they corrected (moved past it, relabelled, deleted), stacked.
From `confidenceHistograms` (evaluation/histograms.py); the recommended threshold is marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from labeling_loop.finishing.report.charts.figure import figure
from labeling_loop.finishing.report.charts.svg import (
    BLACK,
    BLUE,
    RECOMMENDED_DASH,
    VERMILLION,
    Chart,
    hatch,
    key_box,
    key_line,
    nice_ceiling,
    percent,
    tag,
)


def histogram_chart(
    chart_id: str,
    label: str,
    counts: Mapping[str, Sequence[int]],
    edges: Sequence[float],
    recommended: float | None = None,
) -> str:
    kept = [int(v) for v in counts["kept"]]
    corrected = [int(v) for v in counts["corrected"]]
    if not (len(kept) == len(corrected) == len(edges) - 1) or not kept:
        raise ValueError(f"{len(edges)} edges for {len(kept)} and {len(corrected)} bins")
    bins = [(float(edges[i]), float(edges[i + 1]), kept[i], corrected[i]) for i in range(len(kept))]
    shown = sum(kept) + sum(corrected)
    if not shown:
        return ""
    described = [
        f"{a:g}-{b:g}: {k} kept, {c} corrected" + (f" ({percent(c / (k + c), 0)})" if k + c else "")
        for a, b, k, c in bins
        if k + c
    ]
    chart = Chart(
        kind="histogram",
        chart_id=chart_id,
        title=f"{label}: predictions people kept and corrected, by confidence",
        description=f"{shown} predictions shown to people, per confidence bin: " + "; ".join(described) + ".",
        height=280,
        bottom=64,
    )
    pattern = f"{chart_id}-corrected"
    chart.defs.append(hatch(pattern, VERMILLION))
    x = chart.x_scale(bins[0][0], bins[-1][1])
    y = chart.y_scale(0.0, nice_ceiling(max(max(k + c for _, _, k, c in bins), 1)))
    chart.y_axis(y, "predictions")
    chart.x_axis(x, "confidence of the prediction")
    for a, b, k, c in bins:
        left, width = x(a) + 1, max(x(b) - x(a) - 2, 1)
        share = f" ({percent(c / (k + c), 0)} corrected)" if k + c else ""
        title = f"{a:g}-{b:g}: {k} kept, {c} corrected{share}"
        chart.add(
            tag(
                "rect",
                title,
                x=left,
                y=y(k),
                width=width,
                height=y(0) - y(k),
                fill=BLUE,
                class_="bar kept",
                data_from=a,
                data_count=k,
            ),
            tag(
                "rect",
                title,
                x=left,
                y=y(k + c),
                width=width,
                height=y(k) - y(k + c),
                fill=f"url(#{pattern})",
                stroke=VERMILLION,
                stroke_width=0.5 if c else 0,
                class_="bar corrected",
                data_from=a,
                data_count=c,
            ),
        )
    keys = [
        (key_box(BLUE), "kept (or moved within tolerance)"),
        (key_box(f"url(#{pattern})", VERMILLION), "corrected"),
    ]
    if recommended is not None:
        chart.mark_threshold(x(float(recommended)), float(recommended))
        keys.append((key_line(BLACK, 2, RECOMMENDED_DASH), "recommended threshold"))
    chart.add_legend(keys)
    return figure(
        chart,
        f"{shown} predictions shown to people, {sum(corrected)} of them corrected "
        f"({percent(sum(corrected) / shown, 0)}).",
        ["confidence", "kept", "corrected", "share corrected"],
        [[f"{a:g}-{b:g}", k, c, percent(c / (k + c), 0) if k + c else "–"] for a, b, k, c in bins],
    )
