"""The review backends' one interface: what the run's steps ask of the backend that people review
in (Ground Truth's labeling jobs or a self-hosted Label Studio project). review/backends.py chooses
the implementation from a run's `reviewBackend`; nothing else compares backend names."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:  # only for annotations: the implementations import run_config, which imports this
    from labeling_loop.kernel.layout import RunLayout
    from labeling_loop.kernel.run_config import RunConfig
    from labeling_loop.kernel.s3_uri import S3Uri
    from labeling_loop.kernel.settings import StackSettings
    from labeling_loop.review.labelstudio.client import LabelStudioClient
    from labeling_loop.review.selection import PlanSummary

ReviewBackendName = Literal["groundtruth", "labelstudio"]


@dataclass(frozen=True)
class ReviewServices:
    """What a backend's steps call, given by the function that runs them with what its backend
    needs: the run's bucket always; SageMaker for Ground Truth; for Label Studio the stack's server
    (never one a run names: docs/security.md) and the region its project's storage reads from."""

    s3: Any
    sagemaker: Any = None
    label_studio: LabelStudioClient | None = None
    region: str = ""


@dataclass(frozen=True)
class CollectedReview:
    """What collecting a review wrote. `output` is the step's result, which goes into the execution
    history, so it holds counts only; `failed` names the parts that failed (Ground Truth's failed
    labeling jobs), for the function's log."""

    output: dict[str, Any]
    failed: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StopResult:
    """What stopping a run's review found: the parts stopped, those that could not be (name -> why)
    and the images people may still answer in those, whose claims the run keeps."""

    stopped: list[str] = field(default_factory=list)
    unstoppable: dict[str, str] = field(default_factory=dict)
    images_in_review: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {"labelingJobsStopped": len(self.stopped), "labelingJobsNotStopped": len(self.unstoppable)}


class ReviewBackend(ABC):
    """One review backend: how its review is created, followed, collected and stopped.

    Planning a wave's review is the Plan Review step's (`prepare_review`); the rest is the
    definition's branch for the backend, which the state machine takes on `$.config.reviewBackend`
    (a contract test ties the branches to review/backends.py). Where that branch creates and polls
    the review with the service's own API (Ground Truth's labeling jobs, `has_labeling_jobs`), the
    backend's `create_review` and `review_progress` refuse: no function runs them."""

    name: ClassVar[ReviewBackendName]
    title: ClassVar[str]  # how people call it, in messages and the progress display
    # Ground Truth runs one labeling job per batch, each polled by its own child execution; Label
    # Studio holds one project that the run's own execution polls (its history counts the polls).
    has_labeling_jobs: ClassVar[bool]
    needs_workteam: ClassVar[bool]  # Ground Truth's jobs go to a workteam; Label Studio has its own users
    # Ground Truth bills each reviewed object; a self-hosted Label Studio's hosting is not counted.
    billed_per_object: ClassVar[bool]
    # People review on a server the stack's owner runs (Label Studio), not in an AWS service: a
    # local cloud starts one for runs of this backend.
    self_hosted: ClassVar[bool]

    @abstractmethod
    def check_stack(self, config: RunConfig, stack: StackSettings) -> str | None:
        """Why the stack cannot run this backend's review for the run, or None."""

    @abstractmethod
    def prepare_review(
        self,
        s3: Any,
        config: RunConfig,
        plan: PlanSummary,
        *,
        region: str,
        verification_lambdas: tuple[str, str],
    ) -> dict[str, Any]:
        """The backend's part of planning a wave with images to review (the plan is updated in
        place); returns what to add to review/plan.json."""

    @abstractmethod
    def where_to_review(self, read: Callable[[S3Uri], Any], layout: RunLayout) -> list[str]:
        """The lines of the 'review waiting' message that tell reviewers where to go; `read`
        returns a stored JSON document, or None when there is none yet."""

    @abstractmethod
    def preflight(self, services: ReviewServices) -> dict[str, Any]:
        """Before the model starts (and bills): prove the backend answers, so a bad setting fails in
        seconds. Returns the step's result, with nothing of the backend's answer in it."""

    @abstractmethod
    def create_review(self, services: ReviewServices, config: RunConfig, plan: PlanSummary) -> dict[str, Any]:
        """Create the wave's review from its planned tasks (idempotent: a retried step finds it);
        returns what the definition polls it by."""

    @abstractmethod
    def review_progress(
        self, services: ReviewServices, config: RunConfig, layout: RunLayout, *, now: datetime
    ) -> dict[str, Any]:
        """How far the wave's review is; `done` (what the definition's poll loop leaves on) once
        every task is answered or the run's reviewDeadlineHours have passed."""

    @abstractmethod
    def collect_review(self, services: ReviewServices, layout: RunLayout) -> CollectedReview:
        """Write the wave's `review/reviewed.jsonl` and skip records: every image of the review in
        exactly one of them."""

    @abstractmethod
    def stop_review(self, services: ReviewServices, layout: RunLayout) -> StopResult:
        """For a run that ends without collecting (cleanup, idempotent): stop whatever still hands
        its images to people, in both waves."""
