"""`make bench`: every benchmark. The fan-out runs (every size x inference units x model speed, and
the baseline) are made once, side by side, and read by benchmarks 1, 2, 3 and 5; benchmark 4 runs its
own subprocesses; 6 starts a Label Studio server; 7 runs labeling jobs in the local cloud; 8 orders
emulated predictions for a review budget."""

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
    labelstudio_scale,
    model_time,
    review_budget,
    runs,
    throughput,
)


def main() -> int:
    started = time.monotonic()
    print(f"machine: {common.machine()}\n{common.scale_note()}", flush=True)
    records = runs.fanout_runs()
    results = {
        "1 throughput and flow control": throughput.report(records),
        "2 model time": model_time.report(records),
        "3 engine cost": engine_cost.report(records),
        "5 baseline": baseline.report(records),
    }
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
