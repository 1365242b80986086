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
      "images": {"corrupt": 2}                          # overwrite N uploaded images with garbage
    }

Every key is optional; an unknown key is an error (a typo must not silently run a clean test).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeling_loop.s3_uri import S3Uri

from localcloud.engine import hooks
from localcloud.engine.lambda_runtime import FunctionSpec, LambdaServiceError

KNOWN = {
    "model": {"failStart", "throttlingStorm", "stopAfterDetectCalls", "failTraining"},
    "groundTruth": {"failJob", "stopAfterFraction", "unlabeledFraction"},
    "lambda": {"crashOnFirstCall", "throttleFirstCalls"},
    "s3": {"transientErrors"},
    "images": {"corrupt"},
}


@dataclass
class Faults:
    model: dict[str, Any] = field(default_factory=dict)
    groundTruth: dict[str, Any] = field(default_factory=dict)
    # `lambda` is a keyword: the section is stored under `lambda_`.
    lambda_: dict[str, Any] = field(default_factory=dict)
    s3: dict[str, Any] = field(default_factory=dict)
    images: dict[str, Any] = field(default_factory=dict)

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


def _lambda_faults(crash: set[str], throttle: dict[str, int]) -> Any:
    def hook(spec: FunctionSpec, payload: dict[str, Any], count: int) -> dict[str, Any] | None:
        if spec.logical_id in throttle and count <= throttle[spec.logical_id]:
            raise LambdaServiceError("TooManyRequestsException", "Rate exceeded (emulated fault)", 429)
        if spec.logical_id in crash and count == 1:
            # What the runtime reports when the process dies mid-invocation.
            return {
                "errorType": "Runtime.ExitError",
                "errorMessage": "RequestId: emulated Error: Runtime exited with error: signal: killed",
            }
        return None

    return hook


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
