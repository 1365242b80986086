"""Benchmark 2: model time. Billed model time (STARTING + RUNNING, the emulator's meter, AWS-like
clock) against the ideal: start latency + images / capacity. Goal: overhead below 10 % of the ideal +
one poll interval (modelPollSeconds). Before this work (emulator speed, 12 TPS / 208 ms, recorded
2026-11-26): 2.3 / 1.4 / 1.1 % at 20,000 images and 0.8 / 1.0 / 11.0 % at 1,500 images (1 / 2 / 5 IU)."""

from __future__ import annotations

import sys
from typing import Any

from bench import common, runs

BEFORE = {
    (20_000, 1): 0.023,
    (20_000, 2): 0.014,
    (20_000, 5): 0.011,
    (1_500, 1): 0.008,
    (1_500, 2): 0.010,
    (1_500, 5): 0.110,
}


def figures(r: dict[str, Any]) -> dict[str, Any]:
    ideal = common.AWS_LIKE["start_latency_s"] + r["images"] / runs.capacity(r)
    overhead = r["billed_seconds"] - ideal
    allowed = 0.10 * ideal + common.MODEL_POLL_SECONDS
    return {
        "ideal_seconds": ideal,
        "overhead_seconds": overhead,
        "overhead_share": overhead / ideal,
        "allowed_seconds": allowed,
        "goal_met": overhead < allowed and r["model_status_at_end"] == "STOPPED" and r["stop_calls"] == 1,
    }


def report(records: list[dict[str, Any]]) -> bool:
    runs.check_accounted(records)
    workflows = runs.workflows(records)
    models = sorted({(r["scale"] == common.EMULATOR_SCALE, r["latency"], r["model"]) for r in workflows})
    data = [{**r, **figures(r)} for r in workflows]
    by_key = {(d["images"], d["units"], d["model"]): d for d in data}
    rows = []
    for images, units in sorted({(d["images"], d["units"]) for d in data}):
        row: list[Any] = [images, units]
        for _, _, model in models:
            d = by_key.get((images, units, model))
            row.append(
                "-"
                if d is None
                else f"{100 * d['overhead_share']:.1f} % ({d['billed_seconds']:,.0f} s / {d['ideal_seconds']:,.0f} s)"
                + ("" if d["goal_met"] else " NOT MET")
            )
        before = BEFORE.get((images, units))
        row.append("-" if before is None else f"{100 * before:.1f} %")
        rows.append(row)
    passed = all(d["goal_met"] for d in data)
    md = common.table(["images", "IU", *(m for _, _, m in models), "before (emulator speed)"], rows)
    md += (
        "\nEach cell: overhead / ideal (billed s / ideal s, AWS-like clock). ideal = start latency "
        f"({common.AWS_LIKE['start_latency_s']:g} s) + images / capacity; goal: overhead < 10 % of ideal + one "
        f"poll ({common.MODEL_POLL_SECONDS} s), the model STOPPED with one stop call. Billed = STARTING + RUNNING "
        f"as the emulator meters it. {common.scale_note()}\n"
    )
    common.record("2-model-time", "2. Model time", md, {"runs": data}, passed)
    return passed


def main() -> int:
    return 0 if report(runs.fanout_runs()) else 1


if __name__ == "__main__":
    sys.exit(main())
