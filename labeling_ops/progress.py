"""Where a run is, computed from what Step Functions and the services say: the execution history
(the state it is in, and what each finished state wrote), the Map Runs' item counts, the model's
status and the review's counters. Pure: the callers fetch (labeling_ops.fetch) and render
(labeling_ops.render); tests feed recorded histories.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from labeling_loop.review.backends import find_backend

# The phase a user sees, by the state the run is in (every state of the definition's top level:
# tests/contract/test_follow_phases.py).
PHASES = {
    "Validate Input": "validating input",
    "Read Input Error": "refusing the input",
    "Input Rejected": "refusing the input",
    "Label Studio Review?": "validating input",
    "Check Label Studio Access": "checking Label Studio",
    "List Images": "listing images",
    "Any Images To Infer?": "listing images",
    "Acquire Model": "starting the model",
    "Model Running?": "starting the model",
    "Wait For Model": "starting the model",
    "Check Model": "starting the model",
    "Detect Labels": "inference",
    "Release Model": "stopping the model",
    "Plan Review": "planning the review",
    "Anything To Review?": "planning the review",
    "Which Review Backend?": "planning the review",
    "Notify Labeling Jobs Waiting": "human review (Ground Truth)",
    "Run Labeling Jobs": "human review (Ground Truth)",
    "Collect Labeling Job Results": "collecting the review",
    "Create Label Studio Review": "human review (Label Studio)",
    "Notify Label Studio Review Waiting": "human review (Label Studio)",
    "Wait For Label Studio Reviewers": "human review (Label Studio)",
    "Check Label Studio Review": "human review (Label Studio)",
    "Label Studio Review Done?": "human review (Label Studio)",
    "Collect Label Studio Review": "collecting the review",
    "Check Audit": "checking the audit of auto-accept",
    "Send Auto-Accepted To People?": "checking the audit of auto-accept",
    "Plan Second Review": "planning a second review wave",
    "Build Manifest": "building the manifest",
    "Train Next Version?": "building the manifest",
    "No Training": "finishing",
    "Start Training": "training the next version",
    "Training Done?": "training the next version",
    "Wait For Training": "training the next version",
    "Advance Training": "training the next version",
    "Record Training Failure": "training the next version",
    "Training Not Recorded": "training the next version",
    "Notify Run Ended": "finishing",
    "Run Result": "finishing",
    "Manifest Ready": "done",
    "Clean Up After Failure": "cleaning up after a failure",
    "Notify Run Failed": "cleaning up after a failure",
    "Run Failed": "failed",
    "Cleanup Failed": "cleanup failed",
}
INFERENCE_MAP, REVIEW_MAP = "Detect Labels", "Run Labeling Jobs"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class ReviewJob:
    name: str
    status: str
    labeled: int  # LabelCounters.TotalLabeled (human + machine)
    unlabeled: int
    failed: int


@dataclass
class Progress:
    name: str
    status: str
    phase: str
    state: str | None
    elapsed_seconds: float
    images_listed: int | None = None
    images_to_infer: int | None = None
    batch_sizes: list[int] | None = None  # images per planned batch (the model state's batches)
    batches_total: int | None = None
    batches_done: int | None = None
    batches_failed: int = 0
    # Images finished in the batches so far, from their progress objects (progress/batch-*.json,
    # written while a batch runs): None when there are none to read.
    images_done_in_batches: int | None = None
    model_arn: str | None = None
    model_status: str | None = None
    model_started_by_run: bool | None = None
    model_stopped_by_run: bool | None = None
    inference_units: int | None = None
    model_seconds: float | None = None  # the model's time in this run so far (acquired to released)
    review_backend: str | None = None
    review_total: int | None = None
    review_done: int | None = None
    review_jobs: list[ReviewJob] = field(default_factory=list)
    cleanup: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None
    result: dict[str, Any] | None = None

    @property
    def images_inferred(self) -> int | None:
        """Images inferred (or skipped) so far: exact when every batch is done; while batches run,
        what their progress objects say; without those, the finished batches counted at the average
        planned batch size (DescribeMapRun says how many ended, not which)."""
        if self.batches_done is None or not self.batch_sizes:
            return None
        sizes = self.batch_sizes
        if self.batches_done >= len(sizes):
            return sum(sizes)
        if self.images_done_in_batches is not None:
            return min(self.images_done_in_batches, sum(sizes))
        return round(self.batches_done * sum(sizes) / len(sizes))

    @property
    def model_billed_seconds(self) -> float | None:
        """Inference-unit seconds of this run's model time so far (billed per IU-hour, §1.1)."""
        if self.model_seconds is None:
            return None
        return self.model_seconds * (self.inference_units or 1)


def timestamp(value: Any) -> datetime:
    """A history timestamp: a datetime from boto3, an ISO string from a recorded fixture."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class HistoryFacts:
    """What the parent execution's history says."""

    state: str | None = None  # the state entered last
    data: dict[str, Any] = field(default_factory=dict)  # the finished states' outputs, merged
    map_runs: dict[str, str] = field(default_factory=dict)  # Map state name -> Map Run ARN
    model_acquired_at: datetime | None = None
    model_released_at: datetime | None = None
    ended: dict[str, Any] = field(default_factory=dict)  # executionFailed/Aborted/TimedOut details


def read_history(events: Sequence[Mapping[str, Any]]) -> HistoryFacts:
    facts = HistoryFacts()
    for event in sorted(events, key=lambda e: int(e["id"])):
        kind = str(event["type"])
        if "stateEnteredEventDetails" in event:
            facts.state = event["stateEnteredEventDetails"]["name"]
        elif "stateExitedEventDetails" in event:
            details = event["stateExitedEventDetails"]
            output = _json(details.get("output"))
            if isinstance(output, dict):
                facts.data.update(output)
            if details["name"] == "Acquire Model" and facts.model_acquired_at is None:
                facts.model_acquired_at = timestamp(event["timestamp"])
            elif details["name"] == "Release Model":
                facts.model_released_at = timestamp(event["timestamp"])
        elif kind == "MapRunStarted" and facts.state:
            facts.map_runs[facts.state] = event["mapRunStartedEventDetails"]["mapRunArn"]
        elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
            key = kind[0].lower() + kind[1:] + "EventDetails"
            facts.ended = {"type": kind, **event.get(key, {})}
    return facts


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def _counts(map_run: Mapping[str, Any] | None) -> tuple[int | None, int | None, int]:
    if not map_run:
        return None, None, 0
    counts = map_run.get("itemCounts", {})
    failed = int(counts.get("failed", 0)) + int(counts.get("timedOut", 0)) + int(counts.get("aborted", 0))
    return int(counts.get("total", 0)), int(counts.get("succeeded", 0)), failed


def progress(
    description: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    map_runs: Mapping[str, Mapping[str, Any]] | None = None,
    model_status: str | None = None,
    review_jobs: list[ReviewJob] | None = None,
    batch_progress: list[dict[str, Any]] | None = None,
) -> Progress:
    """The run's progress from DescribeExecution, its history, DescribeMapRun per Map state,
    the batches' progress objects, the model's status and the labeling jobs' counters."""
    facts = read_history(events)
    data, map_runs = facts.data, map_runs or {}
    status = str(description["status"])
    started = timestamp(description["startDate"])
    ended = timestamp(description["stopDate"]) if description.get("stopDate") else None
    config, listing, model = data.get("config", {}), data.get("listing", {}), data.get("model", {})
    phase = PHASES.get(facts.state or "", facts.state or "starting")
    if status != "RUNNING":
        phase = {"SUCCEEDED": "done", "ABORTED": "stopped", "TIMED_OUT": "timed out"}.get(status, "failed")
    total, done, failed = _counts(map_runs.get(INFERENCE_MAP))
    batch_sizes = [int(b.get("count", 0)) for b in model.get("batches") or []]
    # Validate Input seeds `modelRelease` (NOT_ACQUIRED) for runs that never take the model; it says
    # something only once Release Model has written over it.
    release = data.get("modelRelease") or {}
    released = release.get("status", "NOT_ACQUIRED") != "NOT_ACQUIRED"
    if total is None and released:  # inference over (Map Run not fetched)
        done = len(batch_sizes) or None
        total = done
    result = _json(description.get("output")) if status == "SUCCEEDED" else None
    progress = Progress(
        name=str(description.get("name", "")),
        status=status,
        phase=phase,
        state=facts.state,
        elapsed_seconds=((ended or now) - started).total_seconds(),
        images_listed=listing.get("imagesListed"),
        images_to_infer=listing.get("imagesToInfer"),
        batch_sizes=batch_sizes or None,
        batches_total=total,
        batches_done=done,
        batches_failed=failed,
        images_done_in_batches=(
            sum(min(int(b.get("done", 0)), int(b.get("count", 0))) for b in batch_progress)
            if batch_progress
            else None
        ),
        model_arn=config.get("projectVersionArn"),
        model_status=model_status or model.get("status"),
        model_started_by_run=model.get("startedByRun"),
        model_stopped_by_run=release.get("stopped") if released else None,
        inference_units=model.get("inferenceUnits") or config.get("minInferenceUnits"),
        review_backend=config.get("reviewBackend"),
        error=description.get("error") or facts.ended.get("error"),
        cause=description.get("cause") or facts.ended.get("cause"),
        cleanup=data.get("cleanup"),
        result=result if isinstance(result, dict) else None,
    )
    if facts.model_acquired_at is not None:
        until = facts.model_released_at or ended or now
        progress.model_seconds = max(0.0, (until - facts.model_acquired_at).total_seconds())
    _review(progress, data, review_jobs)
    return progress


def _review(progress: Progress, data: dict[str, Any], jobs: list[ReviewJob] | None) -> None:
    plan = data.get("plan")
    if not plan:
        return
    progress.review_total = int(plan.get("imagesToReview", 0))
    backend = find_backend(progress.review_backend)
    if backend and not backend.has_labeling_jobs:  # the run polls the review and records its progress
        checked = data.get("reviewProgress") or {}
        progress.review_total = int(checked.get("total", progress.review_total))
        progress.review_done = checked.get("annotated")
    elif jobs:
        progress.review_jobs = jobs
        progress.review_done = sum(job.labeled for job in jobs)
    if "review" in data:  # collected: every reviewed image is in
        progress.review_done = int(data["review"].get("reviewed", progress.review_done or 0))
