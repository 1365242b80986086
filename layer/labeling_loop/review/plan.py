"""Plan the human review from the model's predictions (backend-agnostic part).

Every inferred image becomes either a review task (people confirm or adjust the predictions;
images without any prediction are reviewed too, because missed objects are the errors that matter
most) or, when every prediction is at or above `autoAcceptConfidence`, an auto-accepted record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.errors import InvalidInput
from labeling_loop.geometry import ratio_to_pixels
from labeling_loop.jsonl import JsonlWriter, read_jsonl_prefix
from labeling_loop.layout import RunLayout
from labeling_loop.run_config import TaskType


@dataclass
class PlanSummary:
    """The review plan as the state machine carries it (`$.plan`): the task type is decided here,
    once, and every later state reads it from the plan."""

    task_type: TaskType
    labels: list[str]
    images_to_review: int = 0
    images_auto_accepted: int = 0
    jobs: int = 0
    predicted_labels: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "taskType": self.task_type,
            "labels": self.labels,
            "imagesToReview": self.images_to_review,
            "imagesAutoAccepted": self.images_auto_accepted,
            "jobs": self.jobs,
        }

    @classmethod
    def from_state(cls, plan: Mapping[str, Any]) -> PlanSummary:
        task_type = plan.get("taskType")
        if task_type not in ("detection", "classification"):
            raise ValueError(f"plan.taskType: {task_type!r} is not detection or classification")
        return cls(
            task_type=task_type,
            labels=[str(label) for label in plan.get("labels") or []],
            images_to_review=int(plan.get("imagesToReview", 0)),
            images_auto_accepted=int(plan.get("imagesAutoAccepted", 0)),
            jobs=int(plan.get("jobs", 0)),
        )


def survey(s3: Any, layout: RunLayout) -> tuple[bool, set[str]]:
    """First pass over the predictions: does the model draw boxes, and which labels it uses."""
    has_boxes = False
    labels: set[str] = set()
    for record in read_jsonl_prefix(s3, layout.predictions_prefix):
        for label in record["labels"]:
            labels.add(label["name"])
            has_boxes = has_boxes or "box" in label
    return has_boxes, labels


def resolve_task_type(requested: str, has_boxes: bool, any_label: bool = True) -> TaskType:
    """`auto`: boxes mean detection, image labels mean classification; with no prediction at all
    nothing tells, and detection (the more common model) is assumed."""
    if requested in ("detection", "classification"):
        return requested  # type: ignore[return-value]
    return "detection" if has_boxes or not any_label else "classification"


def to_task(record: dict[str, Any], task_type: str) -> dict[str, Any]:
    """A prediction record as a review task, boxes in pixels of the displayed image."""
    size = record["image_size"]
    predictions = []
    for label in record["labels"]:
        if task_type == "detection":
            if "box" not in label:
                continue
            box = ratio_to_pixels(label["box"], size["width"], size["height"])
            if box is None:  # degenerate after clipping to the image: nothing to show
                continue
            predictions.append(
                {"label": label["name"], "confidence": label["confidence"], "box": box.to_dict()}
            )
        elif "box" not in label:
            predictions.append({"label": label["name"], "confidence": label["confidence"]})
    return {
        "source-ref": record["source-ref"],
        "taskType": task_type,
        "image_size": size,
        "predictions": predictions,
    }


def auto_accepted(task: dict[str, Any]) -> dict[str, Any]:
    """The reviewed record of an image whose predictions skip review."""
    detection = task["taskType"] == "detection"
    return {
        "source-ref": task["source-ref"],
        "taskType": task["taskType"],
        "image_size": task["image_size"],
        "boxes": [{"label": p["label"], **p["box"], "status": "kept"} for p in task["predictions"]]
        if detection
        else [],
        "labels": [] if detection else [{"label": p["label"], "status": "kept"} for p in task["predictions"]],
        "removed": [],
        "reviewer": "auto-accept",
        "humanReviewed": False,
    }


def is_auto_accepted(task: dict[str, Any], threshold: float | None) -> bool:
    predictions = task["predictions"]
    return (
        threshold is not None and bool(predictions) and all(p["confidence"] >= threshold for p in predictions)
    )


def plan(
    s3: Any,
    layout: RunLayout,
    *,
    requested_task_type: str,
    extra_labels: list[str],
    auto_accept: float | None,
) -> PlanSummary:
    """Write review/tasks.jsonl and review/auto_accepted.jsonl; return counts and the label set."""
    has_boxes, predicted = survey(s3, layout)
    task_type = resolve_task_type(requested_task_type, has_boxes, any_label=bool(predicted))
    summary = PlanSummary(
        task_type=task_type, labels=sorted(predicted | set(extra_labels)), predicted_labels=predicted
    )
    with JsonlWriter(s3, layout.review_tasks) as tasks, JsonlWriter(s3, layout.auto_accepted) as accepted:
        for record in read_jsonl_prefix(s3, layout.predictions_prefix):
            task = to_task(record, task_type)
            if is_auto_accepted(task, auto_accept):
                accepted.write(auto_accepted(task))
                summary.images_auto_accepted += 1
            else:
                tasks.write(task)
                summary.images_to_review += 1
    return summary


def check_label_set(summary: PlanSummary, max_labels: int) -> None:
    """The review needs labels to offer, and no more than the backend shows (InvalidInput)."""
    if summary.images_to_review and not summary.labels:
        raise InvalidInput(
            "labels: the model predicted no label in this run and the input names none, so reviewers "
            'would have nothing to choose from; pass the model\'s labels (e.g. "labels": ["cat", "dog"])'
        )
    if len(summary.labels) > max_labels:
        raise InvalidInput(
            f"maxLabelsPerJob: the review needs {len(summary.labels)} labels "
            f"({', '.join(summary.labels[:60])}), more than the {max_labels} allowed; "
            "raise maxLabelsPerJob (at most 50) or trim labels"
        )
