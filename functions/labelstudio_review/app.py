"""Label Studio backend: `preflight` (server and token), `create` the run's project, `check` its
progress, `collect` the answers. Where Label Studio is and which secret holds its token are the
stack's (this function's environment), never the run's: the state payload cannot send the token
anywhere else (docs/security.md). Label Studio reads the images bucket with its own credentials."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import (
    LABELSTUDIO_REVIEW,
    CheckLabelStudioReview,
    CreateLabelStudioReview,
    PreflightLabelStudio,
    parse,
)
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
    config = request.config
    layout = config.layout().for_wave(request.wave)
    backend, services = config.backend, services_for(s3, secretsmanager, SETTINGS)
    if isinstance(request, PreflightLabelStudio):  # before the model starts (and bills): a bad URL
        return backend.preflight(services)  # or token fails in seconds
    if isinstance(request, CreateLabelStudioReview):
        return backend.create_review(services, config, PlanSummary.from_state(request.plan))
    if isinstance(request, CheckLabelStudioReview):
        progress = backend.review_progress(services, config, layout, now=datetime.now(UTC))
        logger.info("review progress", extra=progress)
        return progress
    return backend.collect_review(services, layout).output
