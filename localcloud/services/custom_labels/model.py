"""The emulated Custom Labels model: its configuration and what a trained model version predicts.

Predictions come from the ground truth with seeded noise (misses, false positives, box jitter,
confidences around a mean), deterministic per (model, image), so a retried call gets the same
answer. Boxes are ratios of the displayed image, as DetectCustomLabels gives them
(docs/aws-facts.md §1.4).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from dataclasses import dataclass
from typing import Any, Literal

from localcloud.data.truth import Truth

TaskType = Literal["detection", "classification"]


@dataclass
class CustomLabelsConfig:
    region: str = "us-east-1"
    start_latency_s: float = 0.2  # STARTING -> RUNNING (AWS: "a few minutes", docs/aws-facts.md §1.6)
    stop_latency_s: float = 0.2  # STOPPING -> STOPPED
    tps_per_inference_unit: float = (
        5.0  # not documented any more (docs/aws-facts.md §1.6, §8); old docs said 5
    )
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
    # training (CreateProjectVersion) and datasets
    dataset_latency_s: float = 0.2  # CREATE/UPDATE_IN_PROGRESS -> *_COMPLETE
    training_latency_s: float = 1.0  # TRAINING_IN_PROGRESS -> TRAINING_COMPLETED (AWS: 30 min to 24 h)
    billable_training_seconds: int = 3600  # what DescribeProjectVersions reports for a trained version
    # a new version's noise = its base's x LABELS_HALVING / (LABELS_HALVING + labeled objects given)
    labels_halving_noise: float = 100.0
    fail_training: str | None = None  # fault: the next trainings end TRAINING_FAILED with this message


@dataclass
class TrainedModel:
    """What a trained model version knows: its task type, the labels it was trained on (it never
    predicts another) and the truth it predicts from."""

    arn: str
    task_type: TaskType
    truth: dict[str, Truth]
    labels: list[str]
    # Multiplies the configured misses, false positives and box jitter: 1 for a registered model,
    # smaller for a version trained on more labels (training.py).
    noise_scale: float = 1.0

    def predict(
        self, config: CustomLabelsConfig, source_ref: str | None, width: int, height: int
    ) -> list[dict[str, Any]]:
        """CustomLabels for one image, before MinConfidence and MaxResults."""
        if self.noise_scale != 1.0:
            config = dataclasses.replace(
                config,
                miss_rate=config.miss_rate * self.noise_scale,
                false_positive_rate=config.false_positive_rate * self.noise_scale,
                box_jitter=config.box_jitter * self.noise_scale,
            )
        noise = _Noise(config, self._rng(config.seed, source_ref or f"{width}x{height}"))
        truth = self.truth.get(source_ref) if source_ref else None
        if truth is None:
            return noise.guesses(self.labels, self.task_type == "detection")
        if self.task_type == "classification":
            return noise.labels(truth, self.labels)
        return noise.boxes(truth, self.labels, width, height)

    def _rng(self, seed: int, image: str) -> random.Random:
        # The version's ARN without its creation timestamp: the same project, version and image
        # get the same answer in every local cloud, so runs (and tests) are reproducible.
        digest = hashlib.sha256(f"{seed}|{self.arn.rsplit('/', 1)[0]}|{image}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass
class _Noise:
    """One image's draws, in a fixed order so the same image always gets the same answer."""

    config: CustomLabelsConfig
    rng: random.Random

    def confidence(self, offset: float = 0.0) -> float:
        value = self.rng.gauss(self.config.confidence_mean + offset, self.config.confidence_spread)
        return round(min(99.99, max(0.5, value)), 3)

    def guesses(self, labels: list[str], with_boxes: bool) -> list[dict[str, Any]]:
        """An image nobody has a truth for: at most a few random low-confidence guesses."""
        rng = self.rng
        out: list[dict[str, Any]] = []
        while labels and len(out) < 3 and rng.random() < self.config.false_positive_rate:
            entry: dict[str, Any] = {
                "Name": rng.choice(labels),
                "Confidence": round(rng.uniform(1.0, 40.0), 3),
            }
            if with_boxes:
                entry["Geometry"] = {"BoundingBox": _random_box(rng)}
            out.append(entry)
        return out

    def labels(self, truth: Truth, labels: list[str]) -> list[dict[str, Any]]:
        rng, cfg = self.rng, self.config
        out: list[dict[str, Any]] = []
        for label in truth.labels:
            miss = rng.random() < cfg.miss_rate
            confidence = self.confidence()
            if not miss:
                out.append({"Name": label, "Confidence": confidence})
        wrong = [label for label in labels if label not in truth.labels]
        while wrong and len(out) < len(truth.labels) + 3 and rng.random() < cfg.false_positive_rate:
            label = rng.choice(wrong)
            wrong.remove(label)
            out.append({"Name": label, "Confidence": self.confidence(offset=-25.0)})
        return out

    def boxes(self, truth: Truth, labels: list[str], width: int, height: int) -> list[dict[str, Any]]:
        rng, cfg = self.rng, self.config
        # Truth boxes are pixels of the image the truth was made for; ratios make them size-free.
        ref_w = truth.width or width
        ref_h = truth.height or height
        out: list[dict[str, Any]] = []
        for box in truth.boxes:
            miss = rng.random() < cfg.miss_rate
            jitter = [rng.uniform(-cfg.box_jitter, cfg.box_jitter) for _ in range(4)]
            confidence = self.confidence()
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
        while labels and extra < 3 and rng.random() < cfg.false_positive_rate:
            extra += 1
            out.append(
                {
                    "Name": rng.choice(labels),
                    "Confidence": self.confidence(offset=-30.0),
                    "Geometry": {"BoundingBox": _random_box(rng)},
                }
            )
        return out


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
