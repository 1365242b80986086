"""The table benchmarks 1 (throughput.py) and 1b (high_units.py) report in: one row a run, the same
figures first (the run and what the goal is judged on) and last (the verdict), each benchmark's own
columns between them."""

from __future__ import annotations

from typing import Any

from bench import common

_FIRST = [
    "images",
    "IU",
    "model (AWS-like)",
    "scale k",
    "batches",
    "capacity img/s",
    "images/s",
    "utilisation",
    "throttled / calls",
    "service-error skips",
]
_LAST = ["all accounted", "goal met"]


def row(record: dict[str, Any], figures: dict[str, Any], own: list[Any]) -> list[Any]:
    """One run's row: `figures` from throughput.figures, `own` the benchmark's own cells."""
    calls = f"{record['throttled_calls']:,} / {record['detect_calls']:,}"
    return [
        record["images"],
        record["units"],
        record["model"],
        f"{record['scale']:g}",
        figures["batches"],
        figures["capacity"],
        figures["images_per_s"],
        f"{figures['utilisation']:.3f}",
        f"{calls} ({100 * figures['throttled_share']:.2f} %)",
        figures["service_errors"],
        *own,
        "yes" if figures["accounted"] else "NO",
        "yes" if figures["goal_met"] else "NO",
    ]


def table(own_headers: list[str], rows: list[list[Any]]) -> str:
    """The Markdown table of `rows` (each from `row`), `own_headers` naming the benchmark's own cells."""
    return common.table([*_FIRST, *own_headers, *_LAST], rows)
