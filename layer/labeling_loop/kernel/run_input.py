"""The execution input, merged over the stack's defaults and checked against what the stack grants.

A console execution started with `{}` works: the stack passes its parameters to the first state as
one JSON value (`RUN_DEFAULTS`, built in template.yaml), and the few fields the stack does not set
have their defaults here. Anything wrong fails the first state with `InvalidInput`, naming the
field, before the model is touched or anything is billed.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.jsonl import read_json, write_json
from labeling_loop.kernel.run_config import (
    AuditGateAction,
    AuditMinImages,
    BoxTolerance,
    Confidence,
    ConfidenceByLabel,
    ErrorTarget,
    Fraction,
    HourlyUsd,
    ImagesPerJob,
    ImagesPerRun,
    InferenceUnits,
    JobNamePrefix,
    Labels,
    LabelsPerJob,
    ModelPollSeconds,
    ModelStartTimeoutMinutes,
    ProjectVersionArn,
    RequestedTaskType,
    ReviewBudget,
    ReviewDeadlineHours,
    ReviewPollSeconds,
    RunConfig,
    S3Prefix,
    TaskTimeLimitSeconds,
    TrainingPollSeconds,
    TrainingTimeoutHours,
    WorkersPerObject,
    WorkteamArn,
    state_payload,
)
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.kernel.settings import StackSettings
from labeling_loop.lifecycle import run_records
from labeling_loop.review.backend import ReviewBackendName

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client

OFF = "off"
NONE = "none"
# RunConfig fields that come from the execution, not from the input.
FROM_THE_EXECUTION = frozenset({"executionArn", "runId"})
# Input fields that may only repeat a stack parameter: where the stack's secret is sent, and which
# secret. They are not run settings; the Label Studio function reads both from its own environment.
FROM_THE_STACK_ONLY = {
    "labelStudioUrl": "LabelStudioUrl",
    "labelStudioTokenSecretArn": "LabelStudioTokenSecretArn",
}
# The execution input, and the settings the first state hands on, as UTF-8 JSON. A state's payload
# may not exceed 256 KiB (docs/aws-facts.md §4.2) and States.DataLimitExceeded cannot be caught
# (§4.10): the settings travel in every state, next to the review plan (which repeats the labels).
# The largest valid label set (50 labels of 256 four-byte characters) takes 51 KB.
MAX_INPUT_BYTES = 64 * 1024
MAX_SETTINGS_BYTES = 64 * 1024
# RunConfig fields that may be None (a feature off, or a backend setting that does not apply).
_NULLABLE = frozenset(
    name for name, field in RunConfig.model_fields.items() if type(None) in get_args(field.annotation)
)


class RunInput(BaseModel):
    """The execution input as a person, a schedule or a script writes it: every field optional.
    A field left out (or null) takes the stack's default; the last five have no stack parameter
    and default here. Field types and bounds are RunConfig's. Who the run is (its execution and run
    id) is not an input: it comes from the execution. Strict, as RunConfig: a value of the wrong
    JSON type is refused, naming the field, never converted."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    projectVersionArn: ProjectVersionArn | None = Field(
        None,
        description=(
            "the Custom Labels model version that labels the images (of a project the stack allows)"
        ),
    )
    images: S3Prefix | None = Field(
        None, description="s3://bucket/prefix/ of the images to label, in the stack's images bucket"
    )
    output: S3Prefix | None = Field(
        None,
        description=(
            "s3://bucket/prefix/ under which the run writes its folder, under the stack's output prefix"
        ),
    )
    reviewBackend: ReviewBackendName | None = Field(
        None,
        description=(
            "who reviews: groundtruth (a Ground Truth private workteam) or labelstudio (the "
            "stack's Label Studio)"
        ),
    )
    minInferenceUnits: InferenceUnits | None = Field(
        None, description="inference units to start the model with (at most the stack's InferenceUnitsLimit)"
    )
    minConfidence: Confidence | None = Field(
        None, description="predictions below this confidence are not shown to reviewers"
    )
    autoAcceptConfidence: Confidence | Literal["off"] | None = Field(
        None,
        description=(
            "images whose every shown prediction is at or above this skip review (but for the "
            "audit sample); off: every image is reviewed"
        ),
    )
    maxImagesPerJob: ImagesPerJob | None = Field(None, description="images per Ground Truth labeling job")
    maxLabelsPerJob: LabelsPerJob | None = Field(None, description="most labels a review may offer")
    taskTimeLimitSeconds: TaskTimeLimitSeconds | None = Field(
        None, description="time a reviewer has per image, in seconds"
    )
    workersPerObject: WorkersPerObject | None = Field(None, description="reviewers per image (Ground Truth)")
    reviewDeadlineHours: ReviewDeadlineHours | None = Field(
        None,
        description=(
            "how long the review stays open, in hours; Label Studio: what is done by then is "
            "collected, the rest reported"
        ),
    )
    workteamArn: WorkteamArn | None = Field(
        None, description="the Ground Truth workteam (required for groundtruth), of a type the stack allows"
    )
    # Accepted only as a repeat of the stack's value (FROM_THE_STACK_ONLY), never used from here.
    labelStudioUrl: str | None = Field(
        None, description="a stack setting (LabelStudioUrl): an input may only repeat it"
    )
    labelStudioTokenSecretArn: str | None = Field(
        None, description="a stack setting (LabelStudioTokenSecretArn): an input may only repeat it"
    )
    modelPollSeconds: ModelPollSeconds | None = Field(
        None, description="seconds between checks of the model's status while it starts"
    )
    reviewPollSeconds: ReviewPollSeconds | None = Field(
        None,
        description=(
            "seconds between checks of the review; the first state refuses polls that would "
            "cross an execution's 25,000-event history"
        ),
    )
    modelStartTimeoutMinutes: ModelStartTimeoutMinutes | None = Field(
        None, description="give up (and stop the model) if it is not RUNNING after this many minutes"
    )
    auditFraction: Fraction | None = Field(
        None, description="share of the images that would be auto-accepted that people review anyway"
    )
    auditMinImages: AuditMinImages | None = Field(
        None, description="audit at least this many images (all of them when fewer)"
    )
    auditErrorTarget: ErrorTarget | None = Field(
        None,
        description=(
            "the most auto-accepted images that may be wrong: what recommended thresholds promise, and "
            "the gate's limit on the audit's 95 % upper bound before auto-accepted images ship"
        ),
    )
    auditGateAction: AuditGateAction | None = Field(
        None,
        description=(
            "when the audit cannot vouch for the auto-accepted images: review (people check them in a "
            "second wave of this run) or defer (they wait for the next run)"
        ),
    )
    reviewBudget: ReviewBudget | Literal["none"] | None = Field(
        None,
        description=(
            "the most images people review in this run, the audit sample included: the images most "
            "likely to need a correction first, the rest deferred to the next run; none: no limit"
        ),
    )
    boxTolerance: BoxTolerance | None = Field(
        None,
        description=(
            "IoU with the box people drew above which a predicted box needed no correction; below it "
            "the image counts as wrong"
        ),
    )
    reviewerHourlyUsd: HourlyUsd | None = Field(
        None,
        description="what an hour of a reviewer costs (USD), to price people's time (0: not priced)",
    )
    train: bool | None = Field(
        None, description="add the manifest to the training dataset and train the next model version"
    )
    promoteIfBetter: bool | None = Field(
        None,
        description=(
            "compare the new version's F1 with the current one and record which the next run should use"
        ),
    )
    trainingPollSeconds: TrainingPollSeconds | None = Field(
        None, description="seconds between checks of the dataset update and the training"
    )
    trainingTimeoutHours: TrainingTimeoutHours | None = Field(
        None,
        description="stop waiting for the training after this many hours (it goes on; the report says so)",
    )
    # No stack parameter for these:
    taskType: RequestedTaskType = Field(
        "auto", description="detection, classification, or auto (detection when the model returns boxes)"
    )
    incremental: bool = Field(
        False,
        description=(
            "skip images already labeled, and claim images so overlapping runs never review one twice"
        ),
    )
    jobNamePrefix: JobNamePrefix = Field(
        "lab",
        description="prefix of Ground Truth job names (lab-<runId>-det-000) and of trained version names",
    )
    labels: Labels = Field(
        default_factory=list, description="labels reviewers may use besides the model's project's"
    )
    maxImagesPerRun: ImagesPerRun | None = Field(
        None,
        description=(
            "the most images one run takes; the rest are deferred to the next run "
            "(default and most: what one manifest of the model's region holds)"
        ),
    )
    autoAcceptConfidenceByLabel: ConfidenceByLabel = Field(
        default_factory=dict,
        description=(
            'per-label auto-accept thresholds, e.g. {"cat": 72.5} (what report.json '
            "recommends); a label not named uses autoAcceptConfidence"
        ),
    )

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
    "autoAcceptPrecision": "is no longer a setting: recommended thresholds bound the share of wrong "
    "images (missed objects included), at auditErrorTarget",
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


def describe_errors(error: ValidationError) -> str:
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
        # A rule across fields (model-level, no location) names the field it is about first.
        named = not loc and re.match(r"[a-z][A-Za-z]*:", message)
        parts.setdefault(field if loc else message, message if named else f"{field}: {message}")
    return "; ".join(parts.values())


def stack_defaults(stack: StackSettings) -> dict[str, Any]:
    """The stack's defaults (RUN_DEFAULTS), validated as an input: a bad stack parameter is named.
    An empty parameter (a string template parameter left at "") gives no default."""
    given = {k: v for k, v in stack.run_defaults.items() if v != ""}
    # A String template parameter (a number or "off", AllowedPattern) arrives as text.
    threshold = given.get("autoAcceptConfidence")
    if isinstance(threshold, str) and threshold != OFF:
        try:
            given["autoAcceptConfidence"] = float(threshold)
        except ValueError:
            pass  # refused below, naming the parameter's field
    budget = given.get("reviewBudget")
    if isinstance(budget, str) and budget != NONE and budget.isdigit():
        given["reviewBudget"] = int(budget)
    try:
        defaults = RunInput.model_validate(given)
    except ValidationError as error:
        raise InvalidInput(f"RUN_DEFAULTS (stack parameters): {describe_errors(error)}") from None
    return defaults.model_dump(exclude_unset=True)


def validate_input(raw: Any, *, execution_name: str, execution_arn: str, stack: StackSettings) -> RunConfig:
    """Merge the execution input over the stack's defaults and validate it, naming bad fields."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"input: must be a JSON object, got {type(raw).__name__}")
    _check_size(raw, MAX_INPUT_BYTES, "the execution input")
    try:
        given = RunInput.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as error:
        raise InvalidInput(describe_errors(error)) from None
    _check_stack_only_fields(given, stack)
    merged = {**stack_defaults(stack), **given.model_dump(exclude_unset=True)}
    resolved = RunInput.model_validate(merged).model_dump(exclude=set(FROM_THE_STACK_ONLY))
    if resolved["autoAcceptConfidence"] == OFF:
        resolved["autoAcceptConfidence"] = None
    if resolved["reviewBudget"] == NONE:
        resolved["reviewBudget"] = None
    resolved["executionArn"] = execution_arn
    resolved["runId"] = run_id_for(execution_name, execution_arn)
    # What is still unset and may not be None is missing: RunConfig names it as required.
    resolved = {k: v for k, v in resolved.items() if v is not None or k in _NULLABLE}
    try:
        config = RunConfig.model_validate(resolved)
    except ValidationError as error:
        raise InvalidInput(describe_errors(error)) from None
    _check_within_stack(config, stack)
    return config


def _check_size(document: dict[str, Any], limit: int, what: str) -> None:
    """InvalidInput naming the largest field when `document`, as UTF-8 JSON, is over `limit` bytes."""
    size = _json_bytes(document)
    if size <= limit:
        return
    field = max(document, key=lambda name: _json_bytes(document[name]))
    raise InvalidInput(
        f"{field}: {what} takes {size:,} bytes, more than the {limit:,} a run accepts ({field} alone "
        f"takes {_json_bytes(document[field]):,}); every state carries the run's settings, and a state "
        "over Step Functions' 256 KiB payload limit fails the run where no cleanup can catch it"
    )


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _check_stack_only_fields(given: RunInput, stack: StackSettings) -> None:
    """Where the stack's token goes is the stack's decision: an input may repeat it, nothing more.
    The value given is not repeated in the message (a URL may hold a password)."""

    def same(value: str) -> str:  # a URL's trailing slash means nothing
        return value.strip().rstrip("/") if value.startswith("http") else value.strip()

    stack_values = {
        "labelStudioUrl": stack.label_studio_url,
        "labelStudioTokenSecretArn": stack.label_studio_token_secret_arn,
    }
    for field, parameter in FROM_THE_STACK_ONLY.items():
        value = getattr(given, field)
        if value is None:
            continue
        if not stack_values[field]:
            raise InvalidInput(
                f"{field}: this stack has no {parameter}; it is a stack parameter, not an execution input"
            )
        if same(value) != same(stack_values[field]):
            raise InvalidInput(
                f"{field}: not the stack's {parameter}; runs use only the stack's, and an input may "
                "repeat it but not name another"
            )


def _check_within_stack(config: RunConfig, stack: StackSettings) -> None:
    """The input may only narrow what the stack grants: its buckets, its output prefix, its region,
    the projects whose models runs may start, the inference units, the workforce types, its Label
    Studio. IAM would refuse some of these later, after the model started; saying it first is
    cheaper and clearer, and the rest (units, labels) IAM cannot express."""
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
    if not any(fnmatchcase(config.projectVersionArn, allowed) for allowed in stack.allowed_project_arns):
        allowed = (
            ", ".join(stack.allowed_project_arns) or "none (set AllowedProjectArns or ProjectVersionArn)"
        )
        raise InvalidInput(
            f"projectVersionArn: project {config.project_name!r} is not one whose models this stack "
            f"lets runs start; AllowedProjectArns: {allowed}"
        )
    if config.minInferenceUnits > stack.inference_units_limit:
        raise InvalidInput(
            f"minInferenceUnits: {config.minInferenceUnits} inference units, more than the "
            f"{stack.inference_units_limit} this stack lets a run start a model with (InferenceUnitsLimit)"
        )
    problem = config.backend.check_stack(config, stack)
    if problem:
        raise InvalidInput(problem)
    if len(config.labels) > config.maxLabelsPerJob:
        raise InvalidInput(
            f"labels: {len(config.labels)} labels, more than maxLabelsPerJob ({config.maxLabelsPerJob}) "
            "a review may offer; name fewer labels or raise maxLabelsPerJob (at most 50)"
        )


def start_run(s3: S3Client, dynamodb: DynamoDBClient, table: str, config: RunConfig) -> dict[str, Any]:
    """Write the run folder's config.json (its settings, so a user can see what a run did and why)
    and register the run; return the state payload. A run folder that another execution made is
    refused rather than shared (run ids are unique per execution; this guards the invariant)."""
    payload = state_payload(config)
    _check_size(payload, MAX_SETTINGS_BYTES, "the run's settings")
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
