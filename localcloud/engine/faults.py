"""Faults on demand, from one documented configuration (a JSON file or a dict).

    {
      "model": {
        "failStart": false,              # the model goes STARTING -> FAILED
        "throttlingStorm": [0, 40],      # DetectCustomLabels calls 0..39 answer ThrottlingException
        "stopAfterDetectCalls": null,    # the model is stopped under inference after N calls
        "failTraining": null             # "message" (or true): CreateProjectVersion's training ends
                                         # TRAINING_FAILED with that StatusMessage
      },
      "groundTruth": {
        "failJob": false,                # true, or a regex of job names: the job ends Failed
        "stopAfterFraction": null,       # the job ends Stopped with this fraction labeled
        "unlabeledFraction": 0.0         # tasks that expire without an answer
      },
      "lambda": {
        "crashOnFirstCall": ["DetectLabelsFunction"],   # logical ids: first invocation crashes
        "throttleFirstCalls": {"DetectLabelsFunction": 2} # first N invocations: TooManyRequestsException
      },
      "s3": {"transientErrors": {"GetObject": 3}},      # first N calls answer 503 SlowDown
      "images": {
        "corrupt": 2,                    # overwrite N uploaded images with garbage
        "unreadable": false,             # Rekognition cannot read the images bucket (KMS, policy)
        "huge": 0                        # add N objects that S3 lists at 2 GiB (never to be read)
      },
      "services": {                      # calls to the emulated Rekognition and SageMaker
        "throttle": {"sagemaker.DescribeLabelingJob": [0, 30]},   # calls 0..29 answer ThrottlingException
        "throttleMatching": {            # the first N calls whose request matches the regex
          "sagemaker.DescribeLabelingJob": {"pattern": "-001\"", "calls": 9}},
        "crashBefore": ["rekognition.StopProjectVersion"],  # the calling function's process dies
        "crashAfter": ["rekognition.StartProjectVersion"]   # before/after the call (first one only)
      }
    }

Every key is optional; an unknown key is an error (a typo must not silently run a clean test).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from labeling_loop.kernel.s3_uri import S3Uri

from localcloud.engine import hooks
from localcloud.engine.lambda_runtime import (
    PROCESS_DIED,
    FunctionSpec,
    LambdaServiceError,
    ProcessKilled,
    current_function,
)
from localcloud.services.base import ServiceError, throttling_error

HUGE_OBJECT_BYTES = 2 * 1024**3
# Rekognition's answer when it cannot read the S3 object (docs/aws-facts.md §1.4).
UNREADABLE_MESSAGE = (
    "Unable to get object metadata from S3. Check object key, region and/or access permissions."
)

KNOWN = {
    "model": {"failStart", "throttlingStorm", "stopAfterDetectCalls", "failTraining"},
    "groundTruth": {"failJob", "stopAfterFraction", "unlabeledFraction"},
    "lambda": {"crashOnFirstCall", "throttleFirstCalls"},
    "s3": {"transientErrors"},
    "images": {"corrupt", "unreadable", "huge"},
    "services": {"throttle", "throttleMatching", "crashBefore", "crashAfter"},
}


@dataclass
class Faults:
    model: dict[str, Any] = field(default_factory=dict)
    groundTruth: dict[str, Any] = field(default_factory=dict)
    # `lambda` is a keyword: the section is stored under `lambda_`.
    lambda_: dict[str, Any] = field(default_factory=dict)
    s3: dict[str, Any] = field(default_factory=dict)
    images: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Faults:
        for section, keys in document.items():
            if section not in KNOWN:
                raise ValueError(f"faults: unknown section {section!r} (known: {sorted(KNOWN)})")
            unknown = set(keys) - KNOWN[section]
            if unknown:
                raise ValueError(
                    f"faults.{section}: unknown keys {sorted(unknown)} (known: {sorted(KNOWN[section])})"
                )
        return cls(
            model=document.get("model", {}),
            groundTruth=document.get("groundTruth", {}),
            lambda_=document.get("lambda", {}),
            s3=document.get("s3", {}),
            images=document.get("images", {}),
            services=document.get("services", {}),
        )

    @classmethod
    def load(cls, path: Path) -> Faults:
        return cls.from_dict(json.loads(path.read_text()))


class S3FaultInjector:
    """Answers the first N calls of an S3 operation with 503 SlowDown, before moto sees them."""

    def __init__(self, remaining: dict[str, int]) -> None:
        self.remaining = dict(remaining)
        self.injected: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
        with self._lock:
            if self.remaining.get(operation, 0) <= 0:
                return None
            self.remaining[operation] -= 1
            self.injected[operation] = self.injected.get(operation, 0) + 1
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return 503, {"Content-Type": "application/xml"}, body


def apply(cloud: Any, faults: Faults) -> None:
    """Configure the emulators and hooks of a LocalCloud (before deploy/run)."""
    model = faults.model
    if "failStart" in model:
        cloud.rekognition.config.fail_start = bool(model["failStart"])
    if model.get("throttlingStorm") is not None:
        storm = model["throttlingStorm"]
        cloud.rekognition.config.throttling_storm = tuple(storm) if isinstance(storm, list) else float(storm)
    if model.get("failTraining"):
        message = model["failTraining"]
        cloud.rekognition.config.fail_training = (
            message
            if isinstance(message, str)
            else "The manifest file contains too many invalid data objects."
        )
    if model.get("stopAfterDetectCalls") is not None:
        _stop_model_after(cloud, int(model["stopAfterDetectCalls"]))
    gt = faults.groundTruth
    if "failJob" in gt:
        cloud.groundtruth.config.fail_job = gt["failJob"]
    if gt.get("stopAfterFraction") is not None:
        cloud.groundtruth.config.stop_after_fraction = float(gt["stopAfterFraction"])
    if "unlabeledFraction" in gt:
        cloud.groundtruth.config.unlabeled_fraction = float(gt["unlabeledFraction"])
    crash = set(faults.lambda_.get("crashOnFirstCall", []))
    throttle = dict(faults.lambda_.get("throttleFirstCalls", {}))
    if crash or throttle:
        cloud.runtime.fault_hooks.append(_lambda_faults(crash, throttle))
    transient = faults.s3.get("transientErrors")
    if transient:
        cloud.s3_faults = S3FaultInjector(transient)
        hooks.intercept("s3", cloud.s3_faults)
    calls = CallFaults.of(faults, cloud.config.images_bucket)
    if calls.active:
        cloud.call_faults.append(calls)


def _lambda_faults(crash: set[str], throttle: dict[str, int]) -> Any:
    def hook(spec: FunctionSpec, payload: dict[str, Any], count: int) -> dict[str, Any] | None:
        if spec.logical_id in throttle and count <= throttle[spec.logical_id]:
            raise LambdaServiceError("TooManyRequestsException", "Rate exceeded (emulated fault)", 429)
        if spec.logical_id in crash and count == 1:
            return dict(PROCESS_DIED)
        return None

    return hook


@dataclass
class CallFaults:
    """Faults on calls to the emulated services, decided before the emulator answers (throttling,
    an unreadable bucket, a process that dies before the call) or right after it (a process that
    dies after the call succeeded: the service did it, the caller never learned)."""

    throttle: dict[str, tuple[int, int]] = field(default_factory=dict)  # "svc.Op" -> [first, end)
    throttle_matching: dict[str, tuple[re.Pattern[str], int]] = field(default_factory=dict)
    crash_before: set[str] = field(default_factory=set)
    crash_after: set[str] = field(default_factory=set)
    unreadable_bucket: str | None = None
    seen: dict[str, int] = field(default_factory=dict)  # calls per "svc.Op"
    injected: dict[str, int] = field(default_factory=dict)  # faults per kind
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, faults: Faults, images_bucket: str) -> CallFaults:
        services = faults.services
        return cls(
            throttle={op: (int(a), int(b)) for op, (a, b) in services.get("throttle", {}).items()},
            throttle_matching={
                op: (re.compile(rule["pattern"]), int(rule["calls"]))
                for op, rule in services.get("throttleMatching", {}).items()
            },
            crash_before=set(services.get("crashBefore", [])),
            crash_after=set(services.get("crashAfter", [])),
            unreadable_bucket=images_bucket if faults.images.get("unreadable") else None,
        )

    @property
    def active(self) -> bool:
        return (
            bool(self.throttle or self.throttle_matching or self.crash_before or self.crash_after)
            or self.unreadable_bucket is not None
        )

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def _crash(self, pending: set[str], call: str, kind: str) -> None:
        # Only a function's process can die; each listed call kills it once.
        with self.lock:
            if call not in pending or current_function() is None:
                return
            pending.discard(call)
            self._count(kind)
        raise ProcessKilled(f"{kind} {call}")

    def before(self, service: str, operation: str, params: dict[str, Any]) -> None:
        call = f"{service}.{operation}"
        with self.lock:
            index = self.seen.get(call, 0)
            self.seen[call] = index + 1
            window = self.throttle.get(call)
            throttled = window is not None and window[0] <= index < window[1]
            matching = self.throttle_matching.get(call)
            if matching and matching[1] > 0 and matching[0].search(json.dumps(params, sort_keys=True)):
                self.throttle_matching[call] = (matching[0], matching[1] - 1)
                throttled = True
            bucket = params.get("Image", {}).get("S3Object", {}).get("Bucket")
            unreadable = call == "rekognition.DetectCustomLabels" and bucket == self.unreadable_bucket
            if throttled:
                self._count("throttled")
            if unreadable:
                self._count("unreadable")
        if throttled:
            raise throttling_error(service, "Rate exceeded (emulated fault)")
        if unreadable:
            raise ServiceError("InvalidS3ObjectException", UNREADABLE_MESSAGE)
        self._crash(self.crash_before, call, "crashBefore")

    def after(self, service: str, operation: str, params: dict[str, Any]) -> None:
        self._crash(self.crash_after, f"{service}.{operation}", "crashAfter")


def add_huge_objects(cloud: Any, bucket: str, prefix: str, count: int) -> tuple[list[str], S3ReadCounter]:
    """Add `count` objects that S3 lists at 2 GiB (their bytes are a few; moto's key is told its
    size), and count every read of them. Returns their source-refs and the counter."""
    from moto.s3.models import s3_backends

    from localcloud.engine.deployment import ACCOUNT

    keys = [f"{prefix}zz-huge-{index:03d}.jpg" for index in range(count)]
    backend = s3_backends[ACCOUNT]["global"]
    for key in keys:
        cloud.s3.put_object(Bucket=bucket, Key=key, Body=b"\xff\xd8\xff\xe0 a 2 GiB upload, as listed")
        stored = backend.get_object(bucket, key)
        assert stored is not None
        stored.contentsize = HUGE_OBJECT_BYTES
    counter = S3ReadCounter(bucket, set(keys))
    hooks.intercept("s3", counter)
    return [f"s3://{bucket}/{key}" for key in keys], counter


@dataclass
class S3ReadCounter:
    """Watches GetObject calls (whole or ranged) of some keys; answers nothing itself."""

    bucket: str
    keys: set[str]
    reads: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, operation: str, params: dict[str, Any]) -> None:
        if operation != "GetObject":
            return None
        path = unquote(urlsplit(params.get("url", "")).path)
        for key in self.keys:
            if path.endswith(f"/{key}") and (self.bucket in path or self.bucket in params.get("url", "")):
                with self.lock:
                    self.reads[key] = self.reads.get(key, 0) + 1
        return None


def _stop_model_after(cloud: Any, calls: int) -> None:
    original = cloud.rekognition.handle
    lock = threading.Lock()
    seen = {"n": 0}

    def handle(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "DetectCustomLabels":
            with lock:
                seen["n"] += 1
                if seen["n"] == calls + 1:
                    cloud.rekognition.force_stop(params["ProjectVersionArn"])
        return original(operation, params)

    cloud.rekognition.handle = handle


def corrupt_images(cloud: Any, bucket: str, refs: list[str], count: int) -> list[str]:
    """Overwrite `count` uploaded images with bytes no decoder accepts; return their source-refs."""
    chosen = sorted(refs)[: max(0, count)]
    for ref in chosen:
        cloud.s3.put_object(
            Bucket=bucket, Key=S3Uri.parse(ref).key, Body=b"\xff\xd8\xff\xe0 this is not a JPEG any more"
        )
    return chosen
