"""`make bench`: every benchmark. The fan-out runs (every size x inference units x model speed, and
the baseline) are made once, side by side, and read by benchmarks 1, 2, 3 and 5; 1b runs the workflow
above 10 inference units; benchmark 4 runs its own subprocesses; 6 starts a Label Studio server; 7
runs labeling jobs in the local cloud; 8 orders emulated predictions for a review budget.
`BENCH_ONLY=high-units` runs benchmark 1b alone, `BENCH_ONLY=review-budget` benchmark 8."""

from __future__ import annotations

import os
import sys
import time

from bench import (
    baseline,
    common,
    data_steps,
    engine_cost,
    groundtruth_scale,
    high_units,
    labelstudio_scale,
    model_time,
    review_budget,
    runs,
    throughput,
)


def main() -> int:
    started = time.monotonic()
    print(f"machine: {common.machine()}\n{common.scale_note()}", flush=True)
    if os.environ.get("BENCH_ONLY") == "high-units":
        return high_units.main()
    if os.environ.get("BENCH_ONLY") == "review-budget":
        return 0 if review_budget.run()["passed"] else 1
    records = runs.fanout_runs()
    high = high_units.measure()
    results = {
        "1 throughput and flow control": throughput.report(records),
        "1b throughput above 10 inference units": high_units.report(high),
        "2 model time": model_time.report(records),
        "3 engine cost": engine_cost.report(records),
        "5 baseline": baseline.report(records),
    }
    records = records + high
    for key, name, module in (
        ("BENCH_SKIP_DATA_STEPS", "4 data steps", data_steps),
        ("BENCH_SKIP_LABELSTUDIO", "6 Label Studio at scale", labelstudio_scale),
        ("BENCH_SKIP_GROUNDTRUTH", "7 Ground Truth at scale", groundtruth_scale),
        ("BENCH_SKIP_REVIEW_BUDGET", "8 review budget", review_budget),
    ):
        if os.environ.get(key):
            print(f"{name} skipped ({key}): its last recorded section stays")
        else:
            results[name] = module.run()["passed"]
    print(f"\nall benchmarks in {time.monotonic() - started:.0f} s")
    for name, ok in sorted(results.items()):
        print(f"  {name}: goal {'met' if ok else 'NOT met'}")
    # A benchmark that misses its goal is a result, not a crash; lost images are a failure.
    lost = not runs.check_accounted(records)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
