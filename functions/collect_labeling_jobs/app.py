"""Ground Truth backend: reads every labeling job's status and output, writes review/reviewed.jsonl."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import COLLECT_LABELING_JOBS, parse
from labeling_loop.review.backend import ReviewServices

logger = Logger()
tracer = Tracer()
s3 = client("s3")
sagemaker = client("sagemaker")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(COLLECT_LABELING_JOBS, event)
    config = request.config
    layout = config.layout().for_wave(request.wave)
    collected = config.backend.collect_review(ReviewServices(s3, sagemaker=sagemaker), layout)
    logger.info("labeling jobs collected", extra={**collected.output, "failed": collected.failed[:50]})
    return collected.output
