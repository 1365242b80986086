"""The ground truth: what is really in each image. The emulated model predicts from it, the emulated
annotators and reviewers correct towards it, and tests and the demo measure the loop against it.

One model (`Truth`, `TruthBox`) and one parser for Custom Labels manifests, in the two line formats
Custom Labels accepts (docs/aws-facts.md §2.1, §2.2):

- object detection: an attribute `<attr>` = {"image_size": [{width, height, depth}], "annotations":
  [{class_id, left, top, width, height}]} with `<attr>-metadata` = {"class-map": {...}, "type":
  "groundtruth/object-detection", ...};
- image level: one or more `<attr>` (any integer) with `<attr>-metadata` = {"class-name": label,
  "type": "groundtruth/image-classification", ...}.

A line may carry both kinds; everything found is merged. Box numbers are kept as the manifest
writes them (pixel integers stay integers, so they index pixels and write back unchanged).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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

    def as_dict(self) -> dict[str, Any]:
        """{label, left, top, width, height}: the box as Ground Truth's and Label Studio's people draw it."""
        return {
            "label": self.label,
            "left": self.left,
            "top": self.top,
            "width": self.width,
            "height": self.height,
        }


@dataclass
class Truth:
    source_ref: str
    width: int  # 0 when the manifest line does not say (image-level lines carry no size)
    height: int
    boxes: list[TruthBox] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # image-level labels, plus every box label

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(width, height) of the displayed image, None when the manifest does not say."""
        return (self.width, self.height) if self.width and self.height else None

    def add_line(self, line: Mapping[str, Any]) -> None:
        """Merge what one manifest line says: boxes and size of each object-detection attribute,
        the label of each image-level one. Other types and unpaired attributes are ignored."""
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
                self._add_detection(value, metadata)
            elif kind == CLASSIFICATION_TYPE and isinstance(metadata.get("class-name"), str):
                self._add_label(metadata["class-name"])

    def _add_detection(self, value: dict[str, Any], metadata: dict[str, Any]) -> None:
        sizes = value.get("image_size") or [{}]
        size = sizes[0] if isinstance(sizes, list) and sizes else {}
        self.width = int(size.get("width", self.width) or 0)
        self.height = int(size.get("height", self.height) or 0)
        class_map = {str(k): v for k, v in (metadata.get("class-map") or {}).items()}
        for annotation in value.get("annotations") or []:
            label = class_map.get(str(annotation.get("class_id")))
            if label is None:  # Custom Labels drops such a box too (ERROR_MISSING_CLASS_MAP_ID)
                continue
            self.boxes.append(
                TruthBox(
                    label, annotation["left"], annotation["top"], annotation["width"], annotation["height"]
                )
            )
            self._add_label(label)

    def _add_label(self, label: str) -> None:
        if label not in self.labels:
            self.labels.append(label)


def resolve_source_ref(source_ref: str, base_uri: str) -> str:
    """Relative refs (the generator may write keys) are joined to base_uri; s3:// refs are kept."""
    if source_ref.startswith("s3://"):
        return source_ref
    return base_uri.rstrip("/") + "/" + source_ref.lstrip("/")


def _source_ref(line: Mapping[str, Any]) -> str | None:
    ref = line.get("source-ref")
    return ref if isinstance(ref, str) and ref else None


def manifest_lines(manifest: Path) -> Iterator[dict[str, Any]]:
    """The JSON lines of a manifest file (blank lines skipped)."""
    with manifest.open(encoding="utf-8") as lines:
        for raw in lines:
            if raw.strip():
                yield json.loads(raw)


def load_truth(lines: Iterable[Mapping[str, Any]], base_uri: str) -> dict[str, Truth]:
    """Parse manifest lines into {absolute source-ref: Truth}. Lines without `source-ref` are
    ignored; a repeated source-ref merges into the first (Custom Labels would replace it, but the
    generator never repeats one)."""
    result: dict[str, Truth] = {}
    for line in lines:
        ref = _source_ref(line)
        if ref is None:
            continue
        ref = resolve_source_ref(ref, base_uri)
        result.setdefault(ref, Truth(source_ref=ref, width=0, height=0)).add_line(line)
    return result


def iter_truth(manifest: Path) -> Iterator[Truth]:
    """Each line of a Custom Labels manifest file (ours or any other, whatever its attribute names),
    its source-ref as written."""
    for line in manifest_lines(manifest):
        ref = _source_ref(line)
        if ref is not None:
            truth = Truth(source_ref=ref, width=0, height=0)
            truth.add_line(line)
            yield truth
