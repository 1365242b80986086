"""On a schedule: clean up after runs whose execution ended without it being done (their event was
lost), and stop every workflow-started model that no live execution holds."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.aws_clients import client, retryable_transient_errors
from labeling_loop.cleanup import sweep
from labeling_loop.inference.model_control import Services
from labeling_loop.settings import RunStateSettings, load

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
    result = sweep(services, s3, sagemaker)
    logger.info("swept", extra=result)
    return result
