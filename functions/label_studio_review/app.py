"""Label Studio review backend: `create` the run's project, `check` its progress, `collect` answers.

Event: {"action": "create"|"check"|"collect", "config": {...run state...}, "plan": {...}?}. The token
comes from Secrets Manager (the secret string is the token or `{"token": ...}`); Label Studio reaches
the images bucket with its own credentials, through LABEL_STUDIO_S3_ENDPOINT when S3 is not AWS's.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from labeling_loop import labelstudio
from labeling_loop.aws_clients import client
from labeling_loop.errors import InvalidInput, ReviewBackendError
from labeling_loop.jsonl import read_json
from labeling_loop.layout import RunLayout
from labeling_loop.s3_uri import S3Uri
from labeling_loop.settings import settings
from pydantic import BaseModel, ConfigDict, Field

logger = Logger()
tracer = Tracer()
s3 = client("s3")
secretsmanager = client("secretsmanager")


class ReviewConfig(BaseModel):
    """The part of the run state this function reads (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")

    runPrefix: str
    runId: str
    labelStudioUrl: str
    labelStudioTokenSecretArn: str
    images: str
    taskType: str = "auto"
    labels: list[str] = Field(default_factory=list)
    reviewDeadline: str | None = None  # ISO time; else createdAt + reviewDeadlineHours
    reviewDeadlineHours: float = 240


class ReviewEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["preflight", "create", "check", "collect"]
    config: ReviewConfig
    plan: dict[str, Any] | None = None  # review/plan.json: the resolved taskType and label set


def read_token(secret_arn: str) -> str:
    secret = secretsmanager.get_secret_value(SecretId=secret_arn)["SecretString"].strip()
    if secret.startswith("{"):
        token = json.loads(secret).get("token", "")
        if not token:
            raise ReviewBackendError(f"secret {secret_arn} is JSON without a 'token' field")
        return str(token).strip()
    return secret


def _task_type_and_labels(event: ReviewEvent) -> tuple[labelstudio.TaskType, list[str]]:
    plan = event.plan or {}
    task_type = plan.get("taskType") or event.config.taskType
    labels = list(plan.get("labels") or event.config.labels)
    if task_type not in ("detection", "classification"):
        raise InvalidInput(f"taskType: {task_type!r} is not resolved to detection or classification")
    if not labels:
        raise InvalidInput("labels: the review needs a label set (from the plan or the input)")
    return task_type, labels


def _deadline(config: ReviewConfig, state: dict[str, Any]) -> str:
    if config.reviewDeadline:
        return config.reviewDeadline
    created = datetime.fromisoformat(str(state["createdAt"]).replace("Z", "+00:00"))
    return (created + timedelta(hours=config.reviewDeadlineHours)).isoformat()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ReviewEvent.model_validate(event)
    config = request.config
    layout = RunLayout(S3Uri.parse(config.runPrefix).as_prefix())
    ls = labelstudio.LabelStudioClient(config.labelStudioUrl, read_token(config.labelStudioTokenSecretArn))

    if request.action == "preflight":
        # Before the model starts (and bills): a wrong URL or token fails the run in seconds.
        return labelstudio.preflight(ls)

    if request.action == "create":
        task_type, labels = _task_type_and_labels(request)
        images = S3Uri.parse(config.images).as_prefix()
        return labelstudio.create_review(
            s3,
            ls,
            layout,
            run_id=config.runId,
            task_type=task_type,
            labels=labels,
            images_bucket=images.bucket,
            images_prefix=images.key,
            s3_storage={"region": settings().region, "endpoint_url": settings().label_studio_s3_endpoint},
            title=labelstudio.review_title(config.runId),
        )

    state = read_json(s3, layout.labelstudio_state)
    if request.action == "check":
        progress = labelstudio.check_review(
            ls, state, deadline_iso=_deadline(config, state), now=datetime.now(UTC)
        )
        # The state machine leaves its poll loop on `done`: a passed deadline ends the review too,
        # and collect records the unanswered tasks as skipped.
        result = {
            **progress,
            "allAnnotated": progress["done"],
            "done": progress["done"] or progress["deadlinePassed"],
        }
        logger.info("review progress", extra=result)
        return result
    return labelstudio.collect_review(s3, ls, layout, state)
