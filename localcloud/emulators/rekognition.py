"""Emulated Amazon Rekognition Custom Labels: the five operations the workflow calls.

Behaviour follows the API reference (aws-facts section 1; source keys RK-SPV, RK-STOP, RK-DPV,
RK-DCL, RK-ERR, CL-LIM) and botocore's service model (request validation, response members):

- model status moves on real time: STOPPED -> STARTING -> RUNNING (or FAILED) -> STOPPING -> STOPPED;
- DetectCustomLabels answers only while RUNNING (ResourceNotReadyException otherwise), reads the
  image from S3 like the service (InvalidS3ObjectException, ImageTooLargeException,
  InvalidImageFormatException), and answers ProvisionedThroughputExceededException above
  `tps_per_inference_unit * MinInferenceUnits` calls per second (token bucket);
- predictions come from the ground truth with seeded noise, deterministic per (model, image), so a
  retried call gets the same answer.

Choices where AWS documents nothing (each marked "emulator choice" below):
- image dimensions outside 64-4096 px or aspect ratio above 20:1 answer InvalidParameterException
  "Request has invalid parameters": that is what Rekognition image operations answer for an image
  below the minimum size (boto/botocore issue #1366, DetectLabels); ImageTooLargeException is
  documented for the byte size (and for resolution only for DetectProtectiveEquipment);
- StopProjectVersion is accepted while STARTING or RUNNING; in any other state it answers
  ResourceInUseException (the documented error for a resource mid-transition; not verified for a
  STOPPED model);
- without MinConfidence the service filters each label at its own assumed threshold from training;
  the emulator uses one threshold for every label (`assumed_threshold`, default 50).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError
from PIL import Image, UnidentifiedImageError

from localcloud.emulators.base import ServiceError, validate_request
from localcloud.truth import Truth

log = logging.getLogger(__name__)

SERVICE = "rekognition"
ACCOUNT_ID = "123456789012"
MAX_S3_IMAGE_BYTES = 15 * 1024 * 1024  # CL-LIM: S3 object <= 15 MB
MAX_RAW_IMAGE_BYTES = 4 * 1024 * 1024  # RK-DCL: Bytes <= 4 MB for DetectCustomLabels
MIN_SIDE, MAX_SIDE, MAX_ASPECT = 64, 4096, 20.0  # CL-LIM
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"

TaskType = Literal["detection", "classification"]

STARTING, RUNNING, FAILED, STOPPING, STOPPED = "STARTING", "RUNNING", "FAILED", "STOPPING", "STOPPED"
_BILLED = {STARTING, RUNNING}
_STATUS_MESSAGES = {
    STARTING: "The model is being started.",
    RUNNING: "The model is running.",
    FAILED: "The model failed to start.",
    STOPPING: "The model is being stopped.",
    STOPPED: "The model is stopped.",
    "TRAINING_COMPLETED": "The model is ready to run.",
}


@dataclass
class CustomLabelsConfig:
    region: str = "us-east-1"
    start_latency_s: float = 0.2  # STARTING -> RUNNING (AWS: "a few minutes", CL-RUN)
    stop_latency_s: float = 0.2  # STOPPING -> STOPPED
    tps_per_inference_unit: float = 5.0  # not documented any more (aws-facts 1.6); old docs said 5
    burst_s: float = 1.0  # token bucket size, in seconds of throughput
    detect_latency_s: float = 0.0  # slept by every DetectCustomLabels call, outside the lock
    fail_start: bool = False  # the model goes STARTING -> FAILED
    # ThrottlingException for DetectCustomLabels: (first call index, count) over all calls of this
    # emulator (0-based), or a probability per call.
    throttling_storm: tuple[int, int] | float | None = None
    # noise of the predictions
    miss_rate: float = 0.1  # each true object/label is dropped with this probability
    false_positive_rate: float = 0.1  # chance of one more wrong detection/label (repeated, max 3)
    box_jitter: float = 0.05  # each box edge moves by up to this fraction of the box size
    confidence_mean: float = 85.0  # 0-100, for true positives
    confidence_spread: float = 10.0
    assumed_threshold: float = 50.0  # emulator choice: used when MinConfidence is omitted
    seed: int = 0


@dataclass
class _Model:
    project: str
    version: str
    arn: str
    project_arn: str
    task_type: TaskType
    truth: dict[str, Truth]
    labels: list[str]
    created: datetime
    status: str
    min_units: int = 1
    max_units: int | None = None
    transition_at: float | None = None  # when STARTING/STOPPING ends
    history: list[tuple[str, float]] = field(default_factory=list)  # (status, entered at)
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


class CustomLabelsEmulator:
    """Thread-safe: state changes happen under one lock; S3 reads, decoding and the per-call
    latency happen outside it, so concurrent DetectCustomLabels calls overlap as on AWS."""

    def __init__(
        self,
        s3: Any,
        config: CustomLabelsConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._s3 = s3
        self.config = config or CustomLabelsConfig()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.RLock()
        self._models: dict[str, _Model] = {}
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
    ) -> str:
        """Register a trained model version; returns its ARN. `labels` default to the truth's."""
        if task_type not in ("detection", "classification"):
            raise ValueError(f"task_type must be detection or classification, not {task_type!r}")
        with self._lock:
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
            now = self._clock()
            model = _Model(
                project=project_name,
                version=version_name,
                arn=arn,
                project_arn=project_arn,
                task_type=task_type,
                truth=truth,
                labels=list(labels),
                created=datetime.now(UTC),
                status=status,
                history=[(status, now)],
            )
            self._models[arn] = model
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
                "inference_units": model.min_units,
                **model.counters,
            }

    # ------------------------------------------------------------------ dispatch

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = {
            "DescribeProjects": self._describe_projects,
            "DescribeProjectVersions": self._describe_project_versions,
            "StartProjectVersion": self._start,
            "StopProjectVersion": self._stop,
            "DetectCustomLabels": self._detect,
        }.get(operation)
        if handler is None:
            # Emulator choice: an operation the workflow is not supposed to call fails loudly.
            raise ServiceError("InvalidAction", f"The emulator does not implement rekognition {operation}")
        validate_request(SERVICE, operation, params)
        return handler(params)

    # ------------------------------------------------------------------ state machine

    def _unique_ms(self) -> int:
        ms = max(int(time.time() * 1000), self._last_ms + 1)
        self._last_ms = ms
        return ms

    def _model(self, arn: str) -> _Model:
        model = self._models.get(arn)
        if model is None:
            raise ServiceError("ResourceNotFoundException", "The requested resource was not found.")
        return model

    def _enter(self, model: _Model, status: str, at: float) -> None:
        model.status = status
        model.history.append((status, at))

    def _advance(self, model: _Model) -> None:
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

    def _bucket_size(self, model: _Model) -> float:
        return max(1.0, self._rate(model) * self.config.burst_s)

    def _rate(self, model: _Model) -> float:
        # Emulator choice: auto-scaling (MaxInferenceUnits) is not emulated; capacity = Min IUs.
        return self.config.tps_per_inference_unit * model.min_units

    # ------------------------------------------------------------------ operations

    def _describe_projects(self, params: dict[str, Any]) -> dict[str, Any]:
        names = params.get("ProjectNames")
        features = params.get("Features")
        with self._lock:
            rows = [
                {
                    "ProjectArn": arn,
                    "CreationTimestamp": created,
                    "Status": "CREATED",
                    "Datasets": [],
                    "Feature": "CUSTOM_LABELS",
                }
                for name, (arn, created) in sorted(self._projects.items())
                if names is None or name in names
            ]
        if features is not None and "CUSTOM_LABELS" not in features:
            rows = []
        page, token = _paginate(rows, params)
        response: dict[str, Any] = {"ProjectDescriptions": page}
        if token:
            response["NextToken"] = token
        return response

    def _describe_project_versions(self, params: dict[str, Any]) -> dict[str, Any]:
        project_arn = params["ProjectArn"]
        names = params.get("VersionNames")
        with self._lock:
            if project_arn not in {arn for arn, _ in self._projects.values()}:
                raise ServiceError("ResourceNotFoundException", "The requested resource was not found.")
            models = [m for m in self._models.values() if m.project_arn == project_arn]
            for model in models:
                self._advance(model)
            # RK-DPV: newest first.
            models.sort(key=lambda m: m.arn.rsplit("/", 1)[1], reverse=True)
            rows = [self._version_description(m) for m in models if names is None or m.version in names]
        page, token = _paginate(rows, params)
        response: dict[str, Any] = {"ProjectVersionDescriptions": page}
        if token:
            response["NextToken"] = token
        return response

    def _version_description(self, model: _Model) -> dict[str, Any]:
        description: dict[str, Any] = {
            "ProjectVersionArn": model.arn,
            "CreationTimestamp": model.created,
            "MinInferenceUnits": model.min_units,
            "Status": model.status,
            "StatusMessage": _STATUS_MESSAGES.get(model.status, model.status),
            "BillableTrainingTimeInSeconds": 3600,
            "TrainingEndTimestamp": model.created,
            "OutputConfig": {"S3Bucket": "custom-labels-output", "S3KeyPrefix": f"{model.project}/"},
            "EvaluationResult": {
                "F1Score": 0.8,
                "Summary": {
                    "S3Object": {"Bucket": "custom-labels-output", "Name": f"{model.project}/summary.json"}
                },
            },
            "Feature": "CUSTOM_LABELS",
        }
        if model.max_units is not None:
            description["MaxInferenceUnits"] = model.max_units
        return description

    def _start(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._model(params["ProjectVersionArn"])
            self._advance(model)
            model.counters["start_calls"] += 1
            if model.status in (STARTING, RUNNING, STOPPING):
                raise ServiceError(
                    "ResourceInUseException",
                    f"The model version is {model.status} and cannot be started.",
                )
            model.min_units = params["MinInferenceUnits"]
            model.max_units = params.get("MaxInferenceUnits")
            now = self._clock()
            self._enter(model, STARTING, now)
            model.transition_at = now + self.config.start_latency_s
            log.info("model %s STARTING with %d IU", model.arn, model.min_units)
            return {"Status": STARTING}

    def _stop(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._model(params["ProjectVersionArn"])
            self._advance(model)
            model.counters["stop_calls"] += 1
            if model.status not in (STARTING, RUNNING):
                raise ServiceError(
                    "ResourceInUseException",
                    f"The model version is {model.status} and cannot be stopped.",
                )
            now = self._clock()
            self._enter(model, STOPPING, now)
            model.transition_at = now + self.config.stop_latency_s
            log.info("model %s STOPPING", model.arn)
            return {"Status": STOPPING}

    def _admit_detect(self, arn: str) -> _Model:
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
                raise ServiceError("ThrottlingException", "Slow down.")
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

    def _detect(self, params: dict[str, Any]) -> dict[str, Any]:
        model = self._admit_detect(params["ProjectVersionArn"])
        if self.config.detect_latency_s > 0:
            self._sleep(self.config.detect_latency_s)
        source_ref, data = self._read_image(params["Image"])
        width, height = _check_image(data)
        labels = self._predict(model, source_ref, width, height)
        min_confidence = params.get("MinConfidence")
        threshold = self.config.assumed_threshold if min_confidence is None else float(min_confidence)
        labels = [label for label in labels if label["Confidence"] >= threshold]
        labels.sort(key=lambda label: label["Confidence"], reverse=True)
        if "MaxResults" in params:
            labels = labels[: params["MaxResults"]]
        with self._lock:
            model.counters["detect_answered"] += 1
        return {"CustomLabels": labels}

    def _read_image(self, image: dict[str, Any]) -> tuple[str | None, bytes]:
        if ("Bytes" in image) == ("S3Object" in image):
            raise ServiceError("InvalidParameterException", "Request has invalid parameters")
        if "Bytes" in image:
            data = image["Bytes"]
            if isinstance(data, str):  # a base64 string, as the JSON wire form carries it
                data = base64.b64decode(data)
            if len(data) > MAX_RAW_IMAGE_BYTES:
                raise ServiceError("ImageTooLargeException", "Image size is too large.")
            return None, bytes(data)
        s3_object = image["S3Object"]
        bucket, key = s3_object.get("Bucket"), s3_object.get("Name")
        if not bucket or not key:
            raise ServiceError("InvalidParameterException", "Request has invalid parameters")
        extra = {"VersionId": s3_object["Version"]} if s3_object.get("Version") else {}
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key, **extra)
        except ClientError as error:
            log.debug("S3 read of s3://%s/%s failed: %s", bucket, key, error)
            raise ServiceError(
                "InvalidS3ObjectException",
                "Unable to get object metadata from S3. Check object key, region and/or access permissions.",
            ) from error
        if response["ContentLength"] > MAX_S3_IMAGE_BYTES:
            response["Body"].close()
            raise ServiceError("ImageTooLargeException", "Image size is too large.")
        return f"s3://{bucket}/{key}", response["Body"].read()

    # ------------------------------------------------------------------ predictions

    def _rng(self, model: _Model, source_ref: str | None, data_hint: str) -> random.Random:
        digest = hashlib.sha256(f"{self.config.seed}|{model.arn}|{source_ref or data_hint}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _confidence(self, rng: random.Random, offset: float = 0.0) -> float:
        value = rng.gauss(self.config.confidence_mean + offset, self.config.confidence_spread)
        return round(min(99.99, max(0.5, value)), 3)

    def _predict(
        self, model: _Model, source_ref: str | None, width: int, height: int
    ) -> list[dict[str, Any]]:
        rng = self._rng(model, source_ref, f"{width}x{height}")
        truth = model.truth.get(source_ref) if source_ref else None
        cfg = self.config
        if truth is None:
            # Unknown image: at most a few random low-confidence guesses.
            out = []
            while model.labels and len(out) < 3 and rng.random() < cfg.false_positive_rate:
                label = rng.choice(model.labels)
                entry: dict[str, Any] = {"Name": label, "Confidence": round(rng.uniform(1.0, 40.0), 3)}
                if model.task_type == "detection":
                    entry["Geometry"] = {"BoundingBox": _random_box(rng)}
                out.append(entry)
            return out
        if model.task_type == "classification":
            return self._predict_labels(model, truth, rng)
        return self._predict_boxes(model, truth, rng, width, height)

    def _predict_labels(self, model: _Model, truth: Truth, rng: random.Random) -> list[dict[str, Any]]:
        cfg = self.config
        out: list[dict[str, Any]] = []
        for label in truth.labels:
            miss = rng.random() < cfg.miss_rate
            confidence = self._confidence(rng)
            if not miss:
                out.append({"Name": label, "Confidence": confidence})
        wrong = [label for label in model.labels if label not in truth.labels]
        while wrong and len(out) < len(truth.labels) + 3 and rng.random() < cfg.false_positive_rate:
            label = rng.choice(wrong)
            wrong.remove(label)
            out.append({"Name": label, "Confidence": self._confidence(rng, offset=-25.0)})
        return out

    def _predict_boxes(
        self, model: _Model, truth: Truth, rng: random.Random, width: int, height: int
    ) -> list[dict[str, Any]]:
        cfg = self.config
        # Truth boxes are pixels of the image the truth was made for; ratios make them size-free.
        ref_w = truth.width or width
        ref_h = truth.height or height
        out: list[dict[str, Any]] = []
        for box in truth.boxes:
            miss = rng.random() < cfg.miss_rate
            jitter = [rng.uniform(-cfg.box_jitter, cfg.box_jitter) for _ in range(4)]
            confidence = self._confidence(rng)
            if miss:
                continue
            left = box.left + jitter[0] * box.width
            top = box.top + jitter[1] * box.height
            right = box.left + box.width + jitter[2] * box.width
            bottom = box.top + box.height + jitter[3] * box.height
            ratio_box = _clip_box(left / ref_w, top / ref_h, right / ref_w, bottom / ref_h)
            if ratio_box is None:
                continue
            out.append({"Name": box.label, "Confidence": confidence, "Geometry": {"BoundingBox": ratio_box}})
        extra = 0
        while model.labels and extra < 3 and rng.random() < cfg.false_positive_rate:
            extra += 1
            out.append(
                {
                    "Name": rng.choice(model.labels),
                    "Confidence": self._confidence(rng, offset=-30.0),
                    "Geometry": {"BoundingBox": _random_box(rng)},
                }
            )
        return out


# ---------------------------------------------------------------------- helpers


def _paginate(rows: list[dict[str, Any]], params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    token = params.get("NextToken")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
        except (ValueError, UnicodeDecodeError) as error:
            raise ServiceError("InvalidPaginationTokenException", "Invalid pagination token") from error
    size = params.get("MaxResults", 100)
    page = rows[start : start + size]
    end = start + size
    next_token = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(rows) else None
    return page, next_token


def _clip_box(left: float, top: float, right: float, bottom: float) -> dict[str, float] | None:
    left, top = max(0.0, min(1.0, left)), max(0.0, min(1.0, top))
    right, bottom = max(0.0, min(1.0, right)), max(0.0, min(1.0, bottom))
    if right - left <= 0.0 or bottom - top <= 0.0:
        return None
    return {"Width": right - left, "Height": bottom - top, "Left": left, "Top": top}


def _random_box(rng: random.Random) -> dict[str, float]:
    width, height = rng.uniform(0.05, 0.4), rng.uniform(0.05, 0.4)
    return {
        "Width": width,
        "Height": height,
        "Left": rng.uniform(0.0, 1.0 - width),
        "Top": rng.uniform(0.0, 1.0 - height),
    }


def _check_image(data: bytes) -> tuple[int, int]:
    """Validate like the service and return the displayed (EXIF-oriented) width and height."""
    if not (data.startswith(PNG_MAGIC) or data.startswith(JPEG_MAGIC)):
        raise ServiceError("InvalidImageFormatException", "Request has unsupported image format")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decodes the pixels: truncated or corrupt files fail here
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ServiceError("InvalidImageFormatException", "Request has unsupported image format") from error
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    short, long = min(width, height), max(width, height)
    if short < MIN_SIDE or long > MAX_SIDE or long / short > MAX_ASPECT:
        # Emulator choice, see the module docstring.
        raise ServiceError("InvalidParameterException", "Request has invalid parameters")
    return width, height
