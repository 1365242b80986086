"""Ground Truth as the review backend: labeling jobs on a private or vendor workteam."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from labeling_loop.kernel.jsonl import read_jsonl
from labeling_loop.review.backend import ReviewBackend, ReviewBackendName
from labeling_loop.review.groundtruth.jobs import JobSettings, plan_jobs

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
