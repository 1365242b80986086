"""The emulated Custom Labels model: its configuration and what a trained model version predicts.

Predictions come from the ground truth with seeded noise, deterministic per (model, image), so a
retried call gets the same answer. Boxes are ratios of the displayed image, as DetectCustomLabels
gives them (docs/aws-facts.md §1.4).

How the emulated model errs (emulator choices; AWS documents nothing of a model's error structure):

- **Where.** Each image has a difficulty d, uniform in [0, 1). Its error rates are the configured
  means times `1 - k + 4 k d^3` (mean 1), k = `error_concentration`: at k = 0 every image is as
  likely to be wrong; at k = 1 half the images (d < 0.5) err at most half as often as the mean and
  the hardest four times as often.
  Real detectors err where the scene is hard (small, occluded, unusual objects), and they are less
  sure there: that is what lets the model's own uncertainty point people at its mistakes.
- **How sure.** A prediction's *honest* confidence is drawn around 100 x (1 - the image's miss
  rate), on the logit scale with spread `confidence_spread` (so easy images sit just under 100);
  the prediction is then right (its label, and its box within a few percent of the true one) with
  exactly that probability, else wrong: a box moved far off the
  object, or the wrong label. So with `overconfidence` 0 the confidences are calibrated: of the
  predictions reported at c, c % are right. `overconfidence` adds that many points to every
  reported confidence (capped at 99.99): a model that claims more than it knows.
- **What it misses.** Each true object is missed with the image's miss rate; misses leave no trace
  in the output, but they happen on hard images, where the other predictions are less confident.
- **What it invents.** False positives (at most 3 per image, each with the image's false-positive
  rate) come at confidences about 30 points below the image's honest level.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
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
    # noise of the predictions (see the module docstring)
    miss_rate: float = 0.1  # mean chance that a true object/label is not predicted
    false_positive_rate: float = 0.1  # mean chance of one more wrong detection/label (repeated, max 3)
    box_jitter: float = 0.05  # each edge of a right box moves by up to this fraction of the box size
    confidence_spread: float = 0.5  # standard deviation of one image's honest confidences, in logits
    error_concentration: float = 1.0  # k: error rates x (1 - k + 4 k d^3), d the image's difficulty
    overconfidence: float = 0.0  # points added to every honest confidence (0: calibrated)
    assumed_threshold: float = 50.0  # emulator choice: used when MinConfidence is omitted
    seed: int = 0
    # training (CreateProjectVersion) and datasets
    dataset_latency_s: float = 0.2  # CREATE/UPDATE_IN_PROGRESS -> *_COMPLETE
    training_latency_s: float = 1.0  # TRAINING_IN_PROGRESS -> TRAINING_COMPLETED (AWS: 30 min to 24 h)
    billable_training_seconds: int = 3600  # what DescribeProjectVersions reports for a trained version
    # a new version learns from its labels: noise = this / (this + correct objects) + a term for the
    # wrong ones (training.py, TrainingRecord)
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
    miss: float = 0.0  # this image's rates (set from its difficulty, first draw)
    false_positive: float = 0.0
    honest_level: float = 90.0

    def __post_init__(self) -> None:
        cfg = self.config
        k = min(1.0, max(0.0, cfg.error_concentration))
        factor = 1.0 - k + 4.0 * k * self.rng.random() ** 3
        self.miss = min(0.95, cfg.miss_rate * factor)
        self.false_positive = min(0.95, cfg.false_positive_rate * factor)
        level = min(0.9999, max(0.005, 1.0 - self.miss))
        self.honest_level = math.log(level / (1.0 - level))  # in logits

    def honest(self, offset: float = 0.0) -> float:
        """An honest confidence (0.5-99.99): the chance, in percent, that the prediction is right.
        Drawn on the logit scale, so an easy image's predictions sit just under 100 and a hard
        one's spread lower; `offset` is in confidence points at the image's level."""
        logit = self.rng.gauss(self.honest_level, self.config.confidence_spread)
        value = 100.0 / (1.0 + math.exp(-logit)) + offset
        return min(99.99, max(0.5, value))

    def reported(self, honest: float) -> float:
        return round(min(99.99, honest + self.config.overconfidence), 3)

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
        rng = self.rng
        out: list[dict[str, Any]] = []
        wrong = [label for label in labels if label not in truth.labels]
        for label in truth.labels:
            miss = rng.random() < self.miss
            confidence = self.honest()
            right = rng.random() * 100.0 < confidence
            if miss:
                continue
            if not right and wrong:  # said as another label (a confusion)
                label = wrong.pop(rng.randrange(len(wrong)))
            out.append({"Name": label, "Confidence": self.reported(confidence)})
        while wrong and len(out) < len(truth.labels) + 3 and rng.random() < self.false_positive:
            label = wrong.pop(rng.randrange(len(wrong)))
            out.append({"Name": label, "Confidence": self.reported(self.honest(offset=-30.0))})
        return out

    def boxes(self, truth: Truth, labels: list[str], width: int, height: int) -> list[dict[str, Any]]:
        rng, cfg = self.rng, self.config
        # Truth boxes are pixels of the image the truth was made for; ratios make them size-free.
        ref_w = truth.width or width
        ref_h = truth.height or height
        out: list[dict[str, Any]] = []
        for box in truth.boxes:
            miss = rng.random() < self.miss
            jitter = [rng.uniform(-cfg.box_jitter, cfg.box_jitter) for _ in range(4)]
            confidence = self.honest()
            right = rng.random() * 100.0 < confidence
            name = box.label
            if not right:
                # Wrong: the box lands far off the object (IoU well under 0.5), or, half the time
                # when the model knows another label, the object gets that label.
                others = [label for label in labels if label != box.label]
                if others and rng.random() < 0.5:
                    name = rng.choice(others)
                else:
                    shift = rng.choice((-1.0, 1.0)) * rng.uniform(0.6, 0.9)
                    jitter = [shift, rng.uniform(-0.3, 0.3), shift, rng.uniform(-0.3, 0.3)]
            if miss:
                continue
            left = box.left + jitter[0] * box.width
            top = box.top + jitter[1] * box.height
            right_edge = box.left + box.width + jitter[2] * box.width
            bottom = box.top + box.height + jitter[3] * box.height
            ratio_box = _clip_box(left / ref_w, top / ref_h, right_edge / ref_w, bottom / ref_h)
            if ratio_box is None:
                continue
            geometry = {"BoundingBox": ratio_box}
            out.append({"Name": name, "Confidence": self.reported(confidence), "Geometry": geometry})
        extra = 0
        while labels and extra < 3 and rng.random() < self.false_positive:
            extra += 1
            out.append(
                {
                    "Name": rng.choice(labels),
                    "Confidence": self.reported(self.honest(offset=-30.0)),
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
