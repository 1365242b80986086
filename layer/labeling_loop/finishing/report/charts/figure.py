"""A chart as the page shows it: the SVG, a caption that says what to read in it, and the numbers it
is drawn from as a table under "The numbers" (the text alternative anyone can open)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from labeling_loop.finishing.report.charts.svg import Chart


def figure(chart: Chart, caption: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<figure class="chart" data-chart="{escape(chart.kind)}">'
        f"<figcaption><strong>{escape(chart.title)}</strong><br>{escape(caption)}</figcaption>"
        f"{chart.svg()}"
        f"<details><summary>The numbers</summary><table><tr>{head}</tr>{body}</table></details>"
        "</figure>"
    )
