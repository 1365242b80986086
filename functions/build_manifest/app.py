"""Builds the Custom Labels manifest, report.json, skipped.jsonl and deferred.jsonl; records labeled
images and the deferred ones (claims)."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.finishing import recorded
from labeling_loop.finishing.finish import finish_run
from labeling_loop.finishing.report.engine_usage import measure_run
from labeling_loop.finishing.report.publish import run_result
from labeling_loop.finishing.settings import FinishSettings, RunTotals
from labeling_loop.inference import claims
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import BUILD_MANIFEST, parse
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
    request = parse(BUILD_MANIFEST, event)
    config, plan = request.config, PlanSummary.from_state(request.plan)
    now = datetime.now(UTC)
    review_hours = recorded.review_hours(s3, config.layout(), plan, now)
    totals = RunTotals(
        images_listed=request.listing.images_listed,
        batches=request.listing.batches or 0,
        model_usage=request.model_usage or {},
        engine_usage=measure_run(sfn, s3, config, review_seconds=(review_hours or 0) * 3600),
    )
    report = finish_run(s3, FinishSettings.from_run(s3, config, plan, totals, now))
    if config.incremental:
        claims.settle(
            dynamodb, SETTINGS.run_state_table, s3, config.layout(), config.runId, int(now.timestamp())
        )
    run_records.finish(dynamodb, SETTINGS.run_state_table, config.executionArn, run_records.SUCCEEDED)
    _add_metrics(report, review_hours)
    logger.info(
        "manifest built", extra={"counts": report["counts"], "manifest": str(config.layout().manifest)}
    )
    return run_result(config.layout(), report)


def _add_metrics(report: dict[str, Any], review_hours: float | None) -> None:
    counts = report["counts"]
    metrics.add_metric(name="ImagesListed", unit=MetricUnit.Count, value=counts["imagesListed"])
    metrics.add_metric(name="ImagesInManifest", unit=MetricUnit.Count, value=counts["imagesInManifest"])
    metrics.add_metric(name="ImagesSkipped", unit=MetricUnit.Count, value=counts["imagesSkipped"])
    metrics.add_metric(name="ImagesDeferred", unit=MetricUnit.Count, value=counts["imagesDeferred"])
    # The dashboard's F1 trend and review time (template.yaml OperationsDashboard).
    f1 = (report.get("modelQuality") or {}).get("f1")
    if isinstance(f1, int | float):
        metrics.add_metric(name="ModelF1", unit=MetricUnit.NoUnit, value=f1)
    if review_hours is not None:
        metrics.add_metric(name="ReviewHours", unit=MetricUnit.NoUnit, value=review_hours)
