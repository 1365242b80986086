"""Builds the Custom Labels manifest, report.json, skipped.jsonl and deferred.jsonl; records labeled
images and the deferred ones (claims)."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from labeling_loop.finishing.finish import build_run_manifest
from labeling_loop.finishing.report.engine_usage import measure_run
from labeling_loop.finishing.report.publish import run_result
from labeling_loop.inference import claims
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.run_config import from_state
from labeling_loop.kernel.settings import RunStateSettings, load
from labeling_loop.lifecycle import run_records
from labeling_loop.review.selection import PlanSummary

logger = Logger()
tracer = Tracer()
metrics = Metrics()
SETTINGS = load(RunStateSettings)
s3 = client("s3")
dynamodb = client("dynamodb")
sfn = client("stepfunctions")  # the run's own history: its engine usage (finishing/report/engine_usage.py)


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = from_state(event["config"])
    plan = PlanSummary.from_state(event["plan"])
    images_listed = int(event["listing"]["imagesListed"])
    now = datetime.now(UTC)
    batches = int(event["listing"].get("batches") or 0)
    review_hours = _review_hours(config, plan, now)
    engine = measure_run(sfn, s3, config, review_seconds=(review_hours or 0) * 3600)
    report = build_run_manifest(
        s3,
        config,
        plan,
        images_listed=images_listed,
        now=now,
        batches=batches,
        model_usage=event.get("modelUsage"),
        engine_usage=engine,
    )
    if config.incremental:
        claims.settle(
            dynamodb, SETTINGS.run_state_table, s3, config.layout(), config.runId, int(now.timestamp())
        )
    run_records.finish(dynamodb, SETTINGS.run_state_table, config.executionArn, run_records.SUCCEEDED)
    counts = report["counts"]
    metrics.add_metric(name="ImagesListed", unit=MetricUnit.Count, value=images_listed)
    metrics.add_metric(name="ImagesInManifest", unit=MetricUnit.Count, value=counts["imagesInManifest"])
    metrics.add_metric(name="ImagesSkipped", unit=MetricUnit.Count, value=counts["imagesSkipped"])
    metrics.add_metric(name="ImagesDeferred", unit=MetricUnit.Count, value=counts["imagesDeferred"])
    # The dashboard's F1 trend and review time (template.yaml OperationsDashboard).
    f1 = (report.get("modelQuality") or {}).get("f1")
    if isinstance(f1, int | float):
        metrics.add_metric(name="ModelF1", unit=MetricUnit.NoUnit, value=f1)
    if review_hours is not None:
        metrics.add_metric(name="ReviewHours", unit=MetricUnit.NoUnit, value=review_hours)
    logger.info("manifest built", extra={"counts": counts, "manifest": str(config.layout().manifest)})
    return run_result(config.layout(), report)


def _review_hours(config: Any, plan: PlanSummary, now: datetime) -> float | None:
    """From the review plan being written (Plan Review) to now (the manifest): the people's time."""
    if not plan.images_to_review:
        return None
    uri = config.layout().review_plan
    try:
        written = s3.head_object(Bucket=uri.bucket, Key=uri.key)["LastModified"]
    except ClientError:
        return None
    return round(max(0.0, (now - written).total_seconds()) / 3600, 4)
