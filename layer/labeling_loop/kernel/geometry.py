"""Box geometry shared by every stage: Rekognition ratio boxes, pixel boxes of the displayed image,
Label Studio percent boxes, clipping and IoU.

Rounding rule (one rule everywhere, so every stage draws the same box): a box is converted by its
*edges* (left, top, right, bottom), each rounded half up to the nearest pixel, then the edges are
clipped to the image and width/height are taken as differences. Rounding edges rather than width
keeps adjacent boxes adjacent and makes clipping exact. Half up, not Python's round() (halves to
even): with halves to even an edge at 12.5 px goes to 12 and one at 13.5 px to 14, so equal boxes
drawn a pixel apart come out with different sizes.

Two kinds of pixel box:
- `PixelBox`, integers: what the run's files hold (review tasks, reviewed records, the manifest).
- a fractional box `{left, top, width, height}` of floats: a person's answer converted exactly from
  Label Studio's percent (`percent_to_box`), compared with the model's box *before* rounding, so
  that "kept" (every side within half a pixel) and the IoU of "adjusted" do not depend on how
  the answer's edges happen to round.

Boxes of <= 1 px (which Custom Labels refuses, MIN_SIDE_EXCLUSIVE_PX): the model's boxes are dropped
when converted (`ratio_to_pixels`: they never reach review); a person's are kept by `snap_to_pixels`
(the reviewed record holds what was answered) and dropped by `clip_box` when the manifest is built,
where the drop is counted for the report.

Round trips:
- pixels -> ratios -> pixels and pixels -> percent -> pixels are exact for every box that lies
  inside the image (float error is far below half a pixel for images up to 4096 px).
- ratios -> pixels -> ratios is not exact: each edge moves by at most half a pixel (0.5 / size).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

# Boxes narrower or lower than this many pixels are dropped: Custom Labels rejects boxes whose
# width or height is not > 1 px (ERROR_BOUNDING_BOX_TOO_SMALL,
# https://docs.aws.amazon.com/rekognition/latest/customlabels-dg/tm-debugging-json-line-errors.html).
MIN_SIDE_EXCLUSIVE_PX = 1


class PixelBox(NamedTuple):
    """Integer pixel box of the displayed image; (left, top) is the top-left corner."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)

    def to_dict(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, box: Mapping[str, Any]) -> PixelBox:
        return cls(int(box["left"]), int(box["top"]), int(box["width"]), int(box["height"]))


def round_half_up(value: float) -> int:
    """Round .5 away from zero for positive values; Python's round() is banker's rounding, which
    would make 0.5 -> 0 and 1.5 -> 2 and so shift boxes unevenly."""
    return math.floor(value + 0.5)


def _snap_edges(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> PixelBox:
    """Round the edges half up and clip them to the image; what is left may be <= 1 px, or empty."""
    left = min(max(round_half_up(x0), 0), width)
    right = min(max(round_half_up(x1), 0), width)
    top = min(max(round_half_up(y0), 0), height)
    bottom = min(max(round_half_up(y1), 0), height)
    return PixelBox(left, top, right - left, bottom - top)


def _from_edges(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> PixelBox | None:
    """Round the edges, clip them to the image and drop what is left if it is <= 1 px."""
    box = _snap_edges(x0, y0, x1, y1, width, height)
    return box if is_valid(box, width, height) else None


def is_valid(box: PixelBox, width: int, height: int) -> bool:
    """Inside the image, non-negative, and wider and higher than 1 px."""
    return (
        box.left >= 0
        and box.top >= 0
        and box.width > MIN_SIDE_EXCLUSIVE_PX
        and box.height > MIN_SIDE_EXCLUSIVE_PX
        and box.right <= width
        and box.bottom <= height
    )


def clip_box(box: PixelBox, width: int, height: int) -> PixelBox | None:
    """The part of `box` inside a width x height image, or None when that is <= 1 px wide/high."""
    if is_valid(box, width, height):
        return box  # the common case: reviewers' boxes are inside the image already
    return _from_edges(box.left, box.top, box.right, box.bottom, width, height)


def ratio_to_pixels(ratio: Mapping[str, Any], width: int, height: int) -> PixelBox | None:
    """Rekognition `Geometry.BoundingBox` (ratios of the displayed image, may be slightly negative
    or beyond 1 for objects at the border) -> clipped pixel box, or None if nothing usable is left.
    https://docs.aws.amazon.com/rekognition/latest/APIReference/API_BoundingBox.html"""
    left = float(ratio["left"]) * width
    top = float(ratio["top"]) * height
    right = (float(ratio["left"]) + float(ratio["width"])) * width
    bottom = (float(ratio["top"]) + float(ratio["height"])) * height
    return _from_edges(left, top, right, bottom, width, height)


def box_to_percent(box: Mapping[str, float], width: int, height: int) -> dict[str, float]:
    """Pixel box (integer or fractional) -> Label Studio rectangle value: x, y, width, height in
    0-100 of the image size, unrotated (docs/aws-facts.md §6.4). Not rounded: the exact inverse of
    `percent_to_box`."""
    return {
        "x": box["left"] * 100.0 / width,
        "y": box["top"] * 100.0 / height,
        "width": box["width"] * 100.0 / width,
        "height": box["height"] * 100.0 / height,
        "rotation": 0,
    }


def percent_to_box(value: Mapping[str, Any], width: int, height: int) -> dict[str, float]:
    """Label Studio rectangle value -> the fractional pixel box that encloses it: not rounded and
    not clipped, so a person's answer can be compared with the model's box as it was drawn
    (`snap_to_pixels` makes it a box for the run's files).

    Label Studio rotates a rectangle by `rotation` degrees clockwise about its top-left corner
    (x, y) (docs/aws-facts.md §6.4). Custom Labels boxes are axis-aligned, so a rotated rectangle
    becomes the axis-aligned box enclosing its four corners (rotation is done in pixels: percent
    units differ per axis)."""
    left = float(value["x"]) * width / 100.0
    top = float(value["y"]) * height / 100.0
    w = float(value["width"]) * width / 100.0
    h = float(value["height"]) * height / 100.0
    rotation = float(value.get("rotation") or 0.0) % 360.0
    if rotation:
        theta = math.radians(rotation)
        cos_t, sin_t = math.cos(theta), math.sin(theta)
        # Image coordinates have y pointing down, so this matrix turns clockwise on screen.
        corners = ((0.0, 0.0), (w, 0.0), (w, h), (0.0, h))
        xs = [left + dx * cos_t - dy * sin_t for dx, dy in corners]
        ys = [top + dx * sin_t + dy * cos_t for dx, dy in corners]
        left, top, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    return {"left": left, "top": top, "width": w, "height": h}


def snap_to_pixels(box: Mapping[str, float], width: int, height: int) -> PixelBox:
    """Fractional pixel box -> integer pixel box inside the image, edges rounded half up.

    A box that is left <= 1 px wide or high (or empty) is kept, not dropped: a reviewed record
    holds what the person drew, and the manifest is where Custom Labels' size rule applies
    (`clip_box`, then the rule after the training resize, finishing/manifest/rules.py), counting
    each dropped box among the report's fixes."""
    left, top = float(box["left"]), float(box["top"])
    right, bottom = left + float(box["width"]), top + float(box["height"])
    return _snap_edges(left, top, right, bottom, width, height)


def iou(a: PixelBox, b: PixelBox) -> float:
    """Intersection over union of two pixel boxes, in [0, 1]; 0 when both are empty."""
    inter_w = min(a.right, b.right) - max(a.left, b.left)
    inter_h = min(a.bottom, b.bottom) - max(a.top, b.top)
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def iou_of_dicts(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """`iou` of two boxes given as {left, top, width, height} (pixels, int or float, not rounded)."""
    return iou(
        PixelBox(a["left"], a["top"], a["width"], a["height"]),
        PixelBox(b["left"], b["top"], b["width"], b["height"]),
    )
