"""The Plan Review step for one run: check that inference worked, plan the review (task type and
label set decided here, once), and let the run's backend prepare it (review/backend.py).
Writes review/plan.json and returns the plan the state machine carries (`$.plan`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labeling_loop.inference.outcome import check_outcome
from labeling_loop.kernel.jsonl import write_json
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.review.selection import PlanSettings, PlanSummary, check_label_set, plan

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


def plan_run_review(
    s3: S3Client,
    config: RunConfig,
    *,
    images_to_infer: int,
    region: str,
    verification_lambdas: tuple[str, str],
) -> dict[str, Any]:
    layout = config.layout()
    check_outcome(
        s3, layout, images_to_infer=images_to_infer, images=config.images, region=config.model_region
    )
    summary = plan(s3, layout, PlanSettings.from_config(config))
    summary.jobs_key = layout.review_jobs.key
    check_label_set(summary, config.maxLabelsPerJob)
    return record_plan(s3, config, summary, region=region, verification_lambdas=verification_lambdas)


def record_plan(
    s3: S3Client,
    config: RunConfig,
    summary: PlanSummary,
    *,
    region: str,
    verification_lambdas: tuple[str, str],
) -> dict[str, Any]:
    """A wave's planned review, once its tasks are written (the first wave here, the audit gate's
    second in review/gate.py): the backend prepares it when it has images, and the plan goes to the
    wave's review/plan.json. Returns the plan the state machine carries."""
    extra: dict[str, Any] = {}
    if summary.images_to_review:
        extra = config.backend.prepare_review(
            s3, config, summary, region=region, verification_lambdas=verification_lambdas
        )
    result = {**summary.to_dict(), "backend": config.reviewBackend, **extra}
    write_json(s3, config.layout().for_wave(summary.wave).review_plan, result)
    return result
