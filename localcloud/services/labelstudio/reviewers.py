"""Emulated reviewers for the real Label Studio server: they answer tasks through its REST API the
way people's submissions arrive (POST /api/tasks/{id}/annotations/ with the labeling UI's result
format, boxes in percent of the image: docs/aws-facts.md §6.4), comparing the model's
pre-annotations with a ground truth.

Truth: {source-ref: {"boxes": [{"label", "left", "top", "width", "height"} px], "labels": [...],
"width", "height"}}. What a reviewer does with each task is the shared reviewer model
(`localcloud/services/reviewer_model.py`, the same as the emulated Ground Truth workforce's): each
decision right with probability `accuracy`, drawn boxes within +- `jitter_px`.
`unannotated_fraction` of the tasks get no answer; `skipped_fraction` of them are skipped (the UI's
Skip button: a cancelled annotation, no result).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.review.labelstudio.client import LabelStudioClient
from labeling_loop.review.labelstudio.convert import BOX_TAG, CHOICES_TAG, IMAGE_TAG

from localcloud.services.reviewer_model import ReviewerModel, review_boxes, review_labels


@dataclass
class ReviewStats:
    """What the emulated reviewers did, to compare with what collect derives."""

    annotated: int = 0
    unannotated: int = 0
    kept: int = 0
    adjusted: int = 0
    added: int = 0
    removed: int = 0
    unannotated_refs: list[str] = field(default_factory=list)
    skipped: int = 0
    skipped_refs: list[str] = field(default_factory=list)


def _prediction_boxes(
    result: Sequence[Mapping[str, Any]],
) -> list[tuple[Mapping[str, Any], dict[str, float]]]:
    """(result item, pixel box) for each predicted rectangle, as the reviewer sees it."""
    boxes = []
    for item in result:
        if item.get("type") != "rectanglelabels":
            continue
        value, w, h = item["value"], item["original_width"], item["original_height"]
        box = {
            "label": value["rectanglelabels"][0],
            "left": value["x"] * w / 100.0,
            "top": value["y"] * h / 100.0,
            "width": value["width"] * w / 100.0,
            "height": value["height"] * h / 100.0,
        }
        boxes.append((item, box))
    return boxes


def _rectangle(region_id: str, box: Mapping[str, Any], width: int, height: int) -> dict[str, Any]:
    """A drawn rectangle in the result format the labeling UI submits (percent of the image)."""
    return {
        "id": region_id,
        "from_name": BOX_TAG,
        "to_name": IMAGE_TAG,
        "type": "rectanglelabels",
        "origin": "manual",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {
            "x": box["left"] * 100.0 / width,
            "y": box["top"] * 100.0 / height,
            "width": box["width"] * 100.0 / width,
            "height": box["height"] * 100.0 / height,
            "rotation": 0,
            "rectanglelabels": [box["label"]],
        },
    }


@dataclass
class _Reviewer:
    """One reviewer's decisions, drawn in task order from one seeded rng (the shared model)."""

    rng: random.Random
    model: ReviewerModel
    stats: ReviewStats

    def detection(
        self, result: Sequence[Mapping[str, Any]], truth: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        width, height = int(truth["width"]), int(truth["height"])
        shown = _prediction_boxes(result)
        review = review_boxes(
            [box for _, box in shown], list(truth.get("boxes", [])), self.model, self.rng, width, height
        )
        answer: list[dict[str, Any]] = []
        for index, reviewed in enumerate(review.boxes):
            if reviewed.kind == "kept" and reviewed.shown is not None:
                answer.append({**shown[reviewed.shown][0], "origin": "prediction"})  # accepted as shown
            else:
                answer.append(_rectangle(f"r{index}", reviewed.box, width, height))
        for kind, count in review.counts().items():
            setattr(self.stats, kind, getattr(self.stats, kind) + count)
        return answer

    def classification(
        self, result: Sequence[Mapping[str, Any]], truth: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        predicted = [c for item in result if item.get("type") == "choices" for c in item["value"]["choices"]]
        present = list(truth.get("labels", []))
        offered = sorted(set(predicted) | set(present))
        chosen = review_labels(offered, predicted, present, self.model, self.rng)
        self.stats.kept += len(set(chosen) & set(predicted))
        self.stats.removed += len(set(predicted) - set(chosen))
        self.stats.added += len(set(chosen) - set(predicted))
        if not chosen:
            return []
        return [
            {
                "id": "c0",
                "from_name": CHOICES_TAG,
                "to_name": IMAGE_TAG,
                "type": "choices",
                "origin": "manual",
                "value": {"choices": chosen},
            }
        ]


def tasks_of(ls: LabelStudioClient, project_id: int) -> Iterator[dict[str, Any]]:
    yield from ls.paginate(
        "/api/tasks/",
        {"project": project_id, "page_size": 100, "fields": "all", "resolve_uri": "false"},
        results_key="tasks",
    )


def annotate_project(
    ls: LabelStudioClient,
    project_id: int,
    truth: Mapping[str, Mapping[str, Any]],
    *,
    accuracy: float = 1.0,
    jitter_px: float = 0.0,
    seed: int = 0,
    unannotated_fraction: float = 0.0,
    skipped_fraction: float = 0.0,
    leave_alone: frozenset[int] = frozenset(),
) -> ReviewStats:
    """Answer every task of a project like reviewers would, but leave `unannotated_fraction` of
    them unanswered and skip exactly `skipped_fraction` of them (rounded; a seeded choice). Tasks
    in `leave_alone` (ids) are not touched."""
    rng = random.Random(seed)
    stats = ReviewStats()
    reviewer = _Reviewer(rng, ReviewerModel(accuracy=accuracy, jitter_px=jitter_px), stats)
    tasks = sorted((t for t in tasks_of(ls, project_id) if t["id"] not in leave_alone), key=lambda t: t["id"])
    skipping = {t["id"] for t in random.Random(seed + 1).sample(tasks, round(len(tasks) * skipped_fraction))}
    for task in tasks:
        source = task["data"]["source_ref"]
        if rng.random() < unannotated_fraction:
            stats.unannotated += 1
            stats.unannotated_refs.append(source)
            continue
        if task["id"] in skipping:
            ls.post(f"/api/tasks/{task['id']}/annotations/", {"result": [], "was_cancelled": True})
            stats.skipped += 1
            stats.skipped_refs.append(source)
            continue
        predictions = task.get("predictions") or []
        result = predictions[0]["result"] if predictions else []
        # An image nobody has a truth for: reviewers see nothing in it (and remove what the model drew).
        size = task["data"].get("image_size") or {}
        known = truth.get(source) or {
            "boxes": [],
            "labels": [],
            "width": size.get("width", 0),
            "height": size.get("height", 0),
        }
        if task["data"]["taskType"] == "detection":
            answer = reviewer.detection(result, known)
        else:
            answer = reviewer.classification(result, known)
        ls.post(
            f"/api/tasks/{task['id']}/annotations/",
            {"result": answer, "was_cancelled": False, "lead_time": round(rng.uniform(3, 40), 1)},
        )
        stats.annotated += 1
    return stats
