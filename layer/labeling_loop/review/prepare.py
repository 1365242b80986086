"""The Plan Review step for one run: check that inference worked, plan the review (task type and
label set decided here, once), and for the Ground Truth backend write its labeling jobs' inputs; for
Label Studio, copy the images whose keys it cannot load (review/labelstudio/images.py).
Writes review/plan.json and returns the plan the state machine carries (`$.plan`)."""

from __future__ import annotations

from typing import Any

from labeling_loop.inference.outcome import check_outcome
from labeling_loop.kernel.jsonl import write_json
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.review.groundtruth.jobs import plan_run_jobs
from labeling_loop.review.labelstudio.images import add_review_images
from labeling_loop.review.selection import check_label_set, plan


def plan_run_review(
    s3: Any, config: RunConfig, *, images_to_infer: int, region: str, verification_lambdas: tuple[str, str]
) -> dict[str, Any]:
    layout = config.layout()
    check_outcome(
        s3, layout, images_to_infer=images_to_infer, images=config.images, region=config.model_region
    )
    summary = plan(
        s3,
        layout,
        requested_task_type=config.taskType,
        extra_labels=config.labels,
        auto_accept=config.auto_accept,
        min_confidence=config.minConfidence,
        audit_fraction=config.auditFraction,
        audit_min_images=config.auditMinImages,
        audit_salt=config.runId,
        review_budget=config.reviewBudget,
    )
    summary.jobs_key = layout.review_jobs.key
    check_label_set(summary, config.maxLabelsPerJob)
    copies = 0
    if config.reviewBackend == "groundtruth" and summary.images_to_review:
        jobs = plan_run_jobs(s3, config, summary, region=region, verification_lambdas=verification_lambdas)
        summary.jobs = len(jobs)
    elif config.reviewBackend == "labelstudio" and summary.images_to_review:
        copies = add_review_images(s3, layout)
    result = {**summary.to_dict(), "backend": config.reviewBackend}
    if copies:
        result["imagesCopiedForReview"] = copies
    write_json(s3, layout.review_plan, result)
    return result
