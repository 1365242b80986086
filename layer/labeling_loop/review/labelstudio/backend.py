"""Label Studio as the review backend: one project on the stack's self-hosted server."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from labeling_loop.review.backend import ReviewBackend, ReviewBackendName
from labeling_loop.review.labelstudio.images import add_review_images

if TYPE_CHECKING:
    from labeling_loop.kernel.layout import RunLayout
    from labeling_loop.kernel.run_config import RunConfig
    from labeling_loop.kernel.s3_uri import S3Uri
    from labeling_loop.kernel.settings import StackSettings
    from labeling_loop.review.selection import PlanSummary


class LabelStudioBackend(ReviewBackend):
    name: ClassVar[ReviewBackendName] = "labelstudio"
    title: ClassVar[str] = "Label Studio"
    needs_workteam: ClassVar[bool] = False
    has_labeling_jobs: ClassVar[bool] = False
    billed_per_object: ClassVar[bool] = False

    def check_stack(self, config: RunConfig, stack: StackSettings) -> str | None:
        try:
            stack.label_studio_endpoint()
        except ValueError as error:
            return f"reviewBackend: labelstudio needs the stack's Label Studio, but {error}"
        return None

    def prepare_review(
        self,
        s3: Any,
        config: RunConfig,
        plan: PlanSummary,
        *,
        region: str,
        verification_lambdas: tuple[str, str],
    ) -> dict[str, Any]:
        """Copy the wave's images Label Studio cannot load into the run's folder (the project itself
        is created by the definition's Create Label Studio Review step, from the wave's tasks). The
        second wave (the audit gate's) needs it as much as the first: its images come from the same
        bucket, and a task without its copy would show reviewers a broken image."""
        copies = add_review_images(s3, config.layout().for_wave(plan.wave))
        return {"imagesCopiedForReview": copies} if copies else {}

    def where_to_review(self, read: Callable[[S3Uri], Any], layout: RunLayout) -> list[str]:
        state = read(layout.labelstudio_state) or {}
        return [f"Label Studio project: {state.get('url', '(not found)')}"]
