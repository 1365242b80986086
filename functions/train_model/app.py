"""`train: true`: adds the run's manifest to the project's training dataset and trains the next
model version, one step per call (`start`, then `advance` between waits); `fail` records an error
the state machine caught. The outcome goes into report.json and report.html; the run never fails
because of it."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import TRAIN_MODEL, AdvanceTraining, StartTraining, parse
from labeling_loop.training import next_version

logger = Logger()
tracer = Tracer()
s3 = client("s3")
rekognition = client("rekognition")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(TRAIN_MODEL, event)
    config = request.config
    if isinstance(request, StartTraining):
        result = next_version.start(s3, rekognition, config, request.images_in_manifest, next_version.now())
    elif isinstance(request, AdvanceTraining):
        result = next_version.advance(s3, rekognition, config, next_version.now())
    else:
        result = next_version.fail(s3, config, request.error)
    logger.info("training step", extra={"action": request.action, **result})
    return {"training": result}
