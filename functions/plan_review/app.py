"""Plans the review: review tasks and auto-accepted labels; Ground Truth job inputs when that backend runs."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.aws_clients import client
from labeling_loop.jsonl import write_json
from labeling_loop.review.groundtruth.jobs import plan_run_jobs
from labeling_loop.review.plan import check_label_set, plan
from labeling_loop.run_config import from_state
from labeling_loop.settings import PlanReviewSettings, load

logger = Logger()
tracer = Tracer()
SETTINGS = load(PlanReviewSettings)
s3 = client("s3")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = from_state(event["config"])
    layout = config.layout()
    summary = plan(
        s3,
        layout,
        requested_task_type=config.taskType,
        extra_labels=config.labels,
        auto_accept=config.autoAcceptConfidence,
    )
    check_label_set(summary, config.maxLabelsPerJob)
    if config.reviewBackend == "groundtruth" and summary.images_to_review:
        lambdas = (SETTINGS.verification_pre_annotation_arn, SETTINGS.verification_consolidation_arn)
        jobs = plan_run_jobs(s3, config, summary, region=SETTINGS.region, verification_lambdas=lambdas)
        summary.jobs = len(jobs)
    result = {**summary.to_dict(), "backend": config.reviewBackend}
    write_json(s3, layout.review_plan, result)
    logger.info("review planned", extra={k: v for k, v in result.items() if k != "labels"})
    return result
