"""What the emulated Custom Labels writes when a training ends, as AWS documents it (docs/aws-facts.md
§1.9): the *testing snapshot* (the test images actually tested, each a Ground Truth manifest line
with its ground truth and the version's predictions, every prediction carrying
`rekognition-custom-labels-evaluation-details`), the *training snapshot* (the training images, the
same way) and the *summary file*, under the version's OutputConfig; DescribeProjectVersions points
at them from `TestingDataResult.Output`, `TrainingDataResult.Output` and `EvaluationResult.Summary`.

Line format (the documented example): the ground truth in `rekognition-custom-labels-training-0`
(job-name `rekognition-custom-labels-training-job`; image-level labels one attribute each,
`-training-<k>`), the predictions in `rekognition-custom-labels-evaluation` (detection: boxes in
pixels, one `objects` entry per box with its confidence 0-1 and the details) or
`rekognition-custom-labels-evaluation-<k>` (one per predicted image-level label).

How predictions are scored (the flags): at the assumed threshold, predictions in descending
confidence take the unmatched true box of their label with the highest IoU >= 0.5 (true positive)
or none (false positive); below the threshold a prediction that would match is a false negative,
else a true negative. `is-present-in-ground-truth` is true for the matched ones. F1 = 2 TP / (2 TP
+ FP + FN) with FN = true objects not matched above the threshold, so the F1Score described equals
the F1 a reader computes from the testing snapshot.

Emulator choices where AWS documents nothing: the snapshot and summary keys
(`<S3KeyPrefix><project>-<version>/testing.manifest`, `.../training.manifest`,
`<S3KeyPrefix>EvaluationSummary-<project>-<version>.json`, the summary name as the summary-file
reference gives it); `TestingDataResult.Input` is `{"Assets": [], "AutoCreate": <split>}` and
`Validation` is not emulated; the output bucket is created if it does not exist (a version registered
with `add_model` was trained before the local cloud, into a bucket of its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from labeling_loop.kernel.geometry import iou_of_dicts

from localcloud.data.truth import Truth, load_truth

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

TRAINING_JOB = "rekognition-custom-labels-training-job"
EVALUATION_JOB = "rekognition-custom-labels-evaluation-job"
DETECTION, CLASSIFICATION = "groundtruth/object-detection", "groundtruth/image-classification"


@dataclass
class Scored:
    """One image's predictions scored against its ground truth."""

    line: dict[str, Any]
    tp: int = 0
    fp: int = 0
    fn: int = 0
    by_label: dict[str, list[int]] = field(default_factory=dict)  # label -> [tp, fp, fn]


def score_image(
    truth: Truth, predictions: list[dict[str, Any]], threshold: float, detection: bool, created: str
) -> Scored:
    """The snapshot line of one image and its counts (module docstring)."""
    line: dict[str, Any] = {"source-ref": truth.source_ref}
    labels = sorted({*truth.labels, *(p["Name"] for p in predictions)})
    class_ids = {label: index for index, label in enumerate(labels)}
    scored = Scored(line)
    if detection:
        _score_boxes(scored, truth, predictions, threshold, class_ids, created)
    else:
        _score_labels(scored, truth, predictions, threshold, created)
    return scored


def _count(scored: Scored, label: str, kind: int) -> None:
    scored.by_label.setdefault(label, [0, 0, 0])[kind] += 1


def _score_boxes(
    scored: Scored,
    truth: Truth,
    predictions: list[dict[str, Any]],
    threshold: float,
    class_ids: dict[str, int],
    created: str,
) -> None:
    width, height = truth.width, truth.height
    free = [b.as_dict() for b in truth.boxes]
    boxes, objects = [], []
    for p in sorted(predictions, key=lambda p: -p["Confidence"]):
        if "Geometry" not in p:
            continue
        ratio = p["Geometry"]["BoundingBox"]
        box = {
            "label": p["Name"],
            "left": ratio["Left"] * width,
            "top": ratio["Top"] * height,
            "width": ratio["Width"] * width,
            "height": ratio["Height"] * height,
        }
        overlap, best = max(
            ((iou_of_dicts(box, t), i) for i, t in enumerate(free) if t["label"] == box["label"]),
            default=(0.0, -1),
        )
        present = overlap >= 0.5
        above = p["Confidence"] >= threshold
        if present and above:
            del free[best]
        flags = _flags(above, present)
        if above:
            scored.tp += present
            scored.fp += not present
            _count(scored, box["label"], 0 if present else 1)
        boxes.append(
            {
                "class_id": class_ids[box["label"]],
                **{k: round(box[k]) for k in ("left", "top", "width", "height")},
            }
        )
        objects.append(
            {
                "confidence": round(p["Confidence"] / 100, 4),
                "rekognition-custom-labels-evaluation-details": flags,
            }
        )
    for missed in free:
        scored.fn += 1
        _count(scored, missed["label"], 2)
    names = {str(i): label for label, i in class_ids.items()}
    size = [{"width": width, "height": height, "depth": 3}]
    scored.line["rekognition-custom-labels-training-0"] = {
        "annotations": [
            {
                "class_id": class_ids[b.label],
                "left": b.left,
                "top": b.top,
                "width": b.width,
                "height": b.height,
            }
            for b in truth.boxes
        ],
        "image_size": size,
    }
    scored.line["rekognition-custom-labels-training-0-metadata"] = {
        "job-name": TRAINING_JOB,
        "class-map": names,
        "human-annotated": "yes",
        "objects": [{"confidence": 1.0} for _ in truth.boxes],
        "creation-date": created,
        "type": DETECTION,
    }
    scored.line["rekognition-custom-labels-evaluation"] = {"annotations": boxes, "image_size": size}
    scored.line["rekognition-custom-labels-evaluation-metadata"] = {
        "confidence": max((o["confidence"] for o in objects), default=0.0),
        "job-name": EVALUATION_JOB,
        "class-map": names,
        "human-annotated": "no",
        "objects": objects,
        "creation-date": created,
        "type": DETECTION,
    }


def _score_labels(
    scored: Scored, truth: Truth, predictions: list[dict[str, Any]], threshold: float, created: str
) -> None:
    true_labels = set(truth.labels)
    found: set[str] = set()
    for k, label in enumerate(truth.labels):
        scored.line[f"rekognition-custom-labels-training-{k}"] = 1
        scored.line[f"rekognition-custom-labels-training-{k}-metadata"] = {
            "confidence": 1.0,
            "job-name": TRAINING_JOB,
            "class-name": label,
            "human-annotated": "yes",
            "creation-date": created,
            "type": CLASSIFICATION,
        }
    for k, p in enumerate(sorted(predictions, key=lambda p: -p["Confidence"])):
        present, above = p["Name"] in true_labels, p["Confidence"] >= threshold
        if above:
            scored.tp += present
            scored.fp += not present
            _count(scored, p["Name"], 0 if present else 1)
            if present:
                found.add(p["Name"])
        scored.line[f"rekognition-custom-labels-evaluation-{k}"] = 1
        scored.line[f"rekognition-custom-labels-evaluation-{k}-metadata"] = {
            "confidence": round(p["Confidence"] / 100, 4),
            "job-name": EVALUATION_JOB,
            "class-name": p["Name"],
            "human-annotated": "no",
            "creation-date": created,
            "type": CLASSIFICATION,
            "rekognition-custom-labels-evaluation-details": _flags(above, present),
        }
    for label in true_labels - found:
        scored.fn += 1
        _count(scored, label, 2)


def _flags(above: bool, present: bool) -> dict[str, Any]:
    return {
        "version": 1,
        "ground-truth-labelling-jobs": [TRAINING_JOB],
        "is-true-positive": above and present,
        "is-true-negative": not above and not present,
        "is-false-positive": above and not present,
        "is-false-negative": not above and present,
        "is-present-in-ground-truth": present,
    }


def f1(tp: int, fp: int, fn: int) -> float | None:
    return round(2 * tp / (2 * tp + fp + fn), 4) if 2 * tp + fp + fn else None


@dataclass
class Evaluation:
    """A version's evaluation over a set of images: snapshot lines and totals."""

    lines: list[dict[str, Any]]
    tp: int
    fp: int
    fn: int
    by_label: dict[str, list[int]]

    @property
    def f1(self) -> float | None:
        return f1(self.tp, self.fp, self.fn)


def evaluate(
    entries: Mapping[str, Mapping[str, Any]], predict: Any, threshold: float, detection: bool
) -> Evaluation:
    """Score `predict(ref, width, height)` on the dataset entries (their labels are the truth the
    service knows). Entries without an image size cannot be scored as boxes and are left out, as
    images the service cannot verify are left out of its snapshots."""
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    lines: list[dict[str, Any]] = []
    by_label: dict[str, list[int]] = {}
    tp = fp = fn = 0
    for ref, truth in sorted(load_truth(entries.values(), "s3://unused/").items()):
        if detection and not (truth.width and truth.height):
            continue
        scored = score_image(
            truth, predict(ref, truth.width or 1, truth.height or 1), threshold, detection, created
        )
        lines.append(scored.line)
        tp, fp, fn = tp + scored.tp, fp + scored.fp, fn + scored.fn
        for label, counts in scored.by_label.items():
            total = by_label.setdefault(label, [0, 0, 0])
            for i in range(3):
                total[i] += counts[i]
    return Evaluation(lines, tp, fp, fn, by_label)


def summary_file(arn: str, test: Evaluation, training_images: int, threshold: float) -> dict[str, Any]:
    """The summary file's documented shape (docs/aws-facts.md §1.9)."""

    def metrics(tp: int, fp: int, fn: int) -> dict[str, Any]:
        return {
            "Precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
            "Recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
            "F1Score": f1(tp, fp, fn) or 0.0,
        }

    return {
        "Version": 1,
        "EvaluationDetails": {
            "ProjectVersionArn": arn,
            "EvaluationEndTimestamp": datetime.now(UTC).isoformat(),
            "Labels": sorted(test.by_label),
            "NumberOfTrainingImages": training_images,
            "NumberOfTestingImages": len(test.lines),
        },
        "AggregatedEvaluationResults": {"Metrics": metrics(test.tp, test.fp, test.fn)},
        "LabelEvaluationResults": sorted(
            (
                {"Label": label, "Metrics": {**metrics(*counts), "Threshold": threshold / 100}}
                for label, counts in test.by_label.items()
            ),
            key=lambda row: -row["Metrics"]["F1Score"],
        ),
    }


def write(
    s3: S3Client,
    bucket: str,
    key: str,
    lines: Iterable[Mapping[str, Any]] | None = None,
    document: Any = None,
) -> dict[str, Any]:
    """Put one output object (JSON Lines or one JSON document) and return its `S3Object`."""
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        region = s3.meta.region_name
        where: dict[str, Any] = (
            {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=bucket, **where)
    body = "".join(json.dumps(line) + "\n" for line in lines) if lines is not None else json.dumps(document)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return {"Bucket": bucket, "Name": key}


def manifest_asset(s3_object: dict[str, Any]) -> dict[str, Any]:
    return {"GroundTruthManifest": {"S3Object": s3_object}}
