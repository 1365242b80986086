"""Acquire (start if stopped), check (while starting) and release (stop if last) the model. A
redriven execution first takes back what its cleanup gave back (labeling_loop.lifecycle.redrive)."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.inference import model_control
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import MODEL_CONTROL, AcquireModel, CheckModel, parse
from labeling_loop.kernel.settings import RunStateSettings, load
from labeling_loop.lifecycle import redrive
from labeling_loop.lifecycle.services import Services

logger = Logger()
tracer = Tracer()
SETTINGS = load(RunStateSettings)
services = Services.create(SETTINGS.run_state_table)
s3 = client("s3")  # the run's inventory, to claim its images again after a redrive


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(MODEL_CONTROL, event)
    config = request.config
    if isinstance(request, AcquireModel | CheckModel):
        taken = redrive.take_back(services, s3, config, model_control.now())
        if taken["resumed"]:
            logger.warning("redriven after its cleanup: run, lease and claims taken back", extra=taken)
    if isinstance(request, AcquireModel):
        state = model_control.acquire(services, config, model_control.now(), request.images_to_infer)
        logger.info("model acquired", extra=state.to_dict())
        return state.to_dict()
    if isinstance(request, CheckModel):
        images = request.images_to_infer
        return model_control.check(services, config, request.model, model_control.now(), images).to_dict()
    result = model_control.release(services, config)
    result.update(model_control.usage(request.model, model_control.now()))
    logger.info("model released", extra=result)
    return result
