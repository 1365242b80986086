"""Custom Labels manifest lines built from reviewed records (docs/data-contracts.md).

Problems of one line are fixed where the fix keeps the reviewer's intent (a box is clipped to the
image, a box that cannot be valid is dropped); when nothing valid is left the image becomes a skip
record (`invalid-annotation`, or `no-label-after-review` for a classification image that people left
without a label). The rules themselves, with their sources, are in `rules`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.finishing.manifest.rules import (
    ANNOTATION_CONFIDENCE,
    CLASSIFICATION_ATTRIBUTE_PREFIX,
    DETECTION_ATTRIBUTE,
    MAX_BOXES_PER_IMAGE,
    MAX_LABELS,
    MAX_LABELS_PER_IMAGE,
    REASON_DIMENSIONS,
    REASON_INVALID,
    REASON_NO_LABEL,
    SKIP_STAGE,
    SRC_LIMITS,
    SRC_VALIDATION,
    TYPE_CLASSIFICATION,
    TYPE_DETECTION,
    box_large_enough,
    dimensions_problem,
    label_name_problem,
)
from labeling_loop.kernel.errors import ManifestValidationError
from labeling_loop.kernel.geometry import PixelBox, clip_box


class ClassMap:
    """Label name <-> class id, stable across the whole manifest: ids are the positions of the
    run's label names in sorted order, so the same label set always gives the same ids."""

    def __init__(self, labels: Iterable[str]) -> None:
        names = sorted(set(labels))
        for name in names:
            problem = label_name_problem(name)
            if problem:
                raise ManifestValidationError(f"{problem}: {name!r} ({SRC_LIMITS})")
        if len(names) > MAX_LABELS:
            raise ManifestValidationError(
                f"{len(names)} labels, Custom Labels trains on at most {MAX_LABELS} ({SRC_VALIDATION})"
            )
        self._names = names
        self._ids = {name: i for i, name in enumerate(names)}

    def __contains__(self, name: object) -> bool:
        return name in self._ids

    def __len__(self) -> int:
        return len(self._names)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def id_of(self, name: str) -> int:
        return self._ids[name]

    def name_of(self, class_id: int) -> str:
        return self._names[class_id]

    def as_class_map(self, ids: Iterable[int] | None = None) -> dict[str, str]:
        """Ground Truth's `class-map` (`{"<id>": "<name>"}`), limited to `ids` when given so a line
        carries only its own classes (a full map of 250 labels on 250,000 lines would approach the
        1 GB manifest limit)."""
        chosen = range(len(self._names)) if ids is None else sorted(set(ids))
        return {str(i): self._names[i] for i in chosen}


@dataclass
class LineResult:
    """What became of one reviewed record: a manifest line or a skip record, plus the fixes made
    (counted by kind, e.g. `box-clipped`, for the report's warnings)."""

    line: dict[str, Any] | None = None
    skip: dict[str, Any] | None = None
    fixes: dict[str, int] = field(default_factory=dict)

    def fix(self, kind: str) -> None:
        self.fixes[kind] = self.fixes.get(kind, 0) + 1


def skip_record(source_ref: str, reason: str, detail: str) -> dict[str, Any]:
    return {"source-ref": source_ref, "stage": SKIP_STAGE, "reason": reason, "detail": detail}


def _metadata_common(human: bool, creation_date: str, job_name: str) -> dict[str, Any]:
    return {
        "human-annotated": "yes" if human else "no",
        "creation-date": creation_date,
        "job-name": job_name,
    }


def _image_size(record: Mapping[str, Any]) -> tuple[int, int] | None:
    size = record.get("image_size")
    if not isinstance(size, Mapping):
        return None
    width, height = size.get("width"), size.get("height")
    if not isinstance(width, int) or not isinstance(height, int) or width <= 0 or height <= 0:
        return None
    return width, height


def build_detection_line(
    record: Mapping[str, Any], class_map: ClassMap, *, job_name: str, creation_date: str
) -> LineResult:
    """Reviewed detection record -> object-detection line (attribute `bounding-box`, SRC_DETECTION).

    Boxes are clipped to the image; boxes with a label outside the run's label set, or that are
    <= 1 px (after clipping, or after the training resize) are dropped. An image whose boxes are
    all dropped is skipped (`invalid-annotation`); an image reviewed as having no object keeps an
    empty line (0 boxes per image is allowed, SRC_VALIDATION)."""
    result = LineResult()
    ref = str(record["source-ref"])
    size = _image_size(record)
    if size is None:
        result.skip = skip_record(ref, REASON_INVALID, "image_size missing or not positive integers")
        return result
    width, height = size
    problem = dimensions_problem(width, height)
    if problem:
        # Normally caught at inference; a reviewed record can still carry it (e.g. a hand-made one).
        result.skip = skip_record(ref, REASON_DIMENSIONS, problem)
        return result
    raw_boxes = record.get("boxes") or []
    annotations: list[dict[str, int]] = []
    for raw in raw_boxes:
        label = raw.get("label")
        if label not in class_map:
            result.fix("box-dropped-unknown-label")
            continue
        try:
            original = PixelBox.from_dict(raw)
        except (KeyError, TypeError, ValueError):
            result.fix("box-dropped-malformed")
            continue
        box = clip_box(original, width, height)
        if box is None:
            result.fix("box-dropped-outside-or-too-small")
            continue
        if box != original:
            result.fix("box-clipped")
        if not box_large_enough(box.width, box.height, width, height):
            result.fix("box-dropped-too-small-after-resize")
            continue
        annotations.append({"class_id": class_map.id_of(label), **box.to_dict()})
    if raw_boxes and not annotations:
        result.skip = skip_record(
            ref, REASON_INVALID, f"all {len(raw_boxes)} boxes invalid after clipping to {width}x{height}"
        )
        return result
    if len(annotations) > MAX_BOXES_PER_IMAGE:
        # Dropping boxes would leave objects unlabeled, which teaches the model they are background.
        result.skip = skip_record(
            ref,
            REASON_INVALID,
            f"{len(annotations)} boxes, Custom Labels allows at most {MAX_BOXES_PER_IMAGE} per image",
        )
        return result
    metadata = {
        "objects": [{"confidence": ANNOTATION_CONFIDENCE} for _ in annotations],
        "class-map": class_map.as_class_map(a["class_id"] for a in annotations),
        "type": TYPE_DETECTION,
        **_metadata_common(bool(record.get("humanReviewed")), creation_date, job_name),
    }
    result.line = {
        "source-ref": ref,
        DETECTION_ATTRIBUTE: {
            "image_size": [{"width": width, "height": height, "depth": 3}],
            "annotations": annotations,
        },
        f"{DETECTION_ATTRIBUTE}-metadata": metadata,
    }
    return result


def build_classification_line(
    record: Mapping[str, Any], class_map: ClassMap, *, job_name: str, creation_date: str
) -> LineResult:
    """Reviewed classification record -> image-level line with one `label-<i>` / `label-<i>-metadata`
    pair per label (the multi-label form of SRC_CLASSIFICATION; `<i>` is the position on the line,
    the attribute's value is the class id, which Custom Labels ignores)."""
    result = LineResult()
    ref = str(record["source-ref"])
    size = _image_size(record)
    problem = dimensions_problem(*size) if size else None
    if problem:
        result.skip = skip_record(ref, REASON_DIMENSIONS, problem)
        return result
    raw_labels = record.get("labels") or []
    if not raw_labels:
        result.skip = skip_record(ref, REASON_NO_LABEL, "review left the image without a label")
        return result
    names: list[str] = []
    for raw in raw_labels:
        name = raw.get("label") if isinstance(raw, Mapping) else raw
        if not isinstance(name, str) or name not in class_map:
            result.fix("label-dropped-unknown")
            continue
        if name in names:
            result.fix("label-dropped-duplicate")
            continue
        names.append(name)
    if not names:
        result.skip = skip_record(ref, REASON_INVALID, "no label of the run's label set after review")
        return result
    if len(names) > MAX_LABELS_PER_IMAGE:
        result.skip = skip_record(
            ref, REASON_INVALID, f"{len(names)} labels, Custom Labels allows {MAX_LABELS_PER_IMAGE} per image"
        )
        return result
    common = _metadata_common(bool(record.get("humanReviewed")), creation_date, job_name)
    line: dict[str, Any] = {"source-ref": ref}
    for i, name in enumerate(names):
        attribute = f"{CLASSIFICATION_ATTRIBUTE_PREFIX}{i}"
        line[attribute] = class_map.id_of(name)
        line[f"{attribute}-metadata"] = {
            "class-name": name,
            "confidence": ANNOTATION_CONFIDENCE,
            "type": TYPE_CLASSIFICATION,
            **common,
        }
    result.line = line
    return result


def build_line(
    record: Mapping[str, Any], class_map: ClassMap, *, task_type: str, job_name: str, creation_date: str
) -> LineResult:
    if task_type == "detection":
        return build_detection_line(record, class_map, job_name=job_name, creation_date=creation_date)
    if task_type == "classification":
        return build_classification_line(record, class_map, job_name=job_name, creation_date=creation_date)
    raise ValueError(f"unknown task type {task_type!r}")
