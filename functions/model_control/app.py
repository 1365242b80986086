"""Acquire (start if stopped), check (while starting) and release (stop if last) the model. A
redriven execution first takes back what its cleanup gave back (labeling_loop.lifecycle.redrive)."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.inference import model_control
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.run_config import from_state
from labeling_loop.kernel.settings import RunStateSettings, load
from labeling_loop.lifecycle import redrive

logger = Logger()
tracer = Tracer()
SETTINGS = load(RunStateSettings)
services = model_control.Services.create(SETTINGS.run_state_table)
s3 = client("s3")  # the run's inventory, to claim its images again after a redrive


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = from_state(event["config"])
    action = event["action"]
    if action in ("acquire", "check"):
        taken = redrive.take_back(services, s3, config, model_control.now())
        if taken["resumed"]:
            logger.warning("redriven after its cleanup: run, lease and claims taken back", extra=taken)
    if action == "acquire":
        state = model_control.acquire(services, config, model_control.now(), int(event["imagesToInfer"]))
        logger.info("model acquired", extra=state.to_dict())
        return state.to_dict()
    if action == "check":
        images = int(event["imagesToInfer"])
        return model_control.check(services, config, event["model"], model_control.now(), images).to_dict()
    if action == "release":
        result = model_control.release(services, config)
        result.update(model_control.usage(event.get("model"), model_control.now()))
        logger.info("model released", extra=result)
        return result
    raise ValueError(f"unknown action {action!r}")
