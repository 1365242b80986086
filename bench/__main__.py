"""`make bench`: all five benchmarks. The fan-out runs (1, 2, 5 IU and the baseline) are made once,
in parallel, and read by benchmarks 1, 2, 3 and 5; benchmark 4 runs its own subprocesses."""

from __future__ import annotations

import os
import sys
import time

from bench import baseline, common, data_steps, engine_cost, model_time, runs, throughput


def main() -> int:
    started = time.monotonic()
    print(f"machine: {common.machine()}\n{common.scale_note()}", flush=True)
    records = runs.fanout_runs(units=runs.UNITS, baseline=True)
    results = {
        "1 throughput": throughput.report(records),
        "2 model time": model_time.report(records),
        "3 engine cost": engine_cost.report(records),
        "5 baseline": baseline.report(records),
    }
    if os.environ.get("BENCH_SKIP_DATA_STEPS"):
        print("data steps skipped (BENCH_SKIP_DATA_STEPS): their last recorded section stays")
    else:
        results["4 data steps"] = data_steps.run()["passed"]
    print(f"\nall benchmarks in {time.monotonic() - started:.0f} s")
    for name, ok in sorted(results.items()):
        print(f"  {name}: goal {'met' if ok else 'NOT met'}")
    # A benchmark that misses its goal is a result, not a crash; lost images are a failure.
    lost = not runs.check_accounted(records)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
