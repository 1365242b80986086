"""Ground Truth as the review backend: labeling jobs on a private or vendor workteam."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from labeling_loop.kernel.errors import ReviewBackendError
from labeling_loop.kernel.jsonl import read_json, read_jsonl
from labeling_loop.review.backend import (
    CollectedReview,
    ReviewBackend,
    ReviewBackendName,
    ReviewServices,
    StopResult,
)
from labeling_loop.review.groundtruth.collect import collect
from labeling_loop.review.groundtruth.jobs import JobSettings, plan_jobs
from labeling_loop.review.groundtruth.stop import stop_run_jobs

if TYPE_CHECKING:
    from labeling_loop.kernel.layout import RunLayout
    from labeling_loop.kernel.run_config import RunConfig
    from labeling_loop.kernel.s3_uri import S3Uri
    from labeling_loop.kernel.settings import StackSettings
    from labeling_loop.review.selection import PlanSummary

MAX_NAMES = 20  # job names listed in one message


class GroundTruthBackend(ReviewBackend):
    name: ClassVar[ReviewBackendName] = "groundtruth"
    title: ClassVar[str] = "Ground Truth"
    needs_workteam: ClassVar[bool] = True
    has_labeling_jobs: ClassVar[bool] = True
    billed_per_object: ClassVar[bool] = True
    self_hosted: ClassVar[bool] = False

    def check_stack(self, config: RunConfig, stack: StackSettings) -> str | None:
        if config.workteam_type not in stack.workteam_types:
            return (
                f"workteamArn: a {config.workteam_type} workteam; this stack lets runs use "
                f"{' or '.join(stack.workteam_types)} workteams only (WorkteamTypes)"
            )
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
        """Write the wave's labeling jobs' inputs and job list (the Distributed Map's items)."""
        layout = config.layout().for_wave(plan.wave)
        settings = JobSettings.from_config(
            config, plan, region=region, verification_lambdas=verification_lambdas
        )
        jobs = plan_jobs(s3, layout, read_jsonl(s3, layout.review_tasks), settings)
        plan.jobs = len(jobs)
        return {}

    def where_to_review(self, read: Callable[[S3Uri], Any], layout: RunLayout) -> list[str]:
        jobs = read(layout.review_jobs) or []
        names = [str(job["jobName"]) for job in jobs]
        more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
        return [
            f"Ground Truth labeling jobs ({len(names)}): {', '.join(names[:MAX_NAMES])}{more}",
            "Reviewers find them in the private workforce's labeling portal.",
        ]

    def preflight(self, services: ReviewServices) -> dict[str, Any]:
        """Nothing to reach before the model starts: Validate Input checked the workteam
        (check_stack), and the jobs run with the stack's own role."""
        return {}

    def create_review(self, services: ReviewServices, config: RunConfig, plan: PlanSummary) -> dict[str, Any]:
        raise ReviewBackendError(
            "Ground Truth's labeling jobs are created by the definition's Run Labeling Jobs map "
            "(createLabelingJob), from the jobs Plan Review wrote: no function creates them"
        )

    def review_progress(
        self, services: ReviewServices, config: RunConfig, layout: RunLayout, *, now: datetime
    ) -> dict[str, Any]:
        raise ReviewBackendError(
            "Ground Truth's labeling jobs are polled, and stopped at their deadline, by the "
            "definition's Run Labeling Jobs map (describeLabelingJob): no function polls them"
        )

    def collect_review(self, services: ReviewServices, layout: RunLayout) -> CollectedReview:
        """Every labeling job's status and output (of the wave's review/jobs.json) as reviewed
        records and skip records."""
        s3 = services.s3
        result = collect(s3, services.sagemaker, layout, read_json(s3, layout.review_jobs))
        output = {
            "reviewed": int(result["reviewed"]),
            "skipped": int(result["skipped"]),
            # A count, not the list: the number of jobs grows with the images (the list goes to
            # the function's log; every job's outcome is in S3).
            "failedJobs": len(result["failedJobs"]),
        }
        return CollectedReview(output, failed=result["failedJobs"])

    def stop_review(self, services: ReviewServices, layout: RunLayout) -> StopResult:
        """Stop the run's labeling jobs still handing out tasks."""
        return stop_run_jobs(services.s3, services.sagemaker, layout)
