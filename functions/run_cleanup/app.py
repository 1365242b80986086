"""Failure path (the definition's Catch): stop the run's labeling jobs, release its model lease
(stopping the model when no live execution needs it) and its image claims."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import RUN_CLEANUP, parse
from labeling_loop.kernel.settings import RunStateSettings, load
from labeling_loop.lifecycle.cleanup import clean_up
from labeling_loop.lifecycle.services import Services

logger = Logger()
tracer = Tracer()
SETTINGS = load(RunStateSettings)
services = Services.create(SETTINGS.run_state_table)
s3 = client("s3")
sagemaker = client("sagemaker")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(RUN_CLEANUP, event)
    config, error = request.config, request.error or {}
    logger.error(
        "run failed; cleaning up",
        extra={"error": error.get("Error"), "cause": str(error.get("Cause"))[:2000]},
    )
    result = clean_up(services, s3, sagemaker, config, error)
    logger.info("cleanup done", extra=result)
    return result
