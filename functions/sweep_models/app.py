"""On a schedule: clean up after runs whose execution ended without it being done (their event was
lost), and stop every workflow-started model that no live execution holds."""

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.inference.model_control import live
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import SWEEP_MODELS, parse
from labeling_loop.kernel.settings import RunStateSettings, load
from labeling_loop.lifecycle.cleanup import sweep
from labeling_loop.lifecycle.run_health import overdue_runs
from labeling_loop.lifecycle.services import Services

logger = Logger()
tracer = Tracer()
metrics = Metrics()
SETTINGS = load(RunStateSettings)
services = Services.create(SETTINGS.run_state_table)
s3 = client("s3")
sagemaker = client("sagemaker")


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parse(SWEEP_MODELS, event)  # the schedule's notification: nothing in it to read
    result = sweep(services, s3, sagemaker)
    overdue = overdue_runs(
        services.dynamodb,
        s3,
        services.table,
        lambda arn: live(services.executions, arn),
        int(time.time()),
    )
    result["reviewsPastDeadline"] = overdue
    # The alarms' metrics (template.yaml OrphanedModelAlarm, ModelLeftRunningAlarm,
    # ReviewOverdueAlarm): a model the workflow started that no live run held (stopped now, or
    # still running at two sweeps in a row), and live runs past their review deadline.
    metrics.add_metric(name="ModelsStoppedBySweep", unit=MetricUnit.Count, value=len(result["modelsStopped"]))
    metrics.add_metric(
        name="ModelsLeftRunningUnheld", unit=MetricUnit.Count, value=len(result["modelsLeftRunning"])
    )
    metrics.add_metric(name="RunsCleanedUpBySweep", unit=MetricUnit.Count, value=result["runsCleanedUp"])
    metrics.add_metric(name="ReviewsPastDeadline", unit=MetricUnit.Count, value=len(overdue))
    logger.info("swept", extra=result)
    return result
