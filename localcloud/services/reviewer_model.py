"""The emulated reviewer: one model of what a person does with a pre-filled task, shared by both
review backends (the Ground Truth workforce, `groundtruth/workers.py`, and the Label Studio
reviewers, `labelstudio/reviewers.py`), so that the same images reviewed through either backend
give the same work figures within noise.

A reviewer compares what is shown (the model's boxes, or its labels) with what is in the image (the
ground truth) and makes one decision per thing shown and one per thing missing. Each decision is
right with probability `accuracy` (a careful look); a careless look leaves what is shown:

- a shown box on an object (IoU >= `match_iou`, the best pairs first, any label) with the right label
  and overlapping it by at least `keep_iou` is good enough: left as it is, with no decision to make;
- a shown box on an object with the wrong label, or loosely placed: redrawn over the object;
- a shown box on no object: deleted;
- an object no shown box is on: drawn;
- an image label: checked when the image has it, unchecked when it has not.

Boxes a person draws land within +- `jitter_px` of the object's sides, in whole pixels, inside the
image. `DEMO` is what local runs use for both backends; the defaults are a perfectly careful
reviewer who still leaves a box that fits well (what `keep_iou` means).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from labeling_loop.kernel.geometry import iou_of_dicts

Box = dict[str, Any]  # {"label", "left", "top", "width", "height"} in the displayed image's pixels


@dataclass(frozen=True)
class ReviewerModel:
    accuracy: float = 1.0  # probability that one decision is right
    jitter_px: float = 0.0  # boxes drawn land within +- this of the object's sides
    keep_iou: float = 0.9  # a shown box with the right label and this overlap is left as it is
    match_iou: float = 0.5  # a shown box overlapping an object this much is on that object


# What local runs (`make demo`, `labeling-loop --local`) use for both backends.
DEMO = ReviewerModel(accuracy=0.97, jitter_px=1.0)


@dataclass(frozen=True)
class ReviewedBox:
    """One box of the reviewer's answer: a shown box left as it is (`shown` is its index), or a box
    drawn (`shown` is the index of the box it replaces, or None for an object the model missed)."""

    box: Box
    kind: Literal["kept", "redrawn", "drawn"]
    shown: int | None = None


@dataclass
class BoxReview:
    boxes: list[ReviewedBox] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)  # indices of shown boxes removed

    @property
    def changed(self) -> bool:
        return bool(self.deleted) or any(b.kind != "kept" for b in self.boxes)

    def counts(self) -> dict[str, int]:
        """kept / adjusted / added / removed, as the run's report names a reviewer's work."""
        kinds = [b.kind for b in self.boxes]
        return {
            "kept": kinds.count("kept"),
            "adjusted": kinds.count("redrawn"),
            "added": kinds.count("drawn"),
            "removed": len(self.deleted),
        }


def review_boxes(
    shown: Sequence[Mapping[str, Any]],
    truth: Sequence[Mapping[str, Any]],
    model: ReviewerModel,
    rng: random.Random,
    width: int,
    height: int,
) -> BoxReview:
    """One reviewer's answer to a bounding-box task (see the module's rules). `truth` holds only the
    objects the review's labels can name; decisions draw from `rng` in a fixed order (shown boxes,
    then missed objects)."""
    pairs = sorted(
        ((iou_of_dicts(s, t), si, ti) for si, s in enumerate(shown) for ti, t in enumerate(truth)),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    on_object: dict[int, tuple[int, float]] = {}
    found: set[int] = set()
    for overlap, si, ti in pairs:
        if overlap < model.match_iou:
            break
        if si not in on_object and ti not in found:
            on_object[si] = (ti, overlap)
            found.add(ti)
    review = BoxReview()
    for si, box in enumerate(shown):
        if si in on_object:
            ti, overlap = on_object[si]
            good = truth[ti]["label"] == box["label"] and overlap >= model.keep_iou
            if good or rng.random() >= model.accuracy:
                review.boxes.append(ReviewedBox(_plain(box), "kept", si))
            else:
                review.boxes.append(ReviewedBox(drawn(truth[ti], model, rng, width, height), "redrawn", si))
        elif rng.random() < model.accuracy:
            review.deleted.append(si)
        else:
            review.boxes.append(ReviewedBox(_plain(box), "kept", si))
    for ti, target in enumerate(truth):
        if ti not in found and rng.random() < model.accuracy:
            review.boxes.append(ReviewedBox(drawn(target, model, rng, width, height), "drawn"))
    return review


def review_labels(
    offered: Sequence[str],
    shown: Sequence[str],
    present: Sequence[str],
    model: ReviewerModel,
    rng: random.Random,
) -> list[str]:
    """One reviewer's checked labels in a label-verification task: each offered label is checked as
    shown, or set right (with probability accuracy) where the image says otherwise."""
    shown_set, present_set = set(shown), set(present)
    checked = []
    for label in offered:
        on = label in shown_set
        if on != (label in present_set) and rng.random() < model.accuracy:
            on = not on
        if on:
            checked.append(label)
    return checked


def drawn(box: Mapping[str, Any], model: ReviewerModel, rng: random.Random, width: int, height: int) -> Box:
    """A box a person drew over `box`: whole pixels, within +- jitter, inside the image."""
    jitter = model.jitter_px
    left = box["left"] + rng.uniform(-jitter, jitter)
    top = box["top"] + rng.uniform(-jitter, jitter)
    right = box["left"] + box["width"] + rng.uniform(-jitter, jitter)
    bottom = box["top"] + box["height"] + rng.uniform(-jitter, jitter)
    left, top = max(0, min(width - 1, round(left))), max(0, min(height - 1, round(top)))
    right, bottom = max(left + 1, min(width, round(right))), max(top + 1, min(height, round(bottom)))
    return {"label": box["label"], "left": left, "top": top, "width": right - left, "height": bottom - top}


def _plain(box: Mapping[str, Any]) -> Box:
    return {k: box[k] for k in ("label", "left", "top", "width", "height")}
