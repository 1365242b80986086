"""Label Studio as the review backend: one project on the stack's self-hosted server."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from labeling_loop.kernel.errors import ReviewBackendError
from labeling_loop.review.backend import (
    CollectedReview,
    ReviewBackend,
    ReviewBackendName,
    ReviewServices,
    StopResult,
)
from labeling_loop.review.labelstudio import project
from labeling_loop.review.labelstudio.client import LabelStudioClient
from labeling_loop.review.labelstudio.images import add_review_images

if TYPE_CHECKING:
    from labeling_loop.kernel.layout import RunLayout
    from labeling_loop.kernel.run_config import RunConfig
    from labeling_loop.kernel.s3_uri import S3Uri
    from labeling_loop.kernel.settings import LabelStudioReviewSettings, StackSettings
    from labeling_loop.review.selection import PlanSummary

logger = logging.getLogger(__name__)


class LabelStudioBackend(ReviewBackend):
    name: ClassVar[ReviewBackendName] = "labelstudio"
    title: ClassVar[str] = "Label Studio"
    needs_workteam: ClassVar[bool] = False
    has_labeling_jobs: ClassVar[bool] = False
    billed_per_object: ClassVar[bool] = False
    self_hosted: ClassVar[bool] = True

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

    def preflight(self, services: ReviewServices) -> dict[str, Any]:
        """Who am I, with the stack's token: a bad URL or token fails here, in seconds."""
        ls = _client(services)
        with _readable_answers(ls, "preflight"):
            return project.preflight(ls)

    def create_review(self, services: ReviewServices, config: RunConfig, plan: PlanSummary) -> dict[str, Any]:
        """The wave's project, made from its review tasks (review/labelstudio.json)."""
        ls = _client(services)
        layout = config.layout().for_wave(plan.wave)
        settings = project.ProjectSettings.from_config(config, plan, region=services.region)
        with _readable_answers(ls, "create"):
            return project.create_review(services.s3, ls, layout, settings)

    def review_progress(
        self, services: ReviewServices, config: RunConfig, layout: RunLayout, *, now: datetime
    ) -> dict[str, Any]:
        state = project.stored_state(services.s3, layout)
        ls = _client(services)
        with _readable_answers(ls, "check"):
            return project.check_review(ls, state, deadline_hours=config.reviewDeadlineHours, now=now)

    def collect_review(self, services: ReviewServices, layout: RunLayout) -> CollectedReview:
        state = project.stored_state(services.s3, layout)
        ls = _client(services)
        with _readable_answers(ls, "collect"):
            return CollectedReview(project.collect_review(services.s3, ls, layout, state))

    def stop_review(self, services: ReviewServices, layout: RunLayout) -> StopResult:
        """Nothing to stop: the project hands out no work by itself, and people who still answer
        in it change nothing of a run that will never collect; it stays for the record."""
        return StopResult()


def services_for(s3: Any, secretsmanager: Any, settings: LabelStudioReviewSettings) -> ReviewServices:
    """The Label Studio steps' services: the stack's server (its URL and the token its secret
    holds: never a run's), and the region its project's storage reads the images from."""
    try:
        url = settings.label_studio_endpoint()
    except ValueError as error:
        raise ReviewBackendError(f"Label Studio: {error}") from None
    token = project.read_token(secretsmanager, settings.label_studio_token_secret_arn)
    return ReviewServices(s3, label_studio=LabelStudioClient(url, token), region=settings.region)


def _client(services: ReviewServices) -> LabelStudioClient:
    if services.label_studio is None:
        raise ReviewBackendError("Label Studio's steps need the stack's Label Studio, and none was given")
    return services.label_studio


@contextmanager
def _readable_answers(ls: LabelStudioClient, action: str) -> Iterator[None]:
    """Errors raised while reading Label Studio's answers: what it sent goes to the log, never into
    the error's message, which the execution history shows to whoever may read that."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        logger.exception("Label Studio answered with data this function cannot read")
        raise ReviewBackendError(
            f"Label Studio at {ls.url} answered {action!r} with data this function cannot read "
            f"({type(error).__name__}; details in the function's log)"
        ) from None
