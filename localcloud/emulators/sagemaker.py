"""Emulated SageMaker Ground Truth labeling jobs: CreateLabelingJob, DescribeLabelingJob,
StopLabelingJob, ListLabelingJobs.

Sources (aws-facts section 3): SM-CLJ (request rules), SM-HTC/SM-ACC (AWS-owned PRE-/ACS- Lambda
ARNs), GT-LAMBDA (custom-task Lambda events), GT-OUT (output manifest and folder layout,
https://docs.aws.amazon.com/sagemaker/latest/dg/sms-data-output.html), sms-data-verify-manifest
(`adjustment-status`), SM-DLJ (status, counters, LabelingJobOutput), botocore's service model
(validation, response members).

Emulated work, done once when the job ends (in the call that observes the end, under the job's lock):
- built-in bounding box (`BoundingBox`) and bounding-box adjustment (`AdjustmentBoundingBox`): an
  emulated annotator compares the prior boxes of the input line with the ground truth;
- custom tasks: the real pre-annotation Lambda per object, an emulated worker answering our
  label-verification template (docs/data-contracts.md), the real consolidation Lambda on a payload
  file in S3, then the output manifest.

Emulator choices where AWS documents nothing:
- DescribeLabelingJob/StopLabelingJob on an unknown name answer `ValidationException` (the model
  lists ResourceNotFound, but SageMaker answers ValidationException for missing labeling jobs: the
  AWS controllers for Kubernetes map labeling-job "not found" to that code,
  aws-controllers-k8s/sagemaker-controller PR #303);
- StopLabelingJob on a job already ended is a no-op;
- with several workers per object, built-in consolidation keeps the first worker's answer;
- a Lambda invocation that raises is retried (`lambda_attempts`), then the job fails;
- objects no worker labeled (`unlabeled_fraction`) count as FailedNonRetryableError and appear in
  the output manifest with `<attr>-metadata.failure-reason` and without `<attr>`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from localcloud.emulators.base import ServiceError, validate_request
from localcloud.truth import Truth, iou

log = logging.getLogger(__name__)

SERVICE = "sagemaker"
ACCOUNT_ID = "123456789012"

# SM-HTC / SM-ACC: account owning the PRE-/ACS- Lambdas per region (aws-facts 3.3). Kept apart from
# labeling_loop.groundtruth's copy on purpose: the emulator stands for AWS, so a wrong account in
# the product's table makes CreateLabelingJob fail here as it would on AWS.
GT_LAMBDA_ACCOUNTS = {
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
EMULATED_BUILTINS = {"BoundingBox", "AdjustmentBoundingBox"}
_BUILTIN_RE = re.compile(
    r"arn:aws:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:(?P<kind>PRE|ACS)-(?P<type>[A-Za-z0-9]+)"
)
MAX_LINE_CHARS = 100_000  # GT-IN
MAX_BOX_LABELS = 50  # GT-Q (API quota for bounding box)
DETECTION_TYPE = "groundtruth/object-detection"

INITIALIZING, IN_PROGRESS, COMPLETED, FAILED = "Initializing", "InProgress", "Completed", "Failed"
STOPPING, STOPPED = "Stopping", "Stopped"
_TERMINAL = {COMPLETED, FAILED, STOPPED}


@dataclass
class GroundTruthConfig:
    job_latency_s: float = 0.2  # creation -> end of the job (Initializing, then InProgress)
    initializing_s: float = 0.0  # the first part of job_latency_s spent Initializing
    stop_latency_s: float = 0.0  # Stopping -> Stopped after StopLabelingJob
    annotator_accuracy: float = 1.0  # probability that an annotator fixes each error
    annotator_jitter_px: float = 0.0  # boxes drawn or moved by people land within +- this
    fail_job: bool | str = False  # True, or a regex searched in the job name: the job ends Failed
    failure_reason: str = "ClientError: The labeling job failed (emulated fault)."
    stop_after_fraction: float | None = None  # the job ends Stopped after this fraction is labeled
    unlabeled_fraction: float = 0.0  # objects whose tasks expire without an answer
    known_workteams: tuple[str, ...] | None = None  # None: any well-formed ARN
    known_roles: tuple[str, ...] | None = None
    lambda_attempts: int = 3
    seed: int = 0


@dataclass
class _Job:
    name: str
    arn: str
    request: dict[str, Any]
    created: datetime
    started_at: float
    reference_code: str
    builtin_type: str | None  # None for a custom task
    lines: list[dict[str, Any]]
    labels: list[str] | None
    output_prefix: tuple[str, str]  # (bucket, key prefix ending in "/<job name>/")
    status: str = INITIALIZING
    last_modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    failure_reason: str | None = None
    counters: dict[str, int] = field(default_factory=dict)
    stop_requested_at: float | None = None
    output_uri: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class GroundTruthEmulator:
    def __init__(
        self,
        s3: Any,
        lambda_invoker: Callable[[str, dict[str, Any]], Any],
        truth: dict[str, Truth],
        region: str = "us-east-1",
        config: GroundTruthConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s3 = s3
        self._invoke = lambda_invoker
        self.truth = truth
        self.region = region
        self.config = config or GroundTruthConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}  # key: lower-cased name (names are case-insensitive)
        self.created_job_names: list[str] = []
        self.pre_invocations = 0
        self.consolidation_invocations = 0
        self.lambda_calls: list[tuple[str, dict[str, Any]]] = []

    # ------------------------------------------------------------------ records for tests

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            jobs = list(self._jobs.values())
        return {
            job.name: {
                "arn": job.arn,
                "request": job.request,
                "status": job.status,
                "counters": dict(job.counters),
                "failure_reason": job.failure_reason,
                "output_uri": job.output_uri,
                "created_at": job.started_at,  # on the emulator's clock (time.monotonic by default)
            }
            for job in jobs
        }

    # ------------------------------------------------------------------ dispatch

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = {
            "CreateLabelingJob": self._create,
            "DescribeLabelingJob": self._describe,
            "StopLabelingJob": self._stop,
            "ListLabelingJobs": self._list,
        }.get(operation)
        if handler is None:
            raise ServiceError("InvalidAction", f"The emulator does not implement sagemaker {operation}")
        validate_request(SERVICE, operation, params)
        return handler(params)

    # ------------------------------------------------------------------ CreateLabelingJob

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["LabelingJobName"]
        with self._lock:
            if name.lower() in self._jobs:
                raise ServiceError(
                    "ResourceInUse",
                    f"A labeling job with name {name} already exists (names are case-insensitive).",
                )
        attribute = params["LabelAttributeName"]
        if attribute.endswith("-metadata"):
            raise ServiceError("ValidationException", "LabelAttributeName cannot end with '-metadata'.")
        if attribute.endswith("-ref"):
            # SM-CLJ: only semantic segmentation, video frame and 3D point cloud jobs (not emulated)
            # may end in -ref.
            raise ServiceError(
                "ValidationException",
                "LabelAttributeName can end with '-ref' only for "
                "semantic segmentation, video frame and 3D point cloud labeling jobs.",
            )
        known_roles = self.config.known_roles
        if known_roles is not None and params["RoleArn"] not in known_roles:
            raise ServiceError("ValidationException", f"Could not assume role {params['RoleArn']}.")
        task = params["HumanTaskConfig"]
        known_teams = self.config.known_workteams
        if known_teams is not None and task["WorkteamArn"] not in known_teams:
            raise ServiceError("ValidationException", f"Workteam {task['WorkteamArn']} does not exist.")
        builtin_type = self._task_type(task)
        lines = self._read_manifest(params["InputConfig"])
        labels = self._read_label_categories(params.get("LabelCategoryConfigS3Uri"), builtin_type)
        self._check_template(task.get("UiConfig", {}))
        output_prefix = self._output_prefix(params["OutputConfig"]["S3OutputPath"], name)
        arn = f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:labeling-job/{name.lower()}"
        job = _Job(
            name=name,
            arn=arn,
            request=params,
            created=datetime.now(UTC),
            started_at=self._clock(),
            reference_code=ACCOUNT_ID + hashlib.sha256(name.encode()).hexdigest()[:16],
            builtin_type=builtin_type,
            lines=lines,
            labels=labels,
            output_prefix=output_prefix,
        )
        job.counters = _counters(unlabeled=0)
        with self._lock:
            if name.lower() in self._jobs:  # a concurrent create won the race
                raise ServiceError("ResourceInUse", f"A labeling job with name {name} already exists.")
            self._jobs[name.lower()] = job
            self.created_job_names.append(name)
        log.info("labeling job %s created: %d objects, task %s", name, len(lines), builtin_type or "custom")
        return {"LabelingJobArn": arn}

    def _task_type(self, task: dict[str, Any]) -> str | None:
        """The emulated built-in task type, or None for a custom task (both Lambdas ours)."""
        pre = task.get("PreHumanTaskLambdaArn")
        acs = (task.get("AnnotationConsolidationConfig") or {}).get("AnnotationConsolidationLambdaArn")
        if not pre or not acs:
            raise ServiceError(
                "ValidationException",
                "The emulator needs PreHumanTaskLambdaArn and AnnotationConsolidationLambdaArn "
                "(omitting them is undocumented for built-in tasks).",
            )
        pre_builtin, acs_builtin = self._builtin(pre, "PRE"), self._builtin(acs, "ACS")
        if pre_builtin is None and acs_builtin is None:
            return None
        if pre_builtin != acs_builtin:
            raise ServiceError(
                "ValidationException",
                f"PreHumanTaskLambdaArn {pre} and AnnotationConsolidationLambdaArn {acs} "
                "are not the same task type.",
            )
        if pre_builtin not in EMULATED_BUILTINS:
            raise ServiceError("ValidationException", f"Built-in task type {pre_builtin} is not emulated.")
        return pre_builtin

    def _builtin(self, arn: str, kind: str) -> str | None:
        match = _BUILTIN_RE.fullmatch(arn)
        if match is None or match["account"] not in GT_LAMBDA_ACCOUNTS.values():
            return None  # a customer Lambda
        if match["kind"] != kind:
            raise ServiceError("ValidationException", f"{arn} is not a {kind} Lambda function.")
        if match["region"] != self.region or GT_LAMBDA_ACCOUNTS.get(match["region"]) != match["account"]:
            raise ServiceError(
                "ValidationException", f"{arn} is not a Ground Truth function of {self.region}."
            )
        return match["type"]

    def _get_s3(self, uri: str, what: str) -> bytes:
        bucket, key = _split_s3(uri, what)
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            raise ServiceError("ValidationException", f"Could not read the {what} {uri}: {error}") from error

    def _read_manifest(self, input_config: dict[str, Any]) -> list[dict[str, Any]]:
        source = input_config["DataSource"].get("S3DataSource")
        if source is None:
            raise ServiceError(
                "ValidationException", "Only S3DataSource input is emulated (no streaming jobs)."
            )
        uri = source["ManifestS3Uri"]
        text = self._get_s3(uri, "input manifest").decode("utf-8")
        lines: list[dict[str, Any]] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            if len(raw) > MAX_LINE_CHARS:
                raise ServiceError(
                    "ValidationException", f"Line {number} of {uri} exceeds {MAX_LINE_CHARS} characters."
                )
            try:
                line = json.loads(raw)
            except json.JSONDecodeError as error:
                raise ServiceError(
                    "ValidationException", f"Line {number} of {uri} is not valid JSON."
                ) from error
            if not isinstance(line, dict) or not ("source-ref" in line or "source" in line):
                raise ServiceError(
                    "ValidationException", f"Line {number} of {uri} has neither 'source-ref' nor 'source'."
                )
            lines.append(line)
        if not lines:
            raise ServiceError("ValidationException", f"The input manifest {uri} has no data objects.")
        return lines

    def _read_label_categories(self, uri: str | None, builtin_type: str | None) -> list[str] | None:
        if uri is None:
            if builtin_type is not None:
                raise ServiceError(
                    "ValidationException", "LabelCategoryConfigS3Uri is required for this task type."
                )
            return None
        try:
            document = json.loads(self._get_s3(uri, "label category configuration file"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ServiceError("ValidationException", f"{uri} is not valid JSON.") from error
        # SM-CLJ / GT-Q: {"document-version": "2018-11-28", "labels": [{"label": ...}, ...]}
        if not isinstance(document, dict) or document.get("document-version") != "2018-11-28":
            raise ServiceError("ValidationException", f"{uri}: document-version must be 2018-11-28.")
        entries = document.get("labels")
        if not isinstance(entries, list) or not entries:
            raise ServiceError("ValidationException", f"{uri}: 'labels' must be a non-empty list.")
        labels: list[str] = []
        for entry in entries:
            label = entry.get("label") if isinstance(entry, dict) else None
            if not isinstance(label, str) or not 1 <= len(label) <= 256:
                raise ServiceError(
                    "ValidationException", f"{uri}: every label needs a 'label' of 1-256 characters."
                )
            if label in labels:
                raise ServiceError("ValidationException", f"{uri}: duplicate label {label!r}.")
            labels.append(label)
        if builtin_type in EMULATED_BUILTINS and len(labels) > MAX_BOX_LABELS:
            raise ServiceError(
                "ValidationException", f"Bounding box jobs accept at most {MAX_BOX_LABELS} labels."
            )
        return labels

    def _check_template(self, ui_config: dict[str, Any]) -> None:
        uri = ui_config.get("UiTemplateS3Uri")
        if uri is None:
            raise ServiceError(
                "ValidationException", "UiConfig.UiTemplateS3Uri is required for this task type."
            )
        self._get_s3(uri, "worker task template")

    def _output_prefix(self, s3_output_path: str, name: str) -> tuple[str, str]:
        bucket, key = _split_s3(s3_output_path, "output path", allow_empty_key=True)
        try:
            self._s3.head_bucket(Bucket=bucket)
        except ClientError as error:
            raise ServiceError("ValidationException", f"Cannot access the output bucket {bucket}.") from error
        prefix = f"{key.rstrip('/')}/" if key else ""
        return bucket, f"{prefix}{name}/"

    # ------------------------------------------------------------------ Describe / Stop / List

    def _job(self, name: str) -> _Job:
        with self._lock:
            job = self._jobs.get(name.lower())
        if job is None:
            raise ServiceError("ValidationException", f"Could not find labeling job {name}.")
        return job

    def _describe(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job(params["LabelingJobName"])
        with job.lock:
            self._advance(job)
            return self._description(job)

    def _stop(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job(params["LabelingJobName"])
        with job.lock:
            self._advance(job)
            if job.status in (INITIALIZING, IN_PROGRESS):
                job.stop_requested_at = self._clock()
                self._set_status(job, STOPPING)
                self._advance(job)
        return {}

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            jobs = list(self._jobs.values())
        summaries = []
        for job in jobs:
            with job.lock:
                self._advance(job)
                if params.get("NameContains") and params["NameContains"].lower() not in job.name.lower():
                    continue
                if params.get("StatusEquals") and job.status != params["StatusEquals"]:
                    continue
                summaries.append(self._summary(job))
        sort_by = params.get("SortBy", "CreationTime")
        key = {"Name": "LabelingJobName", "CreationTime": "CreationTime", "Status": "LabelingJobStatus"}[
            sort_by
        ]
        summaries.sort(key=lambda s: s[key], reverse=params.get("SortOrder", "Ascending") == "Descending")
        start = int(params.get("NextToken") or 0)
        size = params.get("MaxResults", 10)
        response: dict[str, Any] = {"LabelingJobSummaryList": summaries[start : start + size]}
        if start + size < len(summaries):
            response["NextToken"] = str(start + size)
        return response

    def _description(self, job: _Job) -> dict[str, Any]:
        request = job.request
        description: dict[str, Any] = {
            "LabelingJobStatus": job.status,
            "LabelCounters": dict(job.counters),
            "CreationTime": job.created,
            "LastModifiedTime": job.last_modified,
            "JobReferenceCode": job.reference_code,
            "LabelingJobName": job.name,
            "LabelingJobArn": job.arn,
            "LabelAttributeName": request["LabelAttributeName"],
            "InputConfig": request["InputConfig"],
            "OutputConfig": request["OutputConfig"],
            "RoleArn": request["RoleArn"],
            "HumanTaskConfig": request["HumanTaskConfig"],
        }
        for optional in (
            "LabelCategoryConfigS3Uri",
            "StoppingConditions",
            "LabelingJobAlgorithmsConfig",
            "Tags",
        ):
            if optional in request:
                description[optional] = request[optional]
        if job.failure_reason:
            description["FailureReason"] = job.failure_reason
        if job.output_uri:
            description["LabelingJobOutput"] = {"OutputDatasetS3Uri": job.output_uri}
        return description

    def _summary(self, job: _Job) -> dict[str, Any]:
        task = job.request["HumanTaskConfig"]
        summary: dict[str, Any] = {
            "LabelingJobName": job.name,
            "LabelingJobArn": job.arn,
            "CreationTime": job.created,
            "LastModifiedTime": job.last_modified,
            "LabelingJobStatus": job.status,
            "LabelCounters": dict(job.counters),
            "WorkteamArn": task["WorkteamArn"],
            "PreHumanTaskLambdaArn": task.get("PreHumanTaskLambdaArn"),
            "AnnotationConsolidationLambdaArn": task["AnnotationConsolidationConfig"][
                "AnnotationConsolidationLambdaArn"
            ],
            "InputConfig": job.request["InputConfig"],
        }
        if job.failure_reason:
            summary["FailureReason"] = job.failure_reason
        if job.output_uri:
            summary["LabelingJobOutput"] = {"OutputDatasetS3Uri": job.output_uri}
        return {k: v for k, v in summary.items() if v is not None}

    # ------------------------------------------------------------------ lifecycle

    def _set_status(self, job: _Job, status: str) -> None:
        if job.status != status:
            job.status = status
            job.last_modified = datetime.now(UTC)

    def _advance(self, job: _Job) -> None:
        """Bring the job to the status its clock says; the labeling work happens here, once.
        Callers hold job.lock."""
        if job.status in _TERMINAL:
            return
        cfg = self.config
        now = self._clock()
        total = len(job.lines)
        if job.stop_requested_at is not None:
            if now >= job.stop_requested_at + cfg.stop_latency_s:
                elapsed = job.stop_requested_at - job.started_at
                fraction = min(1.0, elapsed / cfg.job_latency_s) if cfg.job_latency_s > 0 else 1.0
                self._finish(job, STOPPED, fraction)
            return
        elapsed = now - job.started_at
        if elapsed < cfg.initializing_s:
            self._set_status(job, INITIALIZING)
        elif elapsed < cfg.job_latency_s:
            self._set_status(job, IN_PROGRESS)
            progress = (elapsed - cfg.initializing_s) / max(cfg.job_latency_s - cfg.initializing_s, 1e-9)
            done = min(total, int(total * progress))
            job.counters = _counters(labeled=done, unlabeled=total - done)
        elif self._should_fail(job.name):
            job.failure_reason = cfg.failure_reason
            job.counters = _counters(unlabeled=0)
            self._set_status(job, FAILED)
        elif cfg.stop_after_fraction is not None:
            self._finish(job, STOPPED, cfg.stop_after_fraction)
        else:
            self._finish(job, COMPLETED, 1.0)

    def _should_fail(self, name: str) -> bool:
        fail = self.config.fail_job
        if isinstance(fail, str):
            return re.search(fail, name) is not None
        return bool(fail)

    def _finish(self, job: _Job, status: str, fraction: float) -> None:
        total = len(job.lines)
        indices = list(range(total))
        if status == STOPPED:
            attempted = indices[: int(total * fraction)]
            expired: set[int] = set()
        else:
            attempted = indices
            rng = random.Random(f"{self.config.seed}|{job.name}|expired")
            expired = set(rng.sample(indices, round(total * self.config.unlabeled_fraction)))
        to_label = [i for i in attempted if i not in expired]
        try:
            # Objects the pre-annotation Lambda sent to no one stay Unlabeled in the counters.
            outputs, _not_sent = self._label(job, to_label)
            records = sorted(list(outputs.items()) + [(i, self._expired_line(job, i)) for i in expired])
            uri = self._write_output(job, [line for _, line in records])
        except _JobFailure as failure:
            log.warning("labeling job %s failed: %s", job.name, failure)
            job.failure_reason = str(failure)
            job.counters = _counters(unlabeled=0)
            self._set_status(job, FAILED)
            return
        labeled = len(outputs)
        job.counters = _counters(
            labeled=labeled, failed=len(expired), unlabeled=total - labeled - len(expired)
        )
        job.output_uri = uri
        self._set_status(job, status)
        log.info("labeling job %s %s: %s", job.name, status, job.counters)

    def _expired_line(self, job: _Job, index: int) -> dict[str, Any]:
        attribute = job.request["LabelAttributeName"]
        return {
            **job.lines[index],
            f"{attribute}-metadata": {
                "retry-count": 1,
                "failure-reason": "ClientError: The task expired before a worker submitted an answer.",
                "human-annotated": "yes",
                "job-name": f"labeling-job/{job.name}",
                "creation-date": _now_iso(),
            },
        }

    def _write_output(self, job: _Job, lines: list[dict[str, Any]]) -> str:
        bucket, prefix = job.output_prefix
        key = f"{prefix}manifests/output/output.manifest"
        body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        self._put(bucket, key, body)
        return f"s3://{bucket}/{key}"

    def _put(self, bucket: str, key: str, body: str) -> None:
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"))
        except ClientError as error:
            raise _JobFailure(f"ClientError: Could not write s3://{bucket}/{key}: {error}") from error

    # ------------------------------------------------------------------ labeling work

    def _label(self, job: _Job, indices: list[int]) -> tuple[dict[int, dict[str, Any]], list[int]]:
        if job.builtin_type is not None:
            return self._label_boxes(job, indices), []
        return self._label_custom(job, indices)

    def _workers(self, job: _Job) -> list[str]:
        count = job.request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"]
        return [
            f"private.{self.region}.{hashlib.sha256(f'{job.name}|{n}'.encode()).hexdigest()[:16]}"
            for n in range(count)
        ]

    def _rng(self, job: _Job, index: int, worker: str) -> random.Random:
        digest = hashlib.sha256(f"{self.config.seed}|{job.name}|{index}|{worker}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _write_worker_response(self, job: _Job, index: int, answers: list[tuple[str, Any]]) -> None:
        # GT-OUT layout: annotations/worker-response/iteration-1/<dataset object id>/<timestamp>.json
        bucket, prefix = job.output_prefix
        stamp = datetime.now(UTC)
        document = {
            "answers": [
                {
                    "acceptanceTime": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "answerContent": content,
                    "submissionTime": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "timeSpentInSeconds": 12.5,
                    "workerId": worker,
                    "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "sub": worker}},
                }
                for worker, content in answers
            ]
        }
        when = stamp.strftime("%Y-%m-%d_%H:%M:%S")
        key = f"{prefix}annotations/worker-response/iteration-1/{index}/{when}.json"
        self._put(bucket, key, json.dumps(document))

    # built-in bounding box tasks ------------------------------------------------------

    def _label_boxes(self, job: _Job, indices: list[int]) -> dict[int, dict[str, Any]]:
        attribute = job.request["LabelAttributeName"]
        labels = job.labels or []
        outputs: dict[int, dict[str, Any]] = {}
        for index in indices:
            line = job.lines[index]
            ref = line.get("source-ref", "")
            priors, size = _prior_boxes(line, attribute)
            truth = self.truth.get(ref)
            width, height = size or ((truth.width, truth.height) if truth and truth.width else (0, 0))
            if not width:
                width, height = self._image_size(ref)
            answers = []
            for worker in self._workers(job):
                rng = self._rng(job, index, worker)
                boxes = self._annotate_boxes(priors, truth, labels, rng, width, height)
                answers.append((worker, boxes))
            self._write_worker_response(
                job,
                index,
                [
                    (
                        worker,
                        {
                            "boundingBox": {
                                "boundingBoxes": boxes,
                                "inputImageProperties": {"width": width, "height": height},
                            }
                        },
                    )
                    for worker, boxes in answers
                ],
            )
            final = answers[0][1]  # emulator choice: the first worker's answer
            class_ids = {label: labels.index(label) for label in labels}
            metadata: dict[str, Any] = {
                "objects": [{"confidence": 0.0 if len(answers) == 1 else 0.9} for _ in final],
                "class-map": {str(class_ids[b["label"]]): b["label"] for b in final},
                "type": DETECTION_TYPE,
                "human-annotated": "yes",
                "creation-date": _now_iso(),
                "job-name": f"labeling-job/{job.name}",
            }
            if job.builtin_type == "AdjustmentBoundingBox":
                unchanged = sorted(_box_key(b) for b in final) == sorted(_box_key(b) for b in priors)
                metadata["adjustment-status"] = "unadjusted" if unchanged else "adjusted"
            outputs[index] = {
                **line,
                attribute: {
                    "image_size": [{"width": width, "height": height, "depth": 3}],
                    "annotations": [
                        {
                            "class_id": class_ids[b["label"]],
                            "left": b["left"],
                            "top": b["top"],
                            "width": b["width"],
                            "height": b["height"],
                        }
                        for b in final
                    ],
                },
                f"{attribute}-metadata": metadata,
            }
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
        """One annotator's final boxes: fix each error of the priors with probability accuracy."""
        accuracy = self.config.annotator_accuracy
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
        pairs = sorted(
            (
                (iou(_xywh(p), _xywh(t)), pi, ti)
                for pi, p in enumerate(priors)
                for ti, t in enumerate(truth_boxes)
                if p["label"] == t["label"]
            ),
            reverse=True,
        )
        matched_p: dict[int, tuple[int, float]] = {}
        matched_t: set[int] = set()
        for value, pi, ti in pairs:
            if value < 0.5:
                break
            if pi in matched_p or ti in matched_t:
                continue
            matched_p[pi] = (ti, value)
            matched_t.add(ti)
        final: list[dict[str, Any]] = []
        for pi, prior in enumerate(priors):
            if pi in matched_p:
                ti, value = matched_p[pi]
                if value >= 0.9 or rng.random() >= accuracy:
                    final.append(dict(prior))
                else:
                    final.append(self._drawn(truth_boxes[ti], rng, width, height))
            elif rng.random() >= accuracy and prior["label"] in labels:
                final.append(dict(prior))  # a wrong box the annotator did not delete
        for ti, target in enumerate(truth_boxes):
            if ti not in matched_t and rng.random() < accuracy:
                final.append(self._drawn(target, rng, width, height))
        return final

    def _drawn(self, box: dict[str, Any], rng: random.Random, width: int, height: int) -> dict[str, Any]:
        """A box a person drew over `box`: integer pixels, within +- jitter, inside the image."""
        jitter = self.config.annotator_jitter_px
        left = box["left"] + rng.uniform(-jitter, jitter)
        top = box["top"] + rng.uniform(-jitter, jitter)
        right = box["left"] + box["width"] + rng.uniform(-jitter, jitter)
        bottom = box["top"] + box["height"] + rng.uniform(-jitter, jitter)
        left, top = max(0, min(width - 1, round(left))), max(0, min(height - 1, round(top)))
        right, bottom = max(left + 1, min(width, round(right))), max(top + 1, min(height, round(bottom)))
        return {
            "label": box["label"],
            "left": left,
            "top": top,
            "width": right - left,
            "height": bottom - top,
        }

    def _image_size(self, ref: str) -> tuple[int, int]:
        from io import BytesIO

        from PIL import Image

        try:
            bucket, key = _split_s3(ref, "source-ref")
            data = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            with Image.open(BytesIO(data)) as image:
                width, height = image.size
                if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    width, height = height, width
                return width, height
        except (ServiceError, ClientError, OSError) as error:
            raise _JobFailure(f"ClientError: Could not read the data object {ref}.") from error

    # custom tasks ---------------------------------------------------------------------

    def _call_lambda(self, arn: str, payload: dict[str, Any], counter: str) -> Any:
        with self._lock:  # jobs of different names finish in parallel threads
            self.lambda_calls.append((arn, payload))
            setattr(self, counter, getattr(self, counter) + 1)
        last: Exception | None = None
        for attempt in range(1, self.config.lambda_attempts + 1):
            try:
                return self._invoke(arn, payload)
            except Exception as error:  # the Lambda's own failure, whatever it raised
                log.warning("Lambda %s failed (attempt %d): %s", arn, attempt, error)
                last = error
        raise _JobFailure(f"ClientError: The Lambda function {arn} failed: {last}")

    def _label_custom(self, job: _Job, indices: list[int]) -> tuple[dict[int, dict[str, Any]], list[int]]:
        task = job.request["HumanTaskConfig"]
        attribute = job.request["LabelAttributeName"]
        pre_arn = task["PreHumanTaskLambdaArn"]
        acs_arn = task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"]
        bucket, prefix = job.output_prefix
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
                raise _JobFailure(f"ClientError: The pre-annotation Lambda {pre_arn} returned no taskInput.")
            # GT-LAMBDA: isHumanAnnotationRequired (default true); AWS samples spell it
            # humanAnnotationRequired: "true" (aws-facts 6), so accept both.
            required = pre.get("isHumanAnnotationRequired", pre.get("humanAnnotationRequired", True))
            if str(required).lower() == "false":
                skipped.append(index)
                continue
            answers = []
            for worker in self._workers(job):
                content = self._verify_labels(pre["taskInput"], line, job, self._rng(job, index, worker))
                answers.append((worker, content))
            self._write_worker_response(job, index, answers)
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
        request_key = (
            f"{prefix}annotations/consolidated-annotation/consolidation-request/iteration-1/{stamp}.json"
        )
        self._put(bucket, request_key, json.dumps(request_items))
        response = self._call_lambda(
            acs_arn,
            {
                "version": "2018-10-16",
                "labelingJobArn": job.arn,
                "labelCategories": job.labels,
                "labelAttributeName": attribute,
                "roleArn": job.request["RoleArn"],
                "payload": {"s3Uri": f"s3://{bucket}/{request_key}"},
            },
            "consolidation_invocations",
        )
        response_key = (
            f"{prefix}annotations/consolidated-annotation/consolidation-response/iteration-1/{stamp}.json"
        )
        self._put(bucket, response_key, json.dumps(response))
        if not isinstance(response, list):
            raise _JobFailure(f"ClientError: The consolidation Lambda {acs_arn} did not return a list.")
        outputs: dict[int, dict[str, Any]] = {}
        wanted = {item["datasetObjectId"] for item in request_items}
        for item in response:
            try:
                object_id = str(item["datasetObjectId"])
                content = item["consolidatedAnnotation"]["content"][attribute]
            except (KeyError, TypeError) as error:
                raise _JobFailure(
                    f"ClientError: The consolidation Lambda {acs_arn} returned an item without "
                    f"datasetObjectId or consolidatedAnnotation.content.{attribute}."
                ) from error
            if object_id not in wanted:
                continue
            index = int(object_id)
            outputs[index] = {
                **job.lines[index],
                attribute: content,
                f"{attribute}-metadata": {
                    "type": "groundtruth/custom",
                    "human-annotated": "yes",
                    "creation-date": _now_iso(),
                    "job-name": f"labeling-job/{job.name}",
                },
            }
        return outputs, skipped

    def _verify_labels(
        self, task_input: Any, line: dict[str, Any], job: _Job, rng: random.Random
    ) -> dict[str, Any]:
        """A worker's answer in our label-verification template (data-contracts.md):
        {"labels": {"<label>": {"on": bool}}}, one checkbox per label, pre-checked when predicted."""
        task_input = task_input if isinstance(task_input, dict) else {}
        label_set = task_input.get("labels") or job.labels or []
        label_set = [_label_name(entry) for entry in label_set]
        predicted = {_label_name(entry) for entry in task_input.get("predicted") or []}
        truth = self.truth.get(line.get("source-ref", ""))
        answer = {}
        for label in label_set:
            shown = label in predicted
            on = shown
            if (
                truth is not None
                and shown != (label in truth.labels)
                and rng.random() < self.config.annotator_accuracy
            ):
                on = not shown
            answer[label] = {"on": on}
        return {"labels": answer}


class _JobFailure(Exception):
    """The labeling work failed: the job ends Failed with this message as FailureReason."""


# ---------------------------------------------------------------------- helpers


def _counters(labeled: int = 0, failed: int = 0, unlabeled: int = 0) -> dict[str, int]:
    return {
        "TotalLabeled": labeled,
        "HumanLabeled": labeled,
        "MachineLabeled": 0,
        "FailedNonRetryableError": failed,
        "Unlabeled": unlabeled,
    }


def _now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _split_s3(uri: str, what: str, allow_empty_key: bool = False) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ServiceError("ValidationException", f"The {what} {uri} is not an s3:// URI.")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or (not key and not allow_empty_key):
        raise ServiceError("ValidationException", f"The {what} {uri} is not a valid S3 URI.")
    return bucket, key


def _label_name(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("label", entry.get("name", "")))
    return str(entry)


def _xywh(box: dict[str, Any]) -> tuple[float, float, float, float]:
    return (box["left"], box["top"], box["width"], box["height"])


def _box_key(box: dict[str, Any]) -> tuple[str, int, int, int, int]:
    return (box["label"], round(box["left"]), round(box["top"]), round(box["width"]), round(box["height"]))


def _prior_boxes(line: dict[str, Any], attribute: str) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """The boxes shown to the annotator: every object-detection attribute of the input line other
    than the job's own (adjustment jobs must use a new LabelAttributeName, GT-VA)."""
    boxes: list[dict[str, Any]] = []
    size: tuple[int, int] | None = None
    for key, value in line.items():
        if key in ("source-ref", attribute) or key.endswith("-metadata") or not isinstance(value, dict):
            continue
        metadata = line.get(f"{key}-metadata")
        if not isinstance(metadata, dict) or metadata.get("type") != DETECTION_TYPE:
            continue
        class_map = {str(k): v for k, v in (metadata.get("class-map") or {}).items()}
        sizes = value.get("image_size") or []
        if sizes and size is None:
            size = (int(sizes[0]["width"]), int(sizes[0]["height"]))
        for annotation in value.get("annotations") or []:
            label = class_map.get(str(annotation.get("class_id")))
            if label is not None:
                boxes.append(
                    {
                        "label": label,
                        "left": annotation["left"],
                        "top": annotation["top"],
                        "width": annotation["width"],
                        "height": annotation["height"],
                    }
                )
    return boxes, size
