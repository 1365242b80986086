"""The execution input: defaults from the template, validation that names the field, derived values.

A console execution started with `{}` works: every field has a default from the stack's parameters
(environment variables of the ValidateInput function). Anything wrong fails the first state with
`InvalidInput`, before the model is touched or anything is billed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from labeling_loop.errors import InvalidInput
from labeling_loop.layout import RunLayout
from labeling_loop.s3_uri import S3Uri

# arn:aws:rekognition:<region>:<account>:project/<project>/version/<version>/<timestamp>  [IAM-RK]
# Project and version names: [a-zA-Z0-9_.\-]{1,255} (CreateProject / CreateProjectVersion).
PROJECT_VERSION_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):rekognition:(?P<region>[a-z]{2}(-[a-z]+)+-[0-9]):(?P<account>[0-9]{12}):"
    r"project/(?P<project>[a-zA-Z0-9_.\-]{1,255})/version/(?P<version>[a-zA-Z0-9_.\-]{1,255})/(?P<ts>[0-9]+)$"
)
# arn:aws:sagemaker:<region>:<account>:workteam/private-crowd/<team>  [SM-PERM]
WORKTEAM_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:workteam/[a-z-]+-crowd/[a-zA-Z0-9_.-]+$"
)
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[a-zA-Z0-9_/+=.@-]+$")
# Ground Truth job names allow 63 chars; the run id goes inside them with a prefix and a suffix.
RUN_ID = re.compile(r"^[a-z0-9](-?[a-z0-9]){0,39}$")
JOB_NAME_PREFIX = re.compile(r"^[a-z0-9](-?[a-z0-9]){0,9}$")
MAX_REVIEW_POLLS = 3000

# Environment variable of the ValidateInput function -> input field it gives the default for.
DEFAULT_ENV = {
    "DEFAULT_PROJECT_VERSION_ARN": "projectVersionArn",
    "DEFAULT_IMAGES": "images",
    "DEFAULT_OUTPUT": "output",
    "DEFAULT_REVIEW_BACKEND": "reviewBackend",
    "DEFAULT_TASK_TYPE": "taskType",
    "DEFAULT_MIN_INFERENCE_UNITS": "minInferenceUnits",
    "DEFAULT_MIN_CONFIDENCE": "minConfidence",
    "DEFAULT_AUTO_ACCEPT_CONFIDENCE": "autoAcceptConfidence",
    "DEFAULT_MAX_IMAGES_PER_JOB": "maxImagesPerJob",
    "DEFAULT_MAX_LABELS_PER_JOB": "maxLabelsPerJob",
    "DEFAULT_TASK_TIME_LIMIT_SECONDS": "taskTimeLimitSeconds",
    "DEFAULT_WORKERS_PER_OBJECT": "workersPerObject",
    "DEFAULT_REVIEW_DEADLINE_HOURS": "reviewDeadlineHours",
    "DEFAULT_WORKTEAM_ARN": "workteamArn",
    "DEFAULT_LABEL_STUDIO_URL": "labelStudioUrl",
    "DEFAULT_LABEL_STUDIO_TOKEN_SECRET_ARN": "labelStudioTokenSecretArn",
    "DEFAULT_INCREMENTAL": "incremental",
    "DEFAULT_IMAGES_PER_BATCH": "imagesPerBatch",
    "DEFAULT_BATCHES_PER_INFERENCE_UNIT": "batchesPerInferenceUnit",
    "DEFAULT_MODEL_POLL_SECONDS": "modelPollSeconds",
    "DEFAULT_REVIEW_POLL_SECONDS": "reviewPollSeconds",
    "DEFAULT_MODEL_START_TIMEOUT_MINUTES": "modelStartTimeoutMinutes",
    "DEFAULT_JOB_NAME_PREFIX": "jobNamePrefix",
}
# Buckets the stack's roles may use; the input may not point anywhere else (IAM would refuse later,
# after the model started; saying it first is cheaper and clearer).
ALLOWED_IMAGES_BUCKET_ENV = "IMAGES_BUCKET"
ALLOWED_OUTPUT_BUCKET_ENV = "OUTPUT_BUCKET"


class RunConfig(BaseModel):
    """One run's settings. Field names are the execution input's keys (camelCase)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    projectVersionArn: str
    images: str = Field(description="s3://bucket/prefix/ of the images to label")
    output: str = Field(description="s3://bucket/prefix/ under which each run writes its folder")
    reviewBackend: Literal["groundtruth", "labelstudio"] = "groundtruth"
    taskType: Literal["auto", "detection", "classification"] = "auto"
    minInferenceUnits: int = Field(1, ge=1, le=100)
    minConfidence: float = Field(50.0, ge=0, le=100)
    autoAcceptConfidence: float | None = Field(None, ge=0, le=100)
    # Ground Truth: at most 100,000 objects per labeling job [GT-Q].
    maxImagesPerJob: int = Field(1000, ge=1, le=100_000)
    # Bounding-box jobs: 50 labels via the API [GT-Q] (the crowd-bounding-box docs say 10).
    maxLabelsPerJob: int = Field(50, ge=2, le=50)
    # TaskTimeLimitInSeconds: 30 s to 8 h for image tasks [SM-HTC].
    taskTimeLimitSeconds: int = Field(600, ge=30, le=28_800)
    # NumberOfHumanWorkersPerDataObject: 1-9 [SM-HTC].
    workersPerObject: int = Field(1, ge=1, le=9)
    # Private workforce task availability: at most 30 days [SM-HTC]; also the Label Studio deadline.
    # Fractions allowed (0.5 = 30 minutes), for short reviews and for compressed-time test runs.
    reviewDeadlineHours: float = Field(240, ge=0.001, le=720)
    workteamArn: str | None = None
    labelStudioUrl: str | None = None
    labelStudioTokenSecretArn: str | None = None
    incremental: bool = False
    imagesPerBatch: int = Field(100, ge=1, le=500)
    batchesPerInferenceUnit: int = Field(2, ge=1, le=50)
    modelPollSeconds: int = Field(60, ge=0, le=3600)
    reviewPollSeconds: int = Field(900, ge=0, le=86_400)
    modelStartTimeoutMinutes: int = Field(60, ge=1, le=720)
    jobNamePrefix: str = "lab"
    # Labels reviewers may use besides those the model predicted in this run (e.g. the dataset's).
    labels: list[str] = Field(default_factory=list, max_length=250)
    runId: str | None = None

    @field_validator(
        "minInferenceUnits",
        "minConfidence",
        "autoAcceptConfidence",
        "maxImagesPerJob",
        "maxLabelsPerJob",
        "taskTimeLimitSeconds",
        "workersPerObject",
        "reviewDeadlineHours",
        "imagesPerBatch",
        "batchesPerInferenceUnit",
        "modelPollSeconds",
        "reviewPollSeconds",
        "modelStartTimeoutMinutes",
        mode="before",
    )
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        # JSON true/false would pass as 1/0 in pydantic's lax mode; a boolean is never a count here.
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return value

    @field_validator("projectVersionArn")
    @classmethod
    def _arn(cls, value: str) -> str:
        if not PROJECT_VERSION_ARN.fullmatch(value):
            raise ValueError(
                "must be a Custom Labels model version ARN: "
                "arn:aws:rekognition:<region>:<account>:project/<project>/version/<version>/<timestamp>"
            )
        return value

    @field_validator("images", "output")
    @classmethod
    def _s3(cls, value: str) -> str:
        return str(S3Uri.parse(value).as_prefix())

    @field_validator("workteamArn")
    @classmethod
    def _workteam(cls, value: str | None) -> str | None:
        if value and not WORKTEAM_ARN.fullmatch(value):
            raise ValueError(
                "must be a SageMaker workteam ARN (arn:aws:sagemaker:<region>:<account>:workteam/...)"
            )
        return value or None

    @field_validator("labelStudioUrl")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"https?://[^\s/]+(:[0-9]+)?(/\S*)?", value):
            raise ValueError("must be an http(s) URL such as https://labelstudio.example.com")
        return value.rstrip("/") if value else None

    @field_validator("labelStudioTokenSecretArn")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value and not SECRET_ARN.fullmatch(value):
            raise ValueError("must be a Secrets Manager secret ARN")
        return value or None

    @field_validator("runId")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        if value is not None and not RUN_ID.fullmatch(value):
            raise ValueError("must be 1-40 lower-case letters, digits and single hyphens")
        return value

    @field_validator("jobNamePrefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not JOB_NAME_PREFIX.fullmatch(value):
            raise ValueError("must be 1-10 lower-case letters, digits and single hyphens")
        return value

    @model_validator(mode="after")
    def _backend_settings(self) -> RunConfig:
        if self.reviewBackend == "groundtruth" and not self.workteamArn:
            raise ValueError("workteamArn is required when reviewBackend is groundtruth")
        if self.reviewBackend == "labelstudio":
            if not self.labelStudioUrl:
                raise ValueError("labelStudioUrl is required when reviewBackend is labelstudio")
            if not self.labelStudioTokenSecretArn:
                raise ValueError("labelStudioTokenSecretArn is required when reviewBackend is labelstudio")
        if self.autoAcceptConfidence is not None and self.autoAcceptConfidence < self.minConfidence:
            raise ValueError("autoAcceptConfidence must be at least minConfidence")
        # Each review poll adds about 6 history events; Standard executions stop at 25,000 [SF-Q].
        if self.reviewPollSeconds * MAX_REVIEW_POLLS < self.reviewDeadlineHours * 3600:
            raise ValueError(
                f"reviewPollSeconds must be at least reviewDeadlineHours * 3600 / {MAX_REVIEW_POLLS} "
                "so that the execution history stays under 25,000 events"
            )
        return self

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        # Label names: 1-256 characters [CL-VAL].
        for label in value:
            if not isinstance(label, str) or not 1 <= len(label.strip()) <= 256:
                raise ValueError("every label must be a name of 1 to 256 characters")
        return sorted(set(label.strip() for label in value))

    # Derived values -------------------------------------------------------------------------------

    def _arn_part(self, name: str) -> str:
        match = PROJECT_VERSION_ARN.fullmatch(self.projectVersionArn)
        assert match, "validated by _arn"
        return match[name]

    @property
    def model_region(self) -> str:
        return self._arn_part("region")

    @property
    def project_name(self) -> str:
        return self._arn_part("project")

    @property
    def version_name(self) -> str:
        return self._arn_part("version")

    @property
    def map_concurrency(self) -> int:
        """Batches in flight: enough to keep every inference unit busy while others read images."""
        return self.minInferenceUnits * self.batchesPerInferenceUnit

    def layout(self) -> RunLayout:
        assert self.runId
        return RunLayout.for_run(S3Uri.parse(self.output), self.runId)


def run_id_from_execution(execution_name: str) -> str:
    """A run id from the execution name: lower case, [a-z0-9-], at most 40 characters."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", execution_name.lower()).strip("-")
    cleaned = re.sub(r"-{2,}", "-", cleaned)[:40].strip("-")
    return cleaned or "run"


def defaults_from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Template parameters arrive as strings; empty means 'no default'."""
    defaults: dict[str, Any] = {}
    for env_name, field in DEFAULT_ENV.items():
        raw = environ.get(env_name, "")
        if raw == "":
            continue
        annotation = RunConfig.model_fields[field].annotation
        if annotation is bool:
            defaults[field] = raw.strip().lower() in ("true", "1", "yes")
        elif field == "autoAcceptConfidence" and raw.strip().lower() in ("off", "none", "-1"):
            continue
        else:
            defaults[field] = raw
    return defaults


def _describe_errors(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "input"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "is not a known input field"
        elif item["type"] == "missing":
            message = "is required (no default is configured in the stack)"
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def validate_input(raw: Any, *, execution_name: str, environ: Mapping[str, str] | None = None) -> RunConfig:
    """Merge the execution input over the stack's defaults and validate it, naming bad fields."""
    environ = os.environ if environ is None else environ
    if not isinstance(raw, dict):
        raise InvalidInput(f"input: must be a JSON object, got {type(raw).__name__}")
    merged = {**defaults_from_environment(environ), **{k: v for k, v in raw.items() if v is not None}}
    try:
        config = RunConfig.model_validate(merged)
    except ValidationError as error:
        raise InvalidInput(_describe_errors(error)) from None
    images_bucket = S3Uri.parse(config.images).bucket
    output_bucket = S3Uri.parse(config.output).bucket
    allowed_images = environ.get(ALLOWED_IMAGES_BUCKET_ENV)
    allowed_output = environ.get(ALLOWED_OUTPUT_BUCKET_ENV)
    if allowed_images and images_bucket != allowed_images:
        raise InvalidInput(
            f"images: bucket {images_bucket!r} is not the stack's images bucket {allowed_images!r}"
        )
    if allowed_output and output_bucket != allowed_output:
        raise InvalidInput(
            f"output: bucket {output_bucket!r} is not the stack's output bucket {allowed_output!r}"
        )
    # The roles may only write under the stack's output prefix (GroundTruthRole, the map's results).
    default_output = environ.get("DEFAULT_OUTPUT")
    if default_output and not config.output.startswith(str(S3Uri.parse(default_output).as_prefix())):
        raise InvalidInput(f"output: must be under the stack's output prefix {default_output!r}")
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region and config.model_region != region:
        raise InvalidInput(f"projectVersionArn: the model is in {config.model_region}, the stack in {region}")
    if config.runId is None:
        config = config.model_copy(update={"runId": run_id_from_execution(execution_name)})
    return config


def state_payload(config: RunConfig) -> dict[str, Any]:
    """What the state machine carries: the settings plus derived values it needs. Never image data."""
    layout = config.layout()
    return {
        **json.loads(config.model_dump_json()),
        "runPrefix": str(layout.root),
        "outputBucket": layout.root.bucket,
        # Distributed Map ItemReader/ResultWriter take a bucket and a key, not a URI.
        "batchesKey": layout.batches.key,
        "reviewJobsKey": layout.review_jobs.key,
    }


def from_state(payload: Mapping[str, Any]) -> RunConfig:
    """The RunConfig inside a state payload (derived keys dropped). It was validated by the first
    state; validating again costs microseconds and keeps every function honest."""
    fields = RunConfig.model_fields
    return RunConfig.model_validate({k: v for k, v in payload.items() if k in fields})
