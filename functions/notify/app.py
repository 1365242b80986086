"""Publishes the run's notifications to the stack's SNS topic (none when the stack has no topic):
`review` (a review is waiting), `ended` (the run's summary and report link), `failed` (error,
cause, what happened to the model)."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.run_config import from_state
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
    config = from_state(event["config"])
    kind = event["event"]
    if kind == "review":
        subject, message = notify.review_waiting(s3, config, event["plan"], datetime.now(UTC))
    elif kind == "ended":
        training = (event.get("next") or {}).get("training")
        subject, message = notify.run_ended(config, event["result"], training, SETTINGS.region)
    elif kind == "failed":
        subject, message = notify.run_failed(config, event.get("cleanup") or {})
    else:
        raise ValueError(f"unknown event {kind!r}")
    result = notify.publish(sns, SETTINGS.topic_arn, subject, message)
    logger.info("notification", extra={"event": kind, "subject": subject, **result})
    return result
