"""What both backends' collect steps need to distrust a reviewer's answer: an answer is data people
(or scripts) can edit outside the labeling UI, so it is checked before it becomes a reviewed record.
An answer that cannot be used makes that image a skip record with a reason (docs/data-contracts.md),
never fails the run, and never reaches the manifest or the report's figures:

- `invalid-annotation`: the answer cannot be read (not a number, not a list, no label);
- `invalid-box`: a box with a zero or negative width or height, or wholly off the image (a box
  partly off the image is clipped when the manifest is built, keeping what the reviewer drew);
- `too-many-boxes` / `too-many-labels`: more than Custom Labels takes on one image
  (finishing/manifest/rules.py, docs/aws-facts.md §2.3): dropping some would teach the model that the objects
  left out are background;
- `unknown-label`: a label outside the run's label set (review/plan.json), which the labeling UI
  never offered.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from labeling_loop.finishing.manifest.rules import MAX_BOXES_PER_IMAGE, MAX_LABELS_PER_IMAGE
from labeling_loop.kernel.jsonl import read_json
from labeling_loop.kernel.layout import RunLayout

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

INVALID_ANNOTATION = "invalid-annotation"
INVALID_BOX = "invalid-box"
TOO_MANY_BOXES = "too-many-boxes"
TOO_MANY_LABELS = "too-many-labels"
UNKNOWN_LABEL = "unknown-label"
# Boxes and labels named in one skip record's detail.
_SHOWN = 3


class InvalidAnswer(ValueError):
    """An answer this run cannot use; `reason` is the skip reason, the message says what is wrong."""

    def __init__(self, message: str, reason: str = INVALID_ANNOTATION) -> None:
        super().__init__(message)
        self.reason = reason


def is_finite_number(value: Any) -> bool:
    """A JSON number that is finite. "nan", 1e400 (inf), null, a string or a boolean would become a
    box nobody drew."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def finite(value: Any, what: str) -> float:
    """A coordinate (`is_finite_number`), or InvalidAnswer naming it."""
    if not is_finite_number(value):
        raise InvalidAnswer(f"{what} is {value!r}, not a finite number")
    return float(value)


def names(value: Any, what: str) -> list[str]:
    """A list of label names (a string, a dict or a list of other things is not)."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidAnswer(f"{what} is {value!r}, not a list of label names")
    return list(value)


def run_labels(s3: S3Client, layout: RunLayout) -> frozenset[str]:
    """The labels the run's review offered (review/plan.json, written by Plan Review)."""
    return frozenset(str(label) for label in read_json(s3, layout.review_plan).get("labels") or [])


def _shown(items: Sequence[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def check_boxes(
    boxes: Sequence[Mapping[str, Any]], width: float, height: float, labels: Collection[str]
) -> None:
    """Raise InvalidAnswer (with its skip reason) unless every box of one image's answer, in pixels
    of the run's image size (`{label, left, top, width, height}`), is one Custom Labels can train on:
    at most MAX_BOXES_PER_IMAGE boxes, each with a positive size, on the image, of a run's label."""
    if len(boxes) > MAX_BOXES_PER_IMAGE:
        raise InvalidAnswer(
            f"{len(boxes):,} boxes; Custom Labels takes at most {MAX_BOXES_PER_IMAGE} per image",
            TOO_MANY_BOXES,
        )
    unknown = sorted({repr(box["label"]) for box in boxes if box["label"] not in labels})
    if unknown:
        raise InvalidAnswer(f"label {_shown(unknown)} is not one of the run's labels", UNKNOWN_LABEL)
    for index, box in enumerate(boxes):
        left, top, w, h = (finite(box[k], f"box {k}") for k in ("left", "top", "width", "height"))
        what = f"box {index + 1} ({box['label']!r}, {w:g} x {h:g} px at {left:g},{top:g})"
        if w <= 0 or h <= 0:
            raise InvalidAnswer(f"{what}: a box needs a positive width and height", INVALID_BOX)
        if left >= width or top >= height or left + w <= 0 or top + h <= 0:
            raise InvalidAnswer(f"{what} lies outside the {width:g} x {height:g} image", INVALID_BOX)


def check_labels(answered: Sequence[str], labels: Collection[str]) -> None:
    """Raise InvalidAnswer unless an image-level answer names at most MAX_LABELS_PER_IMAGE labels,
    each of the run's labels."""
    distinct = list(dict.fromkeys(answered))
    if len(distinct) > MAX_LABELS_PER_IMAGE:
        raise InvalidAnswer(
            f"{len(distinct):,} labels; Custom Labels takes at most {MAX_LABELS_PER_IMAGE} per image",
            TOO_MANY_LABELS,
        )
    unknown = sorted({repr(label) for label in distinct if label not in labels})
    if unknown:
        raise InvalidAnswer(f"label {_shown(unknown)} is not one of the run's labels", UNKNOWN_LABEL)
