"""Acquire (start if stopped), check (while starting) and release (stop if last) the model."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.aws_clients import client
from labeling_loop.inference import model_control
from labeling_loop.run_config import from_state
from labeling_loop.settings import RunStateSettings, load

logger = Logger()
tracer = Tracer()
SETTINGS = load(RunStateSettings)
rekognition = client("rekognition")
dynamodb = client("dynamodb")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = from_state(event["config"])
    table = SETTINGS.run_state_table
    action = event["action"]
    if action == "acquire":
        state = model_control.acquire(rekognition, dynamodb, table, config, model_control.now())
        logger.info("model acquired", extra=state.to_dict())
        return state.to_dict()
    if action == "check":
        state = model_control.check(rekognition, dynamodb, table, config, event["model"], model_control.now())
        return state.to_dict()
    if action == "release":
        result = model_control.release(rekognition, dynamodb, table, config)
        logger.info("model released", extra=result)
        return result
    raise ValueError(f"unknown action {action!r}")
