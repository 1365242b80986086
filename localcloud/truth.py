"""The ground truth the emulators answer from: what is really in each image.

It is read from a Rekognition Custom Labels manifest (the demo-data generator writes one), in the two
line formats Custom Labels accepts (aws-facts 2.1/2.2, CL-OD and CL-IC pages):

- object detection: an attribute `<attr>` = {"image_size": [{width, height, depth}], "annotations":
  [{class_id, left, top, width, height}]} with `<attr>-metadata` = {"class-map": {...}, "type":
  "groundtruth/object-detection", ...};
- image level: one or more `<attr>` (any integer) with `<attr>-metadata` = {"class-name": label,
  "type": "groundtruth/image-classification", ...}.

A line may carry both kinds; everything found is merged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DETECTION_TYPE = "groundtruth/object-detection"
CLASSIFICATION_TYPE = "groundtruth/image-classification"


@dataclass(frozen=True)
class TruthBox:
    """A true object: pixels of the displayed (EXIF-oriented) image, left/top = top-left corner."""

    label: str
    left: float
    top: float
    width: float
    height: float

    def iou(self, other: TruthBox) -> float:
        return iou(
            (self.left, self.top, self.width, self.height), (other.left, other.top, other.width, other.height)
        )


@dataclass
class Truth:
    source_ref: str
    width: int  # 0 when the manifest line does not say (image-level lines carry no size)
    height: int
    boxes: list[TruthBox] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # image-level labels, plus every box label


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (left, top, width, height) boxes."""
    ax2, ay2 = a[0] + a[2], a[1] + a[3]
    bx2, by2 = b[0] + b[2], b[1] + b[3]
    iw = min(ax2, bx2) - max(a[0], b[0])
    ih = min(ay2, by2) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def resolve_source_ref(source_ref: str, base_uri: str) -> str:
    """Relative refs (the generator may write keys) are joined to base_uri; s3:// refs are kept."""
    if source_ref.startswith("s3://"):
        return source_ref
    return base_uri.rstrip("/") + "/" + source_ref.lstrip("/")


def load_truth(lines: Iterable[dict[str, Any]], base_uri: str) -> dict[str, Truth]:
    """Parse manifest lines into {absolute source-ref: Truth}. Lines without `source-ref` are
    ignored; a repeated source-ref merges into the first (Custom Labels would replace it, but the
    generator never repeats one)."""
    result: dict[str, Truth] = {}
    for line in lines:
        ref = line.get("source-ref")
        if not isinstance(ref, str) or not ref:
            continue
        ref = resolve_source_ref(ref, base_uri)
        truth = result.setdefault(ref, Truth(source_ref=ref, width=0, height=0))
        _parse_line(line, truth)
    return result


def _parse_line(line: dict[str, Any], truth: Truth) -> None:
    for attr, value in line.items():
        if attr == "source-ref" or attr.endswith("-metadata"):
            continue
        metadata = line.get(f"{attr}-metadata")
        if not isinstance(metadata, dict):
            continue
        kind = metadata.get("type")
        if (
            kind == DETECTION_TYPE
            and isinstance(value, dict)
            and "annotations" in value
            and "image_size" in value
        ):
            _parse_detection(value, metadata, truth)
        elif kind == CLASSIFICATION_TYPE and isinstance(metadata.get("class-name"), str):
            _add_label(truth, metadata["class-name"])


def _parse_detection(value: dict[str, Any], metadata: dict[str, Any], truth: Truth) -> None:
    sizes = value.get("image_size") or [{}]
    size = sizes[0] if isinstance(sizes, list) and sizes else {}
    truth.width = int(size.get("width", truth.width) or 0)
    truth.height = int(size.get("height", truth.height) or 0)
    class_map = {str(k): v for k, v in (metadata.get("class-map") or {}).items()}
    for annotation in value.get("annotations") or []:
        label = class_map.get(str(annotation.get("class_id")))
        if label is None:  # Custom Labels drops such a box too (ERROR_MISSING_CLASS_MAP_ID)
            continue
        truth.boxes.append(
            TruthBox(
                label=label,
                left=float(annotation["left"]),
                top=float(annotation["top"]),
                width=float(annotation["width"]),
                height=float(annotation["height"]),
            )
        )
        _add_label(truth, label)


def _add_label(truth: Truth, label: str) -> None:
    if label not in truth.labels:
        truth.labels.append(label)
