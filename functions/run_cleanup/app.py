"""Failure path: stop the model if this run's lease was the last, release image claims."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.aws_clients import client
from labeling_loop.cleanup import clean_up
from labeling_loop.run_config import from_state
from labeling_loop.settings import RunStateSettings, load

logger = Logger()
tracer = Tracer()
SETTINGS = load(RunStateSettings)
rekognition = client("rekognition")
dynamodb = client("dynamodb")
s3 = client("s3")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = from_state(event["config"])
    error = event.get("error") or {}
    logger.error(
        "run failed; cleaning up",
        extra={"error": error.get("Error"), "cause": str(error.get("Cause"))[:2000]},
    )
    result = clean_up(rekognition, dynamodb, s3, SETTINGS.run_state_table, config, error)
    logger.info("cleanup done", extra=result)
    return result
