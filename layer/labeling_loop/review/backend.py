"""The review backends' one interface: what the run's steps ask of the backend that people review
in (Ground Truth's labeling jobs or a self-hosted Label Studio project). review/backends.py chooses
the implementation from a run's `reviewBackend`; nothing else compares backend names."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:  # only for annotations: the implementations import run_config, which imports this
    from labeling_loop.kernel.layout import RunLayout
    from labeling_loop.kernel.run_config import RunConfig
    from labeling_loop.kernel.s3_uri import S3Uri
    from labeling_loop.kernel.settings import StackSettings
    from labeling_loop.review.selection import PlanSummary

ReviewBackendName = Literal["groundtruth", "labelstudio"]


class ReviewBackend(ABC):
    """One review backend. Creating the review is split between the Plan Review step
    (`prepare_review`) and the definition's branch for the backend, which the state machine takes
    on `$.config.reviewBackend` (a contract test ties the branches to review/backends.py)."""

    name: ClassVar[ReviewBackendName]
    title: ClassVar[str]  # how people call it, in messages and the progress display
    # Ground Truth runs one labeling job per batch, each polled by its own child execution; Label
    # Studio holds one project that the run's own execution polls (its history counts the polls).
    has_labeling_jobs: ClassVar[bool]
    needs_workteam: ClassVar[bool]  # Ground Truth's jobs go to a workteam; Label Studio has its own users
    # Ground Truth bills each reviewed object; a self-hosted Label Studio's hosting is not counted.
    billed_per_object: ClassVar[bool]

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
