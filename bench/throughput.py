"""Benchmark 1: throughput against capacity, and flow control. The workflow over N tiny JPEGs at every
size x inference units x per-call latency (runs.py); images/s during the inference phase (first
DetectCustomLabels call to last answer, AWS-like clock) divided by the model's capacity (units x TPS
per unit). Goal at every size: utilisation >= 0.95, no image skipped for throttling, throttled calls
< 5 % of calls."""

from __future__ import annotations

import sys
from typing import Any

from bench import common, runs, throughput_table

GOAL_UTILISATION = 0.95
GOAL_THROTTLED = 0.05


def flow_figures(record: dict[str, Any]) -> dict[str, Any]:
    """From the inference function's invocations: batches, invocations, the most calls in flight."""
    invocations = record.get("invocations", [])
    return {
        "batches": len({i["batchId"] for i in invocations}),
        "invocations": len(invocations),
        "most_in_flight": max((i.get("mostInFlight", 0) for i in invocations), default=0),
        "learned_rate": sum(
            i.get("limit") or i.get("rate", 0.0)
            for i in {inv["batchId"]: inv for inv in invocations}.values()  # each batch's last
        )
        / record["scale"],
    }


def figures(record: dict[str, Any]) -> dict[str, Any]:
    cap = runs.capacity(record)
    rate = record["detect_answered"] / record["inference_seconds"] if record["inference_seconds"] else 0.0
    calls = max(1, record["detect_calls"])
    service_errors = record["skipped_by_reason"].get("service-error", 0)
    ok, _ = runs.accounted(record)
    return {
        **flow_figures(record),
        "capacity": cap,
        "images_per_s": rate,
        "utilisation": rate / cap,
        "throttled_share": record["throttled_calls"] / calls,
        "service_errors": service_errors,
        "in_flight_needed": cap * record["latency"],
        "accounted": ok,
        "goal_met": ok
        and rate / cap >= GOAL_UTILISATION
        and record["throttled_calls"] / calls < GOAL_THROTTLED
        and service_errors == 0,
    }


def report(records: list[dict[str, Any]]) -> bool:
    runs.check_accounted(records)
    rows, data = [], []
    for r in runs.workflows(records):
        f = figures(r)
        own = [f"{f['most_in_flight']} / {f['in_flight_needed']:.2f}", f"{f['learned_rate']:.1f}"]
        rows.append(throughput_table.row(r, f, own))
        data.append({**r, **f})
    passed = all(d["goal_met"] for d in data)
    utils = [d["utilisation"] for d in data]
    shares = [d["throttled_share"] for d in data]
    md = throughput_table.table(["most in flight / capacity x latency", "learned rate /s"], rows)
    md += (
        f"\n{len(data)} runs: utilisation {min(utils):.3f} to {max(utils):.3f}, throttled calls "
        f"{100 * min(shares):.2f} to {100 * max(shares):.2f} % of calls. utilisation = images/s between the first "
        "DetectCustomLabels call and the last answer, divided by the capacity (units x 5 TPS); it can exceed 1 "
        "in short runs because the emulated model admits a one-second burst (its token bucket starts full). "
        "most in flight = the most DetectCustomLabels attempts one batch had in flight; capacity x latency = "
        "the calls in flight the model serves. learned rate = each batch's last refused rate (or its rate "
        "when never refused), summed, AWS-like calls/s. Goal at every size: utilisation >= "
        f"{GOAL_UTILISATION:.2f}, throttled < {100 * GOAL_THROTTLED:g} % of calls, no service-error skip, every "
        f"image accounted for. {common.scale_note()}\n"
    )
    common.record("1-throughput", "1. Throughput and flow control", md, {"runs": data}, passed)
    return passed


def main() -> int:
    return 0 if report(runs.fanout_runs()) else 1


if __name__ == "__main__":
    sys.exit(main())
