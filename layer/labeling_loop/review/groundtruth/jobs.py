"""Ground Truth labeling jobs of a run: their names, their input manifests, label categories and
worker templates, and the job items the state machine's Map creates and polls.

Formats are in docs/data-contracts.md; Ground Truth facts in docs/aws-facts.md §3.
Detection images go to the AWS built-in *bounding-box adjustment* task (pre-filled with the model's
boxes); image-level labels go to our own *label verification* custom task, because Ground Truth has
no built-in adjustment/verification for image classification.

Worker templates are real files beside this module (`templates/*.liquid.html`), uploaded as they are.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from itertools import chain, islice
from typing import Any, Literal

from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.jsonl import JsonDict, JsonlWriter, write_json
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_config import RunConfig, TaskType
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.groundtruth.aws_facts import (
    AWS_TASK_LAMBDA_ACCOUNTS,
    BUILTIN_TASK_TYPES,
    MAX_DETECTION_LABELS,
)
from labeling_loop.review.selection import PlanSummary

# --------------------------------------------------------------------------------------------------
# Constants from the Ground Truth documentation
# --------------------------------------------------------------------------------------------------

JobKind = Literal["det", "cls"]

# The attribute our input manifests carry the model's predictions under, and the attributes the
# review jobs write. Adjustment/verification jobs must use a LabelAttributeName different from the
# one holding the labels under review (docs/aws-facts.md §3.1, §3.4); none may end in `-ref` or `-metadata`.
PREDICTIONS_ATTRIBUTE = "model-predictions"
DETECTION_ATTRIBUTE = "reviewed-boxes"
CLASSIFICATION_ATTRIBUTE = "reviewed-labels"
LABEL_ATTRIBUTE = {"detection": DETECTION_ATTRIBUTE, "classification": CLASSIFICATION_ATTRIBUTE}

# Label categories through the API (Ground Truth quotas, docs/aws-facts.md §3.1): bounding box
# MAX_DETECTION_LABELS (aws_facts.py, with the conflicting figure), label verification unlimited.
MAX_LABEL_CHARS = 256
LABEL_CATEGORY_DOCUMENT_VERSION = "2018-11-28"

JOB_NAME_MAX = 63
_JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_NOT_NAME_CHARS = re.compile(r"[^a-z0-9-]+")

# TaskAvailabilityLifetimeInSeconds: 60 s to 30 days for a private workforce, 12 h for the public
# one; MaxConcurrentTaskCount 1-5000 (docs/aws-facts.md §3.2).
_PUBLIC_WORKTEAM_MARKER = ":394669845002:workteam/public-crowd/"
AVAILABILITY_MIN_S = 60
AVAILABILITY_MAX_S = 2_592_000
PUBLIC_AVAILABILITY_MAX_S = 43_200
MAX_CONCURRENT_TASKS = 5000
# Tasks a workforce may hold at once for one job; far above any private team's size.
CONCURRENT_TASKS = 1000


# --------------------------------------------------------------------------------------------------
# Built-in Lambdas and job names
# --------------------------------------------------------------------------------------------------


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def builtin_lambda_arns(region: str, task_type: str = "AdjustmentBoundingBox") -> tuple[str, str]:
    """(PreHumanTaskLambdaArn, AnnotationConsolidationLambdaArn) of an AWS-owned built-in task."""
    if task_type not in BUILTIN_TASK_TYPES:
        raise InvalidInput(f"taskType {task_type!r} is not a Ground Truth built-in task type")
    account = AWS_TASK_LAMBDA_ACCOUNTS.get(region)
    if account is None:
        raise InvalidInput(
            f"region {region!r} has no Ground Truth built-in Lambdas; use one of "
            + ", ".join(sorted(AWS_TASK_LAMBDA_ACCOUNTS))
        )
    base = f"arn:{_partition(region)}:lambda:{region}:{account}:function"
    return f"{base}:PRE-{task_type}", f"{base}:ACS-{task_type}"


def job_name(prefix: str, run_id: str, kind: JobKind, index: int, wave: int = 1) -> str:
    """`<prefix>-<runId>-<det|cls>-<NNN>` (`-<det|cls>-w2-<NNN>` in a second review wave), lower
    case, valid for CreateLabelingJob.

    Names are unique per account and region, case-insensitively, so they are lower-cased. When the
    whole name is longer than 63 characters the `<prefix>-<runId>` part is cut and a short hash of
    it appended: two long run ids that share their first 50 characters still get different names,
    and the same inputs always give the same name (a retried step finds its own jobs).
    """
    if kind not in ("det", "cls"):
        raise InvalidInput(f"job kind must be 'det' or 'cls', not {kind!r}")
    if index < 0:
        raise InvalidInput("job index must be >= 0")
    base = _NOT_NAME_CHARS.sub("-", f"{prefix}-{run_id}".lower()).strip("-")
    if not base:
        raise InvalidInput("jobNamePrefix and runId leave no letter or digit for a job name")
    suffix = f"-{kind}-{index:03d}" if wave == 1 else f"-{kind}-w{wave}-{index:03d}"
    if len(base) + len(suffix) > JOB_NAME_MAX:
        digest = hashlib.sha256(base.encode()).hexdigest()[:8]
        keep = JOB_NAME_MAX - len(suffix) - len(digest) - 1
        base = f"{base[:keep].rstrip('-')}-{digest}"
    name = base + suffix
    if not _JOB_NAME_RE.match(name):  # pragma: no cover - guarded by construction
        raise InvalidInput(f"cannot build a valid labeling job name from {prefix!r} and {run_id!r}")
    return name


# --------------------------------------------------------------------------------------------------
# Planning: input manifests, label categories, worker templates, job items
# --------------------------------------------------------------------------------------------------


def _template(name: str) -> str:
    """A worker task template shipped beside this module (templates/<name>.liquid.html)."""
    return (files("labeling_loop.review.groundtruth") / "templates" / f"{name}.liquid.html").read_text(
        "utf-8"
    )


DETECTION_TEMPLATE = _template("detection")
CLASSIFICATION_TEMPLATE = _template("classification")

_TEXTS: dict[str, dict[str, Any]] = {
    "detection": {
        "taskTitle": "Check and fix the model's bounding boxes",
        "taskDescription": "Adjust, delete or add boxes: one tight box per object of the listed labels.",
        "taskKeywords": ["image", "bounding box", "object detection", "review"],
    },
    "classification": {
        "taskTitle": "Check the model's image labels",
        "taskDescription": "Tick the labels that apply to the image and untick the ones that do not.",
        "taskKeywords": ["image", "classification", "label verification", "review"],
    },
}


def _check_labels(task_type: str, labels: list[str]) -> None:
    if len(set(labels)) != len(labels):
        raise InvalidInput("labels must be unique")
    for label in labels:
        if not isinstance(label, str) or not 1 <= len(label) <= MAX_LABEL_CHARS:
            raise InvalidInput(f"label {label!r} must be a string of 1 to {MAX_LABEL_CHARS} characters")
    if task_type == "detection":
        if not 1 <= len(labels) <= MAX_DETECTION_LABELS:
            raise InvalidInput(
                f"labels: a bounding-box job takes 1 to {MAX_DETECTION_LABELS} labels, got {len(labels)}"
            )
    elif len(labels) < 2:
        # The label category file of a classification-like job needs at least two labels.
        raise InvalidInput(f"labels: label verification needs at least 2 labels, got {len(labels)}")


def label_categories(labels: list[str]) -> JsonDict:
    """The label category configuration file (CreateLabelingJob LabelCategoryConfigS3Uri)."""
    return {
        "document-version": LABEL_CATEGORY_DOCUMENT_VERSION,
        "labels": [{"label": label} for label in labels],
    }


def detection_manifest_line(task: JsonDict, class_ids: dict[str, int], creation_date: str) -> JsonDict:
    """A detection review task as an input line: the predictions in Ground Truth's object-detection
    format under `model-predictions`, the form the adjustment task and its template read."""
    size = task["image_size"]
    annotations: list[JsonDict] = []
    objects: list[JsonDict] = []
    class_map: dict[str, str] = {}
    for prediction in task.get("predictions", []):
        box = prediction.get("box")
        if box is None:
            continue  # an image-level label has no place in a box adjustment
        label = prediction["label"]
        if label not in class_ids:
            raise InvalidInput(f"predicted label {label!r} of {task['source-ref']} is not in labels")
        class_id = class_ids[label]
        class_map[str(class_id)] = label
        annotations.append(
            {
                "class_id": class_id,
                "left": int(box["left"]),
                "top": int(box["top"]),
                "width": int(box["width"]),
                "height": int(box["height"]),
            }
        )
        objects.append({"confidence": round(float(prediction.get("confidence", 0.0)) / 100.0, 4)})
    return {
        "source-ref": task["source-ref"],
        PREDICTIONS_ATTRIBUTE: {
            "image_size": [{"width": size["width"], "height": size["height"], "depth": size.get("depth", 3)}],
            "annotations": annotations,
        },
        f"{PREDICTIONS_ATTRIBUTE}-metadata": {
            "objects": objects,
            "class-map": class_map,
            "type": "groundtruth/object-detection",
            "human-annotated": "no",
            "creation-date": creation_date,
            "job-name": PREDICTIONS_ATTRIBUTE,
        },
    }


def classification_manifest_line(task: JsonDict, labels: list[str]) -> JsonDict:
    """A classification review task as an input line for our verification task.

    `image_size` rides along inside `model-predictions` (Ground Truth passes unknown keys through to
    the output) so that collected records carry the displayed size like detection ones do.
    """
    predictions = [
        {"label": p["label"], "confidence": round(float(p.get("confidence", 0.0)) / 100.0, 4)}
        for p in task.get("predictions", [])
    ]
    body: JsonDict = {"labels": predictions, "label-set": list(labels)}
    if task.get("image_size"):
        body["image_size"] = task["image_size"]
    return {"source-ref": task["source-ref"], PREDICTIONS_ATTRIBUTE: body}


def _chunks(tasks: Iterable[JsonDict], size: int) -> Iterator[Iterator[JsonDict]]:
    """Consecutive runs of at most `size` tasks, without materialising them (tasks stream from S3)."""
    iterator = iter(tasks)
    for first in iterator:
        chunk = chain([first], islice(iterator, size - 1))
        yield chunk
        deque(chunk, maxlen=0)  # drain what the consumer left, so the next run starts at the right task


@dataclass(frozen=True)
class JobSettings:
    """What every labeling job of one review wave shares: the plan's task type and label set and
    the run's settings, built once (`from_config`)."""

    task_type: TaskType
    labels: list[str]
    run_id: str
    job_name_prefix: str
    max_images_per_job: int
    workteam_arn: str
    region: str
    verification_pre_lambda_arn: str
    verification_consolidation_lambda_arn: str
    workers_per_object: int
    task_time_limit_s: int
    task_availability_s: int
    max_concurrent_tasks: int = CONCURRENT_TASKS

    @classmethod
    def from_config(
        cls, config: RunConfig, plan: PlanSummary, *, region: str, verification_lambdas: tuple[str, str]
    ) -> JobSettings:
        """The jobs of `plan`'s wave for the run `config` describes; `verification_lambdas` are the
        stack's label-verification pre-annotation and consolidation Lambdas."""
        return cls(
            task_type=plan.task_type,
            labels=plan.labels,
            run_id=config.runId,
            job_name_prefix=config.jobNamePrefix,
            max_images_per_job=config.maxImagesPerJob,
            workteam_arn=config.workteamArn or "",
            region=region,
            verification_pre_lambda_arn=verification_lambdas[0],
            verification_consolidation_lambda_arn=verification_lambdas[1],
            workers_per_object=config.workersPerObject,
            task_time_limit_s=config.taskTimeLimitSeconds,
            task_availability_s=max(AVAILABILITY_MIN_S, int(config.reviewDeadlineHours * 3600)),
        )

    def check(self) -> None:
        """InvalidInput before any job is written. The run's own settings were bounded by
        RunConfig; the availability and concurrency depend on the workforce and on constants
        (docs/aws-facts.md §3.2)."""
        if self.task_type not in LABEL_ATTRIBUTE:
            raise InvalidInput(f"taskType must be 'detection' or 'classification', not {self.task_type!r}")
        _check_labels(self.task_type, self.labels)
        public = _PUBLIC_WORKTEAM_MARKER in self.workteam_arn
        longest = PUBLIC_AVAILABILITY_MAX_S if public else AVAILABILITY_MAX_S
        if not AVAILABILITY_MIN_S <= self.task_availability_s <= longest:
            raise InvalidInput(
                f"taskAvailabilityLifetimeSeconds must be {AVAILABILITY_MIN_S}-{longest}, "
                f"got {self.task_availability_s}"
            )
        if not 1 <= self.max_concurrent_tasks <= MAX_CONCURRENT_TASKS:
            raise InvalidInput(
                f"maxConcurrentTaskCount must be 1-{MAX_CONCURRENT_TASKS}, got {self.max_concurrent_tasks}"
            )

    def task_lambdas(self) -> tuple[JobKind, str, str, str]:
        """The job kind (in its name), its pre-annotation and consolidation Lambdas, and its template."""
        if self.task_type == "detection":
            pre_arn, acs_arn = builtin_lambda_arns(self.region, "AdjustmentBoundingBox")
            return "det", pre_arn, acs_arn, DETECTION_TEMPLATE
        if not self.verification_pre_lambda_arn or not self.verification_consolidation_lambda_arn:
            raise InvalidInput("label verification needs the verification pre/consolidation Lambda ARNs")
        return (
            "cls",
            self.verification_pre_lambda_arn,
            self.verification_consolidation_lambda_arn,
            CLASSIFICATION_TEMPLATE,
        )


def _write_manifest(
    s3: Any, uri: S3Uri, chunk: Iterable[JsonDict], settings: JobSettings, creation_date: str
) -> int:
    """One job's input manifest; returns how many objects it holds."""
    task_type, labels = settings.task_type, settings.labels
    class_ids = {label: i for i, label in enumerate(labels)}
    with JsonlWriter(s3, uri) as writer:
        for task in chunk:
            if task.get("taskType", task_type) != task_type:
                raise InvalidInput(
                    f"review task {task.get('source-ref')} is {task.get('taskType')!r}, not {task_type!r}"
                )
            if task_type == "detection":
                writer.write(detection_manifest_line(task, class_ids, creation_date))
            else:
                writer.write(classification_manifest_line(task, labels))
    return writer.count


def plan_jobs(
    s3: Any,
    layout: RunLayout,
    tasks: Iterable[JsonDict],
    settings: JobSettings,
    *,
    now: datetime | None = None,
) -> list[JsonDict]:
    """Write each labeling job's input manifest, label categories and template, then the job items.

    Tasks are streamed: one job's manifest is spooled at a time. Returns the review job items, also
    written as a JSON array to `layout.review_jobs` (the Distributed Map's item list).
    """
    settings.check()
    kind, pre_arn, acs_arn, template = settings.task_lambdas()
    planned_at = now or datetime.now(UTC)
    creation_date = planned_at.strftime("%Y-%m-%dT%H:%M:%S.%f")
    # Past this, the job's child execution stops the job (its tasks may outlive the deadline).
    stop_after = (planned_at + timedelta(seconds=settings.task_availability_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    categories = label_categories(settings.labels)
    task_type = settings.task_type

    jobs: list[JsonDict] = []
    for index, chunk in enumerate(_chunks(tasks, settings.max_images_per_job)):
        name = job_name(settings.job_name_prefix, settings.run_id, kind, index, layout.wave)
        prefix = layout.groundtruth_job_prefix(name)
        manifest_uri = prefix.join("input.manifest")
        count = _write_manifest(s3, manifest_uri, chunk, settings, creation_date)
        categories_uri = prefix.join("label-categories.json")
        write_json(s3, categories_uri, categories)
        template_uri = prefix.join("template.liquid.html")
        s3.put_object(
            Bucket=template_uri.bucket,
            Key=template_uri.key,
            Body=template.encode("utf-8"),
            ContentType="text/html; charset=utf-8",
        )
        jobs.append(
            {
                "jobName": name,
                "taskType": task_type,
                "labelAttributeName": LABEL_ATTRIBUTE[task_type],
                "inputManifestUri": str(manifest_uri),
                "labelCategoriesUri": str(categories_uri),
                "uiTemplateUri": str(template_uri),
                "outputUri": str(layout.groundtruth_output),
                "preLambdaArn": pre_arn,
                "consolidationLambdaArn": acs_arn,
                "workteamArn": settings.workteam_arn,
                **_TEXTS[task_type],
                "workersPerObject": settings.workers_per_object,
                "taskTimeLimitSeconds": settings.task_time_limit_s,
                "taskAvailabilityLifetimeSeconds": settings.task_availability_s,
                "maxConcurrentTaskCount": settings.max_concurrent_tasks,
                "objectCount": count,
                "stopAfter": stop_after,
            }
        )
    write_json(s3, layout.review_jobs, jobs)
    return jobs
