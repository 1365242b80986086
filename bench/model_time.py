"""Benchmark 2: model time. Billed model time (STARTING + RUNNING, the emulator's meter) against the
ideal: start latency + images / capacity. Goal: overhead below 10% of the ideal + one poll interval
(modelPollSeconds on the scaled clock)."""

from __future__ import annotations

import sys
from typing import Any

from bench import common, runs


def report(records: list[dict[str, Any]]) -> bool:
    ok_all = runs.check_accounted(records)
    poll = common.MODEL_POLL_SECONDS * common.TIME_SCALE
    rows, data, passed = [], [], ok_all
    for r in runs.workflows(records):
        ideal = common.EMULATED["start_latency_s"] + r["images"] / runs.capacity(r["units"])
        overhead = r["billed_seconds"] - ideal
        allowed = 0.10 * ideal + poll
        ok = overhead < allowed
        passed = passed and ok
        rows.append(
            [
                r["units"],
                r["images"],
                r["billed_seconds"],
                ideal,
                overhead,
                overhead / ideal,
                allowed,
                r["first_detect_after_s"],
                r["stop_calls"],
                r["model_status_at_end"],
                "yes" if ok else "NO",
            ]
        )
        data.append({**r, "ideal_seconds": ideal, "overhead_seconds": overhead, "allowed_seconds": allowed})
    md = common.table(
        [
            "IU",
            "images",
            "model billed s",
            "ideal s",
            "overhead s",
            "overhead / ideal",
            "allowed s",
            "first detect after start s",
            "stop calls",
            "status at end",
            "goal met",
        ],
        rows,
    )
    md += (
        f"\nideal = start latency ({common.EMULATED['start_latency_s']:g} s) + images / capacity; allowed = 10% of "
        f"ideal + one poll ({poll:g} s). Billed = STARTING + RUNNING as the emulator meters it. {common.scale_note()}\n"
    )
    common.record("2-model-time", "2. Model time", md, {"runs": data}, passed)
    return passed


def main() -> int:
    return 0 if report(runs.fanout_runs(baseline=False)) else 1


if __name__ == "__main__":
    sys.exit(main())
