"""SageMaker Ground Truth review backend: plan the labeling jobs, run the label-verification custom
task's two Lambdas, and collect Ground Truth's output into normalized reviewed records.

Formats are in docs/data-contracts.md; Ground Truth facts in shared/reference/aws-facts.md section 3.
Detection images go to the AWS built-in *bounding-box adjustment* task (pre-filled with the model's
boxes); image-level labels go to our own *label verification* custom task, because Ground Truth has
no built-in adjustment/verification for image classification.

Functions take their clients as arguments (S3, SageMaker) so tests pass moto or stubs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain, islice
from typing import Any, Literal, TypedDict

from botocore.exceptions import ClientError

from labeling_loop.errors import InvalidInput, ReviewBackendError
from labeling_loop.geometry import iou_of_dicts
from labeling_loop.jsonl import JsonDict, JsonlWriter, read_json, read_jsonl, write_json
from labeling_loop.layout import RunLayout
from labeling_loop.s3_uri import S3Uri

# --------------------------------------------------------------------------------------------------
# Constants from the Ground Truth documentation
# --------------------------------------------------------------------------------------------------

# Accounts that own the built-in PRE-<Type> / ACS-<Type> Lambdas, one per region; the same account
# serves every task type of a region. aws-facts 3.3, from the AnnotationConsolidationConfig and
# HumanTaskConfig API reference:
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AnnotationConsolidationConfig.html
AWS_TASK_LAMBDA_ACCOUNTS: dict[str, str] = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}

BUILTIN_TASK_TYPES = frozenset(
    {
        "BoundingBox",
        "AdjustmentBoundingBox",
        "VerificationBoundingBox",
        "ImageMultiClass",
        "ImageMultiClassMultiLabel",
        "PassThrough",
    }
)

TaskType = Literal["detection", "classification"]
JobKind = Literal["det", "cls"]

# The attribute our input manifests carry the model's predictions under, and the attributes the
# review jobs write. Adjustment/verification jobs must use a LabelAttributeName different from the
# one holding the labels under review (aws-facts 3.1, GT-VA); none may end in `-ref` or `-metadata`.
PREDICTIONS_ATTRIBUTE = "model-predictions"
DETECTION_ATTRIBUTE = "reviewed-boxes"
CLASSIFICATION_ATTRIBUTE = "reviewed-labels"
LABEL_ATTRIBUTE = {"detection": DETECTION_ATTRIBUTE, "classification": CLASSIFICATION_ATTRIBUTE}

# Label category limits through the API (Ground Truth quotas, aws-facts 3.1 [GT-Q]): bounding box
# 50, label verification unlimited. Conflict (aws-facts 6): DescribeLabelingJob's doc says
# "Box bounding labeling jobs (all): 10 labels" and `crowd-bounding-box`'s `labels` says "Limit: 10".
# We enforce the documented API quota (50) and leave the stricter figure to a real-account test.
MAX_DETECTION_LABELS = 50
MAX_LABEL_CHARS = 256
LABEL_CATEGORY_DOCUMENT_VERSION = "2018-11-28"

JOB_NAME_MAX = 63
_JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_NOT_NAME_CHARS = re.compile(r"[^a-z0-9-]+")

# Ground Truth's public workforce: availability lifetime at most 12 h there (aws-facts 3.2).
_PUBLIC_WORKTEAM_MARKER = ":394669845002:workteam/public-crowd/"

# A person's box counts as an adjustment of a prediction when they overlap by at least this IoU.
# Same threshold as the run report's model quality, so "adjusted" always means "a true positive
# that people moved", and precision/recall read the same matches.
MATCH_IOU = 0.5

CROWD_ELEMENTS_JS = "https://assets.crowd.aws/crowd-html-elements.js"


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


def job_name(prefix: str, run_id: str, kind: JobKind, index: int) -> str:
    """`<prefix>-<runId>-<det|cls>-<NNN>`, lower case, valid for CreateLabelingJob.

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
    suffix = f"-{kind}-{index:03d}"
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

# Bounding-box adjustment template. Follows AWS's documented adjustment template for
# `crowd-bounding-box` (https://docs.aws.amazon.com/sagemaker/latest/dg/sms-ui-template-crowd-bounding-box.html,
# attribute `initial-value`): prior boxes come from `task.input.manifestLine.<attr>.annotations` with
# the label looked up in `<attr>-metadata.class-map`; `src` and `labels` as in the starter bounding
# box template (https://docs.aws.amazon.com/sagemaker/latest/dg/sms-custom-templates-step2-demo1.html).
# One deliberate difference: AWS's example emits `{ label: {{label | to_json}}, ... }` raw inside a
# double-quoted attribute, which ends the attribute at the label's first quote. We emit strict JSON
# with the quotes as `&quot;` and the label through `to_json | escape` (like `labels`), which the
# browser decodes back to JSON before the element reads it, and which survives quotes in labels.
# Bracket notation because the attribute names contain hyphens.
DETECTION_TEMPLATE = (
    f'<script src="{CROWD_ELEMENTS_JS}"></script>\n'
    """<crowd-form>
  <crowd-bounding-box
    name="boundingBox"
    src="{{ task.input.taskObject | grant_read_access }}"
    header="Check the model's boxes: fix wrong ones, delete false ones, draw the objects it missed"
    labels="{{ task.input.labels | to_json | escape }}"
    initial-value="[{% for box in task.input.manifestLine['model-predictions'].annotations %}"""
    """{% capture class_id %}{{ box.class_id }}{% endcapture %}"""
    """{% assign label = task.input.manifestLine['model-predictions-metadata']['class-map'][class_id] %}"""
    """{&quot;label&quot;: {{ label | to_json | escape }}, &quot;left&quot;: {{ box.left }}, """
    """&quot;top&quot;: {{ box.top }}, &quot;width&quot;: {{ box.width }}, """
    """&quot;height&quot;: {{ box.height }}}{% unless forloop.last %}, {% endunless %}{% endfor %}]"
  >
    <full-instructions header="How to review the model's boxes">
      <p>The boxes already on the image were drawn by a model. For each object of the listed labels:</p>
      <ol>
        <li><strong>Correct box:</strong> leave it as it is.</li>
        <li><strong>Box in the wrong place or of the wrong size:</strong> drag its corners so it fits the
          object tightly, with a margin of 2-3 pixels at most.</li>
        <li><strong>Wrong label:</strong> select the box and give it the right label.</li>
        <li><strong>Box around nothing of interest:</strong> delete it.</li>
        <li><strong>Object without a box:</strong> draw one. Missed objects matter most.</li>
      </ol>
      <p>Draw one box per object, also when objects overlap. Box only what you can see; if an object
        leaves the image, box it up to the edge.</p>
    </full-instructions>
    <short-instructions>
      <p>Fix, delete or add boxes so that every object of the listed labels has exactly one tight box.
        Submit unchanged if the model's boxes are all right.</p>
    </short-instructions>
  </crowd-bounding-box>
</crowd-form>
"""
)

# Label verification template (our custom task). `task.input` is what `pre_annotate` returns:
# {taskObject, predicted, labels}. All checkboxes share `name="labels"` with the label as `value`,
# so the form submits `{"labels": {"<label>": true|false, ...}}` (crowd-checkbox element output,
# https://docs.aws.amazon.com/sagemaker/latest/dg/sms-ui-template-crowd-checkbox.html); the hidden
# input carries the predicted labels into the answer, because the consolidation request holds only
# the image (`dataObject`), not the manifest line, and ties need the predicted state.
CLASSIFICATION_TEMPLATE = (
    f'<script src="{CROWD_ELEMENTS_JS}"></script>\n'
    """<crowd-form>
  <crowd-instructions link-text="View instructions" link-type="button">
    <short-summary>
      <p>Tick every label that applies to the image and untick the ones that do not.</p>
    </short-summary>
    <detailed-instructions>
      <p>The labels a model predicted for this image are already ticked. Untick each label that does
        not apply. Tick each label that applies but is not ticked yet. Submit unchanged if the
        ticked labels are exactly right.</p>
    </detailed-instructions>
  </crowd-instructions>
  <p><strong>Which labels apply to this image?</strong> The model's predictions are pre-ticked.</p>
  <img src="{{ task.input.taskObject | grant_read_access }}" alt="image to review"
       style="max-width: 100%; max-height: 65vh;">
  {% for label in task.input.labels %}
  <div>
    <crowd-checkbox name="labels" value="{{ label | escape }}"
      {% if task.input.predicted contains label %}checked{% endif %}>{{ label | escape }}</crowd-checkbox>
  </div>
  {% endfor %}
  <input type="hidden" name="predicted" value="{{ task.input.predicted | to_json | escape }}">
</crowd-form>
"""
)

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


def _check_range(field: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{field} must be an integer from {low} to {high}, got {value!r}")


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


def plan_jobs(
    s3: Any,
    layout: RunLayout,
    tasks: Iterable[JsonDict],
    *,
    task_type: TaskType,
    labels: list[str],
    run_id: str,
    job_name_prefix: str,
    max_images_per_job: int,
    workteam_arn: str,
    region: str,
    verification_pre_lambda_arn: str,
    verification_consolidation_lambda_arn: str,
    workers_per_object: int,
    task_time_limit_s: int,
    task_availability_s: int,
    max_concurrent_tasks: int,
    now: datetime | None = None,
) -> list[JsonDict]:
    """Write each labeling job's input manifest, label categories and template, then the job items.

    Tasks are streamed: one job's manifest is spooled at a time. Returns the review job items, also
    written as a JSON array to `layout.review_jobs` (the Distributed Map's item list).
    """
    if task_type not in LABEL_ATTRIBUTE:
        raise InvalidInput(f"taskType must be 'detection' or 'classification', not {task_type!r}")
    _check_labels(task_type, labels)
    # Ground Truth limits (aws-facts 3.2 and 3.7), checked here so a bad value fails before any job.
    _check_range("maxImagesPerJob", max_images_per_job, 1, 100_000)
    _check_range("workersPerObject", workers_per_object, 1, 9)
    _check_range("taskTimeLimitSeconds", task_time_limit_s, 30, 28_800)
    public = _PUBLIC_WORKTEAM_MARKER in workteam_arn
    _check_range("taskAvailabilityLifetimeSeconds", task_availability_s, 60, 43_200 if public else 2_592_000)
    _check_range("maxConcurrentTaskCount", max_concurrent_tasks, 1, 5000)

    if task_type == "detection":
        kind: JobKind = "det"
        pre_arn, acs_arn = builtin_lambda_arns(region, "AdjustmentBoundingBox")
        template = DETECTION_TEMPLATE
    else:
        kind = "cls"
        if not verification_pre_lambda_arn or not verification_consolidation_lambda_arn:
            raise InvalidInput("label verification needs the verification pre/consolidation Lambda ARNs")
        pre_arn, acs_arn = verification_pre_lambda_arn, verification_consolidation_lambda_arn
        template = CLASSIFICATION_TEMPLATE
    class_ids = {label: i for i, label in enumerate(labels)}
    creation_date = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    categories = label_categories(labels)

    jobs: list[JsonDict] = []
    for index, chunk in enumerate(_chunks(tasks, max_images_per_job)):
        name = job_name(job_name_prefix, run_id, kind, index)
        prefix = layout.groundtruth_job_prefix(name)
        manifest_uri = prefix.join("input.manifest")
        with JsonlWriter(s3, manifest_uri) as writer:
            for task in chunk:
                if task.get("taskType", task_type) != task_type:
                    raise InvalidInput(
                        f"review task {task.get('source-ref')} is {task.get('taskType')!r}, not {task_type!r}"
                    )
                if task_type == "detection":
                    writer.write(detection_manifest_line(task, class_ids, creation_date))
                else:
                    writer.write(classification_manifest_line(task, labels))
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
                "workteamArn": workteam_arn,
                **_TEXTS[task_type],
                "workersPerObject": workers_per_object,
                "taskTimeLimitSeconds": task_time_limit_s,
                "taskAvailabilityLifetimeSeconds": task_availability_s,
                "maxConcurrentTaskCount": max_concurrent_tasks,
                "objectCount": writer.count,
            }
        )
    write_json(s3, layout.review_jobs, jobs)
    return jobs


# --------------------------------------------------------------------------------------------------
# Label verification custom task: pre-annotation and consolidation Lambda cores
# Contracts: https://docs.aws.amazon.com/sagemaker/latest/dg/sms-custom-templates-step3-lambda-requirements.html
# --------------------------------------------------------------------------------------------------


def pre_annotate(event: JsonDict) -> JsonDict:
    """Pre-annotation: turn the manifest line (`dataObject`) into the template's `task.input`."""
    data_object = event.get("dataObject") or {}
    source = data_object.get("source-ref")
    if not isinstance(source, str) or not source:
        raise InvalidInput("dataObject.source-ref is missing from the pre-annotation event")
    predictions = data_object.get(PREDICTIONS_ATTRIBUTE) or {}
    predicted: list[str] = []
    for item in predictions.get("labels", []):
        label = item.get("label") if isinstance(item, dict) else item
        if isinstance(label, str) and label not in predicted:
            predicted.append(label)
    label_set = [label for label in predictions.get("label-set", []) if isinstance(label, str)]
    # A predicted label missing from the set would have no checkbox and could never be unticked.
    label_set += [label for label in predicted if label not in label_set]
    return {
        "taskInput": {"taskObject": source, "predicted": predicted, "labels": label_set},
        "isHumanAnnotationRequired": True,
    }


def _parse_json_text(text: str | bytes) -> Any:
    # A malformed answer counts as no answer: failing here would fail the whole batch's objects.
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def _worker_answer(annotation: JsonDict, s3: Any) -> JsonDict | None:
    """A worker's form answer, from `annotationData.content` (JSON text) or `annotationData.s3Uri`."""
    data = annotation.get("annotationData") or {}
    if data.get("content") is not None:
        answer = data["content"]
        answer = _parse_json_text(answer) if isinstance(answer, str | bytes) else answer
    elif data.get("s3Uri"):
        uri = S3Uri.parse(data["s3Uri"])
        answer = _parse_json_text(s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read())
    else:
        return None
    return answer if isinstance(answer, dict) else None


def _checkbox_on(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, dict) and value:
        # `{"on": true}` for a lone checkbox; one value-named key otherwise.
        return bool(value.get("on", any(bool(v) for v in value.values())))
    return None


def worker_votes(answer: JsonDict) -> dict[str, bool]:
    """Label -> ticked, from one answer of our template.

    Accepted shapes: `{"labels": {"<label>": true|false}}` (our template: shared checkbox name),
    `{"labels": {"<label>": {"on": bool}}}` (data-contracts.md) and `{"<label>": {"on": bool}}`
    (one checkbox named after each label).
    """
    nested = answer.get("labels")
    source: JsonDict = nested if isinstance(nested, dict) else answer
    votes: dict[str, bool] = {}
    for label, value in source.items():
        if label == "predicted":
            continue
        on = _checkbox_on(value)
        if on is not None:
            votes[label] = on
    return votes


def _answer_predicted(answer: JsonDict) -> list[str] | None:
    value = answer.get("predicted")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def consolidate_object(answers: list[JsonDict], predicted: list[str]) -> JsonDict:
    """Majority vote per label across workers; a tie keeps the label's predicted state."""
    tally: dict[str, list[int]] = {label: [0, 0] for label in predicted}
    for answer in answers:
        for label, on in worker_votes(answer).items():
            tally.setdefault(label, [0, 0])[0 if on else 1] += 1
    final = []
    for label, (yes, no) in tally.items():
        if yes > no or (yes == no and label in predicted):
            final.append(label)
    return {
        "labels": sorted(final),
        "rejected": sorted(label for label in predicted if label not in final),
        "added": sorted(label for label in final if label not in predicted),
        "workers": len(answers),
    }


def consolidate(event: JsonDict, s3: Any) -> list[JsonDict]:
    """Consolidation (post-annotation) Lambda core for label verification.

    Reads the request file at `payload.s3Uri`; objects nobody answered are left out (Ground Truth
    marks them failed). Returns the documented `[{datasetObjectId, consolidatedAnnotation}]` list.
    """
    attribute = event.get("labelAttributeName") or CLASSIFICATION_ATTRIBUTE
    payload_uri = (event.get("payload") or {}).get("s3Uri")
    if not payload_uri:
        raise InvalidInput("payload.s3Uri is missing from the consolidation event")
    objects = read_json(s3, S3Uri.parse(payload_uri))
    results: list[JsonDict] = []
    for obj in objects:
        answers = [a for a in (_worker_answer(x, s3) for x in obj.get("annotations") or []) if a is not None]
        if not answers:
            continue
        predicted = next((p for p in map(_answer_predicted, answers) if p is not None), [])
        results.append(
            {
                "datasetObjectId": obj["datasetObjectId"],
                "consolidatedAnnotation": {"content": {attribute: consolidate_object(answers, predicted)}},
            }
        )
    return results


# --------------------------------------------------------------------------------------------------
# Collect: Ground Truth output -> reviewed records and skip records
# --------------------------------------------------------------------------------------------------


class CollectResult(TypedDict):
    reviewed: int
    skipped: int
    jobs: dict[str, str]
    failedJobs: list[JsonDict]


TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})
_BOX_KEYS = ("left", "top", "width", "height")


def _boxes(line: JsonDict, attribute: str) -> list[JsonDict]:
    """Pixel boxes {label, left, top, width, height} of a Ground Truth object-detection attribute."""
    body = line.get(attribute) or {}
    class_map = (line.get(f"{attribute}-metadata") or {}).get("class-map") or {}
    boxes = []
    for ann in body.get("annotations") or []:
        class_id = str(ann.get("class_id"))
        boxes.append({"label": class_map.get(class_id, class_id), **{k: ann[k] for k in _BOX_KEYS}})
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


def reviewed_detection(job: str, source: JsonDict, output: JsonDict) -> JsonDict:
    predicted = _boxes(source, PREDICTIONS_ATTRIBUTE)
    metadata = output.get(f"{DETECTION_ATTRIBUTE}-metadata") or {}
    boxes: list[JsonDict]
    removed: list[JsonDict]
    if metadata.get("adjustment-status") == "unadjusted":
        # Ground Truth says no worker changed anything: the predictions stand as they are.
        boxes, removed = [{**box, "status": "kept"} for box in predicted], []
    else:
        boxes, removed = diff_boxes(predicted, _boxes(output, DETECTION_ATTRIBUTE))
    return {
        "source-ref": source["source-ref"],
        "taskType": "detection",
        # Ground Truth's size is the frame the boxes were drawn in; ours is the same when all is well.
        "image_size": _image_size(output, DETECTION_ATTRIBUTE, PREDICTIONS_ATTRIBUTE),
        "boxes": boxes,
        "labels": [],
        "removed": removed,
        "reviewer": f"groundtruth:{job}",
        "humanReviewed": True,
    }


def reviewed_classification(job: str, source: JsonDict, output: JsonDict) -> JsonDict:
    body = source.get(PREDICTIONS_ATTRIBUTE) or {}
    predicted = [p["label"] for p in body.get("labels", []) if isinstance(p, dict) and "label" in p]
    final = list(dict.fromkeys((output.get(CLASSIFICATION_ATTRIBUTE) or {}).get("labels") or []))
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


def _describe(sagemaker: Any, name: str) -> JsonDict:
    try:
        return sagemaker.describe_labeling_job(LabelingJobName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ResourceNotFoundException"):
            # Never created (or deleted): its images cannot have been reviewed.
            return {"LabelingJobStatus": "NotFound", "FailureReason": f"labeling job {name} not found"}
        raise


def _output_manifest_uri(job: JsonDict, described: JsonDict) -> S3Uri:
    uri = (described.get("LabelingJobOutput") or {}).get("OutputDatasetS3Uri")
    if uri:
        return S3Uri.parse(uri)
    # Before Ground Truth reports it (or for a job that failed early): its documented layout.
    return S3Uri.parse(job["outputUri"]).join(job["jobName"], "manifests/output/output.manifest")


def _skip(source_ref: str, reason: str, detail: str) -> JsonDict:
    return {"source-ref": source_ref, "stage": "review", "reason": reason, "detail": detail}


def collect(s3: Any, sagemaker: Any, layout: RunLayout, jobs: list[JsonDict]) -> CollectResult:
    """Turn every input image of every job into one reviewed record or one skip record.

    Completed and Stopped jobs: answered images become reviewed records, the rest `not-reviewed`.
    Failed (or missing) jobs: the same, except that images without an answer are `review-failed`.
    Memory holds one job's output lines at a time (at most maxImagesPerJob).
    """
    summary: CollectResult = {"reviewed": 0, "skipped": 0, "jobs": {}, "failedJobs": []}
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
            for source in read_jsonl(s3, S3Uri.parse(job["inputManifestUri"])):
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
                if job["taskType"] == "detection":
                    reviewed_out.write(reviewed_detection(name, source, output))
                else:
                    reviewed_out.write(reviewed_classification(name, source, output))
    summary["reviewed"] = reviewed_out.count
    summary["skipped"] = skipped_out.count
    return summary


__all__ = [
    "AWS_TASK_LAMBDA_ACCOUNTS",
    "CLASSIFICATION_TEMPLATE",
    "DETECTION_TEMPLATE",
    "CollectResult",
    "builtin_lambda_arns",
    "collect",
    "consolidate",
    "diff_boxes",
    "job_name",
    "label_categories",
    "plan_jobs",
    "pre_annotate",
]
