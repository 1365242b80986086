"""One fan-out item: DetectCustomLabels over a batch of images, predictions and skips to S3."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.aws_clients import INFERENCE, client, retryable_transient_errors
from labeling_loop.inference.detect import run_batch
from labeling_loop.run_config import from_state

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = client("s3")
rekognition = client("rekognition", INFERENCE)


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = from_state(event["config"])
    batch = event["batch"]
    result = run_batch(
        s3,
        rekognition,
        config.layout(),
        batch_id=int(batch["batchId"]),
        images=list(batch["images"]),
        model_arn=config.projectVersionArn,
        min_confidence=config.inference_min_confidence,
    )
    metrics.add_metric(name="ImagesInferred", unit=MetricUnit.Count, value=result.inferred)
    metrics.add_metric(name="ImagesSkipped", unit=MetricUnit.Count, value=result.skipped)
    return result.to_dict()
