"""Per label: the predictions people reviewed, by confidence, split into the ones they kept (unchanged
or moved within tolerance) and the ones they corrected (moved past it, relabelled, deleted), stacked.
From `confidenceHistograms` (evaluation/histograms.py); the recommended threshold is marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from labeling_loop.finishing.report.charts.figure import figure
from labeling_loop.finishing.report.charts.svg import (
    BLUE,
    RECOMMENDED,
    VERMILLION,
    Chart,
    Scale,
    hatch,
    key_box,
    key_line,
    nice_ceiling,
    percent,
    tag,
)


@dataclass(frozen=True)
class Bin:
    """The predictions people reviewed whose confidence is in [low, high): kept and corrected."""

    low: float
    high: float
    kept: int
    corrected: int

    @property
    def shown(self) -> int:
        return self.kept + self.corrected

    @property
    def span(self) -> str:
        return f"{self.low:g}-{self.high:g}"

    def share_corrected(self) -> str:
        """Of the predictions shown, the share corrected ("" when none was shown)."""
        return percent(self.corrected / self.shown, 0) if self.shown else ""


def bins_of(counts: Mapping[str, Sequence[int]], edges: Sequence[float]) -> list[Bin]:
    """The bins between consecutive `edges`; ValueError when the counts do not line up with them."""
    kept = [int(v) for v in counts["kept"]]
    corrected = [int(v) for v in counts["corrected"]]
    if not (len(kept) == len(corrected) == len(edges) - 1) or not kept:
        raise ValueError(f"{len(edges)} edges for {len(kept)} and {len(corrected)} bins")
    return [Bin(float(edges[i]), float(edges[i + 1]), kept[i], corrected[i]) for i in range(len(kept))]


def histogram_chart(
    chart_id: str,
    label: str,
    counts: Mapping[str, Sequence[int]],
    edges: Sequence[float],
    recommended: float | None = None,
) -> str:
    bins = bins_of(counts, edges)
    corrected = sum(b.corrected for b in bins)
    shown = sum(b.kept for b in bins) + corrected
    if not shown:
        return ""
    chart = Chart(
        kind="histogram",
        chart_id=chart_id,
        title=f"{label}: predictions people kept and corrected, by confidence",
        description=f"{shown} predictions shown to people, per confidence bin: "
        + "; ".join(
            f"{b.span}: {b.kept} kept, {b.corrected} corrected ({b.share_corrected()})"
            for b in bins
            if b.shown
        )
        + ".",
        height=280,
        bottom=64,
    )
    pattern = f"url(#{chart_id}-corrected)"
    chart.defs.append(hatch(f"{chart_id}-corrected", VERMILLION))
    x = chart.x_scale(bins[0].low, bins[-1].high)
    y = chart.y_scale(0.0, nice_ceiling(max(max(b.shown for b in bins), 1)))
    chart.y_axis(y, "predictions")
    chart.x_axis(x, "confidence of the prediction")
    for b in bins:
        chart.add(*_bars(b, x, y, pattern))
    keys = [(key_box(BLUE), "kept (or moved within tolerance)"), (key_box(pattern, VERMILLION), "corrected")]
    if recommended is not None:
        chart.mark_threshold(x(float(recommended)), float(recommended))
        keys.append((key_line(RECOMMENDED), "recommended threshold"))
    chart.add_legend(keys)
    return figure(
        chart,
        f"{shown} predictions shown to people, {corrected} of them corrected "
        f"({percent(corrected / shown, 0)}).",
        ["confidence", "kept", "corrected", "share corrected"],
        [[b.span, b.kept, b.corrected, b.share_corrected() or "–"] for b in bins],
    )


def _bars(b: Bin, x: Scale, y: Scale, corrected_fill: str) -> tuple[str, str]:
    """The kept predictions' bar from 0, the corrected ones' stacked on it (hatched)."""
    left, width = x(b.low) + 1, max(x(b.high) - x(b.low) - 2, 1)
    share = f" ({b.share_corrected()} corrected)" if b.shown else ""
    title = f"{b.span}: {b.kept} kept, {b.corrected} corrected{share}"
    kept = tag(
        "rect",
        title,
        x=left,
        y=y(b.kept),
        width=width,
        height=y(0) - y(b.kept),
        fill=BLUE,
        class_="bar kept",
        data_from=b.low,
        data_count=b.kept,
    )
    corrected = tag(
        "rect",
        title,
        x=left,
        y=y(b.shown),
        width=width,
        height=y(b.kept) - y(b.shown),
        fill=corrected_fill,
        stroke=VERMILLION,
        stroke_width=0.5 if b.corrected else 0,
        class_="bar corrected",
        data_from=b.low,
        data_count=b.corrected,
    )
    return kept, corrected
