"""What the run's earlier states recorded in S3 that finishing it reads: the first wave's plan, the
second wave's, the labeling jobs of both waves, the audit gate's decision, and when the review plan
was written (the start of the people's time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from labeling_loop.kernel.jsonl import read_json
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.review.selection import PlanSummary


def first_wave_plan(s3: Any, layout: RunLayout, plan: PlanSummary) -> PlanSummary:
    """The first wave's plan: the state machine carries the second wave's after the audit gate."""
    if plan.wave > 1:
        return PlanSummary.from_state(read_json(s3, layout.review_plan))
    return plan


def second_wave_plan(s3: Any, layout: RunLayout) -> PlanSummary | None:
    try:
        return PlanSummary.from_state(read_json(s3, layout.for_wave(2).review_plan))
    except s3.exceptions.NoSuchKey:
        return None


def labeling_jobs(s3: Any, layout: RunLayout) -> list[str]:
    """Both waves' labeling jobs (`jobs.json`), if any."""
    jobs: list[str] = []
    for wave in (1, 2):
        try:
            jobs += [job["jobName"] for job in read_json(s3, layout.for_wave(wave).review_jobs)]
        except s3.exceptions.NoSuchKey:
            continue
    return jobs


def gate_decision(s3: Any, layout: RunLayout, plan: PlanSummary) -> dict[str, Any]:
    """The audit gate's record (`review/gate.json`)."""
    try:
        return dict(read_json(s3, layout.gate))
    except s3.exceptions.NoSuchKey:
        # Every path of the workflow records one; without it nothing auto-accepted ships unchecked.
        return {
            "decision": "defer" if plan.images_auto_accepted else "nothing-to-ship",
            "reason": "no audit gate decision was recorded (review/gate.json)",
        }


def review_hours(s3: Any, layout: RunLayout, plan: PlanSummary, now: datetime) -> float | None:
    """From the review plan being written (Plan Review) to now (the manifest): the people's time."""
    if not plan.images_to_review:
        return None
    uri = layout.review_plan
    try:
        written: datetime = s3.head_object(Bucket=uri.bucket, Key=uri.key)["LastModified"]
    except ClientError:
        return None
    return round(max(0.0, (now - written).total_seconds()) / 3600, 4)
