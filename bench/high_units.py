"""Benchmark 1b: throughput above 10 inference units, where a run has several batches (one per 10
units, inference/fan_out.py) that must share the model's capacity. The workflow over N tiny JPEGs at 10,
25 and 50 units of a model slower than the flow control's prior (2 TPS per unit, 500 ms per call:
the case issue 19 measured at 0.896 of capacity with 25 units). Same figures and goal as benchmark
1: utilisation >= 0.95, throttled calls < 5 % of calls, no image skipped for a service error.

Time-scaled as the matrix is (common.emulated): every run asks SCALED_CAPACITY calls/s of the machine,
so k = 50 / (units x 2): 2.5 at 10 units, 1 at 25, 0.5 at 50 (a slower clock: the emulated model
serves half the calls per second at twice the latency, and starts in 240 s; calls in flight, what
the flow control must match, are the AWS-like ones).

    python -m bench.high_units          # or BENCH_ONLY=high-units make bench
"""

from __future__ import annotations

import os
import sys
from typing import Any

from bench import common, runs, throughput, throughput_table
from bench.fanout import run_scheduled

UNITS = [int(u) for u in os.environ.get("BENCH_HIGH_UNITS", "10,25,50").split(",")]
IMAGES = int(os.environ.get("BENCH_HIGH_IMAGES", "10000"))
TPS = 2.0  # per inference unit: below the 5 TPS prior, so every batch must learn its share
LATENCY = 0.5


def spec(units: int, images: int = IMAGES) -> dict[str, Any]:
    k = runs.SCALED_CAPACITY / (units * TPS)
    model = f"{TPS:g} TPS, {LATENCY * 1000:g} ms"
    return {
        "kind": "workflow",
        "images": images,
        "units": units,
        "tps": TPS,
        "latency": LATENCY,
        "scale": k,
        "model": model,
        "label": f"workflow {images} images {units} IU {model} k={k:g}",
    }


def specs() -> list[dict[str, Any]]:
    return [spec(units) for units in UNITS]


def batch_rates(record: dict[str, Any]) -> list[float]:
    """Each batch's last learned rate (its refused rate, or its rate when never refused), AWS-like
    calls/s, in batch order."""
    last = {inv["batchId"]: inv for inv in record.get("invocations", [])}
    return [
        round((last[b].get("limit") or last[b].get("rate", 0.0)) / record["scale"], 2) for b in sorted(last)
    ]


def report(records: list[dict[str, Any]]) -> bool:
    runs.check_accounted(records)
    rows, data = [], []
    for r in sorted(records, key=lambda r: r["units"]):
        f = throughput.figures(r)
        rates = batch_rates(r)
        rows.append(throughput_table.row(r, f, [", ".join(f"{rate:g}" for rate in rates)]))
        data.append({**r, **f, "batch_rates": rates})
    passed = bool(data) and all(d["goal_met"] for d in data)
    md = throughput_table.table(["each batch's learned rate /s"], rows)
    md += (
        "\nAbove 10 inference units a run has one batch per 10 units. Each batch paces its calls with "
        "its own estimate, and the run's batches share theirs through the run-state table "
        "(inference/shared_rate.py): the capacity they learned together is split in proportion to the "
        "images each has left, so they finish together. utilisation, throttled share and goal as in "
        f"benchmark 1 (>= {throughput.GOAL_UTILISATION:.2f}, < {100 * throughput.GOAL_THROTTLED:g} %). "
        f"{common.scale_note()} Here k = {runs.SCALED_CAPACITY:g} / (units x {TPS:g} TPS): below 1 the "
        "emulated clock runs slower than AWS's.\n"
    )
    common.record("1b-high-units", "1b. Throughput above 10 inference units", md, {"runs": data}, passed)
    return passed


WORKDIR = runs.WORKDIR / "high-units"


def measure() -> list[dict[str, Any]]:
    print(
        f"{len(UNITS)} runs above 10 inference units, side by side within {runs.BUDGET:g} images/s ...",
        flush=True,
    )
    return run_scheduled(specs(), WORKDIR, runs.BUDGET)


def main() -> int:
    print(f"machine: {common.machine()}", flush=True)
    records = measure()
    passed = report(records)
    return 0 if runs.check_accounted(records) and passed else 1


if __name__ == "__main__":
    sys.exit(main())
