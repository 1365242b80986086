"""Label Studio backend: `preflight` (server and token), `create` the run's project, `check` its
progress, `collect` the answers. Where Label Studio is and which secret holds its token are the
stack's (this function's environment), never the run's: the state payload cannot send the token
anywhere else (docs/security.md). Label Studio reads the images bucket with its own credentials."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import LABELSTUDIO_REVIEW, CreateLabelStudioReview, parse
from labeling_loop.kernel.settings import LabelStudioReviewSettings, load
from labeling_loop.review.labelstudio.backend import services_for
from labeling_loop.review.selection import PlanSummary

logger = Logger()
tracer = Tracer()
SETTINGS = load(LabelStudioReviewSettings)
s3 = client("s3")
secretsmanager = client("secretsmanager")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors  # S3 and Secrets Manager throttles: the Tasks retry TransientServiceError
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(LABELSTUDIO_REVIEW, event)
    config, action = request.config, request.action
    plan = PlanSummary.from_state(request.plan) if isinstance(request, CreateLabelStudioReview) else None
    layout = config.layout().for_wave(request.wave)
    backend, services = config.backend, services_for(s3, secretsmanager, SETTINGS)
    if action == "preflight":  # before the model starts (and bills): a bad URL or token fails in seconds
        return backend.preflight(services)
    if plan is not None:
        return backend.create_review(services, config, plan)
    if action == "check":
        progress = backend.review_progress(services, config, layout, now=datetime.now(UTC))
        logger.info("review progress", extra=progress)
        return progress
    return backend.collect_review(services, layout).output
