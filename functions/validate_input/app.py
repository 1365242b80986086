"""First state: the execution input merged over the stack's defaults, validated (InvalidInput)."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.aws_clients import client
from labeling_loop.errors import InvalidInput
from labeling_loop.jsonl import write_json
from labeling_loop.run_config import state_payload
from labeling_loop.run_input import validate_input
from labeling_loop.settings import StackSettings, load

logger = Logger()
tracer = Tracer()
STACK = load(StackSettings)
s3 = client("s3")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        config = validate_input(
            event.get("input"), execution_name=str(event.get("executionName", "")), stack=STACK
        )
    except InvalidInput as error:
        logger.warning("input rejected", extra={"reason": str(error)})
        raise
    payload = state_payload(config)
    # The run folder starts with its own settings, so a user can see what a run did and why.
    write_json(s3, config.layout().config, payload)
    logger.info("run configured", extra={"runId": config.runId, "runPrefix": payload["runPrefix"]})
    return payload
