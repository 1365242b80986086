"""Ground Truth output -> normalized reviewed records and skip records (docs/data-contracts.md).

Completed and Stopped jobs: answered images become reviewed records, the rest `not-reviewed`.
Failed (or missing) jobs: the same, except that images without an answer are `review-failed`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from botocore.exceptions import ClientError

from labeling_loop.kernel.errors import ReviewBackendError
from labeling_loop.kernel.geometry import iou_of_dicts, round_half_up
from labeling_loop.kernel.jsonl import JsonDict, JsonlWriter, list_keys, read_jsonl
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.answers import (
    InvalidAnswer,
    check_boxes,
    check_labels,
    finite,
    is_finite_number,
    names,
    run_labels,
)
from labeling_loop.review.groundtruth.jobs import (
    CLASSIFICATION_ATTRIBUTE,
    DETECTION_ATTRIBUTE,
    LABEL_ATTRIBUTE,
    PREDICTIONS_ATTRIBUTE,
)

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client
    from types_boto3_sagemaker import SageMakerClient

# A person's box counts as an adjustment of a prediction when they overlap by at least this IoU.
# Same threshold as the run report's model quality, so "adjusted" always means "a true positive
# that people moved", and precision/recall read the same matches.
MATCH_IOU = 0.5
# Worker-response files read per job for people's time (a sample: one read each).
TIMED_SAMPLE = 300


class CollectResult(TypedDict):
    reviewed: int
    skipped: int
    jobs: dict[str, str]
    failedJobs: list[JsonDict]


TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})
_BOX_KEYS = ("left", "top", "width", "height")


def _boxes(line: JsonDict, attribute: str) -> list[JsonDict]:
    """Pixel boxes {label, left, top, width, height} of a Ground Truth object-detection attribute.
    Raises InvalidAnswer for coordinates that are not finite numbers."""
    body = line.get(attribute) or {}
    class_map = (line.get(f"{attribute}-metadata") or {}).get("class-map") or {}
    annotations = body.get("annotations") if isinstance(body, dict) else None
    if not isinstance(annotations, list):
        raise InvalidAnswer(f"{attribute}.annotations is not a list")
    boxes = []
    for ann in annotations:
        if not isinstance(ann, dict):
            raise InvalidAnswer(f"a box of {attribute} is not an object")
        class_id = str(ann.get("class_id"))
        box = {k: finite(ann.get(k), f"box {k}") for k in _BOX_KEYS}
        boxes.append({"label": class_map.get(class_id, class_id), **box})
    return boxes


def _same_box(a: JsonDict, b: JsonDict) -> bool:
    return all(float(a[k]) == float(b[k]) for k in _BOX_KEYS)


def diff_boxes(predicted: list[JsonDict], reviewed: list[JsonDict]) -> tuple[list[JsonDict], list[JsonDict]]:
    """(final boxes with status kept|adjusted|added, removed predictions).

    Matching, one prediction per reviewed box: identical box and label = kept; then, greedily by
    IoU, same label with IoU >= MATCH_IOU = adjusted; then a different label with IoU >= MATCH_IOU =
    adjusted (relabelled). What is left is added (reviewed) or removed (predicted).
    """
    pred_left = set(range(len(predicted)))
    status: dict[int, str] = {}
    for r, box in enumerate(reviewed):
        for p in sorted(pred_left):
            if predicted[p]["label"] == box["label"] and _same_box(predicted[p], box):
                status[r] = "kept"
                pred_left.discard(p)
                break
    for same_label in (True, False):
        pairs = sorted(
            (
                (iou_of_dicts(predicted[p], reviewed[r]), r, p)
                for r in range(len(reviewed))
                if r not in status
                for p in pred_left
                if (predicted[p]["label"] == reviewed[r]["label"]) == same_label
            ),
            key=lambda t: (-t[0], t[1], t[2]),
        )
        for iou, r, p in pairs:
            if iou < MATCH_IOU:
                break
            if r in status or p not in pred_left:
                continue
            status[r] = "adjusted"
            pred_left.discard(p)
    boxes = [{**box, "status": status.get(r, "added")} for r, box in enumerate(reviewed)]
    removed = [dict(predicted[p]) for p in sorted(pred_left)]
    return boxes, removed


def _image_size(line: JsonDict, *attributes: str) -> JsonDict | None:
    for attribute in attributes:
        body = line.get(attribute) or {}
        size = body.get("image_size")
        if isinstance(size, list) and size:
            return dict(size[0])
        if isinstance(size, dict):
            return dict(size)
    return None


def _failure(output: JsonDict | None, attribute: str) -> str | None:
    """Why an output line holds no answer, or None when it holds one."""
    if output is None:
        return "no answer in the labeling job's output"
    metadata = output.get(f"{attribute}-metadata") or {}
    if metadata.get("failure-reason"):
        return str(metadata["failure-reason"])
    if output.get(attribute) is None:
        return "no answer in the labeling job's output"
    return None


def _in_our_frame(boxes: list[JsonDict], ours: JsonDict | None, theirs: JsonDict | None) -> list[JsonDict]:
    """Boxes drawn on the image as Ground Truth sized it, in pixels of the image as the run measured
    it (the run's size is the one the manifest states). The same size, nearly always. The scaled
    edges are rounded half up, as every other stage rounds (kernel/geometry.py), not clipped: an
    answer outside the image is still refused as one."""
    if not ours or not theirs or (ours["width"], ours["height"]) == (theirs["width"], theirs["height"]):
        return boxes
    sx = finite(ours["width"], "image width") / finite(theirs["width"], "answer's image width")
    sy = finite(ours["height"], "image height") / finite(theirs["height"], "answer's image height")
    return [_scaled(b, sx, sy) for b in boxes]


def _scaled(box: JsonDict, sx: float, sy: float) -> JsonDict:
    if not all(is_finite_number(box.get(key)) for key in ("left", "top", "width", "height")):
        return box  # not a box at all: check_boxes refuses it with its reason
    left, right = round_half_up(box["left"] * sx), round_half_up((box["left"] + box["width"]) * sx)
    top, bottom = round_half_up(box["top"] * sy), round_half_up((box["top"] + box["height"]) * sy)
    return {**box, "left": left, "top": top, "width": right - left, "height": bottom - top}


def reviewed_detection(job: str, source: JsonDict, output: JsonDict, labels: Collection[str]) -> JsonDict:
    """Raises InvalidAnswer (with its skip reason) for an answer the run cannot use (answers.py)."""
    predicted = _boxes(source, PREDICTIONS_ATTRIBUTE)
    metadata = output.get(f"{DETECTION_ATTRIBUTE}-metadata") or {}
    size = _image_size(source, PREDICTIONS_ATTRIBUTE) or _image_size(output, DETECTION_ATTRIBUTE)
    if not size:
        raise InvalidAnswer("neither the task nor the answer gives the image's size")
    unadjusted = metadata.get("adjustment-status") == "unadjusted"
    # Ground Truth says no worker changed anything: the predictions stand as they are.
    answered = (
        predicted
        if unadjusted
        else _in_our_frame(
            _boxes(output, DETECTION_ATTRIBUTE), size, _image_size(output, DETECTION_ATTRIBUTE)
        )
    )
    check_boxes(
        answered, finite(size.get("width"), "image width"), finite(size.get("height"), "image height"), labels
    )
    boxes: list[JsonDict]
    removed: list[JsonDict]
    if unadjusted:
        boxes, removed = [{**box, "status": "kept"} for box in predicted], []
    else:
        boxes, removed = diff_boxes(predicted, answered)
    return {
        "source-ref": source["source-ref"],
        "taskType": "detection",
        "image_size": size,
        "boxes": boxes,
        "labels": [],
        "removed": removed,
        "reviewer": f"groundtruth:{job}",
        "humanReviewed": True,
    }


def reviewed_classification(
    job: str, source: JsonDict, output: JsonDict, labels: Collection[str]
) -> JsonDict:
    """Raises InvalidAnswer (with its skip reason) for an answer the run cannot use (answers.py)."""
    body = source.get(PREDICTIONS_ATTRIBUTE) or {}
    predicted = [p["label"] for p in body.get("labels", []) if isinstance(p, dict) and "label" in p]
    answer = output.get(CLASSIFICATION_ATTRIBUTE)
    final = list(
        dict.fromkeys(names((answer if isinstance(answer, dict) else {}).get("labels") or [], "labels"))
    )
    check_labels(final, labels)
    return {
        "source-ref": source["source-ref"],
        "taskType": "classification",
        "image_size": _image_size(source, PREDICTIONS_ATTRIBUTE),
        "boxes": [],
        # Statuses are derived from the input's predictions, not from the consolidation's
        # rejected/added, so the record is right whatever wrote the answer.
        "labels": [{"label": label, "status": "kept" if label in predicted else "added"} for label in final],
        "removed": [{"label": label} for label in predicted if label not in final],
        "reviewer": f"groundtruth:{job}",
        "humanReviewed": True,
    }


def _describe(sagemaker: SageMakerClient, name: str) -> Mapping[str, Any]:
    try:
        return sagemaker.describe_labeling_job(LabelingJobName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ResourceNotFoundException"):
            # Never created (or deleted): its images cannot have been reviewed.
            return {"LabelingJobStatus": "NotFound", "FailureReason": f"labeling job {name} not found"}
        raise


def _output_manifest_uri(job: JsonDict, described: Mapping[str, Any]) -> S3Uri:
    uri = (described.get("LabelingJobOutput") or {}).get("OutputDatasetS3Uri")
    if uri:
        return S3Uri.parse(uri)
    # Before Ground Truth reports it (or for a job that failed early): its documented layout.
    return S3Uri.parse(job["outputUri"]).join(job["jobName"], "manifests/output/output.manifest")


def _seconds_of(document: Any) -> float | None:
    """The people's seconds on one data object: per worker, `timeSpentInSeconds`, else submission
    minus acceptance (docs/aws-facts.md §3.6), summed over the workers who answered."""
    total, found = 0.0, False
    for answer in (document or {}).get("answers") or []:
        if not isinstance(answer, dict):
            continue
        seconds = answer.get("timeSpentInSeconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds < 86_400:
            try:
                accepted = datetime.fromisoformat(str(answer["acceptanceTime"]).replace("Z", "+00:00"))
                submitted = datetime.fromisoformat(str(answer["submissionTime"]).replace("Z", "+00:00"))
            except (KeyError, ValueError):
                continue
            seconds = (submitted - accepted).total_seconds()
            if not 0 <= seconds < 86_400:
                continue
        total, found = total + float(seconds), True
    return total if found else None


def worker_seconds(s3: S3Client, job: JsonDict, sample: int = TIMED_SAMPLE) -> dict[int, float]:
    """{data object index: people's seconds on it} for a sample of a job's answered objects: the
    worker-response files of `annotations/worker-response/iteration-1/<index>/` (§3.6). A sample,
    chosen by a hash of the index, so a job of 100,000 objects costs `sample` reads, not 100,000;
    the report scales the mean to every reviewed image."""
    prefix = S3Uri.parse(job["outputUri"]).join(job["jobName"], "annotations/worker-response/iteration-1/")
    files: dict[int, str] = {}
    for key in list_keys(s3, prefix):
        index = key[len(prefix.key) :].split("/", 1)[0]
        if index.isdigit():
            files.setdefault(int(index), key)
    chosen = sorted(files, key=lambda i: hashlib.sha256(f"{job['jobName']}|{i}".encode()).digest())[:sample]

    def read(index: int) -> tuple[int, float | None]:
        try:
            body = s3.get_object(Bucket=prefix.bucket, Key=files[index])["Body"].read()
            return index, _seconds_of(json.loads(body))
        except (ClientError, ValueError):
            return index, None

    with ThreadPoolExecutor(max_workers=8) as pool:
        return {i: s for i, s in pool.map(read, chosen) if s is not None}


def _skip(source_ref: str, reason: str, detail: str) -> JsonDict:
    return {"source-ref": source_ref, "stage": "review", "reason": reason, "detail": detail}


def collect(
    s3: S3Client, sagemaker: SageMakerClient, layout: RunLayout, jobs: list[JsonDict]
) -> CollectResult:
    """Turn every input image of every job into one reviewed record or one skip record.

    Completed and Stopped jobs: answered images become reviewed records, the rest `not-reviewed`.
    Failed (or missing) jobs: the same, except that images without an answer are `review-failed`.
    Memory holds one job's output lines at a time (at most maxImagesPerJob)."""
    summary: CollectResult = {"reviewed": 0, "skipped": 0, "jobs": {}, "failedJobs": []}
    labels = run_labels(s3, layout) if jobs else frozenset()
    with (
        JsonlWriter(s3, layout.reviewed) as reviewed_out,
        JsonlWriter(s3, layout.skipped_part("review", 0)) as skipped_out,
    ):
        for job in jobs:
            name = job["jobName"]
            described = _describe(sagemaker, name)
            status = described.get("LabelingJobStatus", "Unknown")
            if status not in TERMINAL_STATUSES | {"NotFound"}:
                raise ReviewBackendError(f"labeling job {name} is {status}, not finished: cannot collect it")
            summary["jobs"][name] = status
            failed = status in ("Failed", "NotFound")
            if failed:
                summary["failedJobs"].append(
                    {"jobName": name, "failureReason": described.get("FailureReason", status)}
                )
            attribute = job.get("labelAttributeName") or LABEL_ATTRIBUTE[job["taskType"]]
            outputs = {
                line["source-ref"]: line
                for line in read_jsonl(s3, _output_manifest_uri(job, described), missing_ok=True)
                if "source-ref" in line
            }
            seconds = worker_seconds(s3, job) if outputs else {}
            for index, source in enumerate(read_jsonl(s3, S3Uri.parse(job["inputManifestUri"]))):
                ref = source["source-ref"]
                output = outputs.get(ref)
                why = _failure(output, attribute)
                if why is not None or output is None:
                    if failed:
                        reason = "review-failed"
                        why = f"labeling job {name} {status}: {described.get('FailureReason', status)}"
                    else:
                        reason = "not-reviewed"
                        why = f"labeling job {name} {status}: {why}"
                    skipped_out.write(_skip(ref, reason, why))
                    continue
                try:
                    if job["taskType"] == "detection":
                        record = reviewed_detection(name, source, output, labels)
                    else:
                        record = reviewed_classification(name, source, output, labels)
                except InvalidAnswer as error:
                    skipped_out.write(_skip(ref, error.reason, f"labeling job {name}: {error}"))
                    continue
                if index in seconds:
                    record["reviewSeconds"] = round(seconds[index], 1)
                reviewed_out.write(record)
    summary["reviewed"] = reviewed_out.count
    summary["skipped"] = skipped_out.count
    return summary
