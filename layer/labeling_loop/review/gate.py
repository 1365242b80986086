"""The audit gate, between the review and the manifest (evaluation/audit.py says what it decides).

- `check_audit`, after the first review wave: compares what auto-accept would have written for each
  audited image (`review/audit.jsonl`) with what people answered (`review/reviewed.jsonl`), writes
  the audit figures and the decision to `review/gate.json` and returns the decision. After a second
  wave it returns the stored decision: that wave reviewed every image the gate held.
- `plan_second_wave`, when the decision is `review`: the auto-accepted images become the review
  tasks of wave 2 (`review/wave-2/`), planned as the first wave's were. With a review budget the
  second wave spends only what the first left: its images go in the review order (review/budget.py)
  and those over the budget are deferred (`over-review-budget`); when nothing is left, the wave has
  no image and the run goes on to its manifest, the held images waiting for the next run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from labeling_loop.evaluation.audit import AuditTally, audit_figures
from labeling_loop.evaluation.measures import reference_boxes, reference_labels
from labeling_loop.evaluation.verdict import Verdict, classification_verdict, detection_verdict
from labeling_loop.kernel.jsonl import JsonlWriter, read_json, read_jsonl, read_jsonl_prefix, write_json
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.review.budget import ReviewQueue, correction_score
from labeling_loop.review.prepare import record_plan
from labeling_loop.review.selection import PlanSummary, to_task

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


def verdict_of(would_ship: Mapping[str, Any], reviewed: Mapping[str, Any], box_tolerance: float) -> Verdict:
    """What auto-accept would have written for an image (a reviewed record of `auto-accept`)
    against what people answered."""
    if would_ship.get("taskType") == "detection":
        return detection_verdict(reference_boxes(would_ship), reference_boxes(reviewed), box_tolerance)
    return classification_verdict(reference_labels(would_ship), reference_labels(reviewed))


def summary(gate: Mapping[str, Any]) -> dict[str, Any]:
    """What the state machine carries: the decision and two numbers, whatever the run's size."""
    audit = gate.get("audit") or {}
    return {
        "decision": gate["decision"],
        "autoAccepted": int(audit.get("autoAcceptedImages") or 0),
        "shippedErrorUpperBound": audit.get("shippedErrorUpperBound"),
    }


def check_audit(s3: S3Client, config: RunConfig, plan: PlanSummary) -> dict[str, Any]:
    layout = config.layout()
    if plan.wave > 1:
        return summary(read_json(s3, layout.gate))
    candidates = plan.images_audited + plan.images_auto_accepted
    audit = None
    if candidates:
        would_ship = {str(r["source-ref"]): r for r in read_jsonl(s3, layout.audit, missing_ok=True)}
        tally = AuditTally()
        for record in read_jsonl(s3, layout.reviewed, missing_ok=True):
            ref = str(record.get("source-ref"))
            if ref in would_ship and record.get("humanReviewed"):
                tally.add(verdict_of(would_ship.pop(ref), record, config.boxTolerance))
        audit = audit_figures(
            tally,
            candidates=candidates,
            audited=plan.images_audited,
            target=config.auditErrorTarget,
            action=config.auditGateAction,
        )
    reason = audit["gate"]["reason"] if audit else "no image was a candidate for auto-accept"
    if audit and audit["gate"]["decision"] == "review" and config.reviewBudget is not None:
        left = max(0, config.reviewBudget - plan.images_to_review)
        held = plan.images_auto_accepted
        reason += f", as far as reviewBudget {config.reviewBudget} goes: {min(left, held)} of the {held}" + (
            f", the other {held - left} wait for the next run" if held > left else ""
        )
    gate = {
        "decision": audit["gate"]["decision"] if audit else "nothing-to-ship",
        "reason": reason,
        "boxTolerance": config.boxTolerance,
        "audit": audit,
    }
    write_json(s3, layout.gate, gate)
    return summary(gate)


def plan_second_wave(
    s3: S3Client, config: RunConfig, first: PlanSummary, *, region: str, verification_lambdas: tuple[str, str]
) -> dict[str, Any]:
    """Review tasks for the images auto-accept would have shipped, in wave 2's review files: in the
    review order, as many as the review budget has left."""
    first_layout = config.layout()
    layout = first_layout.for_wave(2)
    held = {str(r["source-ref"]) for r in read_jsonl(s3, first_layout.auto_accepted, missing_ok=True)}
    budget = config.reviewBudget
    plan = PlanSummary(
        task_type=first.task_type,
        labels=first.labels,
        wave=2,
        jobs_key=layout.review_jobs.key,
        review_budget=budget,
    )
    with (
        JsonlWriter(s3, layout.review_tasks) as tasks,
        JsonlWriter(s3, layout.review_order) as order,
        JsonlWriter(s3, layout.deferred_part("review", 0)) as deferred,
        ReviewQueue(config.runId) as queue,
    ):
        queue.load_waited(read_jsonl(s3, first_layout.inventory, missing_ok=True))
        for record in read_jsonl_prefix(s3, first_layout.predictions_prefix):
            if record["source-ref"] in held:
                task = to_task(record, first.task_type, config.minConfidence)
                queue.add(task, correction_score(task, record, config.minConfidence))
        room = None if budget is None else max(0, budget - first.images_to_review)
        for placed in queue.order(room):
            plan.place(placed, tasks, order, deferred)
    return record_plan(s3, config, plan, region=region, verification_lambdas=verification_lambdas)
