"""Publishes the run's notifications to the stack's SNS topic (none when the stack has no topic):
`review` (a review is waiting), `ended` (the run's summary and report link), `failed` (error,
cause, what happened to the model)."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import NOTIFY, NotifyEnded, NotifyReview, parse
from labeling_loop.kernel.settings import NotifySettings, load
from labeling_loop.lifecycle import notify

logger = Logger()
tracer = Tracer()
SETTINGS = load(NotifySettings)
s3 = client("s3")
sns = client("sns")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(NOTIFY, event)
    config = request.config
    if isinstance(request, NotifyReview):
        subject, message = notify.review_waiting(s3, config, request.plan, datetime.now(UTC))
    elif isinstance(request, NotifyEnded):
        training = (request.next_step or {}).get("training")
        subject, message = notify.run_ended(config, request.result, training, SETTINGS.region)
    else:
        subject, message = notify.run_failed(config, request.cleanup or {})
    result = notify.publish(sns, SETTINGS.topic_arn, subject, message)
    logger.info("notification", extra={"event": request.event, "subject": subject, **result})
    return result
