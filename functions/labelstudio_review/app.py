"""Label Studio backend: `preflight` (server and token), `create` the run's project, `check` its
progress, `collect` the answers. The token comes from Secrets Manager; Label Studio reads the images
bucket with its own credentials."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop.aws_clients import client
from labeling_loop.review.labelstudio import project
from labeling_loop.review.labelstudio.client import LabelStudioClient
from labeling_loop.review.plan import PlanSummary
from labeling_loop.run_config import from_state
from labeling_loop.settings import RegionSettings, load

logger = Logger()
tracer = Tracer()
SETTINGS = load(RegionSettings)
s3 = client("s3")
secretsmanager = client("secretsmanager")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = from_state(event["config"])
    token = project.read_token(secretsmanager, str(config.labelStudioTokenSecretArn))
    ls = LabelStudioClient(str(config.labelStudioUrl), token)
    action, layout = event["action"], config.layout()
    if action == "preflight":  # before the model starts (and bills): a bad URL or token fails in seconds
        return project.preflight(ls)
    if action == "create":
        plan = PlanSummary.from_state(event["plan"])
        return project.create_run_review(s3, ls, config, plan, region=SETTINGS.region)
    state = project.stored_state(s3, layout)
    if action == "check":
        now = datetime.now(UTC)
        progress = project.check_review(ls, state, deadline_hours=config.reviewDeadlineHours, now=now)
        logger.info("review progress", extra=progress)
        return progress
    if action == "collect":
        return project.collect_review(s3, ls, layout, state)
    raise ValueError(f"unknown action {action!r}")
