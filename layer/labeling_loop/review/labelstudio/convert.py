"""Review tasks <-> Label Studio: the labeling config, tasks with the model's predictions as
pre-annotations, and an exported task back to a normalized reviewed record (docs/data-contracts.md).

Label Studio stores boxes in percent of the image (x, y, width, height, rotation around the top-left
corner); the run's files use pixels of the displayed image. Conversions are kernel/geometry.py's,
exact in floating point and rounded only at the very end (after a person's box has been compared
with the model's), half up like every other stage.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from labeling_loop.kernel.geometry import box_to_percent, iou_of_dicts, percent_to_box, snap_to_pixels
from labeling_loop.kernel.jsonl import JsonDict
from labeling_loop.kernel.run_config import TaskType
from labeling_loop.review.answers import INVALID_BOX, InvalidAnswer, check_boxes, check_labels, finite, names

# Names inside the labeling config; predictions and annotations refer to them.
IMAGE_TAG = "image"
BOX_TAG = "label"
CHOICES_TAG = "labels"
MODEL_VERSION = "rekognition-custom-labels"

KEPT_TOLERANCE_PX = 0.5  # same label and every side within half a pixel: the reviewer kept it
ADJUSTED_MIN_IOU = 0.5  # overlapping at least this much: the reviewer moved/resized/relabelled it


# --------------------------------------------------------------------------------------------
# Labeling config and tasks (pure)
# --------------------------------------------------------------------------------------------


# Label Studio's editor reads `$name` in a tag's value as a reference to the task's data and shows
# what it finds (`$[\w[\].{}]+`, so `${image}` shows as blank and `price $5` as "price undefined"),
# and has no escape. A label holding `$` keeps its name as `value` (what a Label's answer holds) and
# `alias` (what a Choice's answer holds: its value is read as a reference), and is shown through
# `html`, which the editor displays as written (docs/aws-facts.md §6.7).


def _label_attributes(label: str) -> str:
    if "$" not in label:
        return f"value={quoteattr(label)}"
    return f"value={quoteattr(label)} alias={quoteattr(label)} html={quoteattr(escape(label))}"


def label_config(task_type: TaskType, labels: Sequence[str]) -> str:
    """The labeling interface: boxes for detection, a multiple-choice list for classification. Every
    label is shown and answered exactly as written (see _label_attributes)."""
    if not labels:
        raise ValueError("the label set is empty")
    if task_type == "detection":
        items = "".join(f"\n    <Label {_label_attributes(label)}/>" for label in labels)
        control = f'  <RectangleLabels name="{BOX_TAG}" toName="{IMAGE_TAG}">{items}\n  </RectangleLabels>'
    elif task_type == "classification":
        items = "".join(f"\n    <Choice {_label_attributes(label)}/>" for label in labels)
        control = (
            f'  <Choices name="{CHOICES_TAG}" toName="{IMAGE_TAG}" choice="multiple" showInLine="true">'
            f"{items}\n  </Choices>"
        )
    else:
        raise ValueError(f"unknown task type {task_type!r}")
    header = escape("Check the model's labels: keep, fix, delete or add")
    return (
        f'<View>\n  <Header value="{header}"/>\n'
        f'  <Image name="{IMAGE_TAG}" value="${IMAGE_TAG}" zoom="true"/>\n{control}\n</View>'
    )


def _snapped(box: Mapping[str, float], width: int, height: int) -> dict[str, int]:
    """Integer pixels inside the image for a reviewed record. A box left <= 1 px is kept: the
    manifest drops it and counts the fix (geometry.snap_to_pixels)."""
    return snap_to_pixels(box, width, height).to_dict()


def _same_geometry(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return all(abs(a[k] - b[k]) <= KEPT_TOLERANCE_PX for k in ("left", "top", "width", "height"))


def to_labelstudio_task(task: Mapping[str, Any]) -> JsonDict:
    """One review task (docs/data-contracts.md) -> a Label Studio task with pre-annotations.

    `data.image` is the `s3://` source-ref (or its copy, `reviewImage`, when Label Studio cannot load
    that key: images.py): Label Studio resolves it through the project's S3 storage into a presigned
    URL each time a reviewer opens the task.
    """
    source = task["source-ref"]
    size = task["image_size"]
    width, height = int(size["width"]), int(size["height"])
    data = {
        IMAGE_TAG: task.get("reviewImage") or source,
        "source_ref": source,
        "image_size": dict(size),
        "taskType": task["taskType"],
        "predicted": list(task.get("predictions", [])),  # what collect compares the answer with
    }
    result: list[JsonDict] = []
    scores: list[float] = []
    for index, prediction in enumerate(task.get("predictions", [])):
        confidence = prediction.get("confidence")
        if confidence is not None:
            scores.append(float(confidence) / 100.0)
        if task["taskType"] == "detection":
            if "box" not in prediction:
                continue
            value = box_to_percent(prediction["box"], width, height)
            result.append(
                {
                    "id": f"p{index}",
                    "from_name": BOX_TAG,
                    "to_name": IMAGE_TAG,
                    "type": "rectanglelabels",
                    "original_width": width,
                    "original_height": height,
                    "image_rotation": 0,
                    "value": {**value, "rectanglelabels": [prediction["label"]]},
                    **({"score": float(confidence) / 100.0} if confidence is not None else {}),
                }
            )
    if task["taskType"] == "classification":
        chosen = [p["label"] for p in task.get("predictions", [])]
        if chosen:
            result.append(
                {
                    "id": "p0",
                    "from_name": CHOICES_TAG,
                    "to_name": IMAGE_TAG,
                    "type": "choices",
                    "value": {"choices": chosen},
                }
            )
    ls_task: JsonDict = {"data": data}
    if result:
        prediction_doc: JsonDict = {"model_version": MODEL_VERSION, "result": result}
        if scores:
            prediction_doc["score"] = min(scores)  # sort the queue by the least sure label
        ls_task["predictions"] = [prediction_doc]
    return ls_task


# --------------------------------------------------------------------------------------------
# Status derivation (pure)
# --------------------------------------------------------------------------------------------


@dataclass
class BoxOutcome:
    boxes: list[JsonDict] = field(default_factory=list)  # final boxes with status
    removed: list[JsonDict] = field(default_factory=list)


def derive_box_statuses(
    predicted: Sequence[Mapping[str, Any]], answered: Sequence[Mapping[str, Any]], width: int, height: int
) -> BoxOutcome:
    """Compare the reviewer's boxes with the model's, both `{label, left, top, width, height}` in
    (unrounded) pixels. Kept: same label, every side within 0.5 px. Adjusted: the best remaining
    overlap with IoU >= 0.5 (moved, resized or relabelled). Added: the reviewer's boxes left over.
    Removed: the model's boxes left over. Output pixels are integers clipped to the image (edges
    rounded half up, geometry.snap_to_pixels); a kept box keeps the prediction's exact pixels.

    The comparison is made before rounding: rounded first, a side 0.5 px off would round to 1 px
    off (kept or not would depend on where the edges fall), and the IoU near ADJUSTED_MIN_IOU
    would move with it."""
    free_pred = list(range(len(predicted)))
    matched: dict[int, tuple[int, str]] = {}  # answered index -> (predicted index, status)
    for a_index, box in enumerate(answered):
        for p_index in free_pred:
            pred = predicted[p_index]
            if pred["label"] == box["label"] and _same_geometry(pred, box):
                matched[a_index] = (p_index, "kept")
                free_pred.remove(p_index)
                break
    pairs = sorted(
        (
            (iou_of_dicts(answered[a], predicted[p]), a, p)
            for a in range(len(answered))
            if a not in matched
            for p in free_pred
        ),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    for overlap, a_index, p_index in pairs:
        if overlap < ADJUSTED_MIN_IOU:
            break
        if a_index in matched or p_index not in free_pred:
            continue
        matched[a_index] = (p_index, "adjusted")
        free_pred.remove(p_index)
    outcome = BoxOutcome()
    for a_index, box in enumerate(answered):
        p_index, status = matched.get(a_index, (-1, "added"))
        source = predicted[p_index] if status == "kept" else box
        outcome.boxes.append({"label": box["label"], **_snapped(source, width, height), "status": status})
    for p_index in free_pred:
        pred = predicted[p_index]
        outcome.removed.append({"label": pred["label"], **_snapped(pred, width, height)})
    return outcome


def derive_label_statuses(
    predicted: Sequence[str], answered: Sequence[str]
) -> tuple[list[JsonDict], list[JsonDict]]:
    """Classification: labels the reviewer left checked are kept, newly checked added, unchecked
    predictions removed."""
    predicted_set = set(predicted)
    answered_unique = list(dict.fromkeys(answered))
    labels = [
        {"label": label, "status": "kept" if label in predicted_set else "added"} for label in answered_unique
    ]
    removed = [{"label": label} for label in dict.fromkeys(predicted) if label not in set(answered_unique)]
    return labels, removed


def _boxes_from_result(result: Iterable[Any], width: int, height: int) -> list[JsonDict]:
    """The reviewer's rectangles in pixels of the run's own image size (never the size the
    annotation claims: the run measured the image itself)."""
    boxes = []
    for item in result:
        if not isinstance(item, Mapping):
            raise InvalidAnswer(f"a result item is {type(item).__name__}, not an object")
        if item.get("type") != "rectanglelabels" or item.get("from_name", BOX_TAG) != BOX_TAG:
            continue
        value = item.get("value")
        if not isinstance(value, Mapping):
            raise InvalidAnswer("a rectangle has no value")
        labels = names(value.get("rectanglelabels"), "a rectangle's labels")
        if not labels:
            raise InvalidAnswer("a rectangle has no label")
        geometry = {key: finite(value.get(key), f"rectangle {key}") for key in ("x", "y", "width", "height")}
        geometry["rotation"] = finite(value.get("rotation") or 0.0, "rectangle rotation")
        if geometry["width"] <= 0 or geometry["height"] <= 0:
            # Checked before the rotation, which would turn a negative side into a positive one.
            raise InvalidAnswer(
                f"a {labels[0]!r} rectangle is {geometry['width']:g}% x {geometry['height']:g}% of the "
                "image: a box needs a positive width and height",
                INVALID_BOX,
            )
        boxes.append({"label": labels[0], **percent_to_box(geometry, width, height)})
    return boxes


def _choices_from_result(result: Iterable[Any]) -> list[str]:
    chosen: list[str] = []
    for item in result:
        if not isinstance(item, Mapping):
            raise InvalidAnswer(f"a result item is {type(item).__name__}, not an object")
        if item.get("type") == "choices" and item.get("from_name", CHOICES_TAG) == CHOICES_TAG:
            value = item.get("value")
            chosen.extend(names(value.get("choices", []) if isinstance(value, Mapping) else value, "choices"))
    return chosen


def submitted_annotation(task: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The latest answer a reviewer submitted (not skipped); None when nobody answered."""
    answers = [
        a for a in task.get("annotations") or [] if isinstance(a, Mapping) and not a.get("was_cancelled")
    ]
    if not answers:
        return None
    return max(
        answers, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0)
    )


def was_skipped(task: Mapping[str, Any]) -> bool:
    """A reviewer pressed Skip (a cancelled annotation) and nobody submitted an answer."""
    return any(isinstance(a, Mapping) and a.get("was_cancelled") for a in task.get("annotations") or [])


def reviewed_record(
    annotation: Mapping[str, Any], ours: Mapping[str, Any], project_id: int, labels: Collection[str]
) -> JsonDict:
    """A submitted annotation -> the reviewed record of the run's own review task `ours` (from
    review/tasks.jsonl: its image, size, task type and the model's predictions). Nothing is taken
    from the task's data in Label Studio, which anyone with access to the project can edit.
    Raises InvalidAnswer (with its skip reason) for an annotation it cannot read or the run cannot
    use (`labels`: the run's label set; review/answers.py)."""
    size = ours["image_size"]
    width, height = int(size["width"]), int(size["height"])
    record: JsonDict = {
        "source-ref": ours["source-ref"],
        "taskType": ours["taskType"],
        "image_size": {"width": width, "height": height, "depth": int(size.get("depth", 3))},
        "boxes": [],
        "labels": [],
        "removed": [],
        "reviewer": f"labelstudio:{project_id}",
        "humanReviewed": True,
    }
    answer = annotation.get("result") or []
    if not isinstance(answer, list):
        raise InvalidAnswer(f"the annotation's result is {type(answer).__name__}, not a list")
    predicted = ours.get("predictions", [])
    if ours["taskType"] == "detection":
        answered = _boxes_from_result(answer, width, height)
        check_boxes(answered, width, height, labels)
        outcome = derive_box_statuses(
            [{"label": p["label"], **p["box"]} for p in predicted if "box" in p], answered, width, height
        )
        record["boxes"], record["removed"] = outcome.boxes, outcome.removed
    else:
        chosen = _choices_from_result(answer)
        check_labels(chosen, labels)
        record["labels"], record["removed"] = derive_label_statuses([p["label"] for p in predicted], chosen)
    # Label Studio's `lead_time`: seconds the reviewer spent on the task (the report's work figures).
    lead_time = annotation.get("lead_time")
    if isinstance(lead_time, int | float) and not isinstance(lead_time, bool) and math.isfinite(lead_time):
        record["reviewSeconds"] = round(float(lead_time), 1)
    return record
