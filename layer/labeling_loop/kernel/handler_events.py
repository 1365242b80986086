"""What each function's handler receives, one model per handler, parsed once by `parse`.

The state machine's Tasks (statemachine/labeling_loop.asl.json) and the stack's EventBridge rule and
schedule (template.yaml) send these events; tests/contract/test_task_payloads.py checks every Task's
Payload against its handler's model. A handler with several steps has one model per `action`, a
union told apart by that key, so each step's model says what it needs. Keys keep the payload's
camelCase (`imagesToInfer`); attributes are snake_case. The run's state blobs stay what they are:
`config` is the RunConfig the first state validated (read as `from_state` reads it), `plan` the
review plan's payload (`PlanSummary.from_state` reads it where a step needs more than its wave).
A malformed event raises InvalidEvent naming the handler and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from labeling_loop.kernel.errors import InvalidEvent
from labeling_loop.kernel.run_config import RunConfig, config_fields

E = TypeVar("E")


def _run_config_fields(payload: object) -> object:
    """The state's `config` as `from_state` reads it: the keys the first state derived are dropped."""
    return config_fields(payload) if isinstance(payload, Mapping) else payload


StateConfig = Annotated[RunConfig, BeforeValidator(_run_config_fields)]


class Event(BaseModel):
    """A key the sender does not send is a mistake in the sender (the definition is the only one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel)


class RunEvent(Event):
    config: StateConfig


class ReviewWaveEvent(RunEvent):
    plan: dict[str, Any]

    @property
    def wave(self) -> int:
        """The review wave: 1, or 2 when the audit gate sent the auto-accepted images to people."""
        return int(self.plan.get("wave", 1))


class Listing(BaseModel):
    """List Images' result (`$.listing`), carried on whole: the counts later states read."""

    model_config = ConfigDict(extra="allow", frozen=True, alias_generator=to_camel)

    images_listed: int
    images_to_infer: int
    batches: int | None = None  # the fan-out's batch count, added by the definition after List Images


# validate_input: the execution input (anything: the function says what is wrong with it).
class ValidateInputEvent(Event):
    input: Any = None
    execution_name: str
    execution_arn: str


class ListImagesEvent(RunEvent):
    pass


# model_control
class AcquireModel(RunEvent):
    action: Literal["acquire"]
    images_to_infer: int


class CheckModel(RunEvent):
    action: Literal["check"]
    model: dict[str, Any]  # the previous poll's state (`$.model`)
    images_to_infer: int


class ReleaseModel(RunEvent):
    action: Literal["release"]
    model: dict[str, Any] | None = None  # absent when the run never held it


class DetectLabelsEvent(RunEvent):
    batch: dict[str, Any]  # BatchItem.of reads it
    progress: dict[str, Any] | None = None  # Progress.of: none before the batch's first turn


# plan_review
class PlanReview(RunEvent):
    action: Literal["plan"]
    listing: Listing


class CheckAudit(ReviewWaveEvent):
    action: Literal["check-audit"]


class PlanSecondWave(ReviewWaveEvent):
    action: Literal["second-wave"]


class CollectLabelingJobsEvent(ReviewWaveEvent):
    pass


# labelstudio_review
class PreflightLabelStudio(RunEvent):
    action: Literal["preflight"]

    @property
    def wave(self) -> int:
        """Before any plan: the first wave."""
        return 1


class CreateLabelStudioReview(ReviewWaveEvent):
    action: Literal["create"]


class CheckLabelStudioReview(ReviewWaveEvent):
    action: Literal["check"]


class CollectLabelStudioReview(ReviewWaveEvent):
    action: Literal["collect"]


# notify: told apart by `event`
class NotifyReview(ReviewWaveEvent):
    event: Literal["review"]


class NotifyEnded(RunEvent):
    event: Literal["ended"]
    result: dict[str, Any]  # Build Manifest's result
    next_step: dict[str, Any] | None = Field(default=None, alias="next")  # the training outcome


class NotifyFailed(RunEvent):
    event: Literal["failed"]
    cleanup: dict[str, Any] | None = None  # Clean Up After Failure's result


class BuildManifestEvent(RunEvent):
    listing: Listing
    plan: dict[str, Any]
    model_usage: dict[str, Any] | None = None  # Release Model's result (`$.modelRelease`)


# train_model
class StartTraining(RunEvent):
    action: Literal["start"]
    result: dict[str, Any] | None = None  # Build Manifest's result: how many images the manifest holds

    @property
    def images_in_manifest(self) -> int:
        return int((self.result or {}).get("counts", {}).get("imagesInManifest", 0))


class AdvanceTraining(RunEvent):
    action: Literal["advance"]


class RecordTrainingFailure(RunEvent):
    action: Literal["fail"]
    error: dict[str, Any] | None = None  # the Catch's {Error, Cause}


class RunCleanupEvent(RunEvent):
    error: dict[str, Any] | None = None  # the Catch's {Error, Cause}


# clean_up_ended_run: EventBridge's Execution Status Change, of which the handler reads two keys.
class ExecutionStatus(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, alias_generator=to_camel)

    execution_arn: str
    status: str  # FAILED, TIMED_OUT or ABORTED (the rule's pattern)


class ExecutionEndedEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    detail: ExecutionStatus


class SweepEvent(BaseModel):
    """The schedule's default notification: the sweep reads nothing from it."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class HandlerEvent(Generic[E]):
    """The event of one handler: one model, or a union of models told apart by a tag key."""

    def __init__(
        self, handler: str, *variants: type[BaseModel], tag: str | None = None, default: str | None = None
    ) -> None:
        self.handler, self.variants, self.tag, self.default = handler, variants, tag, default
        shape: Any = variants[0] if tag is None else Annotated[Union[variants], Field(discriminator=tag)]  # noqa: UP007
        self._adapter: TypeAdapter[Any] = TypeAdapter(shape)

    def tags(self) -> dict[str, type[BaseModel]]:
        """Each tag value (an `action`) and its model; empty for a single model."""
        if self.tag is None:
            return {}
        return {tag: variant for variant in self.variants for tag in _literal_values(variant, self.tag)}

    def parse(self, event: object) -> E:
        if self.default is not None and isinstance(event, Mapping) and self.tag not in event:
            event = {**event, str(self.tag): self.default}
        try:
            return cast(E, self._adapter.validate_python(event))
        except ValidationError as error:
            raise InvalidEvent(self._describe(event, error)) from None

    def _describe(self, event: object, error: ValidationError) -> str:
        """Where and what, never the value: the message is the execution's error, which people read."""
        if not isinstance(event, Mapping):
            return f"{self.handler} event: not a JSON object but {type(event).__name__}"
        tags = self.tags()
        sent = event.get(self.tag) if self.tag is not None else None
        if tags and not (isinstance(sent, str) and sent in tags):
            known = ", ".join(repr(tag) for tag in tags)
            told = f"{sent!r} is not" if isinstance(sent, str) else "missing or not a string, not"
            return f"{self.handler} event: {self.tag}: {told} one of {known}"
        problems = []
        for problem in error.errors(include_url=False, include_input=False):
            field = ".".join(str(part) for part in problem["loc"][1 if tags else 0 :])
            problems.append(f"{field}: {problem['msg']}" if field else str(problem["msg"]))
        where = f"{self.handler} event" + (f" ({self.tag} {sent!r})" if tags else "")
        return f"{where}: " + "; ".join(problems)


def _literal_values(model: type[BaseModel], name: str) -> tuple[str, ...]:
    annotation = model.model_fields[name].annotation
    return tuple(str(value) for value in getattr(annotation, "__args__", ()))


def parse(event_model: HandlerEvent[E], event: object) -> E:
    """The handler's event as its model, or InvalidEvent naming the handler and the field."""
    return event_model.parse(event)


VALIDATE_INPUT: HandlerEvent[ValidateInputEvent] = HandlerEvent("validate_input", ValidateInputEvent)
LIST_IMAGES: HandlerEvent[ListImagesEvent] = HandlerEvent("list_images", ListImagesEvent)
MODEL_CONTROL: HandlerEvent[AcquireModel | CheckModel | ReleaseModel] = HandlerEvent(
    "model_control", AcquireModel, CheckModel, ReleaseModel, tag="action"
)
DETECT_LABELS: HandlerEvent[DetectLabelsEvent] = HandlerEvent("detect_labels", DetectLabelsEvent)
# `plan` when no action is sent: the handler's first step, as before actions were added.
PLAN_REVIEW: HandlerEvent[PlanReview | CheckAudit | PlanSecondWave] = HandlerEvent(
    "plan_review", PlanReview, CheckAudit, PlanSecondWave, tag="action", default="plan"
)
COLLECT_LABELING_JOBS: HandlerEvent[CollectLabelingJobsEvent] = HandlerEvent(
    "collect_labeling_jobs", CollectLabelingJobsEvent
)
LABELSTUDIO_REVIEW: HandlerEvent[
    PreflightLabelStudio | CreateLabelStudioReview | CheckLabelStudioReview | CollectLabelStudioReview
] = HandlerEvent(
    "labelstudio_review",
    PreflightLabelStudio,
    CreateLabelStudioReview,
    CheckLabelStudioReview,
    CollectLabelStudioReview,
    tag="action",
)
NOTIFY: HandlerEvent[NotifyReview | NotifyEnded | NotifyFailed] = HandlerEvent(
    "notify", NotifyReview, NotifyEnded, NotifyFailed, tag="event"
)
BUILD_MANIFEST: HandlerEvent[BuildManifestEvent] = HandlerEvent("build_manifest", BuildManifestEvent)
TRAIN_MODEL: HandlerEvent[StartTraining | AdvanceTraining | RecordTrainingFailure] = HandlerEvent(
    "train_model", StartTraining, AdvanceTraining, RecordTrainingFailure, tag="action"
)
RUN_CLEANUP: HandlerEvent[RunCleanupEvent] = HandlerEvent("run_cleanup", RunCleanupEvent)
CLEAN_UP_ENDED_RUN: HandlerEvent[ExecutionEndedEvent] = HandlerEvent(
    "clean_up_ended_run", ExecutionEndedEvent
)
SWEEP_MODELS: HandlerEvent[SweepEvent] = HandlerEvent("sweep_models", SweepEvent)
# Every handler whose event the stack sends (folder under functions/ -> its event), for the contract
# test. The Ground Truth task Lambdas' events are Ground Truth's contract, read by task_lambdas.py.
BY_HANDLER: dict[str, HandlerEvent[Any]] = {
    event.handler: event
    for event in (
        VALIDATE_INPUT,
        LIST_IMAGES,
        MODEL_CONTROL,
        DETECT_LABELS,
        PLAN_REVIEW,
        COLLECT_LABELING_JOBS,
        LABELSTUDIO_REVIEW,
        NOTIFY,
        BUILD_MANIFEST,
        TRAIN_MODEL,
        RUN_CLEANUP,
        CLEAN_UP_ENDED_RUN,
        SWEEP_MODELS,
    )
}
