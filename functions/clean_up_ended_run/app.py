"""Target of the EventBridge rule on this state machine's Execution Status Change (FAILED,
TIMED_OUT, ABORTED): cleans up after a run that ended outside its Catch (a person pressed Stop, the
execution timed out, the history or payload limit was hit). Idempotent with the Catch path."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import CLEAN_UP_ENDED_RUN, parse
from labeling_loop.kernel.settings import RunStateSettings, load
from labeling_loop.lifecycle.cleanup import clean_up_ended_execution
from labeling_loop.lifecycle.services import Services

logger = Logger()
tracer = Tracer()
SETTINGS = load(RunStateSettings)
services = Services.create(SETTINGS.run_state_table)
s3 = client("s3")
sagemaker = client("sagemaker")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = parse(CLEAN_UP_ENDED_RUN, event).detail
    result = clean_up_ended_execution(
        services,
        s3,
        sagemaker,
        detail.execution_arn,
        detail.status,
        # a model still starting is waited for (and stopped) while this invocation has time
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    logger.info("execution ended", extra={**result, "status": detail.status})
    return result
