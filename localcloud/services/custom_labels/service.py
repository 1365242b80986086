"""Emulated Amazon Rekognition Custom Labels: the operations the workflow calls (datasets and
training in `training`).

Behaviour follows the API reference (docs/aws-facts.md §1.1 StartProjectVersion, §1.2
StopProjectVersion, §1.3 DescribeProjectVersions, §1.4 DetectCustomLabels, §1.5 errors and their
HTTP status codes) and botocore's service model (request validation, response members):

- model status moves on real time: STOPPED -> STARTING -> RUNNING (or FAILED) -> STOPPING -> STOPPED;
- DetectCustomLabels answers only while RUNNING (ResourceNotReadyException otherwise), reads the
  image like the service (`images`), and answers ProvisionedThroughputExceededException above
  `tps_per_inference_unit * MinInferenceUnits` calls per second (token bucket);
- predictions come from the ground truth with seeded noise (`model`);
- DescribeProjects lists each project's datasets and ListDatasetLabels their labels (the first
  state reads the label set there, before the model starts).

Choices where AWS documents nothing (each marked "emulator choice" below):
- StopProjectVersion stops a running model, as AWS documents it (§1.2); in any other state, STARTING
  included, it answers ResourceInUseException, the error the reference documents for a resource in
  use. What AWS answers for a model that is not running is not documented (§8): the product never
  relies on the refusal, it reads the status (model_control);
- without MinConfidence the service filters each label at its own assumed threshold from training;
  the emulator uses one threshold for every label (`assumed_threshold`, default 50);
- a project registered with `add_model` has a TRAIN dataset that declares the labels its model
  versions were trained on, without entries (the images it was trained on are not the emulator's);
  `add_dataset` replaces it with entries, `remove_datasets` leaves the project without any.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from localcloud.data.truth import Truth
from localcloud.services.base import EmulatedService, ServiceError, throttling_error
from localcloud.services.custom_labels.describe import DescribeMixin
from localcloud.services.custom_labels.images import check_image, read_image
from localcloud.services.custom_labels.model import CustomLabelsConfig, TaskType, TrainedModel
from localcloud.services.custom_labels.training import (
    TRAINED,
    TRAINING,
    TRAINING_FAILED,
    Dataset,
    TrainingMixin,
    TrainingRecord,
)

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"

STARTING, RUNNING, FAILED, STOPPING, STOPPED = "STARTING", "RUNNING", "FAILED", "STOPPING", "STOPPED"
_BILLED = {STARTING, RUNNING}


@dataclass
class _Version:
    """A model version's record: where it is in its life, its capacity and its call counters."""

    project: str
    version: str
    project_arn: str
    trained: TrainedModel
    created: datetime
    status: str
    min_units: int = 1
    max_units: int | None = None
    # Units auto-scaling has put in service between Min and Max (None: Min). AWS reports them in
    # CloudWatch as InServiceInferenceUnits (docs/aws-facts.md §5.4); the local cloud publishes them.
    in_service_units: int | None = None
    transition_at: float | None = None  # when STARTING/STOPPING ends
    history: list[tuple[str, float]] = field(default_factory=list)  # (status, entered at)
    # training (training.py): where CreateProjectVersion asked for output, the fault message, the
    # test entries it is evaluated on, and the F1 once computed
    output_config: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    test_set: dict[str, dict[str, Any]] = field(default_factory=dict)
    f1: float | None = None
    training: TrainingRecord | None = None  # what it was trained on and the results it wrote
    tokens: float = 0.0
    tokens_at: float = 0.0
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "detect_calls": 0,
            "detect_answered": 0,
            "throttled_calls": 0,
            "not_ready_calls": 0,
            "start_calls": 0,
            "stop_calls": 0,
        }
    )

    @property
    def arn(self) -> str:
        return self.trained.arn


class CustomLabelsEmulator(DescribeMixin, TrainingMixin, EmulatedService):
    """Thread-safe: state changes happen under one lock; S3 reads, decoding and the per-call
    latency happen outside it, so concurrent DetectCustomLabels calls overlap as on AWS."""

    SERVICE: ClassVar[str] = "rekognition"
    OPERATIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "DescribeProjects",
            "DescribeProjectVersions",
            "StartProjectVersion",
            "StopProjectVersion",
            "DetectCustomLabels",
            "ListDatasetLabels",
            "CreateDataset",
            "DescribeDataset",
            "UpdateDatasetEntries",
            "CreateProjectVersion",
        }
    )

    def __init__(
        self,
        s3: S3Client,
        config: CustomLabelsConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._s3 = s3
        self.config = config or CustomLabelsConfig()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.RLock()
        self._models: dict[str, _Version] = {}
        self._datasets: dict[str, Dataset] = {}
        self._projects: dict[str, tuple[str, datetime]] = {}  # name -> (arn, created)
        self._detect_index = 0
        self._storm_rng = random.Random(f"storm-{self.config.seed}")
        self._last_ms = 0

    # ------------------------------------------------------------------ setup and records

    def add_model(
        self,
        project_name: str,
        version_name: str,
        task_type: TaskType,
        truth: dict[str, Truth],
        status: str = STOPPED,
        labels: list[str] | None = None,
        units: tuple[int, int | None, int | None] = (1, None, None),
    ) -> str:
        """Register a trained model version; returns its ARN. `labels` default to the truth's.
        `units`: (Min, Max, in service) inference units of a model added RUNNING (someone else
        started it, auto-scaling may have added units)."""
        if task_type not in ("detection", "classification"):
            raise ValueError(f"task_type must be detection or classification, not {task_type!r}")
        with self._lock:
            arn = self._add_version(project_name, version_name, task_type, 1.0, truth, status, labels)
            record = self._models[arn]
            record.min_units, record.max_units, record.in_service_units = units
            self.declare_labels(project_name, record.trained.labels)
            return arn

    def _add_version(
        self,
        project_name: str,
        version_name: str,
        task_type: TaskType,
        noise_scale: float,
        truth: dict[str, Truth] | None = None,
        status: str = STOPPED,
        labels: list[str] | None = None,
    ) -> str:
        """A version record (under the lock); truth and labels default to the project's last version's."""
        if truth is None:  # a trained version: what its project's latest version knows
            base = max(
                (m for m in self._models.values() if m.project == project_name), key=lambda m: m.created
            )
            truth = base.trained.truth
            labels = list(base.trained.labels) if labels is None else labels
        if project_name not in self._projects:
            # The project ARN's timestamp is the project's creation, unrelated to the version's:
            # callers must look it up (DescribeProjects), never derive it from the version ARN.
            created = datetime.now(UTC)
            self._projects[project_name] = (
                f"arn:aws:rekognition:{self.config.region}:{ACCOUNT_ID}:project/{project_name}/"
                f"{self._unique_ms() - 86_400_000}",
                created,
            )
        project_arn, _ = self._projects[project_name]
        arn = (
            f"arn:aws:rekognition:{self.config.region}:{ACCOUNT_ID}:project/{project_name}/"
            f"version/{version_name}/{self._unique_ms()}"
        )
        if labels is None:
            labels = sorted({label for t in truth.values() for label in t.labels})
        trained = TrainedModel(arn, task_type, truth, list(labels), noise_scale)
        record = _Version(project_name, version_name, project_arn, trained, datetime.now(UTC), status)
        record.history.append((status, self._clock()))
        self._models[arn] = record
        return arn

    def project_arn(self, project_name: str) -> str:
        with self._lock:
            return self._projects[project_name][0]

    def status(self, arn: str) -> str:
        with self._lock:
            model = self._model(arn)
            self._advance(model)
            return model.status

    def force_stop(self, arn: str) -> None:
        """Fault injection: the model stops at once (e.g. someone stopped it in the console)."""
        with self._lock:
            model = self._model(arn)
            self._advance(model)
            model.transition_at = None
            self._enter(model, STOPPED, self._clock())

    def meter(self, arn: str) -> dict[str, Any]:
        """What the model cost: seconds billed (STARTING + RUNNING), seconds RUNNING, the
        (start, stop) intervals on the emulator's clock (stop None while up) and call counters."""
        with self._lock:
            model = self._model(arn)
            self._advance(model)
            now = self._clock()
            billed = running = 0.0
            intervals: list[tuple[float, float | None]] = []
            open_start: float | None = None
            for index, (status, since) in enumerate(model.history):
                until = model.history[index + 1][1] if index + 1 < len(model.history) else now
                if status in _BILLED:
                    billed += until - since
                    if open_start is None:
                        open_start = since
                elif open_start is not None:
                    intervals.append((open_start, since))
                    open_start = None
                if status == RUNNING:
                    running += until - since
            if open_start is not None:
                intervals.append((open_start, None))
            return {
                "status": model.status,
                "billed_seconds": billed,
                "running_seconds": running,
                "intervals": intervals,
                "inference_units": model.in_service_units or model.min_units,
                **model.counters,
            }

    # ------------------------------------------------------------------ state machine

    def _unique_ms(self) -> int:
        ms = max(int(time.time() * 1000), self._last_ms + 1)
        self._last_ms = ms
        return ms

    def _model(self, arn: str) -> _Version:
        model = self._models.get(arn)
        if model is None:
            raise ServiceError("ResourceNotFoundException", "The requested resource was not found.")
        return model

    def _enter(self, model: _Version, status: str, at: float) -> None:
        model.status = status
        model.history.append((status, at))

    def _advance(self, model: _Version) -> None:
        """Apply a pending transition whose time has come, stamped at its scheduled time."""
        if model.transition_at is None or self._clock() < model.transition_at:
            return
        at = model.transition_at
        model.transition_at = None
        if model.status == STARTING:
            if self.config.fail_start:
                self._enter(model, FAILED, at)
            else:
                self._enter(model, RUNNING, at)
                model.tokens = self._bucket_size(model)
                model.tokens_at = at
        elif model.status == STOPPING:
            self._enter(model, STOPPED, at)
        elif model.status == TRAINING:
            self._enter(model, TRAINING_FAILED if model.failure else TRAINED, at)

    def _bucket_size(self, model: _Version) -> float:
        return max(1.0, self._rate(model) * self.config.burst_s)

    def _rate(self, model: _Version) -> float:
        # Emulator choice: auto-scaling is not emulated over time; capacity is what is in service
        # (set when the model was added), Min IUs for a model started here.
        return self.config.tps_per_inference_unit * (model.in_service_units or model.min_units)

    # ------------------------------------------------------------------ operations

    def _start_project_version(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._model(params["ProjectVersionArn"])
            self._advance(model)
            model.counters["start_calls"] += 1
            if model.status in (STARTING, RUNNING, STOPPING, TRAINING):
                raise ServiceError(
                    "ResourceInUseException",
                    f"The model version is {model.status} and cannot be started.",
                )
            model.min_units = params["MinInferenceUnits"]
            model.max_units = params.get("MaxInferenceUnits")
            model.in_service_units = None
            now = self._clock()
            self._enter(model, STARTING, now)
            model.transition_at = now + self.config.start_latency_s
            log.info("model %s STARTING with %d IU", model.arn, model.min_units)
            return {"Status": STARTING}

    def _stop_project_version(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._model(params["ProjectVersionArn"])
            self._advance(model)
            model.counters["stop_calls"] += 1
            if model.status != RUNNING:
                raise ServiceError(
                    "ResourceInUseException",
                    f"The model version is {model.status} and cannot be stopped.",
                )
            now = self._clock()
            self._enter(model, STOPPING, now)
            model.transition_at = now + self.config.stop_latency_s
            log.info("model %s STOPPING", model.arn)
            return {"Status": STOPPING}

    def _admit_detect(self, arn: str) -> _Version:
        """Everything DetectCustomLabels decides under the lock: existence, status, throttling."""
        with self._lock:
            index = self._detect_index
            self._detect_index += 1
            model = self._model(arn)
            self._advance(model)
            model.counters["detect_calls"] += 1
            if model.status != RUNNING:
                model.counters["not_ready_calls"] += 1
                raise ServiceError(
                    "ResourceNotReadyException",
                    f"ProjectVersion arn {arn} is not ready. Current status: {model.status}",
                )
            if self._in_storm(index):
                model.counters["throttled_calls"] += 1
                raise throttling_error("rekognition", "Slow down.")
            now = self._clock()
            size = self._bucket_size(model)
            model.tokens = min(size, model.tokens + (now - model.tokens_at) * self._rate(model))
            model.tokens_at = now
            if model.tokens < 1.0:
                model.counters["throttled_calls"] += 1
                raise ServiceError(
                    "ProvisionedThroughputExceededException",
                    "Provisioned rate exceeded.",
                )
            model.tokens -= 1.0
            return model

    def _in_storm(self, index: int) -> bool:
        storm = self.config.throttling_storm
        if storm is None:
            return False
        if isinstance(storm, tuple):
            first, count = storm
            return first <= index < first + count
        return self._storm_rng.random() < float(storm)

    def _detect_custom_labels(self, params: dict[str, Any]) -> dict[str, Any]:
        model = self._admit_detect(params["ProjectVersionArn"])
        if self.config.detect_latency_s > 0:
            self._sleep(self.config.detect_latency_s)
        source_ref, data = read_image(self._s3, params["Image"])
        width, height = check_image(data)
        labels = model.trained.predict(self.config, source_ref, width, height)
        min_confidence = params.get("MinConfidence")
        threshold = self.config.assumed_threshold if min_confidence is None else float(min_confidence)
        labels = [label for label in labels if label["Confidence"] >= threshold]
        labels.sort(key=lambda label: label["Confidence"], reverse=True)
        if "MaxResults" in params:
            labels = labels[: params["MaxResults"]]
        with self._lock:
            model.counters["detect_answered"] += 1
        return {"CustomLabels": labels}
