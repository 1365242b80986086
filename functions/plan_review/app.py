"""Plans the review: review tasks and auto-accepted labels; Ground Truth job inputs when that backend runs."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop import groundtruth
from labeling_loop.aws_clients import client
from labeling_loop.errors import InvalidInput
from labeling_loop.jsonl import read_jsonl, write_json
from labeling_loop.review_plan import plan
from labeling_loop.run_config import from_state
from labeling_loop.settings import required, settings

logger = Logger()
tracer = Tracer()
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
    if summary.images_to_review and not summary.labels:
        raise InvalidInput(
            "labels: the model predicted no label in this run and the input names none, so reviewers "
            'would have nothing to choose from; pass the model\'s labels (e.g. "labels": ["cat", "dog"])'
        )
    if len(summary.labels) > config.maxLabelsPerJob:
        raise InvalidInput(
            f"maxLabelsPerJob: the review needs {len(summary.labels)} labels "
            f"({', '.join(summary.labels[:60])}), "
            f"more than the {config.maxLabelsPerJob} allowed; "
            "raise maxLabelsPerJob (at most 50) or trim labels"
        )
    if config.reviewBackend == "groundtruth" and summary.images_to_review:
        jobs = groundtruth.plan_jobs(
            s3,
            layout,
            read_jsonl(s3, layout.review_tasks),
            task_type=summary.task_type,  # type: ignore[arg-type]
            labels=summary.labels,
            run_id=config.runId or "",
            job_name_prefix=config.jobNamePrefix,
            max_images_per_job=config.maxImagesPerJob,
            workteam_arn=config.workteamArn or "",
            region=settings().region,
            verification_pre_lambda_arn=required(
                settings().verification_pre_annotation_arn, "VERIFICATION_PRE_ANNOTATION_FUNCTION_ARN"
            ),
            verification_consolidation_lambda_arn=required(
                settings().verification_consolidation_arn, "VERIFICATION_CONSOLIDATION_FUNCTION_ARN"
            ),
            workers_per_object=config.workersPerObject,
            task_time_limit_s=config.taskTimeLimitSeconds,
            # Ground Truth's TaskAvailabilityLifetimeInSeconds is at least 60 [SM-HTC].
            task_availability_s=max(60, int(config.reviewDeadlineHours * 3600)),
            max_concurrent_tasks=1000,
        )
        summary.jobs = len(jobs)
    result = {**summary.to_dict(), "backend": config.reviewBackend}
    write_json(s3, layout.review_plan, result)
    logger.info("review planned", extra={k: v for k, v in result.items() if k != "labels"})
    return result
