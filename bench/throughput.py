"""Benchmark 1: throughput against capacity. The workflow over N tiny JPEGs at 1, 2 and 5 inference
units; images/s during the inference phase (first DetectCustomLabels call to last answer) divided by
the emulated capacity (units x TPS per unit). Goal >= 0.90 at every size, no image lost."""

from __future__ import annotations

import sys
from typing import Any

from bench import common, runs

GOAL = 0.90


def report(records: list[dict[str, Any]]) -> bool:
    ok_all = runs.check_accounted(records)
    rows, data = [], []
    passed = ok_all
    for r in runs.workflows(records):
        cap = runs.capacity(r["units"])
        rate = r["detect_answered"] / r["inference_seconds"] if r["inference_seconds"] else 0.0
        util = rate / cap
        running_util = r["images"] / r["running_seconds"] / cap if r["running_seconds"] else 0.0
        ok, _ = runs.accounted(r)
        passed = passed and util >= GOAL and ok
        rows.append(
            [
                r["units"],
                cap,
                r["images"],
                r["inference_seconds"],
                rate,
                util,
                running_util,
                r["wall_seconds"],
                r["throttled_calls"],
                r["threads_per_batch"],
                r["input"].get("imagesPerBatch", "default"),
                r["retry_mode"],
                "yes" if ok else "NO",
            ]
        )
        data.append(
            {
                **r,
                "capacity": cap,
                "images_per_s": rate,
                "utilisation": util,
                "running_utilisation": running_util,
            }
        )
    md = common.table(
        [
            "IU",
            "capacity img/s",
            "images",
            "inference s",
            "images/s",
            "utilisation",
            "util. over RUNNING",
            "whole run s",
            "throttled calls",
            "threads/batch",
            "imagesPerBatch",
            "retry mode",
            "all accounted",
        ],
        rows,
    )
    md += (
        f"\nutilisation = images/s between the first DetectCustomLabels call and the last answer, divided by "
        f"the emulated capacity; util. over RUNNING uses the model's whole RUNNING interval (includes the "
        f"wait for the poll and the stop). Goal >= {GOAL:.2f}. {common.scale_note()}\n"
    )
    common.record(
        "1-throughput", "1. Throughput vs capacity", md, {"runs": data, "emulated": common.EMULATED}, passed
    )
    return passed


def main() -> int:
    return 0 if report(runs.fanout_runs(baseline=False)) else 1


if __name__ == "__main__":
    sys.exit(main())
