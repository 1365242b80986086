"""Benchmark 5: the feedback solution's client side by side with the workflow, same emulated model
(5 inference units, 5 TPS per unit, 500 ms per call), same 1,500 images, in the same scheduled batch of
runs: one process, three threads, lock-step batches of 3, manual start / wait RUNNING / infer / stop.
At the AWS-like speed and at the emulator's speed before this work (x2.4). Ratios of images/s and of
model time."""

from __future__ import annotations

import sys
from typing import Any

from bench import common, runs


def report(records: list[dict[str, Any]]) -> bool:
    runs.check_accounted(records)
    rows, pairs, passed = [], [], True
    for base in (r for r in records if r["kind"] == "baseline"):
        ours = next(
            r
            for r in records
            if r["kind"] == "workflow"
            and (r["images"], r["units"], r["latency"], r["scale"])
            == (base["images"], base["units"], base["latency"], base["scale"])
        )
        figures = {}
        for name, r in (("workflow (this project)", ours), ("feedback-solution client", base)):
            rate = r["detect_answered"] / r["inference_seconds"] if r["inference_seconds"] else 0.0
            figures[r["kind"]] = {"rate": rate, "billed": r["billed_seconds"]}
            rows.append(
                [
                    name,
                    r["model"],
                    r["units"],
                    r["images"],
                    rate,
                    rate / runs.capacity(r),
                    r["billed_seconds"],
                    runs.accounted(r)[1],
                ]
            )
        speed = figures["workflow"]["rate"] / figures["baseline"]["rate"]
        model = figures["baseline"]["billed"] / figures["workflow"]["billed"]
        pairs.append({"model": base["model"], "speed_ratio": speed, "model_time_ratio": model})
        passed = passed and speed > 1 and model > 1 and runs.accounted(ours)[0] and runs.accounted(base)[0]
    md = common.table(
        [
            "client",
            "model (AWS-like)",
            "IU",
            "images",
            "images/s (inference)",
            "utilisation",
            "model billed s",
            "accounted",
        ],
        rows,
    )
    md += "\n" + "".join(
        f"- {p['model']}: workflow / baseline images/s **{p['speed_ratio']:.2f}x**; baseline / workflow model time "
        f"**{p['model_time_ratio']:.2f}x**.\n"
        for p in pairs
    )
    md += (
        "\nSeconds on the AWS-like clock. The baseline calls DetectCustomLabels only (no header read) and its "
        f"billed time covers start, inference and stop. {common.scale_note()}\n"
    )
    common.record("5-baseline", "5. Baseline side by side", md, {"pairs": pairs, "rows": rows}, passed)
    return passed


def main() -> int:
    return 0 if report(runs.fanout_runs()) else 1


if __name__ == "__main__":
    sys.exit(main())
