"""Collects the reviewed labels, whatever the backend, into review/reviewed.jsonl."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from labeling_loop import groundtruth
from labeling_loop.aws_clients import client
from labeling_loop.jsonl import read_json
from labeling_loop.run_config import from_state

logger = Logger()
tracer = Tracer()
s3 = client("s3")
sagemaker = client("sagemaker")
secretsmanager = client("secretsmanager")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = from_state(event["config"])
    layout = config.layout()
    if config.reviewBackend == "groundtruth":
        jobs = read_json(s3, layout.review_jobs)
        result = dict(groundtruth.collect(s3, sagemaker, layout, jobs))
    else:
        from labeling_loop import labelstudio_backend  # noqa: PLC0415  (only runs with that backend)

        result = labelstudio_backend.collect(s3, secretsmanager, event["config"])
    summary = {
        "reviewed": int(result.get("reviewed", 0)),
        "skipped": int(result.get("skipped", 0)),
        "failedJobs": list(result.get("failedJobs", [])),
    }
    logger.info("reviews collected", extra=summary)
    return summary
