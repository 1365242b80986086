"""Benchmark 5: the feedback solution's client side by side with the workflow, same emulated model
(5 inference units), same images, started at the same moment: one process, three threads, lock-step
batches of 3, manual start / wait RUNNING / infer / stop. Ratios of images/s and of model time."""

from __future__ import annotations

import sys
from typing import Any

from bench import common, runs


def report(records: list[dict[str, Any]]) -> bool:
    ok_all = runs.check_accounted(records)
    base = next(r for r in records if r["kind"] == "baseline")
    ours = next(r for r in records if r["kind"] == "workflow" and r["units"] == base["units"])
    rows = []
    figures = {}
    for name, r in (("workflow (this project)", ours), ("feedback-solution client", base)):
        rate = r["detect_answered"] / r["inference_seconds"] if r["inference_seconds"] else 0.0
        figures[r["kind"]] = {"rate": rate, "billed": r["billed_seconds"], "wall": r["wall_seconds"]}
        rows.append(
            [
                name,
                r["units"],
                r["images"],
                rate,
                rate / runs.capacity(r["units"]),
                r["billed_seconds"],
                r["wall_seconds"],
                runs.accounted(r)[1],
            ]
        )
    speed = figures["workflow"]["rate"] / figures["baseline"]["rate"]
    model = figures["baseline"]["billed"] / figures["workflow"]["billed"]
    md = common.table(
        [
            "client",
            "IU",
            "images",
            "images/s (inference)",
            "utilisation",
            "model billed s",
            "wall s",
            "accounted",
        ],
        rows,
    )
    md += (
        f"\nworkflow / baseline images/s: **{speed:.2f}x**; baseline / workflow model time: **{model:.2f}x**. "
        "The workflow's wall time includes listing, review planning, the emulated Ground Truth job and the "
        "manifest; the baseline's covers listing, start, inference and stop only. The baseline calls "
        f"DetectCustomLabels only (no header read). {common.scale_note()}\n"
    )
    passed = ok_all and speed > 1 and model > 1
    common.record(
        "5-baseline",
        "5. Baseline side by side",
        md,
        {"workflow": ours, "baseline": base, "speed_ratio": speed, "model_time_ratio": model},
        passed,
    )
    return passed


def main() -> int:
    return 0 if report(runs.fanout_runs(units=(runs.BASELINE_UNITS,), baseline=True)) else 1


if __name__ == "__main__":
    sys.exit(main())
