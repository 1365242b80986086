"""Label Studio backend: `preflight` (server and token), `create` the run's project, `check` its
progress, `collect` the answers. Where Label Studio is and which secret holds its token are the
stack's (this function's environment), never the run's: the state payload cannot send the token
anywhere else (docs/security.md). Label Studio reads the images bucket with its own credentials."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.errors import ReviewBackendError
from labeling_loop.kernel.handler_events import LABELSTUDIO_REVIEW, CreateLabelStudioReview, parse
from labeling_loop.kernel.settings import LabelStudioReviewSettings, load
from labeling_loop.review.labelstudio import project
from labeling_loop.review.labelstudio.client import LabelStudioClient
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
    state = project.stored_state(s3, layout) if action in ("check", "collect") else {}
    try:
        url = SETTINGS.label_studio_endpoint()
    except ValueError as error:
        raise ReviewBackendError(f"Label Studio: {error}") from None
    ls = LabelStudioClient(url, project.read_token(secretsmanager, SETTINGS.label_studio_token_secret_arn))
    try:
        if action == "preflight":  # before the model starts (and bills): a bad URL or token fails in seconds
            return project.preflight(ls)
        if plan is not None:
            settings = project.ProjectSettings.from_config(config, plan, region=SETTINGS.region)
            return project.create_review(s3, ls, layout, settings)
        if action == "check":
            now = datetime.now(UTC)
            progress = project.check_review(ls, state, deadline_hours=config.reviewDeadlineHours, now=now)
            logger.info("review progress", extra=progress)
            return progress
        return project.collect_review(s3, ls, layout, state)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        # Raised while reading Label Studio's answers: what it sent goes to the log, never into the
        # error's message, which the execution history shows to whoever may read that.
        logger.exception("Label Studio answered with data this function cannot read")
        raise ReviewBackendError(
            f"Label Studio at {url} answered {action!r} with data this function cannot read "
            f"({type(error).__name__}; details in the function's log)"
        ) from None
