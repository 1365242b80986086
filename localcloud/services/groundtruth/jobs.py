"""Emulated SageMaker Ground Truth labeling jobs: CreateLabelingJob, DescribeLabelingJob,
StopLabelingJob, ListLabelingJobs (docs/aws-facts.md §3), with botocore's service model for request
validation and response members.

A job's status follows its clock: Initializing, InProgress (counters rising), then Completed,
Failed or Stopped (§3.7). The labeling work (`workers`) is done once, when the job ends, in the call
that observes the end, under the job's lock; `output` writes what it produced (§3.6).

Emulator choices where AWS documents nothing:
- DescribeLabelingJob/StopLabelingJob on an unknown name answer `ValidationException` (the model
  lists ResourceNotFound, but SageMaker answers ValidationException for missing labeling jobs: the
  AWS controllers for Kubernetes map labeling-job "not found" to that code,
  aws-controllers-k8s/sagemaker-controller PR #303);
- StopLabelingJob on a job already ended is a no-op;
- objects no worker labeled (`unlabeled_fraction`) count as FailedNonRetryableError.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from localcloud.data.truth import Truth
from localcloud.services.base import EmulatedService, ServiceError
from localcloud.services.groundtruth.output import JobFailure, OutputFolder, expired_line
from localcloud.services.groundtruth.validation import CheckedRequest, check_create_request
from localcloud.services.groundtruth.workers import Workforce

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"

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


def _counters(labeled: int = 0, failed: int = 0, unlabeled: int = 0) -> dict[str, int]:
    return {
        "TotalLabeled": labeled,
        "HumanLabeled": labeled,
        "MachineLabeled": 0,
        "FailedNonRetryableError": failed,
        "Unlabeled": unlabeled,
    }


@dataclass
class LabelingJob:
    name: str
    arn: str
    request: dict[str, Any]
    checked: CheckedRequest
    output: OutputFolder
    started_at: float  # on the emulator's clock
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = INITIALIZING
    last_modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    failure_reason: str | None = None
    counters: dict[str, int] = field(default_factory=_counters)
    stop_requested_at: float | None = None
    output_uri: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def builtin_type(self) -> str | None:
        """The built-in task type (`BoundingBox`, `AdjustmentBoundingBox`), None for a custom task."""
        return self.checked.builtin_type

    @property
    def lines(self) -> list[dict[str, Any]]:
        return self.checked.lines

    @property
    def labels(self) -> list[str] | None:
        return self.checked.labels

    @property
    def reference_code(self) -> str:
        return ACCOUNT_ID + hashlib.sha256(self.name.encode()).hexdigest()[:16]


class GroundTruthEmulator(EmulatedService):
    SERVICE: ClassVar[str] = "sagemaker"
    OPERATIONS: ClassVar[frozenset[str]] = frozenset(
        {"CreateLabelingJob", "DescribeLabelingJob", "StopLabelingJob", "ListLabelingJobs"}
    )

    def __init__(
        self,
        s3: S3Client,
        lambda_invoker: Callable[[str, dict[str, Any]], Any],
        truth: dict[str, Truth],
        region: str = "us-east-1",
        config: GroundTruthConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s3 = s3
        self.region = region
        self.config = config or GroundTruthConfig()
        self.workforce = Workforce(s3, lambda_invoker, truth, region, self.config)
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, LabelingJob] = {}  # key: lower-cased name (names are case-insensitive)
        self.created_job_names: list[str] = []

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

    @property
    def pre_invocations(self) -> int:
        return self.workforce.pre_invocations

    @property
    def consolidation_invocations(self) -> int:
        return self.workforce.consolidation_invocations

    @property
    def lambda_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return self.workforce.lambda_calls

    # ------------------------------------------------------------------ operations

    def _create_labeling_job(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["LabelingJobName"]
        with self._lock:
            if name.lower() in self._jobs:
                raise ServiceError(
                    "ResourceInUse",
                    f"A labeling job with name {name} already exists (names are case-insensitive).",
                )
        config = self.config
        checked = check_create_request(
            self._s3, params, self.region, config.known_roles, config.known_workteams
        )
        arn = f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:labeling-job/{name.lower()}"
        output = OutputFolder(self._s3, *checked.output_prefix)
        job = LabelingJob(name, arn, params, checked, output, started_at=self._clock())
        with self._lock:
            if name.lower() in self._jobs:  # a concurrent create won the race
                raise ServiceError("ResourceInUse", f"A labeling job with name {name} already exists.")
            self._jobs[name.lower()] = job
            self.created_job_names.append(name)
        log.info(
            "labeling job %s created: %d objects, task %s", name, len(job.lines), job.builtin_type or "custom"
        )
        return {"LabelingJobArn": arn}

    def _job(self, name: str) -> LabelingJob:
        with self._lock:
            job = self._jobs.get(name.lower())
        if job is None:
            raise ServiceError("ValidationException", f"Could not find labeling job {name}.")
        return job

    def _describe_labeling_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job(params["LabelingJobName"])
        with job.lock:
            self._advance(job)
            return self._description(job)

    def _stop_labeling_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job(params["LabelingJobName"])
        with job.lock:
            self._advance(job)
            if job.status in (INITIALIZING, IN_PROGRESS):
                job.stop_requested_at = self._clock()
                self._set_status(job, STOPPING)
                self._advance(job)
        return {}

    def _list_labeling_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
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

    def _description(self, job: LabelingJob) -> dict[str, Any]:
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
        return self._with_outcome(job, description)

    def _summary(self, job: LabelingJob) -> dict[str, Any]:
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
        return {k: v for k, v in self._with_outcome(job, summary).items() if v is not None}

    @staticmethod
    def _with_outcome(job: LabelingJob, response: dict[str, Any]) -> dict[str, Any]:
        """FailureReason and LabelingJobOutput, once the job has them."""
        if job.failure_reason:
            response["FailureReason"] = job.failure_reason
        if job.output_uri:
            response["LabelingJobOutput"] = {"OutputDatasetS3Uri": job.output_uri}
        return response

    # ------------------------------------------------------------------ lifecycle

    def _set_status(self, job: LabelingJob, status: str) -> None:
        if job.status != status:
            job.status = status
            job.last_modified = datetime.now(UTC)

    def _advance(self, job: LabelingJob) -> None:
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
            self._fail(job, cfg.failure_reason)
        elif cfg.stop_after_fraction is not None:
            self._finish(job, STOPPED, cfg.stop_after_fraction)
        else:
            self._finish(job, COMPLETED, 1.0)

    def _should_fail(self, name: str) -> bool:
        fail = self.config.fail_job
        if isinstance(fail, str):
            return re.search(fail, name) is not None
        return bool(fail)

    def _fail(self, job: LabelingJob, reason: str) -> None:
        job.failure_reason = reason
        job.counters = _counters(unlabeled=0)
        self._set_status(job, FAILED)

    def _finish(self, job: LabelingJob, status: str, fraction: float) -> None:
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
        attribute = job.request["LabelAttributeName"]
        try:
            # Objects the pre-annotation Lambda sent to no one stay Unlabeled in the counters.
            outputs, _not_sent = self.workforce.label(job, to_label)
            timed_out = [(i, expired_line(job.lines[i], attribute, job.name)) for i in expired]
            uri = job.output.manifest([line for _, line in sorted(list(outputs.items()) + timed_out)])
        except JobFailure as failure:
            log.warning("labeling job %s failed: %s", job.name, failure)
            self._fail(job, str(failure))
            return
        labeled = len(outputs)
        job.counters = _counters(
            labeled=labeled, failed=len(expired), unlabeled=total - labeled - len(expired)
        )
        job.output_uri = uri
        self._set_status(job, status)
        log.info("labeling job %s %s: %s", job.name, status, job.counters)
