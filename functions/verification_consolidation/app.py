"""Consolidation (post-annotation) Lambda of the label-verification custom task: Ground Truth calls
it with an S3 file of all workers' answers; it returns one majority-vote answer per data object.
Contract: https://docs.aws.amazon.com/sagemaker/latest/dg/sms-custom-templates-step3-lambda-requirements.html
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client
from labeling_loop.review.groundtruth.task_lambdas import consolidate

logger = Logger()
# Created once per execution environment; standard retries absorb S3 throttling (503 SlowDown).
s3 = client("s3")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> list[dict[str, Any]]:
    results = consolidate(event, s3)
    logger.info(
        "answers consolidated",
        extra={
            "labelingJobArn": event.get("labelingJobArn"),
            "labelAttributeName": event.get("labelAttributeName"),
            "objects": len(results),
        },
    )
    return results
