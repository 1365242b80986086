"""Pre-annotation Lambda of the label-verification custom task: Ground Truth calls it once per
data object before showing the task, and its `taskInput` becomes the template's `task.input`.
Contract: https://docs.aws.amazon.com/sagemaker/latest/dg/sms-custom-templates-step3-lambda-requirements.html
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.review.groundtruth.task_lambdas import pre_annotate

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # No AWS client: the manifest line in the event holds everything the task needs.
    result = pre_annotate(event)
    logger.debug(
        "task input built",
        extra={
            "labelingJobArn": event.get("labelingJobArn"),
            "predicted": len(result["taskInput"]["predicted"]),
            "labels": len(result["taskInput"]["labels"]),
        },
    )
    return result
