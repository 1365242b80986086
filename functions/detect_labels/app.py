"""One fan-out batch, one invocation at a time: the batch's next images through DetectCustomLabels,
predictions and skips to S3, progress (and the learned rate) back to the child execution. A batch of
a redriven run whose model its cleanup stopped starts it again and waits (labeling_loop.lifecycle.redrive)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.inference import flow_hooks, model_control
from labeling_loop.inference.batch import BatchItem, BatchTurn, InferenceSettings, Progress, run_batch
from labeling_loop.inference.shared_rate import SharedRate
from labeling_loop.kernel.aws_clients import IMAGE_READS, INFERENCE, client, retryable_transient_errors
from labeling_loop.kernel.errors import ModelNotRunningError
from labeling_loop.kernel.handler_events import DETECT_LABELS, parse
from labeling_loop.kernel.settings import RunStateSettings, load
from labeling_loop.lifecycle import redrive
from labeling_loop.lifecycle.services import Services

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = client("s3", IMAGE_READS)
rekognition = flow_hooks.install(client("rekognition", INFERENCE))
SETTINGS = load(RunStateSettings)
# The run-state table: the estimate the run's batches share (several batches), and, when the model is
# found not running, the run's record and lease and whether the execution still runs.
services = Services(rekognition, client("dynamodb"), SETTINGS.run_state_table, client("stepfunctions"))


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(DETECT_LABELS, event)
    config, batch, before = request.config, BatchItem.of(request.batch), Progress.of(request.progress)
    shared = (
        SharedRate(services.dynamodb, SETTINGS.run_state_table, config.executionArn, batch.batch_id)
        if batch.batches > 1
        else None
    )
    try:
        after = run_batch(
            s3,
            rekognition,
            InferenceSettings.from_config(config),
            BatchTurn(batch, before, shared),
            seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
        )
    except ModelNotRunningError:
        redrive.model_for_resumed_batch(services, s3, config, model_control.now())
        raise
    metrics.add_metric(name="ImagesInferred", unit=MetricUnit.Count, value=after.inferred - before.inferred)
    metrics.add_metric(name="ImagesSkipped", unit=MetricUnit.Count, value=after.skipped - before.skipped)
    logger.info("batch progress", extra={"batchId": batch.batch_id, "done": after.done, "flow": after.flow})
    return after.to_dict(batch)
