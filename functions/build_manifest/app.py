"""Builds the Custom Labels manifest, report.json and skipped.jsonl; records labeled images."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.aws_clients import client
from labeling_loop.finish import finish_run
from labeling_loop.run_config import from_state
from labeling_loop.settings import settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = client("s3")
dynamodb = client("dynamodb")


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = from_state(event["config"])
    listing = event.get("listing") or {}
    result = finish_run(
        s3,
        dynamodb,
        settings().run_state_table,
        config,
        images_listed=int(listing.get("imagesListed", 0)),
        now=datetime.now(UTC),
    )
    counts = result["counts"]
    metrics.add_metric(
        name="ImagesInManifest", unit=MetricUnit.Count, value=counts.get("imagesInManifest", 0)
    )
    metrics.add_metric(name="ImagesSkipped", unit=MetricUnit.Count, value=counts.get("imagesSkipped", 0))
    logger.info("manifest built", extra={"counts": counts, "manifest": result["manifest"]})
    return result
