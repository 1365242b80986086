"""The execution input, merged over the stack's defaults and checked against what the stack grants.

A console execution started with `{}` works: the stack passes its parameters to the first state as
one JSON value (`RUN_DEFAULTS`, built in template.yaml), and the few fields the stack does not set
have their defaults here. Anything wrong fails the first state with `InvalidInput`, naming the
field, before the model is touched or anything is billed.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from labeling_loop import run_records
from labeling_loop.errors import InvalidInput
from labeling_loop.jsonl import read_json, write_json
from labeling_loop.run_config import (
    Confidence,
    ImagesPerJob,
    InferenceUnits,
    JobNamePrefix,
    Labels,
    LabelsPerJob,
    LabelStudioUrl,
    ModelPollSeconds,
    ModelStartTimeoutMinutes,
    ProjectVersionArn,
    RequestedTaskType,
    ReviewBackend,
    ReviewDeadlineHours,
    ReviewPollSeconds,
    RunConfig,
    S3Prefix,
    SecretArn,
    TaskTimeLimitSeconds,
    WorkersPerObject,
    WorkteamArn,
    state_payload,
)
from labeling_loop.s3_uri import S3Uri
from labeling_loop.settings import StackSettings

OFF = "off"
# RunConfig fields that come from the execution, not from the input.
FROM_THE_EXECUTION = frozenset({"executionArn", "runId"})
# RunConfig fields that may be None (a feature off, or a backend setting that does not apply).
_NULLABLE = frozenset(
    name for name, field in RunConfig.model_fields.items() if type(None) in get_args(field.annotation)
)


class RunInput(BaseModel):
    """The execution input as a person, a schedule or a script writes it: every field optional.
    A field left out (or null) takes the stack's default; the last four have no stack parameter
    and default here. Field types and bounds are RunConfig's. Who the run is (its execution and run
    id) is not an input: it comes from the execution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    projectVersionArn: ProjectVersionArn | None = None
    images: S3Prefix | None = None
    output: S3Prefix | None = None
    reviewBackend: ReviewBackend | None = None
    minInferenceUnits: InferenceUnits | None = None
    minConfidence: Confidence | None = None
    autoAcceptConfidence: Confidence | Literal["off"] | None = None
    maxImagesPerJob: ImagesPerJob | None = None
    maxLabelsPerJob: LabelsPerJob | None = None
    taskTimeLimitSeconds: TaskTimeLimitSeconds | None = None
    workersPerObject: WorkersPerObject | None = None
    reviewDeadlineHours: ReviewDeadlineHours | None = None
    workteamArn: WorkteamArn | None = None
    labelStudioUrl: LabelStudioUrl | None = None
    labelStudioTokenSecretArn: SecretArn | None = None
    modelPollSeconds: ModelPollSeconds | None = None
    reviewPollSeconds: ReviewPollSeconds | None = None
    modelStartTimeoutMinutes: ModelStartTimeoutMinutes | None = None
    # No stack parameter for these:
    taskType: RequestedTaskType = "auto"
    incremental: bool = False
    jobNamePrefix: JobNamePrefix = "lab"
    labels: Labels = Field(default_factory=list)

    @field_validator("workteamArn", "labelStudioUrl", "labelStudioTokenSecretArn", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # An empty string (an empty stack parameter pasted into the input) means "none".
        return None if value == "" else value


# Settings a run used to take and now plans itself (inference.plan): named as such, not as unknown.
RETIRED_FIELDS = {
    "imagesPerBatch": "is no longer a setting: each run plans its batches from its images and the "
    "model's inference units",
    "batchesPerInferenceUnit": "is no longer a setting: each run plans its batches from its images and "
    "the model's inference units",
}
RUN_ID_NAME_CHARS = 31  # + "-" + 8 hex digits = 40, the run id's limit


def run_id_for(execution_name: str, execution_arn: str) -> str:
    """The run id: the execution name cleaned to [a-z0-9-] (readable in S3 and job names), plus a
    short hash of the execution ARN, so that two executions never share a run id even when their
    names clean to the same text (`Run_1` and `run.1`) or differ only past the cut."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", execution_name.lower()).strip("-")
    cleaned = re.sub(r"-{2,}", "-", cleaned)[:RUN_ID_NAME_CHARS].strip("-") or "run"
    digest = hashlib.sha256(execution_arn.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned}-{digest}"


def _describe_errors(error: ValidationError) -> str:
    """One message per field, named as the input names it (`labels.2`), not by pydantic's types."""
    parts: dict[str, str] = {}
    for item in error.errors():
        # The field, and list positions inside it; a union (a number or "off") adds one entry per
        # branch with the branch's type in its location, which means nothing to the user.
        loc = item["loc"]
        field = ".".join([str(loc[0]), *(str(p) for p in loc[1:] if isinstance(p, int))]) if loc else "input"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = RETIRED_FIELDS.get(field, "is not a known input field")
        elif item["type"] == "missing":
            message = "is required (no default is configured in the stack)"
        parts.setdefault(field, f"{field}: {message}")
    return "; ".join(parts.values())


def stack_defaults(stack: StackSettings) -> dict[str, Any]:
    """The stack's defaults (RUN_DEFAULTS), validated as an input: a bad stack parameter is named.
    An empty parameter (a string template parameter left at "") gives no default."""
    try:
        defaults = RunInput.model_validate({k: v for k, v in stack.run_defaults.items() if v != ""})
    except ValidationError as error:
        raise InvalidInput(f"RUN_DEFAULTS (stack parameters): {_describe_errors(error)}") from None
    return defaults.model_dump(exclude_unset=True)


def validate_input(raw: Any, *, execution_name: str, execution_arn: str, stack: StackSettings) -> RunConfig:
    """Merge the execution input over the stack's defaults and validate it, naming bad fields."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"input: must be a JSON object, got {type(raw).__name__}")
    try:
        given = RunInput.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as error:
        raise InvalidInput(_describe_errors(error)) from None
    merged = {**stack_defaults(stack), **given.model_dump(exclude_unset=True)}
    resolved = RunInput.model_validate(merged).model_dump()
    if resolved["autoAcceptConfidence"] == OFF:
        resolved["autoAcceptConfidence"] = None
    resolved["executionArn"] = execution_arn
    resolved["runId"] = run_id_for(execution_name, execution_arn)
    # What is still unset and may not be None is missing: RunConfig names it as required.
    resolved = {k: v for k, v in resolved.items() if v is not None or k in _NULLABLE}
    try:
        config = RunConfig.model_validate(resolved)
    except ValidationError as error:
        raise InvalidInput(_describe_errors(error)) from None
    _check_within_stack(config, stack)
    return config


def _check_within_stack(config: RunConfig, stack: StackSettings) -> None:
    """The input may only narrow what the stack grants: its buckets, its output prefix, its region.
    IAM would refuse later, after the model started; saying it first is cheaper and clearer."""
    images_bucket = S3Uri.parse(config.images).bucket
    output_bucket = S3Uri.parse(config.output).bucket
    if images_bucket != stack.images_bucket:
        raise InvalidInput(
            f"images: bucket {images_bucket!r} is not the stack's images bucket {stack.images_bucket!r}"
        )
    if output_bucket != stack.output_bucket:
        raise InvalidInput(
            f"output: bucket {output_bucket!r} is not the stack's output bucket {stack.output_bucket!r}"
        )
    # The roles may only write under the stack's output prefix (GroundTruthRole, the map's results).
    default_output = stack.run_defaults.get("output")
    if default_output and not config.output.startswith(str(S3Uri.parse(default_output).as_prefix())):
        raise InvalidInput(f"output: must be under the stack's output prefix {default_output!r}")
    if config.model_region != stack.region:
        raise InvalidInput(
            f"projectVersionArn: the model is in {config.model_region}, the stack in {stack.region}"
        )


def start_run(s3: Any, dynamodb: Any, table: str, config: RunConfig) -> dict[str, Any]:
    """Write the run folder's config.json (its settings, so a user can see what a run did and why)
    and register the run; return the state payload. A run folder that another execution made is
    refused rather than shared (run ids are unique per execution; this guards the invariant)."""
    payload = state_payload(config)
    uri = config.layout().config
    try:
        existing = read_json(s3, uri)
    except s3.exceptions.NoSuchKey:
        existing = None
    if existing and existing.get("executionArn") != config.executionArn:
        raise InvalidInput(f"runId: the run folder {config.layout().root} belongs to another execution")
    write_json(s3, uri, payload)
    run_records.register(
        dynamodb,
        table,
        execution_arn=config.executionArn,
        run_id=config.runId,
        config_uri=str(uri),
        expires_at=int(time.time()) + config.longest_run_seconds,
    )
    return payload
