"""The report's sections beyond counts: quality with intervals (reviewed images and whole run), the
audit of auto-accept and the gate's decision, recommended thresholds, human work, the review budget
and the backlog, cost and the images to look at. Computed from RunMeasures
(evaluation/measures.py), the gate's record (review/gate.json) and what the plan and the model
control recorded."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.evaluation.measures import AUDIT, REVIEW, RunMeasures
from labeling_loop.evaluation.verdict import DEFAULT_BOX_TOLERANCE
from labeling_loop.finishing.report.cost import RunUsage, run_cost

# Gate decisions under which the auto-accepted images go into the manifest (evaluation/audit.py).
SHIPPING_DECISIONS = frozenset({"ship", "nothing-to-ship"})


@dataclass(frozen=True)
class RunContext:
    """What the report needs to know about the run beyond its reviewed records (built once, in
    FinishSettings.from_run)."""

    min_confidence: float = 0.0
    images_to_review: int = 0  # audit images included (first wave)
    images_audited: int = 0
    images_auto_accepted: int = 0  # the candidates the plan did not audit
    images_second_wave: int = 0  # sent to people in the second wave (the gate's `review`)
    review_budget: int | None = None
    max_images_per_run: int = 250_000
    incremental: bool = False  # deferred images wait in the claims for the next run
    reviewed_by_priority: Mapping[str, int] = field(default_factory=dict)  # both waves
    order: str = ""  # review/order.jsonl
    audit_error_target: float = 0.05
    box_tolerance: float = DEFAULT_BOX_TOLERANCE
    gate: Mapping[str, Any] = field(default_factory=lambda: {"decision": "nothing-to-ship", "reason": ""})
    batches: int = 0
    model_usage: Mapping[str, Any] = field(default_factory=dict)
    engine_usage: Mapping[str, Any] | None = None  # finishing/report/engine_usage.py, when measured
    reviewer_hourly_usd: float = 0.0

    @property
    def gate_decision(self) -> str:
        return str(self.gate.get("decision", "nothing-to-ship"))

    @property
    def gate_reason(self) -> str:
        return str(self.gate.get("reason", ""))


def _audit_section(measures: RunMeasures, context: RunContext) -> dict[str, Any] | None:
    audit = dict(context.gate.get("audit") or {})
    if not audit:
        return None
    held = measures.held_tally
    if held.reviewed:
        # The second wave reviewed what the audit could only estimate: how right was it?
        low, high = audit.get("wrongAutoAccepted95") or [0, audit.get("autoAcceptedImages", 0)]
        audit["secondWave"] = {
            "reviewed": held.reviewed,
            "wrong": held.wrong,
            "predicted95": [low, high],
            "withinPrediction": bool(
                held.reviewed == audit.get("autoAcceptedImages") and low <= held.wrong <= high
            ),
        }
    return audit


def _warnings(audit: Mapping[str, Any] | None, context: RunContext) -> list[str]:
    decision = context.gate_decision
    if audit is None or decision in SHIPPING_DECISIONS:
        return []
    held = int(audit.get("autoAcceptedImages") or 0)
    if decision == "review" and context.images_second_wave < held:
        return [
            f"audit gate: of {held} auto-accepted images held for people, {context.images_second_wave} "
            f"were reviewed in a second wave and {held - context.images_second_wave} deferred to the next "
            f"run: over reviewBudget {context.review_budget} ({context.gate_reason})"
        ]
    if decision == "review":
        return [
            f"audit gate: {held} auto-accepted images were reviewed by people instead ({context.gate_reason})"
        ]
    return [f"audit gate: {held} auto-accepted images deferred to the next run ({context.gate_reason})"]


def budget_section(
    measures: RunMeasures, context: RunContext, deferred_by_reason: Mapping[str, int]
) -> dict[str, Any]:
    """The review budget, what it bought and the backlog (review/budget.py). The backlog is every
    image this run deferred, whatever the reason; an incremental next run takes them first. At this
    run's pace (what the budget leaves after the audit, within maxImagesPerRun; without a budget,
    maxImagesPerRun) it needs `runsForBacklog` runs, if the settings stay as they are."""
    work = measures.work
    reviewed = sum(measures.reviewed.values())
    corrections = work["corrected"] + work["added"] + work["removed"]
    backlog = sum(deferred_by_reason.values())
    budget = context.review_budget
    pace = context.max_images_per_run
    if budget is not None:
        pace = min(pace, budget - context.images_audited)
    runs: int | None = None
    if not backlog:
        runs, note = 0, "nothing waits"
    elif not context.incremental:
        note = (
            "this run is not incremental, so nothing remembers its deferrals: the next run lists every "
            "image again; with incremental: true it takes the deferred images first"
        )
    elif pace <= 0:
        note = "the budget went to the audit: no run at this pace reviews them; raise reviewBudget"
    else:
        runs = math.ceil(backlog / pace)
        note = f"about {runs} runs at this run's pace ({pace:,} a run), the deferred images first"
    return {
        "reviewBudget": budget,
        "sentToPeople": context.images_to_review + context.images_second_wave,
        "audited": context.images_audited,
        "reviewedByPriority": dict(sorted(context.reviewed_by_priority.items())),
        "deferredOverBudget": int(deferred_by_reason.get("over-review-budget", 0)),
        "imagesReviewed": reviewed,
        "correctionsFound": corrections,
        "imagesCorrected": work["imagesCorrected"],
        "correctionsPerReviewedImage": round(corrections / reviewed, 4) if reviewed else None,
        "backlog": backlog,
        "backlogByReason": dict(sorted(deferred_by_reason.items())),
        "pace": max(pace, 0),
        "runsForBacklog": runs,
        "backlogNote": note,
        "order": context.order,
    }


def _reviewer_seconds(measures: RunMeasures) -> float | None:
    """People's seconds on the run: the timed images' mean times every image people reviewed (Label
    Studio times each answer; Ground Truth's worker responses are read for a sample)."""
    if not measures.timed_images:
        return None
    reviewed = sum(measures.reviewed.values())
    return measures.review_seconds / measures.timed_images * reviewed


def report_sections(
    measures: RunMeasures,
    context: RunContext,
    *,
    backend: str,
    images_in_manifest: int,
    deferred_by_reason: Mapping[str, int] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    population = {
        REVIEW: context.images_to_review - context.images_audited,
        AUDIT: context.images_audited + context.images_auto_accepted,
    }
    audit = _audit_section(measures, context)
    shipped = context.images_auto_accepted if context.gate_decision == "ship" else 0
    wrong_shipped = (audit or {}).get("wrongAutoAccepted95") if shipped else None
    quality = measures.quality(population)
    over_budget = (deferred_by_reason or {}).get("over-review-budget", 0)
    if over_budget and quality.get("wholeRun") is not None:
        quality["wholeRunNote"] += (
            f"; the {over_budget} images deferred over the review budget are not this run's: "
            "the next run reviews them"
        )
    sections = {
        "quality": quality,
        "audit": audit,
        "gate": {"decision": context.gate_decision, "reason": context.gate_reason},
        "thresholds": measures.recommendations(population, context.audit_error_target),
        "confidenceHistograms": measures.confidence_histograms(),
        "work": measures.work_done(shipped),
        "budget": budget_section(measures, context, deferred_by_reason or {}),
        "cost": run_cost(
            RunUsage(
                model_usage=context.model_usage,
                # Sent to people (Ground Truth charges per object sent), the second wave included.
                images_reviewed_by_people=context.images_to_review + context.images_second_wave,
                batches=context.batches,
                images_labeled=images_in_manifest,
                wrong_auto_accepted=wrong_shipped,
                reviewer_seconds=_reviewer_seconds(measures),
                reviewer_hourly_usd=context.reviewer_hourly_usd,
                engine_usage=context.engine_usage,
            ),
            backend,
        ),
        "disagreements": measures.disagreements(),
    }
    return sections, _warnings(audit, context)
