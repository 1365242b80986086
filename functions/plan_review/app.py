"""Plans the review: checks inference worked, writes the review tasks and auto-accepted labels, and
the Ground Truth job inputs when that backend runs (`plan`); after the review, the audit gate
(`check-audit`) and, when it sends the auto-accepted images to people, their second review wave
(`second-wave`)."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.kernel.aws_clients import client, retryable_transient_errors
from labeling_loop.kernel.handler_events import PLAN_REVIEW, CheckAudit, PlanSecondWave, parse
from labeling_loop.kernel.settings import PlanReviewSettings, load
from labeling_loop.review.gate import check_audit, plan_second_wave
from labeling_loop.review.prepare import plan_run_review
from labeling_loop.review.selection import PlanSummary

logger = Logger()
tracer = Tracer()
SETTINGS = load(PlanReviewSettings)
s3 = client("s3")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@retryable_transient_errors
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(PLAN_REVIEW, event)
    config = request.config
    verification_lambdas = (SETTINGS.verification_pre_annotation_arn, SETTINGS.verification_consolidation_arn)
    if isinstance(request, CheckAudit):
        gate = check_audit(s3, config, PlanSummary.from_state(request.plan))
        logger.info("audit gate", extra=gate)
        return gate
    if isinstance(request, PlanSecondWave):
        result = plan_second_wave(
            s3,
            config,
            PlanSummary.from_state(request.plan),
            region=SETTINGS.region,
            verification_lambdas=verification_lambdas,
        )
    else:
        result = plan_run_review(
            s3,
            config,
            images_to_infer=request.listing.images_to_infer,
            region=SETTINGS.region,
            verification_lambdas=verification_lambdas,
        )
    logger.info("review planned", extra={k: v for k, v in result.items() if k != "labels"})
    return result
