"""Ground Truth backend: reads every labeling job's status and output, writes review/reviewed.jsonl."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import COLLECT_LABELING_JOBS, parse
from labeling_loop.kernel.jsonl import read_json
from labeling_loop.review.groundtruth.collect import collect

logger = Logger()
tracer = Tracer()
s3 = client("s3")
sagemaker = client("sagemaker")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(COLLECT_LABELING_JOBS, event)
    layout = request.config.layout().for_wave(request.wave)
    result = collect(s3, sagemaker, layout, read_json(s3, layout.review_jobs))
    summary = {
        "reviewed": int(result["reviewed"]),
        "skipped": int(result["skipped"]),
        # A count, not the list: the number of jobs grows with the images (details are in S3 and the logs).
        "failedJobs": len(result["failedJobs"]),
    }
    logger.info("labeling jobs collected", extra={**summary, "failed": result["failedJobs"][:50]})
    return summary
