"""Benchmark 3: engine cost per 1,000 images. State transitions (every state the interpreter
entered, Distributed Map children included: localcloud.engine.interpreter.counters) and Lambda invocations
of the measured workflow runs, and the estimated AWS cost from bench/prices.py.
Goal: under 60 transitions and under 20 invocations per 1,000 images."""

from __future__ import annotations

import sys
from typing import Any

from bench import common, prices, runs

GOAL_TRANSITIONS = 60
GOAL_INVOCATIONS = 20
DETECT_MEMORY_GB = 1.0  # DetectLabelsFunction MemorySize 1024 (template.yaml)
OTHER_FUNCTION_SECONDS = 2.0  # assumed per invocation of the other functions (512 MB-1 GB)


def cost_per_1000(r: dict[str, Any]) -> dict[str, float]:
    """Estimated AWS cost of 1,000 images. Transitions, invocations, model time and reviewed images
    are measured; Lambda durations on AWS are computed (a batch is latency-bound: images x AWS-like
    latency / threads)."""
    k = 1000 / r["images"]
    threads = r["threads_per_batch"]
    detect_s = 1000 * common.AWS_LIKE["detect_latency_s"] / threads  # GB-s of DetectLabels per 1,000 images
    other_invocations = (r["lambda_invocations"] - r["lambda_by_function"].get("DetectLabelsFunction", 0)) * k
    gb_s = detect_s * DETECT_MEMORY_GB + other_invocations * OTHER_FUNCTION_SECONDS * 1.0
    iu_hours = r["billed_seconds"] * common.SCALE * r["units"] / 3600 * k  # measured, back on AWS time
    reviewed = r["report_counts"].get("imagesReviewed", 0) * k
    return {
        "step_functions": r["state_transitions"] * k * prices.STEP_FUNCTIONS_TRANSITION.usd,
        "lambda": r["lambda_invocations"] * k * prices.LAMBDA_REQUEST.usd
        + gb_s * prices.LAMBDA_GB_SECOND.usd,
        "custom_labels": iu_hours * prices.CUSTOM_LABELS_IU_HOUR.usd,
        "s3_gets": 2000 * prices.S3_GET.usd,  # our ranged GET + Rekognition's read, per image
        "ground_truth_reviewed": reviewed * prices.GROUND_TRUTH_OBJECT.usd,
        "ground_truth_if_all_reviewed": 1000 * prices.GROUND_TRUTH_OBJECT.usd,
        "iu_hours": iu_hours,
        "reviewed": reviewed,
    }


def report(records: list[dict[str, Any]]) -> bool:
    ok_all = runs.check_accounted(records)
    rows, data, passed = [], [], ok_all
    for r in runs.workflows(records):
        k = 1000 / r["images"]
        t, inv = r["state_transitions"] * k, r["lambda_invocations"] * k
        c = cost_per_1000(r)
        engine = c["step_functions"] + c["lambda"] + c["s3_gets"]
        passed = passed and t < GOAL_TRANSITIONS and inv < GOAL_INVOCATIONS
        rows.append(
            [
                r["units"],
                r["images"],
                r["input"].get("imagesPerBatch", "default"),
                t,
                inv,
                f"${c['step_functions']:.4f}",
                f"${c['lambda']:.4f}",
                f"${c['s3_gets']:.4f}",
                f"${c['custom_labels']:.3f} ({c['iu_hours']:.3f} IU-h)",
                f"${c['ground_truth_reviewed']:.2f} ({c['reviewed']:.0f} reviewed)",
                f"${engine + c['custom_labels'] + c['ground_truth_reviewed']:.2f}",
            ]
        )
        data.append({**r, "transitions_per_1000": t, "invocations_per_1000": inv, "cost_per_1000": c})
    md = common.table(
        [
            "IU",
            "images",
            "imagesPerBatch",
            "transitions / 1k",
            "invocations / 1k",
            "Step Functions",
            "Lambda",
            "S3 GETs",
            "Custom Labels",
            "Ground Truth",
            "total / 1k images",
        ],
        rows,
    )
    md += (
        f"\nGoal: < {GOAL_TRANSITIONS} transitions and < {GOAL_INVOCATIONS} invocations per 1,000 images. "
        "Measured: transitions (children included), invocations, billed model seconds (x"
        f"{common.SCALE:g} back to AWS-like time), images reviewed (auto-accept at confidence 1 sends ~9% to review). "
        "Computed: Lambda GB-s (DetectLabels latency-bound: AWS-like latency x images / threads, 1 GB; "
        f"{OTHER_FUNCTION_SECONDS:g} s per other invocation), S3 GETs (2 per image). Reviewing all 1,000 images "
        f"in Ground Truth would add ${1000 * prices.GROUND_TRUTH_OBJECT.usd:.0f}.\n\nPrices:\n\n"
        + prices.price_table()
    )
    common.record("3-engine-cost", "3. Engine cost per 1,000 images", md, {"runs": data}, passed)
    return passed


def main() -> int:
    return 0 if report(runs.fanout_runs(units=(5,), baseline=False)) else 1


if __name__ == "__main__":
    sys.exit(main())
