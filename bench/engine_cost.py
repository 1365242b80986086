"""Benchmark 3: engine cost per 1,000 images. State transitions (every state the interpreter entered,
Distributed Map children included: localcloud.engine.interpreter.counters) and Lambda invocations of
the 500 ms workflow runs, and the estimated AWS cost from bench/prices.py. Goal: under 60 transitions
and under 20 invocations per 1,000 images, from 1,500 images up (a run's fixed states, ~25
transitions and ~9 invocations, are most of a 300-image run's)."""

from __future__ import annotations

import math
import sys
from typing import Any

from bench import common, prices, runs

GOAL_TRANSITIONS = 60
GOAL_INVOCATIONS = 20
GOAL_FROM_IMAGES = 1_500
DETECT_MEMORY_GB = 1.0  # DetectLabelsFunction MemorySize 1024 (template.yaml)
OTHER_FUNCTION_SECONDS = 2.0  # assumed per invocation of the other functions (512 MB-1 GB)
INVOCATION_SECONDS = 900 - 120  # the Lambda limit less inference.batch.RESERVE_S


def cost_per_1000(r: dict[str, Any]) -> dict[str, float]:
    """Estimated AWS cost of 1,000 images. Transitions, invocations, model time, inference time and
    reviewed images are measured; Lambda durations on AWS are computed (a batch's function runs for
    the whole inference phase: batches x AWS-like inference seconds)."""
    k = 1000 / r["images"]
    batches = len({i["batchId"] for i in r["invocations"]}) or 1
    detect_invocations = r["lambda_by_function"].get("DetectLabelsFunction", 0)
    # A time-scaled run ends a batch sooner than AWS would: count the invocations AWS would make.
    aws_detect_invocations = max(
        detect_invocations, batches * math.ceil(r["inference_seconds"] / INVOCATION_SECONDS)
    )
    invocations = r["lambda_invocations"] - detect_invocations + aws_detect_invocations
    other = r["lambda_invocations"] - detect_invocations
    gb_s = batches * r["inference_seconds"] * DETECT_MEMORY_GB + other * OTHER_FUNCTION_SECONDS
    iu_hours = r["billed_seconds"] * r["units"] / 3600
    reviewed = r["report_counts"].get("imagesReviewed", 0)
    transitions = r["state_transitions"] + 2 * (aws_detect_invocations - detect_invocations)
    return {
        "transitions": transitions * k,
        "invocations": invocations * k,
        "step_functions": transitions * k * prices.STEP_FUNCTIONS_TRANSITION.usd,
        "lambda": invocations * k * prices.LAMBDA_REQUEST.usd + gb_s * k * prices.LAMBDA_GB_SECOND.usd,
        "custom_labels": iu_hours * k * prices.CUSTOM_LABELS_IU_HOUR.usd,
        "s3_gets": 2000 * prices.S3_GET.usd,  # our ranged GET + Rekognition's read, per image
        "ground_truth_reviewed": reviewed * k * prices.GROUND_TRUTH_OBJECT.usd,
        "iu_hours": iu_hours * k,
        "reviewed": reviewed * k,
    }


def report(records: list[dict[str, Any]]) -> bool:
    runs.check_accounted(records)
    chosen = [
        r for r in runs.workflows(records) if r["latency"] == 0.5 and r["scale"] != common.EMULATOR_SCALE
    ]
    rows, data, passed = [], [], True
    for r in chosen:
        c = cost_per_1000(r)
        engine = c["step_functions"] + c["lambda"] + c["s3_gets"]
        ok = r["images"] < GOAL_FROM_IMAGES or (
            c["transitions"] < GOAL_TRANSITIONS and c["invocations"] < GOAL_INVOCATIONS
        )
        passed = passed and ok
        rows.append(
            [
                r["images"],
                r["units"],
                c["transitions"],
                c["invocations"],
                f"${c['step_functions']:.4f}",
                f"${c['lambda']:.4f}",
                f"${c['s3_gets']:.4f}",
                f"${c['custom_labels']:.3f} ({c['iu_hours']:.3f} IU-h)",
                f"${c['ground_truth_reviewed']:.2f} ({c['reviewed']:.0f} reviewed)",
                f"${engine + c['custom_labels'] + c['ground_truth_reviewed']:.2f}",
                "-" if r["images"] < GOAL_FROM_IMAGES else ("yes" if ok else "NO"),
            ]
        )
        data.append({**r, "cost_per_1000": c})
    md = common.table(
        [
            "images",
            "IU",
            "transitions / 1k",
            "invocations / 1k",
            "Step Functions",
            "Lambda",
            "S3 GETs",
            "Custom Labels",
            "Ground Truth",
            "total / 1k images",
            "goal met",
        ],
        rows,
    )
    md += (
        f"\nGoal: < {GOAL_TRANSITIONS} transitions and < {GOAL_INVOCATIONS} invocations per 1,000 images from "
        f"{GOAL_FROM_IMAGES:,} images up. The 5 TPS / 500 ms runs. Measured: transitions (children included), "
        "invocations, billed model seconds, inference seconds (AWS-like clock), images reviewed (auto-accept at "
        "confidence 1 sends ~9% to review, the default 5 % audit of the auto-accepted ~5 % more). A time-scaled run's batch ends before the Lambda limit where AWS would "
        f"continue it in a new invocation every {INVOCATION_SECONDS} s: those invocations (and their 2 "
        "transitions each) are added. Computed: Lambda GB-s (each batch's function runs the whole inference "
        f"phase at 1 GB; {OTHER_FUNCTION_SECONDS:g} s per other invocation), S3 GETs (2 per image). Reviewing "
        f"all 1,000 images in Ground Truth would add ${1000 * prices.GROUND_TRUTH_OBJECT.usd:.0f}.\n\nPrices:\n\n"
        + prices.price_table()
    )
    common.record("3-engine-cost", "3. Engine cost per 1,000 images", md, {"runs": data}, passed)
    return passed


def main() -> int:
    return 0 if report(runs.fanout_runs()) else 1


if __name__ == "__main__":
    sys.exit(main())
