"""The emulated workforce: what the people of a private workteam, and the job's task Lambdas, make
of each data object when a labeling job's work is done.

- Built-in bounding box (`BoundingBox`) and bounding-box adjustment (`AdjustmentBoundingBox`,
  docs/aws-facts.md §3.4): an emulated annotator compares the prior boxes of the input line with
  the ground truth as the shared reviewer model says (`localcloud/services/reviewer_model.py`, the
  same as the Label Studio reviewers'), each decision right with probability `annotator_accuracy`;
  boxes people draw land within +- `annotator_jitter_px` of the truth, in whole pixels.
- Custom tasks (§3.5): the real pre-annotation Lambda per object, an emulated worker answering our
  label-verification template (docs/data-contracts.md), the real consolidation Lambda on a payload
  file in S3.

Emulator choices where AWS documents nothing:
- with several workers per object, built-in consolidation keeps the first worker's answer;
- a Lambda invocation that raises is retried (`lambda_attempts`), then the job fails.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from io import BytesIO
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from PIL import Image

from localcloud.data.imaging import displayed_size_of
from localcloud.data.truth import Truth
from localcloud.services.base import ServiceError
from localcloud.services.groundtruth.output import JobFailure, box_line, custom_line
from localcloud.services.groundtruth.validation import split_s3
from localcloud.services.reviewer_model import ReviewerModel, review_boxes, review_labels

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

    from localcloud.services.groundtruth.jobs import GroundTruthConfig, LabelingJob

log = logging.getLogger(__name__)

Answers = list[tuple[str, Any]]  # (worker id, what the worker submitted)


class Workforce:
    """Labels a job's objects. Thread-safe: jobs of different names finish in parallel threads."""

    def __init__(
        self,
        s3: S3Client,
        lambda_invoker: Callable[[str, dict[str, Any]], Any],
        truth: dict[str, Truth],
        region: str,
        config: GroundTruthConfig,
    ) -> None:
        self._s3 = s3
        self._invoke = lambda_invoker
        self.truth = truth
        self.region = region
        self.config = config
        self._lock = threading.Lock()
        self.pre_invocations = 0
        self.consolidation_invocations = 0
        self.lambda_calls: list[tuple[str, dict[str, Any]]] = []

    def label(self, job: LabelingJob, indices: list[int]) -> tuple[dict[int, dict[str, Any]], list[int]]:
        """{object index: output line} for the objects labeled, and the indices the pre-annotation
        Lambda sent to no one."""
        if job.builtin_type is not None:
            return self._label_boxes(job, indices), []
        return self._label_custom(job, indices)

    def _workers(self, job: LabelingJob) -> list[str]:
        count = job.request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"]
        return [
            f"private.{self.region}.{hashlib.sha256(f'{job.name}|{n}'.encode()).hexdigest()[:16]}"
            for n in range(count)
        ]

    def _rng(self, job: LabelingJob, index: int, worker: str) -> random.Random:
        digest = hashlib.sha256(f"{self.config.seed}|{job.name}|{index}|{worker}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    # built-in bounding box tasks ------------------------------------------------------

    def _label_boxes(self, job: LabelingJob, indices: list[int]) -> dict[int, dict[str, Any]]:
        attribute = job.request["LabelAttributeName"]
        labels = job.labels or []
        outputs: dict[int, dict[str, Any]] = {}
        for index in indices:
            line = job.lines[index]
            ref = line.get("source-ref", "")
            priors, size = prior_boxes(line, attribute)
            truth = self.truth.get(ref)
            width, height = size or (truth.image_size if truth else None) or self._image_size(ref)
            answers: list[tuple[str, list[dict[str, Any]]]] = []
            for worker in self._workers(job):
                rng = self._rng(job, index, worker)
                answers.append((worker, self._annotate_boxes(priors, truth, labels, rng, width, height)))
            properties = {"width": width, "height": height}
            job.output.worker_response(
                index,
                [
                    (worker, {"boundingBox": {"boundingBoxes": boxes, "inputImageProperties": properties}})
                    for worker, boxes in answers
                ],
            )
            final = answers[0][1]  # emulator choice: the first worker's answer
            status = None
            if job.builtin_type == "AdjustmentBoundingBox":
                unchanged = sorted(_box_key(b) for b in final) == sorted(_box_key(b) for b in priors)
                status = "unadjusted" if unchanged else "adjusted"
            outputs[index] = box_line(
                line, attribute, job.name, (width, height), final, labels, len(answers), status
            )
        return outputs

    def _annotate_boxes(
        self,
        priors: list[dict[str, Any]],
        truth: Truth | None,
        labels: list[str],
        rng: random.Random,
        width: int,
        height: int,
    ) -> list[dict[str, Any]]:
        """One annotator's final boxes (the shared reviewer model, `reviewer_model.py`)."""
        if truth is None:  # nothing to compare with: the annotator accepts what is shown
            return [dict(b) for b in priors if b["label"] in labels]
        scale_x = width / truth.width if truth.width else 1.0
        scale_y = height / truth.height if truth.height else 1.0
        truth_boxes = [
            {
                "label": t.label,
                "left": t.left * scale_x,
                "top": t.top * scale_y,
                "width": t.width * scale_x,
                "height": t.height * scale_y,
            }
            for t in truth.boxes
            if t.label in labels
        ]
        shown = [b for b in priors if b["label"] in labels]  # the task offers only the job's labels
        review = review_boxes(shown, truth_boxes, self.reviewers, rng, width, height)
        return [dict(reviewed.box) for reviewed in review.boxes]

    @property
    def reviewers(self) -> ReviewerModel:
        return ReviewerModel(
            accuracy=self.config.annotator_accuracy, jitter_px=self.config.annotator_jitter_px
        )

    def _image_size(self, ref: str) -> tuple[int, int]:
        """What the labeling UI shows when the line says no size: the image's displayed size."""
        try:
            bucket, key = split_s3(ref, "source-ref")
            data = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            with Image.open(BytesIO(data)) as image:
                return displayed_size_of(image)
        except (ServiceError, ClientError, OSError) as error:
            raise JobFailure(f"ClientError: Could not read the data object {ref}.") from error

    # custom tasks ---------------------------------------------------------------------

    def _call_lambda(self, arn: str, payload: dict[str, Any], counter: str) -> Any:
        with self._lock:
            self.lambda_calls.append((arn, payload))
            setattr(self, counter, getattr(self, counter) + 1)
        last: Exception | None = None
        for attempt in range(1, self.config.lambda_attempts + 1):
            try:
                return self._invoke(arn, payload)
            except Exception as error:  # the Lambda's own failure, whatever it raised
                log.warning("Lambda %s failed (attempt %d): %s", arn, attempt, error)
                last = error
        raise JobFailure(f"ClientError: The Lambda function {arn} failed: {last}")

    def _label_custom(
        self, job: LabelingJob, indices: list[int]
    ) -> tuple[dict[int, dict[str, Any]], list[int]]:
        task = job.request["HumanTaskConfig"]
        attribute = job.request["LabelAttributeName"]
        pre_arn = task["PreHumanTaskLambdaArn"]
        acs_arn = task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"]
        request_items: list[dict[str, Any]] = []
        skipped: list[int] = []
        for index in indices:
            line = job.lines[index]
            pre = self._call_lambda(
                pre_arn,
                {"version": "2018-10-16", "labelingJobArn": job.arn, "dataObject": line},
                "pre_invocations",
            )
            if not isinstance(pre, dict) or "taskInput" not in pre:
                raise JobFailure(f"ClientError: The pre-annotation Lambda {pre_arn} returned no taskInput.")
            # isHumanAnnotationRequired (default true, §3.5); AWS samples spell it
            # humanAnnotationRequired: "true" (§8), so accept both.
            required = pre.get("isHumanAnnotationRequired", pre.get("humanAnnotationRequired", True))
            if str(required).lower() == "false":
                skipped.append(index)
                continue
            answers: Answers = []
            for worker in self._workers(job):
                content = self._verify_labels(pre["taskInput"], line, job, self._rng(job, index, worker))
                answers.append((worker, content))
            job.output.worker_response(index, answers)
            data_object = (
                {"s3Uri": line["source-ref"]} if "source-ref" in line else {"content": line["source"]}
            )
            request_items.append(
                {
                    "datasetObjectId": str(index),
                    "dataObject": data_object,
                    "annotations": [
                        {"workerId": worker, "annotationData": {"content": json.dumps(content)}}
                        for worker, content in answers
                    ],
                }
            )
        if not request_items:
            return {}, skipped
        stamp = datetime.now(UTC).strftime("%Y-%m-%d_%H:%M:%S")
        payload = job.output.consolidation("request", stamp, request_items)
        response = self._call_lambda(
            acs_arn,
            {
                "version": "2018-10-16",
                "labelingJobArn": job.arn,
                "labelCategories": job.labels,
                "labelAttributeName": attribute,
                "roleArn": job.request["RoleArn"],
                "payload": {"s3Uri": payload},
            },
            "consolidation_invocations",
        )
        job.output.consolidation("response", stamp, response)
        if not isinstance(response, list):
            raise JobFailure(f"ClientError: The consolidation Lambda {acs_arn} did not return a list.")
        outputs: dict[int, dict[str, Any]] = {}
        wanted = {item["datasetObjectId"] for item in request_items}
        for item in response:
            try:
                object_id = str(item["datasetObjectId"])
                content = item["consolidatedAnnotation"]["content"][attribute]
            except (KeyError, TypeError) as error:
                raise JobFailure(
                    f"ClientError: The consolidation Lambda {acs_arn} returned an item without "
                    f"datasetObjectId or consolidatedAnnotation.content.{attribute}."
                ) from error
            if object_id in wanted:
                outputs[int(object_id)] = custom_line(job.lines[int(object_id)], attribute, job.name, content)
        return outputs, skipped

    def _verify_labels(
        self, task_input: Any, line: dict[str, Any], job: LabelingJob, rng: random.Random
    ) -> dict[str, Any]:
        """A worker's answer in our label-verification template (docs/data-contracts.md):
        {"labels": {"<label>": {"on": bool}}}, one checkbox per label, pre-checked when predicted."""
        task_input = task_input if isinstance(task_input, dict) else {}
        label_set = task_input.get("labels") or job.labels or []
        label_set = [_label_name(entry) for entry in label_set]
        predicted = {_label_name(entry) for entry in task_input.get("predicted") or []}
        truth = self.truth.get(line.get("source-ref", ""))
        present = sorted(truth.labels) if truth is not None else sorted(predicted)
        checked = set(review_labels(label_set, sorted(predicted), present, self.reviewers, rng))
        answer = {label: {"on": label in checked} for label in label_set}
        return {"labels": answer}


def prior_boxes(line: dict[str, Any], attribute: str) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """The boxes shown to the annotator, and the image size the line gives: every object-detection
    attribute of the input line other than the job's own (adjustment jobs must use a new
    LabelAttributeName, docs/aws-facts.md §3.1, §3.4), read as the ground truth is."""
    shown = Truth(source_ref="", width=0, height=0)
    shown.add_line({k: v for k, v in line.items() if k not in (attribute, f"{attribute}-metadata")})
    return [box.as_dict() for box in shown.boxes], shown.image_size


def _label_name(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("label", entry.get("name", "")))
    return str(entry)


def _box_key(box: dict[str, Any]) -> tuple[str, int, int, int, int]:
    return (box["label"], round(box["left"]), round(box["top"]), round(box["width"]), round(box["height"]))
