"""What a run cost, estimated from what it used and the list prices (finishing/report/prices.py; which of them
docs/aws-facts.md confirms is said there, and repeated in the report).

- Inference: the model is billed per inference-unit hour from start to stop, idle time included
  (docs/aws-facts.md §1.1). The run measures the seconds from taking its lease on the model to
  releasing it (Acquire Model -> Release Model), times the units: what it billed when the run
  started the model, its share of a model someone else kept running otherwise.
- Review: Ground Truth charges per labeled object (§3.8), so per image sent to review; a
  self-hosted Label Studio costs its hosting, which the run cannot know (0 here, said so).
- Engine: Step Functions transitions and Lambda requests, measured from the run's execution history
  and its inference parts (finishing/report/engine_usage.py); where they could not be read, estimated from
  the per-item figures measured in bench/ plus a fixed part for the straight path.
- Training, when the run trained: BillableTrainingTimeInSeconds (DescribeProjectVersions, §1.3).
- People's time, where the backend reports it (Label Studio's lead time per annotation): hours,
  and their cost at `reviewerHourlyUsd` when the run sets one.

The figure to compare runs by is the cost per **correct** label: the manifest's images minus the
auto-accepted ones the audit estimates wrong (its 95 % predictive interval gives the range), since
an image shipped wrong costs a correction later instead of saving one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labeling_loop.finishing.report.prices import (
    CUSTOM_LABELS_IU_HOUR,
    CUSTOM_LABELS_TRAINING_HOUR,
    GROUND_TRUTH_OBJECT,
    LAMBDA_REQUEST,
    STEP_FUNCTIONS_TRANSITION,
    Price,
)
from labeling_loop.review.backends import backend_for

FIXED_TRANSITIONS = 60  # the straight path of one run and its review polls, roughly
TRANSITIONS_PER_BATCH = 3  # a Distributed Map child: start, task, end
FIXED_INVOCATIONS = 10


def _line(quantity: float, price: Price) -> dict[str, Any]:
    return {
        "quantity": round(quantity, 4),
        "unit": price.unit,
        "usd": round(quantity * price.usd, 4),
        "priceUsd": price.usd,
        "priceConfirmed": price.confirmed,
        "priceSource": price.url,
    }


@dataclass(frozen=True)
class RunUsage:
    """What a run used, as the report reads it: the model's lease, the images and batches, the
    engine's measured usage, training and people's time."""

    images_reviewed_by_people: int
    batches: int
    images_labeled: int
    model_usage: Mapping[str, Any] | None = None
    training_seconds: float | None = None
    wrong_auto_accepted: Sequence[int] | None = None  # the audit's 95 % range of wrong auto-accepted
    reviewer_seconds: float | None = None
    reviewer_hourly_usd: float = 0.0
    engine_usage: Mapping[str, Any] | None = None


def run_cost(usage: RunUsage, backend: str) -> dict[str, Any]:
    model = usage.model_usage or {}
    seconds = float(model.get("modelSeconds") or 0)
    units = int(model.get("inferenceUnits") or 0)
    lines: dict[str, Any] = {"inference": _line(seconds / 3600 * units, CUSTOM_LABELS_IU_HOUR)}
    lines["inference"]["startedByRun"] = bool(model.get("startedByRun"))
    lines["review"] = _review_line(usage.images_reviewed_by_people, backend)
    lines["engine"] = _engine_line(usage.engine_usage, usage.batches)
    if usage.training_seconds is not None:
        lines["training"] = _line(usage.training_seconds / 3600, CUSTOM_LABELS_TRAINING_HOUR)
    if usage.reviewer_seconds is not None:
        lines["people"] = _people_line(usage.reviewer_seconds, usage.reviewer_hourly_usd)
    total = round(sum(float(line["usd"]) for line in lines.values()), 4)
    images_labeled = usage.images_labeled
    low, high = (usage.wrong_auto_accepted or [0, 0])[:2]
    correct = [images_labeled - high, images_labeled - low]  # fewest, most correct images
    return {
        **lines,
        "totalUsd": total,
        "perLabeledImageUsd": round(total / images_labeled, 5) if images_labeled else None,
        "correctImages95": correct,
        # The most correct images give the lowest cost: (best, worst) per correct image.
        "perCorrectImageUsd95": [
            round(total / correct[1], 5) if correct[1] > 0 else None,
            round(total / correct[0], 5) if correct[0] > 0 else None,
        ],
        "note": "list prices, several unconfirmed (priceConfirmed false: docs/aws-facts.md §8)",
    }


def _review_line(images_reviewed_by_people: int, backend: str) -> dict[str, Any]:
    if backend_for(backend).billed_per_object:
        return _line(images_reviewed_by_people, GROUND_TRUTH_OBJECT)
    return {
        "quantity": images_reviewed_by_people,
        "unit": "reviewed image",
        "usd": 0.0,
        "note": "self-hosted Label Studio: its hosting is not counted",
    }


def _engine_line(engine_usage: Mapping[str, Any] | None, batches: int) -> dict[str, Any]:
    if engine_usage:
        transitions, invocations = int(engine_usage["transitions"]), int(engine_usage["invocations"])
        estimated = int(engine_usage.get("estimatedTransitions") or 0)
        note = f"measured: {transitions} transitions and {invocations} Lambda requests" + (
            f" ({estimated} transitions of the labeling jobs' pollers estimated)" if estimated else ""
        )
    else:
        transitions = FIXED_TRANSITIONS + TRANSITIONS_PER_BATCH * batches
        invocations = FIXED_INVOCATIONS + batches
        note = f"estimate: about {transitions} transitions and {invocations} Lambda requests"
    engine = _line(transitions, STEP_FUNCTIONS_TRANSITION)
    engine["usd"] = round(engine["usd"] + invocations * LAMBDA_REQUEST.usd, 6)
    engine["note"] = note
    if engine_usage:
        engine["measuredTransitions"] = int(engine_usage.get("measuredTransitions") or 0)
        engine["estimatedTransitions"] = int(engine_usage.get("estimatedTransitions") or 0)
    return engine


def _people_line(reviewer_seconds: float, reviewer_hourly_usd: float) -> dict[str, Any]:
    hours = reviewer_seconds / 3600
    return {
        "quantity": round(hours, 4),
        "unit": "reviewer hour (as the backend timed it)",
        "usd": round(hours * reviewer_hourly_usd, 4),
        "note": "reviewerHourlyUsd not set: people's time not priced"
        if not reviewer_hourly_usd
        else f"at {reviewer_hourly_usd:g} USD per hour",
    }
