"""First state: the execution input merged over the stack's defaults, validated (InvalidInput); the
run registered, so that whatever ends the execution can clean up after it."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.aws_clients import client, retryable_transient_errors
from labeling_loop.errors import InvalidInput
from labeling_loop.run_input import start_run, validate_input
from labeling_loop.settings import RunStateSettings, StackSettings, load

logger = Logger()
tracer = Tracer()
STACK = load(StackSettings)
TABLE = load(RunStateSettings).run_state_table
s3 = client("s3")
dynamodb = client("dynamodb")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution = {"execution_name": str(event["executionName"]), "execution_arn": str(event["executionArn"])}
    try:
        config = validate_input(event.get("input"), **execution, stack=STACK)
    except InvalidInput as error:
        logger.warning("input rejected", extra={"reason": str(error)})
        raise
    payload = start_run(s3, dynamodb, TABLE, config)
    logger.info("run configured", extra={"runId": config.runId, "runPrefix": payload["runPrefix"]})
    return payload
