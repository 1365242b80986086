"""First state: the execution input merged over the stack's defaults, validated against what the
stack grants, its review labels settled from the model's project (InvalidInput, before anything is
started or billed); the run registered, so that whatever ends the execution can clean up after it."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.handler_events import VALIDATE_INPUT, parse
from labeling_loop.kernel.run_input import start_run, validate_input
from labeling_loop.kernel.settings import RunStateSettings, StackSettings, load
from labeling_loop.review.label_set import with_project_labels

logger = Logger()
tracer = Tracer()
STACK = load(StackSettings)
TABLE = load(RunStateSettings).run_state_table
s3 = client("s3")
dynamodb = client("dynamodb")
rekognition = client("rekognition")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(VALIDATE_INPUT, event)
    execution = {"execution_name": request.execution_name, "execution_arn": request.execution_arn}
    try:
        config = validate_input(request.input, **execution, stack=STACK)
        config = with_project_labels(rekognition, config)
        payload = start_run(s3, dynamodb, TABLE, config)
    except InvalidInput as error:
        logger.warning("input rejected", extra={"reason": str(error)})
        raise
    logger.info("run configured", extra={"runId": config.runId, "runPrefix": payload["runPrefix"]})
    return payload
