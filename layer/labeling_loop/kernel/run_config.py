"""A run's settings: the field types with their bounds (defined once, here), the resolved run
configuration every state carries, and its payload form.

Two models share these types. `RunInput` (`run_input.py`) is what a person, a schedule or a script
writes: every field optional. `RunConfig` is what the first state resolves it to, the input over the
stack's defaults: every field present. Template parameters repeat the numeric bounds as
`MinValue`/`MaxValue`; `tests/contract/test_settings.py` fails when the two disagree.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.backend import ReviewBackend, ReviewBackendName

# arn:aws:rekognition:<region>:<account>:project/<project>/version/<version>/<timestamp>
# Project and version names: [a-zA-Z0-9_.\-]{1,255} (docs/aws-facts.md §5.1).
PROJECT_VERSION_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):rekognition:(?P<region>[a-z]{2}(-[a-z]+)+-[0-9]):(?P<account>[0-9]{12}):"
    r"project/(?P<project>[a-zA-Z0-9_.\-]{1,255})/version/(?P<version>[a-zA-Z0-9_.\-]{1,255})/(?P<ts>[0-9]+)$"
)
# A project whose models runs may start, as the roles grant it: the project's ARN with its creation
# timestamp replaced by `*`, which covers its model versions and datasets (docs/aws-facts.md §5.1).
ALLOWED_PROJECT_ARN = re.compile(
    r"^arn:aws[a-z-]*:rekognition:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:project/[a-zA-Z0-9_.\-]{1,255}/\*$"
)
# arn:aws:sagemaker:<region>:<account>:workteam/private-crowd/<team>; the type is what IAM's
# sagemaker:WorkteamType compares (docs/aws-facts.md §5.2).
WORKTEAM_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:workteam/(?P<type>[a-z-]+-crowd)/[a-zA-Z0-9_.-]+$"
)
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[a-zA-Z0-9_/+=.@-]+$")
# Ground Truth job names allow 63 chars; the run id goes inside them with a prefix and a suffix.
RUN_ID = re.compile(r"^[a-z0-9](-?[a-z0-9]){0,39}$")
# arn:aws:states:<region>:<account>:execution:<state machine>:<execution name> (docs/aws-facts.md §4.2)
EXECUTION_ARN = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:execution:[^:]+:[^:]+$")
JOB_NAME_PREFIX = re.compile(r"^[a-z0-9](-?[a-z0-9]){0,9}$")
# The execution history: a Standard execution fails at 25,000 events (docs/aws-facts.md §4.2), and
# no Catch runs then. Each turn of a poll loop adds the events of its states: a Task 5 (entered,
# scheduled, started, succeeded, exited), a Wait or a Choice 2. tests/contract/test_history_budget.py
# counts them in the definition and fails when these numbers no longer match it.
HISTORY_LIMIT = 25_000
EVENTS_PER_MODEL_POLL = 9  # Model Running? -> Wait For Model -> Check Model
EVENTS_PER_REVIEW_POLL = 9  # Wait For Label Studio Reviewers -> Check Label Studio Review -> Done?
EVENTS_PER_JOB_POLL = 11  # a labeling job's child execution: Wait -> Describe -> Ended? -> Deadline?
EVENTS_PER_TRAINING_POLL = 9  # Wait For Training -> Advance Training -> Training Done?
# Everything else one execution records, retries included (the straight path is ~110 events, the
# second review wave's states counted twice; every retry at its maximum: ~1,400).
OTHER_EVENTS = 1_600
# A labeling job past the review deadline is stopped; give it this long to end (Stopping -> Stopped).
JOB_STOP_GRACE_HOURS = 2
# DetectCustomLabels is called with this MinConfidence (or minConfidence when lower), so that
# predictions people never see are kept too: minConfidence and autoAcceptConfidence are applied
# when the review is planned, and the report can choose thresholds from what people decided.
PREDICTION_FLOOR = 10.0
MAX_LABEL_CHARS = 256  # label names: 1-256 characters (docs/aws-facts.md §2.3)
MAX_LABELS_PER_JOB = 50  # the most labels a review offers (LabelsPerJob below, docs/aws-facts.md §3.1)
# One manifest holds at most 250,000 lines (docs/aws-facts.md §2.3), and one dataset at most 250,000
# images, 28,000 in Asia Pacific (Mumbai) and Europe (London): a run's manifest is one dataset's
# worth (`train: true` adds it to the training dataset), so a run takes at most this many images
# of its model's region and defers the rest to the next run.
MAX_MANIFEST_LINES = 250_000
DATASET_IMAGES_BY_REGION = {"ap-south-1": 28_000, "eu-west-2": 28_000}


def images_per_run_limit(region: str) -> int:
    """The most images one run of a model in `region` takes (docs/aws-facts.md §2.3)."""
    return DATASET_IMAGES_BY_REGION.get(region, MAX_MANIFEST_LINES)


# Field types --------------------------------------------------------------------------------------


def _not_a_boolean(value: Any) -> Any:
    # JSON true/false would pass as 1/0 in pydantic's lax mode; a boolean is never a count here.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def _pattern(regex: re.Pattern[str], message: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _s3_prefix(value: str) -> str:
    return str(S3Uri.parse(value).as_prefix())


def label_problem(label: str) -> str | None:
    """Why `label` (stripped) cannot be a label of a review, or None."""
    if not 1 <= len(label.strip()) <= MAX_LABEL_CHARS:
        return f"every label must be a name of 1 to {MAX_LABEL_CHARS} characters"
    # Control, format and separator characters other than a space: invisible in the review UIs,
    # and a line break changes the label config Label Studio parses.
    bad = next((c for c in label.strip() if c != " " and unicodedata.category(c)[0] in "CZ"), None)
    if bad is not None:
        return f"label {label.strip()[:40]!r} has the character U+{ord(bad):04X}; use visible characters"
    return None


def _labels(value: list[str]) -> list[str]:
    for label in value:
        problem = label_problem(label) if isinstance(label, str) else "every label must be a name"
        if problem:
            raise ValueError(problem)
    return sorted({label.strip() for label in value})


def _label_keys(value: dict[str, float]) -> dict[str, float]:
    """Keys of a per-label map: label names exactly as the review offers them (checked against the
    run's label set once it is known, review/label_set.py)."""
    for key in value:
        problem = label_problem(key) or (
            None if key == key.strip() else f"label {key!r} has spaces around it"
        )
        if problem:
            raise ValueError(problem)
    return value


_NUMBER = BeforeValidator(_not_a_boolean)

ProjectVersionArn = Annotated[
    str,
    _pattern(
        PROJECT_VERSION_ARN,
        "must be a Custom Labels model version ARN: "
        "arn:aws:rekognition:<region>:<account>:project/<project>/version/<version>/<timestamp>",
    ),
]
S3Prefix = Annotated[str, AfterValidator(_s3_prefix)]
RequestedTaskType = Literal["auto", "detection", "classification"]
TaskType = Literal["detection", "classification"]
# AWS documents only the floor (StartProjectVersion's MinInferenceUnits is an int >= 1: docs/aws-facts.md,
# https://docs.aws.amazon.com/rekognition/latest/APIReference/API_StartProjectVersion.html); the 100 is
# this stack's own ceiling against a typo that would bill a hundred-plus units an hour, not an AWS quota.
# template.yaml's MinInferenceUnits and InferenceUnitsLimit repeat both (tests/contract/test_settings.py).
MIN_INFERENCE_UNITS = 1
MAX_INFERENCE_UNITS = 100
InferenceUnits = Annotated[int, _NUMBER, Field(ge=MIN_INFERENCE_UNITS, le=MAX_INFERENCE_UNITS)]
Confidence = Annotated[float, _NUMBER, Field(ge=0, le=100)]
# At most one manifest's worth (MAX_MANIFEST_LINES; lower in some regions, checked in RunConfig).
ImagesPerRun = Annotated[int, _NUMBER, Field(ge=1, le=MAX_MANIFEST_LINES)]
# Ground Truth: at most 100,000 objects per labeling job (docs/aws-facts.md §3.7).
ImagesPerJob = Annotated[int, _NUMBER, Field(ge=1, le=100_000)]
# Bounding-box jobs: 50 labels through the API (docs/aws-facts.md §3.1; the crowd-bounding-box
# element's page says 10, see §8).
LabelsPerJob = Annotated[int, _NUMBER, Field(ge=2, le=50)]
# TaskTimeLimitInSeconds: 30 s to 8 h for image tasks (docs/aws-facts.md §3.2).
TaskTimeLimitSeconds = Annotated[int, _NUMBER, Field(ge=30, le=28_800)]
# NumberOfHumanWorkersPerDataObject: 1-9 (docs/aws-facts.md §3.2).
WorkersPerObject = Annotated[int, _NUMBER, Field(ge=1, le=9)]
# Private workforce task availability: at most 30 days (docs/aws-facts.md §3.2); also the Label
# Studio deadline. Fractions allowed (0.5 = 30 minutes), for short reviews and compressed-time runs.
ReviewDeadlineHours = Annotated[float, _NUMBER, Field(ge=0.001, le=720)]
WorkteamArn = Annotated[
    str,
    _pattern(
        WORKTEAM_ARN, "must be a SageMaker workteam ARN (arn:aws:sagemaker:<region>:<account>:workteam/...)"
    ),
]
SecretArn = Annotated[str, _pattern(SECRET_ARN, "must be a Secrets Manager secret ARN")]
ModelPollSeconds = Annotated[int, _NUMBER, Field(ge=1, le=3600)]
ReviewPollSeconds = Annotated[int, _NUMBER, Field(ge=60, le=86_400)]
ModelStartTimeoutMinutes = Annotated[int, _NUMBER, Field(ge=1, le=720)]
JobNamePrefix = Annotated[
    str, _pattern(JOB_NAME_PREFIX, "must be 1-10 lower-case letters, digits and single hyphens")
]
Labels = Annotated[list[str], Field(max_length=MAX_LABELS_PER_JOB), AfterValidator(_labels)]
RunId = Annotated[str, _pattern(RUN_ID, "must be 1-40 lower-case letters, digits and single hyphens")]
ExecutionArn = Annotated[str, _pattern(EXECUTION_ARN, "must be a Step Functions execution ARN")]
Fraction = Annotated[float, _NUMBER, Field(ge=0, le=1)]
AuditMinImages = Annotated[int, _NUMBER, Field(ge=0, le=10_000)]
# The most images a run sends to people (review/budget.py): at most what a run takes.
ReviewBudget = Annotated[int, _NUMBER, Field(ge=1, le=MAX_MANIFEST_LINES)]
# The most auto-accepted images that may be wrong. Above one in two, auto-accept would be wrong more
# often than right; below 0.1 %, no audit of a realistic size could ever vouch for it.
ErrorTarget = Annotated[float, _NUMBER, Field(ge=0.001, le=0.5)]
# IoU above which a predicted box needs no correction (evaluation/verdict.py): at least PASCAL VOC's
# "same object" 0.5, at most 0.95 (COCO's strictest step; people rarely agree more closely).
BoxTolerance = Annotated[float, _NUMBER, Field(ge=0.5, le=0.95)]
AuditGateAction = Literal["review", "defer"]
HourlyUsd = Annotated[float, _NUMBER, Field(ge=0, le=1000)]
# At most one threshold per label a review may offer.
ConfidenceByLabel = Annotated[
    dict[str, Confidence], Field(max_length=MAX_LABELS_PER_JOB), AfterValidator(_label_keys)
]
TrainingPollSeconds = Annotated[int, _NUMBER, Field(ge=60, le=86_400)]
# Training takes 30 minutes to 24 hours (docs/aws-facts.md §1.6); the run waits at most this long
# and reports the new version still training after it.
TrainingTimeoutHours = Annotated[float, _NUMBER, Field(ge=0.001, le=72)]


# The resolved configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class AutoAccept:
    """Auto-accept thresholds: per label, else the default; None = that label is always reviewed."""

    default: float | None = None
    by_label: Mapping[str, float] = field(default_factory=dict)

    def threshold(self, label: str) -> float | None:
        """The confidence at or above which a prediction of `label` needs no review (None: never)."""
        return self.by_label.get(label, self.default)

    @property
    def on(self) -> bool:
        return self.default is not None or bool(self.by_label)


class RunConfig(BaseModel):
    """One run's settings, resolved: every field is present (None where a feature is off or a
    backend's setting does not apply). Field names are the execution input's keys (camelCase).
    Strict: a value of the wrong JSON type is refused, never converted (" 2 " is not 2, "on" is
    not true, 2.5 is not a count); a whole number is a valid float."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    projectVersionArn: ProjectVersionArn
    images: S3Prefix = Field(description="s3://bucket/prefix/ of the images to label")
    output: S3Prefix = Field(description="s3://bucket/prefix/ under which each run writes its folder")
    reviewBackend: ReviewBackendName
    taskType: RequestedTaskType
    minInferenceUnits: InferenceUnits
    minConfidence: Confidence
    autoAcceptConfidence: Confidence | None  # None: every image is reviewed
    # Per-label thresholds (what report.json recommends); a label not named uses autoAcceptConfidence.
    autoAcceptConfidenceByLabel: ConfidenceByLabel
    # Of the images that would be auto-accepted, this fraction (at least auditMinImages) is reviewed
    # anyway, chosen by a hash of the image: the report's auto-accept error rate comes from them.
    auditFraction: Fraction
    auditMinImages: AuditMinImages
    # The most auto-accepted images that may be wrong: what recommended thresholds promise, and the
    # gate's limit on the audit's 95 % upper bound before auto-accepted images ship.
    auditErrorTarget: ErrorTarget
    auditGateAction: AuditGateAction  # when the audit cannot vouch: a second review wave, or defer
    # The most images people review in a run, the audit included; the rest of the order
    # (review/budget.py) is deferred to the next run. None: every image that needs it is reviewed.
    reviewBudget: ReviewBudget | None
    boxTolerance: BoxTolerance  # IoU below which a predicted box counts as wrong
    reviewerHourlyUsd: HourlyUsd  # prices people's time where the backend reports it (0: not priced)
    train: bool  # add the manifest to the training dataset and train the next version
    promoteIfBetter: bool  # record whether the new version should replace the current one
    trainingPollSeconds: TrainingPollSeconds
    trainingTimeoutHours: TrainingTimeoutHours
    # The most images a run takes; the rest are deferred to the next run (inference/listing.py).
    # Left out: what one manifest (one dataset) of the model's region holds.
    maxImagesPerRun: ImagesPerRun
    maxImagesPerJob: ImagesPerJob
    maxLabelsPerJob: LabelsPerJob
    taskTimeLimitSeconds: TaskTimeLimitSeconds
    workersPerObject: WorkersPerObject
    reviewDeadlineHours: ReviewDeadlineHours
    workteamArn: WorkteamArn | None
    incremental: bool
    modelPollSeconds: ModelPollSeconds
    reviewPollSeconds: ReviewPollSeconds
    modelStartTimeoutMinutes: ModelStartTimeoutMinutes
    jobNamePrefix: JobNamePrefix
    # Labels reviewers may use besides those the model predicted in this run (e.g. the dataset's).
    labels: Labels
    # Who the run is: its execution (which holds leases and claims), and the id of its folder and jobs,
    # derived from the execution (run_input.run_id_for) so that no two executions share one.
    executionArn: ExecutionArn
    runId: RunId

    @model_validator(mode="before")
    @classmethod
    def _images_per_run_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("maxImagesPerRun") is None:
            arn = PROJECT_VERSION_ARN.fullmatch(str(data.get("projectVersionArn") or ""))
            limit = images_per_run_limit(arn["region"]) if arn else MAX_MANIFEST_LINES
            return {**data, "maxImagesPerRun": limit}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.backend.needs_workteam and not self.workteamArn:
            raise ValueError("workteamArn is required when reviewBackend is groundtruth")
        if self.autoAcceptConfidence is not None and self.autoAcceptConfidence < self.minConfidence:
            raise ValueError("autoAcceptConfidence must be at least minConfidence")
        limit = images_per_run_limit(self.model_region)
        if self.maxImagesPerRun > limit:
            raise ValueError(
                f"maxImagesPerRun: {self.maxImagesPerRun:,} images, more than the {limit:,} one Custom "
                f"Labels dataset holds in {self.model_region}"
            )
        for label, threshold in self.autoAcceptConfidenceByLabel.items():
            if threshold < self.minConfidence:
                raise ValueError(f"autoAcceptConfidenceByLabel: {label!r} is below minConfidence")
        if self.reviewBudget is not None and self.auto_accept.on and self.reviewBudget < self.auditMinImages:
            # The audit is always reviewed and counted in the budget; a smaller audit than asked
            # could not vouch for the auto-accepted images (the gate would hold them all).
            raise ValueError(
                f"reviewBudget: {self.reviewBudget:,} images cannot hold the audit of auto-accept "
                f"(at least auditMinImages {self.auditMinImages:,}), which is always reviewed and "
                "counted in the budget; raise reviewBudget, lower auditMinImages, or turn auto-accept off"
            )
        problem = self.history_problem()
        if problem:
            raise ValueError(problem)
        return self

    def history_events(self) -> dict[str, int]:
        """The most history events the run's executions can record (the run itself, and each
        labeling job's child execution), from its poll intervals and deadlines."""
        model_polls = math.ceil(self.modelStartTimeoutMinutes * 60 / self.modelPollSeconds) + 1
        review_seconds = self.reviewDeadlineHours * 3600
        run = OTHER_EVENTS + model_polls * EVENTS_PER_MODEL_POLL
        if not self.backend.has_labeling_jobs:  # the run's own execution polls the review
            run += (
                self.review_waves
                * (math.ceil(review_seconds / self.reviewPollSeconds) + 1)
                * EVENTS_PER_REVIEW_POLL
            )
        if self.train:
            run += self.training_polls() * EVENTS_PER_TRAINING_POLL
        job_seconds = review_seconds + JOB_STOP_GRACE_HOURS * 3600
        job = OTHER_EVENTS + (math.ceil(job_seconds / self.reviewPollSeconds) + 1) * EVENTS_PER_JOB_POLL
        return {"run": run, "labelingJob": job}

    def history_problem(self) -> str | None:
        """Why this run could cross the history limit (and fail without cleaning up), or None."""
        events = self.history_events()
        over = f"over the {HISTORY_LIMIT:,} an execution keeps"
        deadline = f"reviewDeadlineHours {self.reviewDeadlineHours:g}"
        fastest = f"poll at least every {self.fastest_review_poll()} s or shorten the deadline"
        if events["run"] > HISTORY_LIMIT:
            training = self.training_polls() * EVENTS_PER_TRAINING_POLL if self.train else 0
            if training > HISTORY_LIMIT // 4:
                return (
                    f"trainingPollSeconds: polling every {self.trainingPollSeconds} s for "
                    f"trainingTimeoutHours {self.trainingTimeoutHours:g} would add about {training:,} "
                    f"history events, and the run about {events['run']:,}, {over}; "
                    "poll less often or shorten the timeout"
                )
            if not self.backend.has_labeling_jobs and self.reviewPollSeconds < self.fastest_review_poll():
                return (
                    f"reviewPollSeconds: polling every {self.reviewPollSeconds} s for {deadline} would "
                    f"record about {events['run']:,} history events, {over}; {fastest}"
                )
            return (
                f"modelPollSeconds: polling every {self.modelPollSeconds} s for modelStartTimeoutMinutes "
                f"{self.modelStartTimeoutMinutes} would record about {events['run']:,} history events, "
                f"{over}; poll less often or shorten the timeout"
            )
        if self.backend.has_labeling_jobs and events["labelingJob"] > HISTORY_LIMIT:
            return (
                f"reviewPollSeconds: polling a labeling job every {self.reviewPollSeconds} s for {deadline} "
                f"would record about {events['labelingJob']:,} history events, {over}; {fastest}"
            )
        return None

    @property
    def review_waves(self) -> int:
        """Two when the audit gate may send the auto-accepted images to people in a second wave."""
        return 2 if self.auto_accept.on and self.auditGateAction == "review" else 1

    def fastest_review_poll(self) -> int:
        """The shortest reviewPollSeconds that keeps every execution of the run under the limit."""
        model_polls = math.ceil(self.modelStartTimeoutMinutes * 60 / self.modelPollSeconds) + 1
        if not self.backend.has_labeling_jobs:
            room = HISTORY_LIMIT - OTHER_EVENTS - model_polls * EVENTS_PER_MODEL_POLL
            if self.train:
                room -= self.training_polls() * EVENTS_PER_TRAINING_POLL
            polls = room // (EVENTS_PER_REVIEW_POLL * self.review_waves) - 1
            seconds = self.reviewDeadlineHours * 3600
        else:
            room = HISTORY_LIMIT - OTHER_EVENTS
            polls = room // EVENTS_PER_JOB_POLL - 1
            seconds = (self.reviewDeadlineHours + JOB_STOP_GRACE_HOURS) * 3600
        return math.ceil(seconds / max(polls, 1))

    def training_polls(self) -> int:
        return math.ceil(self.trainingTimeoutHours * 3600 / self.trainingPollSeconds) + 1

    # Derived values -------------------------------------------------------------------------------

    @property
    def inference_min_confidence(self) -> float:
        """MinConfidence for DetectCustomLabels: the floor, or minConfidence when it is lower."""
        return min(PREDICTION_FLOOR, self.minConfidence)

    @property
    def auto_accept(self) -> AutoAccept:
        """The run's auto-accept thresholds (autoAcceptConfidence, autoAcceptConfidenceByLabel)."""
        return AutoAccept(self.autoAcceptConfidence, self.autoAcceptConfidenceByLabel)

    def _arn_part(self, name: str) -> str:
        match = PROJECT_VERSION_ARN.fullmatch(self.projectVersionArn)
        assert match, "validated by ProjectVersionArn"
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
    def workteam_type(self) -> str | None:
        """`private-crowd`, `vendor-crowd` or `public-crowd`: what IAM's sagemaker:WorkteamType sees."""
        match = WORKTEAM_ARN.fullmatch(self.workteamArn or "")
        return match["type"] if match else None

    @property
    def longest_run_seconds(self) -> int:
        """How long this run may last: the model's start, the review, and a day for the rest. Image
        claims and the run's record lapse by themselves after it."""
        return int(self.modelStartTimeoutMinutes * 60 + self.reviewDeadlineHours * 3600 + 86_400)

    @property
    def backend(self) -> ReviewBackend:
        """The review backend the run's `reviewBackend` names."""
        # Imported here: the implementations import this module.
        from labeling_loop.review.backends import backend_for

        return backend_for(self.reviewBackend)

    def layout(self) -> RunLayout:
        return RunLayout.for_run(S3Uri.parse(self.output), self.runId)


def numeric_bounds() -> dict[str, tuple[float, float, bool]]:
    """(lowest, highest, integer?) of every numeric field, read from the field types above: what
    the template's MinValue/MaxValue and the tests compare with, so the bounds live only here."""
    bounds: dict[str, tuple[float, float, bool]] = {}
    for name, model_field in RunConfig.model_fields.items():
        kind, metadata = model_field.annotation, list(model_field.metadata)
        if get_origin(kind) in (dict, list):  # a map or list of numbers is not a number
            continue
        for arg in get_args(kind):  # `Confidence | None`: the bounds sit inside the Annotated
            if get_origin(arg) is Annotated:
                kind, *extra = get_args(arg)
                metadata += [m for item in extra for m in getattr(item, "metadata", [item])]
        low = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
        high = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
        if low is not None and high is not None:
            # annotated_types declares ge/le as comparison protocols; here they are numbers.
            bounds[name] = (float(low), float(high), kind is int)  # type: ignore[arg-type]
    return bounds


def state_payload(config: RunConfig) -> dict[str, Any]:
    """What the state machine carries: the settings plus derived values it needs. Never image data."""
    layout = config.layout()
    return {
        **json.loads(config.model_dump_json()),
        "runPrefix": str(layout.root),
        "outputBucket": layout.root.bucket,
        # The labeling jobs' Distributed Map ItemReader takes a bucket and a key, not a URI.
        "reviewJobsKey": layout.review_jobs.key,
    }


def config_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A state payload's RunConfig fields: the keys `state_payload` derived for the definition
    (`runPrefix`, `outputBucket`, `reviewJobsKey`) are dropped."""
    fields = RunConfig.model_fields
    return {k: v for k, v in payload.items() if k in fields}


def from_state(payload: Mapping[str, Any]) -> RunConfig:
    """The RunConfig inside a state payload (derived keys dropped). It was validated by the first
    state; validating again costs microseconds and keeps every function honest."""
    return RunConfig.model_validate(config_fields(payload))
