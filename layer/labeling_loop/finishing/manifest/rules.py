"""The rules Custom Labels applies to a manifest, each with the page of the developer guide it
comes from (docs/aws-facts.md §2.3).

Two levels:
- line level (`inspect_line`): every rule one line can break, as `Issue`s with a severity;
- manifest level (`ManifestValidator`): streaming counts over every line; raises
  ManifestValidationError only for terminal errors that fail training outright (two buckets, too
  many lines, too many labels, too large, too many invalid lines) and reports the rest (e.g. fewer
  than 2 labels) as warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from labeling_loop.kernel.errors import ManifestValidationError

_DOC = "https://docs.aws.amazon.com/rekognition/latest/customlabels-dg/"
SRC_VALIDATION = _DOC + "md-create-manifest-file-validation-rules.html"
SRC_LIMITS = _DOC + "limits.html"
SRC_LINE_ERRORS = _DOC + "tm-debugging-json-line-errors.html"
SRC_TERMINAL = _DOC + "tm-terminal-errors-reference.html"
SRC_AGGREGATE = _DOC + "tm-debugging-aggregate-errors.html"
SRC_DETECTION = _DOC + "md-create-manifest-file-object-detection.html"
SRC_CLASSIFICATION = _DOC + "md-create-manifest-file-classification.html"
SRC_GT_OUTPUT = "https://docs.aws.amazon.com/sagemaker/latest/dg/sms-data-output.html"

# Limits (SRC_VALIDATION "Limits" table unless noted).
MAX_LINES = 250_000  # "Maximum of 250,000 dataset objects as lines in a manifest" (Error, terminal).
MAX_MANIFEST_BYTES = 1_000_000_000  # "Manifest file size: Maximum 1 GB" (terminal); decimal GB to be safe.
MIN_LABELS = 2  # "Lower boundary on labels >= 2"; SRC_LIMITS says 1 for detection datasets.
MAX_LABELS = 250  # "Upper bound on labels <= 250"; SRC_LIMITS "Maximum number of unique labels per manifest".
MIN_IMAGES_PER_LABEL = 1  # "Lower boundary on total number of valid dataset objects per label >= 1".
MAX_BOXES_PER_IMAGE = 50  # "Maximum bounding boxes per image 50"; more -> ERROR_TOO_MANY_BOUNDING_BOXES.
MAX_LABELS_PER_IMAGE = 50  # SRC_LIMITS "Maximum number of labels per image is 50".
MAX_LABEL_NAME_LENGTH = 256  # SRC_LIMITS label name length.
MAX_INVALID_FRACTION = 0.20  # SRC_VALIDATION note: the 20 % invalidity rule is cumulative (SRC_AGGREGATE).
# SRC_LINE_ERRORS ERROR_BOUNDING_BOX_TOO_SMALL: width and height must be > 1 px after images larger
# than 1280 px are resized for training. The page does not say which side is scaled to 1280; we
# assume the longer side (the smallest scale, so the strictest reading).
TRAINING_RESIZE_PX = 1280
MIN_BOX_SIDE_EXCLUSIVE_PX = 1
# SRC_LIMITS / SRC_LINE_ERRORS ERROR_INVALID_IMAGE_DIMENSION: 64-4096 px per side, aspect <= 20:1.
MIN_IMAGE_SIDE_PX = 64
MAX_IMAGE_SIDE_PX = 4096
MAX_ASPECT_RATIO = 20.0

# Line shapes: SRC_DETECTION, SRC_CLASSIFICATION (Ground Truth job output format, SRC_GT_OUTPUT).
DETECTION_ATTRIBUTE = "bounding-box"
CLASSIFICATION_ATTRIBUTE_PREFIX = "label-"
TYPE_DETECTION = "groundtruth/object-detection"
TYPE_CLASSIFICATION = "groundtruth/image-classification"
# SRC_LINE_ERRORS ERROR_UNSUPPORTED_USE_CASE_TYPE: only these two `type` values are accepted.
SUPPORTED_TYPES = frozenset({TYPE_DETECTION, TYPE_CLASSIFICATION})
# Confidence is required but unused by Custom Labels (SRC_DETECTION, SRC_CLASSIFICATION); reviewed
# records carry no confidence, so every annotation in the manifest says 1.
ANNOTATION_CONFIDENCE = 1

SKIP_STAGE = "manifest"
REASON_INVALID = "invalid-annotation"
REASON_NO_LABEL = "no-label-after-review"
REASON_DIMENSIONS = "image-dimensions"

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Issue:
    """One problem of one line. `error`: Custom Labels drops the line or the box; `warning`: the
    line is accepted but ignored for training or worth a look."""

    code: str
    message: str
    severity: str = ERROR
    source: str = SRC_LINE_ERRORS


def label_name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "label name is empty"
    if len(name) > MAX_LABEL_NAME_LENGTH:  # SRC_LIMITS
        return f"label name is longer than {MAX_LABEL_NAME_LENGTH} characters"
    return None


def training_scale(width: int, height: int) -> float:
    """Factor Custom Labels is assumed to resize an image by for training (see TRAINING_RESIZE_PX)."""
    longest = max(width, height)
    return TRAINING_RESIZE_PX / longest if longest > TRAINING_RESIZE_PX else 1.0


def box_large_enough(box_width: float, box_height: float, width: int, height: int) -> bool:
    """Width and height > 1 px after the training resize (SRC_LINE_ERRORS ERROR_BOUNDING_BOX_TOO_SMALL)."""
    scale = training_scale(width, height)
    return box_width * scale > MIN_BOX_SIDE_EXCLUSIVE_PX and box_height * scale > MIN_BOX_SIDE_EXCLUSIVE_PX


def dimensions_problem(width: int, height: int) -> str | None:
    """Why Custom Labels rejects an image of this size (ERROR_INVALID_IMAGE_DIMENSION), or None."""
    if min(width, height) < MIN_IMAGE_SIDE_PX or max(width, height) > MAX_IMAGE_SIDE_PX:
        return f"{width}x{height} outside {MIN_IMAGE_SIDE_PX}-{MAX_IMAGE_SIDE_PX} px per side"
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        return f"{width}x{height} has an aspect ratio above {MAX_ASPECT_RATIO:g}:1"
    return None


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


_NUMBER_TYPES = (int, float)


def _is_number(value: object) -> bool:
    # type() rather than isinstance(): bool is an int subclass and must not pass as a number.
    return type(value) in _NUMBER_TYPES


def _source_ref_issues(line: Mapping[str, Any]) -> list[Issue]:
    ref = line.get("source-ref")
    if ref is None:
        return [Issue("ERROR_MISSING_SOURCE_REF", "the line has no source-ref")]
    if not isinstance(ref, str) or not ref.startswith("s3://") or "/" not in ref[5:] or ref.endswith("/"):
        return [Issue("ERROR_INVALID_SOURCE_REF_FORMAT", f"source-ref {ref!r} is not s3://bucket/key")]
    return []


def _common_metadata_issues(attr: str, metadata: Mapping[str, Any]) -> list[Issue]:
    issues = []
    if metadata.get("human-annotated") not in ("yes", "no"):
        issues.append(
            Issue(
                "INVALID_HUMAN_ANNOTATED", f"{attr}: human-annotated must be yes or no", source=SRC_GT_OUTPUT
            )
        )
    if not isinstance(metadata.get("creation-date"), str):
        issues.append(Issue("MISSING_CREATION_DATE", f"{attr}: creation-date missing", source=SRC_GT_OUTPUT))
    return issues


def _detection_issues(attr: str, value: Any, metadata: Mapping[str, Any]) -> tuple[list[Issue], set[str]]:
    issues: list[Issue] = []
    names: set[str] = set()
    if not isinstance(value, dict):
        return [
            Issue("INVALID_ANNOTATION_ATTRIBUTE", f"{attr} is not an object", source=SRC_DETECTION)
        ], names
    sizes = value.get("image_size")
    size = sizes[0] if isinstance(sizes, list) and len(sizes) == 1 and isinstance(sizes[0], dict) else {}
    width, height = size.get("width"), size.get("height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        return [
            Issue(
                "INVALID_IMAGE_SIZE",
                f"{attr}: image_size must be one {{width, height, depth}}",
                source=SRC_DETECTION,
            )
        ], names
    problem = dimensions_problem(width, height)
    if problem:
        issues.append(Issue("ERROR_INVALID_IMAGE_DIMENSION", problem))
    annotations = value.get("annotations")
    if not isinstance(annotations, list):
        return [
            *issues,
            Issue("INVALID_ANNOTATIONS", f"{attr}: annotations must be a list", source=SRC_DETECTION),
        ], names
    if len(annotations) > MAX_BOXES_PER_IMAGE:
        issues.append(
            Issue(
                "ERROR_TOO_MANY_BOUNDING_BOXES",
                f"{len(annotations)} boxes, at most {MAX_BOXES_PER_IMAGE} per image",
            )
        )
    if not annotations:
        # SRC_VALIDATION: 0 boxes per image is allowed; such a line is kept but not trained on.
        issues.append(Issue("NO_ANNOTATIONS", "no box on this image (ignored for training)", WARNING))
    objects = metadata.get("objects")
    if (
        not isinstance(objects, list)
        or len(objects) != len(annotations)
        or not all(type(o) is dict and type(o.get("confidence")) in _NUMBER_TYPES for o in objects)
    ):
        issues.append(
            Issue(
                "ERROR_MISSING_BOUNDING_BOX_CONFIDENCE", "objects must hold one {confidence} per annotation"
            )
        )
    class_map = metadata.get("class-map")
    if not isinstance(class_map, dict):
        class_map = {}
    for name in class_map.values():
        problem = label_name_problem(name)
        if problem:
            issues.append(Issue("INVALID_LABEL_NAME", f"{problem}: {name!r}", source=SRC_LIMITS))
    for index, ann in enumerate(annotations):
        where = f"{attr} box {index}"
        if (
            type(ann) is not dict
            or type(ann.get("left")) not in _NUMBER_TYPES
            or type(ann.get("top")) not in _NUMBER_TYPES
            or type(ann.get("width")) not in _NUMBER_TYPES
            or type(ann.get("height")) not in _NUMBER_TYPES
        ):
            issues.append(Issue("ERROR_INVALID_BOUNDING_BOX", f"{where}: left/top/width/height missing"))
            continue
        class_id = ann.get("class_id")
        if str(class_id) not in class_map or isinstance(class_id, bool):
            issues.append(
                Issue("ERROR_MISSING_CLASS_MAP_ID", f"{where}: class_id {class_id!r} not in class-map")
            )
        else:
            names.add(class_map[str(class_id)])
        left, top, box_w, box_h = ann["left"], ann["top"], ann["width"], ann["height"]
        if min(left, top, box_w, box_h) < 0 or left + box_w > width or top + box_h > height:
            issues.append(
                Issue("ERROR_INVALID_BOUNDING_BOX", f"{where}: negative or outside {width}x{height}")
            )
        elif not box_large_enough(box_w, box_h, width, height):
            issues.append(
                Issue(
                    "ERROR_BOUNDING_BOX_TOO_SMALL",
                    f"{where}: {box_w}x{box_h} not > 1 px after resizing {width}x{height} "
                    f"to {TRAINING_RESIZE_PX} px",
                )
            )
    return issues, names


def _classification_issues(
    attr: str, value: Any, metadata: Mapping[str, Any]
) -> tuple[list[Issue], set[str]]:
    issues: list[Issue] = []
    if not isinstance(value, int) or isinstance(value, bool):
        issues.append(
            Issue("INVALID_CLASS_ATTRIBUTE", f"{attr} must be an integer", source=SRC_CLASSIFICATION)
        )
    name = metadata.get("class-name")
    problem = label_name_problem(name)
    if problem:
        issues.append(Issue("INVALID_LABEL_NAME", f"{attr}: {problem}", source=SRC_LIMITS))
    confidence = metadata.get("confidence")
    if not isinstance(confidence, int | float) or not _is_number(confidence) or not 0 <= confidence <= 1:
        issues.append(
            Issue(
                "MISSING_CONFIDENCE", f"{attr}: confidence must be a number in 0-1", source=SRC_CLASSIFICATION
            )
        )
    return issues, ({name} if isinstance(name, str) and not problem else set())


def validate_line(line: Mapping[str, Any]) -> list[Issue]:
    """Every rule of the Custom Labels guide that one line can break (see module constants)."""
    return inspect_line(line)[0]


def inspect_line(line: Mapping[str, Any]) -> tuple[list[Issue], set[str]]:
    """validate_line's issues plus the label names the line annotates (what ManifestValidator counts),
    so a caller that validates before writing does not validate twice."""
    if not isinstance(line, dict):
        return [Issue("ERROR_INVALID_JSON_LINE", "the line is not a JSON object")], set()
    issues = _source_ref_issues(line)
    labels: set[str] = set()
    attributes = [key[: -len("-metadata")] for key in line if key.endswith("-metadata")]
    if not attributes:
        issues.append(
            Issue("ERROR_NO_LABEL_ATTRIBUTES", "the line has no <attribute>/<attribute>-metadata pair")
        )
    for attr in attributes:
        metadata = line[f"{attr}-metadata"]
        if attr not in line or not isinstance(metadata, dict):
            issues.append(
                Issue(
                    "MISSING_LABEL_ATTRIBUTE",
                    f"{attr}-metadata without its attribute {attr}",
                    source=SRC_GT_OUTPUT,
                )
            )
            continue
        kind = metadata.get("type")
        if kind not in SUPPORTED_TYPES:
            issues.append(Issue("ERROR_UNSUPPORTED_USE_CASE_TYPE", f"{attr}: type {kind!r} not supported"))
            continue
        issues.extend(_common_metadata_issues(attr, metadata))
        check = _detection_issues if kind == TYPE_DETECTION else _classification_issues
        found, names = check(attr, line[attr], metadata)
        issues.extend(found)
        labels |= names
    if len(labels) > MAX_LABELS_PER_IMAGE:
        issues.append(
            Issue(
                "TOO_MANY_LABELS_PER_IMAGE",
                f"{len(labels)} labels, at most {MAX_LABELS_PER_IMAGE} per image",
                source=SRC_LIMITS,
            )
        )
    return issues, labels


def errors_only(issues: Iterable[Issue]) -> list[Issue]:
    return [issue for issue in issues if issue.severity == ERROR]


class ManifestValidator:
    """Streaming manifest-level checks: feed every line with `add`, then call `finish`.

    Holds only counters, the per-label image counts (<= 250 labels) and the first bucket seen, so
    memory does not grow with the number of lines. Terminal errors raise ManifestValidationError
    (`add` raises as soon as one is certain, so a doomed run stops early)."""

    def __init__(self, expected_labels: Iterable[str] = (), *, max_lines: int = MAX_LINES) -> None:
        self.expected_labels = sorted(set(expected_labels))
        self.max_lines = max_lines
        self.lines = 0
        self.invalid_lines = 0
        self.bytes = 0
        self.bucket: str | None = None
        self.label_images: dict[str, int] = {}

    @property
    def labels(self) -> list[str]:
        return sorted(self.label_images)

    def add(self, line: Mapping[str, Any], size_bytes: int = 0) -> list[Issue]:
        """Validate one line and count it; `size_bytes` is its encoded size including the newline."""
        issues, labels = inspect_line(line)
        ref = line.get("source-ref") if isinstance(line, dict) else None
        self.count(ref, labels, size_bytes, valid=not errors_only(issues))
        return issues

    def count(
        self, source_ref: object, labels: Iterable[str], size_bytes: int = 0, *, valid: bool = True
    ) -> None:
        """Count a line already inspected with `inspect_line` (what `add` does after validating)."""
        self.lines += 1
        self.bytes += size_bytes
        if self.lines > self.max_lines:
            # SRC_VALIDATION / SRC_TERMINAL ERROR_MANIFEST_ROWS_EXCEEDS_MAXIMUM.
            raise ManifestValidationError(
                f"more than {self.max_lines} lines; Custom Labels reads at most {MAX_LINES} "
                f"({SRC_VALIDATION})"
            )
        if self.bytes > MAX_MANIFEST_BYTES:
            # SRC_VALIDATION / SRC_TERMINAL ERROR_MANIFEST_SIZE_TOO_LARGE.
            raise ManifestValidationError(f"manifest larger than 1 GB ({SRC_VALIDATION})")
        if isinstance(source_ref, str) and source_ref.startswith("s3://"):
            bucket = source_ref[5:].partition("/")[0]
            if self.bucket is None:
                self.bucket = bucket
            elif bucket != self.bucket:
                # SRC_VALIDATION "Images in a dataset must be from same bucket";
                # SRC_TERMINAL ERROR_IMAGES_IN_MULTIPLE_S3_BUCKETS.
                raise ManifestValidationError(
                    f"images in two buckets ({self.bucket}, {bucket}); a dataset's images must all be in "
                    f"one S3 bucket ({SRC_TERMINAL})"
                )
        if not valid:
            self.invalid_lines += 1
            return
        for name in labels:
            self.label_images[name] = self.label_images.get(name, 0) + 1

    def finish(self) -> list[str]:
        """Raise for the terminal errors only known at the end; return the warnings."""
        warnings: list[str] = []
        if len(self.label_images) > MAX_LABELS:
            raise ManifestValidationError(
                f"{len(self.label_images)} labels, at most {MAX_LABELS} ({SRC_VALIDATION})"
            )
        if self.lines and self.invalid_lines / self.lines > MAX_INVALID_FRACTION:
            # SRC_AGGREGATE / SRC_TERMINAL ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST.
            raise ManifestValidationError(
                f"{self.invalid_lines} of {self.lines} lines invalid, more than "
                f"{MAX_INVALID_FRACTION:.0%} ({SRC_AGGREGATE})"
            )
        if self.lines == 0:
            warnings.append(f"the manifest is empty; Custom Labels cannot import it ({SRC_VALIDATION})")
        elif self.invalid_lines:
            warnings.append(
                f"{self.invalid_lines} manifest lines break a Custom Labels rule ({SRC_LINE_ERRORS})"
            )
        if self.lines and len(self.label_images) < MIN_LABELS:
            warnings.append(
                f"the manifest has {len(self.label_images)} label(s); Custom Labels needs at least "
                f"{MIN_LABELS} to train (1 is enough for detection per {SRC_LIMITS}) ({SRC_VALIDATION}); "
                "merge it with other labeled data"
            )
        missing = [
            name for name in self.expected_labels if self.label_images.get(name, 0) < MIN_IMAGES_PER_LABEL
        ]
        if missing:
            shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
            warnings.append(
                f"{len(missing)} label(s) of the run have no image in the manifest: {shown}; "
                f"Custom Labels needs >= {MIN_IMAGES_PER_LABEL} image per label ({SRC_VALIDATION})"
            )
        return warnings
