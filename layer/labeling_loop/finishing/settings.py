"""What finishing a run needs to know, built once (`FinishSettings.from_run`) from the run's config,
its plan, what the workflow's event carries and what the earlier states recorded in S3."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from labeling_loop.evaluation.quality import DEFAULT_IOU_THRESHOLD
from labeling_loop.finishing import recorded
from labeling_loop.finishing.manifest.lines import ClassMap
from labeling_loop.finishing.report.sections import RunContext
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.review.selection import PlanSummary

TASK_TYPES = ("detection", "classification")


@dataclass(frozen=True)
class RunTotals:
    """What the workflow's event says of the run beyond its config and plan: the listing's figures
    and the usage the model control and the engine measured."""

    images_listed: int
    batches: int = 0
    model_usage: Mapping[str, Any] = field(default_factory=dict)
    engine_usage: Mapping[str, Any] | None = None  # finishing/report/engine_usage.py, when measured


@dataclass(frozen=True)
class FinishSettings:
    """One run's manifest, COCO export and report: where they go, what the lines are made of, and
    the run's context for the report's sections."""

    layout: RunLayout
    task_type: str
    labels: tuple[str, ...]
    images_listed: int
    run_id: str
    backend: str
    labeling_jobs: tuple[str, ...]
    job_name: str
    now: datetime
    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    context: RunContext = field(default_factory=RunContext)

    def __post_init__(self) -> None:
        if self.task_type not in TASK_TYPES:
            raise ValueError(f"unknown task type {self.task_type!r}")

    @cached_property
    def class_map(self) -> ClassMap:
        """Built on first use, by finish_run before it writes anything: a label Custom Labels
        refuses fails the run with nothing written."""
        return ClassMap(self.labels)

    @property
    def creation_date(self) -> str:
        """Ground Truth's creation-date form (UTC, no offset, e.g. 2020-04-15T20:17:23.433061)."""
        aware = self.now if self.now.tzinfo else self.now.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")

    @classmethod
    def from_run(
        cls, s3: Any, config: RunConfig, plan: PlanSummary, totals: RunTotals, now: datetime
    ) -> FinishSettings:
        """The run's task type, labels and strata from the first review wave's plan, the audit
        gate's decision from `review/gate.json`, its labeling jobs (if any) from both waves'
        `jobs.json`."""
        layout = config.layout()
        plan = recorded.first_wave_plan(s3, layout, plan)
        second_wave = recorded.second_wave_plan(s3, layout)
        jobs = recorded.labeling_jobs(s3, layout)
        gate = recorded.gate_decision(s3, layout, plan)
        return cls(
            layout=layout,
            task_type=plan.task_type,
            labels=tuple(plan.labels),
            images_listed=totals.images_listed,
            run_id=config.runId,
            backend=config.reviewBackend,
            labeling_jobs=tuple(jobs),
            job_name=f"{config.jobNamePrefix}-{config.runId}",
            now=now,
            context=_context(config, plan, second_wave, gate, totals),
        )


def _context(
    config: RunConfig,
    plan: PlanSummary,
    second_wave: PlanSummary | None,
    gate: Mapping[str, Any],
    totals: RunTotals,
) -> RunContext:
    by_priority = dict(plan.by_priority)
    if second_wave is not None and second_wave.images_to_review:
        by_priority["second-wave"] = second_wave.images_to_review
    return RunContext(
        min_confidence=config.minConfidence,
        images_to_review=plan.images_to_review,
        images_audited=plan.images_audited,
        images_auto_accepted=plan.images_auto_accepted,
        images_second_wave=(
            second_wave.images_to_review
            if second_wave is not None
            # A gate that sent them to people records a second wave; without its plan, all went.
            else plan.images_auto_accepted
            if gate["decision"] == "review"
            else 0
        ),
        review_budget=config.reviewBudget,
        max_images_per_run=config.maxImagesPerRun,
        incremental=config.incremental,
        reviewed_by_priority=by_priority,
        order=str(config.layout().review_order),
        audit_error_target=config.auditErrorTarget,
        box_tolerance=config.boxTolerance,
        gate=gate,
        batches=totals.batches,
        model_usage=dict(totals.model_usage),
        engine_usage=totals.engine_usage,
        reviewer_hourly_usd=config.reviewerHourlyUsd,
    )
