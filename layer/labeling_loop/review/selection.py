"""Plan the human review from the model's predictions (backend-agnostic part).

Inference keeps every prediction above a low floor (run_config.PREDICTION_FLOOR); the thresholds are
applied here, so they can change without inferring again:
- predictions below `minConfidence` are not shown to reviewers;
- every inferred image becomes either a review task (people confirm or adjust the predictions;
  images without any prediction are reviewed too, because missed objects are the errors that matter
  most) or, when every shown prediction is at or above its label's auto-accept threshold
  (`autoAcceptConfidenceByLabel`, else `autoAcceptConfidence`), an auto-accepted record;
- an audit sample of the images that would be auto-accepted goes to review anyway
  (`review/audit.jsonl` lists them with what would have been accepted): the images whose hash of
  the run id and the source-ref falls below `auditFraction`, and at least the `auditMinImages`
  lowest hashes. A hash, not a random draw: a retried step and anyone rerunning the plan choose the
  same images; salted with the run id, so every run over the same images audits others; and
  independent of the predictions, so the sample is a simple random sample of the auto-accept
  candidates (what makes the audit's bounds exact, evaluation/audit.py);
- the images to review go to people in one order (review/budget.py), recorded in
  `review/order.jsonl`: the audit sample first, then each label's share, then the images earlier runs
  deferred, then the images most likely to need a correction. With `reviewBudget`, the first
  `reviewBudget` images of that order are reviewed (the audit included, and never more than the
  budget: the audit then keeps the lowest hashes, still a random sample) and the rest deferred
  (`over-review-budget`, `deferred/review-00000.jsonl`).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labeling_loop.kernel.deferral import defer_record
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.geometry import ratio_to_pixels
from labeling_loop.kernel.jsonl import JsonlWriter, read_jsonl, read_jsonl_prefix
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_config import AutoAccept, RunConfig, TaskType
from labeling_loop.review.budget import Placed, ReviewQueue, audit_line, correction_score

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


@dataclass
class PlanSummary:
    """The review plan as the state machine carries it (`$.plan`): the task type is decided here,
    once, and every later state reads it from the plan."""

    task_type: TaskType
    labels: list[str]
    images_to_review: int = 0
    images_auto_accepted: int = 0
    jobs: int = 0
    images_audited: int = 0  # among images_to_review: auto-accept candidates reviewed as the audit
    predicted_labels: set[str] = field(default_factory=set)
    wave: int = 1  # 2: the auto-accepted images the audit gate sent to people
    jobs_key: str = ""  # the Ground Truth job list of this wave (the Distributed Map's items)
    review_budget: int | None = None  # the run's reviewBudget
    images_deferred: int = 0  # over the review budget in this wave: deferred to the next run
    audit_capped: int = 0  # audit images the budget could not hold (left auto-accepted)
    # the reviewed images by why they were chosen (review/budget.py Priority)
    by_priority: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "taskType": self.task_type,
            "labels": self.labels,
            "imagesToReview": self.images_to_review,
            "imagesAutoAccepted": self.images_auto_accepted,
            "imagesAudited": self.images_audited,
            "jobs": self.jobs,
            "wave": self.wave,
            "jobsKey": self.jobs_key,
            "reviewBudget": self.review_budget,
            "imagesDeferred": self.images_deferred,
            "auditCappedByBudget": self.audit_capped,
            "reviewedByPriority": dict(sorted(self.by_priority.items())),
        }

    def place(self, placed: Placed, tasks: JsonlWriter, order: JsonlWriter, deferred: JsonlWriter) -> None:
        """One image of the review order: its line in order.jsonl, and its task (within the budget)
        or its deferral record (over it)."""
        order.write(placed.line())
        if placed.review:
            tasks.write(placed.task)
            self.images_to_review += 1
            self.by_priority[placed.priority] = self.by_priority.get(placed.priority, 0) + 1
            return
        order_file = "review/order.jsonl" if self.wave == 1 else "review/wave-2/order.jsonl"
        detail = f"over reviewBudget {self.review_budget:,} images: rank {placed.rank:,} in {order_file}"
        if self.wave > 1:
            detail += " (auto-accepted, held by the audit gate for people; the first wave spent the budget)"
        deferred.write(defer_record(placed.ref, "review", "over-review-budget", detail))
        self.images_deferred += 1

    @classmethod
    def from_state(cls, plan: Mapping[str, Any]) -> PlanSummary:
        task_type = plan.get("taskType")
        if task_type not in ("detection", "classification"):
            raise ValueError(f"plan.taskType: {task_type!r} is not detection or classification")
        return cls(
            task_type=task_type,
            labels=[str(label) for label in plan.get("labels") or []],
            images_to_review=int(plan.get("imagesToReview", 0)),
            images_auto_accepted=int(plan.get("imagesAutoAccepted", 0)),
            images_audited=int(plan.get("imagesAudited", 0)),
            jobs=int(plan.get("jobs", 0)),
            wave=int(plan.get("wave", 1)),
            jobs_key=str(plan.get("jobsKey", "")),
            review_budget=int(plan["reviewBudget"]) if plan.get("reviewBudget") is not None else None,
            images_deferred=int(plan.get("imagesDeferred", 0)),
            audit_capped=int(plan.get("auditCappedByBudget", 0)),
            by_priority={str(k): int(v) for k, v in (plan.get("reviewedByPriority") or {}).items()},
        )


@dataclass(frozen=True)
class PlanSettings:
    """How a run plans its review, built once from its RunConfig (`from_config`)."""

    requested_task_type: str = "auto"
    extra_labels: tuple[str, ...] = ()  # offered to reviewers beside the predicted ones
    auto_accept: AutoAccept = field(default_factory=AutoAccept)
    min_confidence: float = 0.0
    audit_fraction: float = 0.0
    audit_min_images: int = 0
    audit_salt: str = ""  # the run id: the audit order differs between runs, not between retries
    review_budget: int | None = None

    @classmethod
    def from_config(cls, config: RunConfig) -> PlanSettings:
        return cls(
            requested_task_type=config.taskType,
            extra_labels=tuple(config.labels),
            auto_accept=config.auto_accept,
            min_confidence=config.minConfidence,
            audit_fraction=config.auditFraction,
            audit_min_images=config.auditMinImages,
            audit_salt=config.runId,
            review_budget=config.reviewBudget,
        )


def audit_key(source_ref: str, salt: str) -> float:
    """The image's place in the audit order: a uniform number in [0, 1) from the salt (the run
    id) and its source-ref."""
    digest = hashlib.sha256(f"audit|{salt}|".encode() + source_ref.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class _Lowest:
    """The `size` lowest keys offered (a max-heap of negated keys): at most `size` numbers held."""

    size: int
    _heap: list[float] = field(default_factory=list)

    def offer(self, key: float) -> None:
        if self.size <= 0:
            return
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, -key)
        elif key < -self._heap[0]:
            heapq.heapreplace(self._heap, -key)

    def holds(self, key: float) -> bool:
        return bool(self._heap) and key <= -self._heap[0]


@dataclass
class AuditSampler:
    """Which auto-accept candidates are audited: key < fraction, or among the `minimum` lowest keys;
    with a review budget (`cap`), never more than the `cap` lowest keys (the audit is counted in the
    budget; the lowest keys of a uniform hash are still a simple random sample). Holds at most
    `minimum` (and `cap`) keys, whatever the number of images."""

    fraction: float
    minimum: int
    cap: int | None = None
    candidates: int = 0
    wanted: int = 0  # candidates the fraction alone selects
    _lowest: _Lowest = field(init=False)
    _capped: _Lowest | None = field(init=False)

    def __post_init__(self) -> None:
        self._lowest = _Lowest(self.minimum)
        self._capped = _Lowest(self.cap) if self.cap is not None else None

    def offer(self, key: float) -> None:
        self.candidates += 1
        self.wanted += key < self.fraction
        self._lowest.offer(key)
        if self._capped is not None:
            self._capped.offer(key)

    def _wants(self, key: float) -> bool:
        return key < self.fraction or self._lowest.holds(key)

    def selects(self, key: float) -> bool:
        return self._wants(key) and (self._capped is None or self._capped.holds(key))

    @property
    def capped(self) -> int:
        """Candidates the audit would have taken but the budget could not hold."""
        if self.cap is None:
            return 0
        wanted = max(self.wanted, min(self.minimum, self.candidates))
        return max(0, wanted - min(self.cap, self.candidates))


@dataclass
class Survey:
    """First pass over the predictions: does the model draw boxes, which labels it uses, and the
    audit order of the auto-accept candidates (for each task type the plan may choose)."""

    has_boxes: bool = False
    labels: set[str] = field(default_factory=set)
    audit: dict[str, AuditSampler] = field(default_factory=dict)


def survey(s3: S3Client, layout: RunLayout, settings: PlanSettings) -> Survey:
    found = Survey()
    requested = settings.requested_task_type
    types = [requested] if requested != "auto" else ["detection", "classification"]
    found.audit = {
        t: AuditSampler(settings.audit_fraction, settings.audit_min_images, settings.review_budget)
        for t in types
    }
    min_confidence, auto_accept = settings.min_confidence, settings.auto_accept
    for record in read_jsonl_prefix(s3, layout.predictions_prefix):
        for label in record["labels"]:
            if label["confidence"] >= min_confidence:
                found.labels.add(label["name"])
                found.has_boxes = found.has_boxes or "box" in label
        if not auto_accept.on:
            continue
        for task_type, sampler in found.audit.items():
            if is_auto_accepted(to_task(record, task_type, min_confidence), auto_accept):
                sampler.offer(audit_key(record["source-ref"], settings.audit_salt))
    return found


def resolve_task_type(requested: str, has_boxes: bool, any_label: bool = True) -> TaskType:
    """`auto`: boxes mean detection, image labels mean classification; with no prediction at all
    nothing tells, and detection (the more common model) is assumed."""
    if requested in ("detection", "classification"):
        return requested  # type: ignore[return-value]
    return "detection" if has_boxes or not any_label else "classification"


def to_task(record: dict[str, Any], task_type: str, min_confidence: float = 0.0) -> dict[str, Any]:
    """A prediction record as a review task, boxes in pixels of the displayed image; predictions
    below `min_confidence` are not shown."""
    size = record["image_size"]
    predictions = []
    for label in record["labels"]:
        if label["confidence"] < min_confidence:
            continue
        if task_type == "detection":
            if "box" not in label:
                continue
            box = ratio_to_pixels(label["box"], size["width"], size["height"])
            if box is None:  # degenerate after clipping to the image: nothing to show
                continue
            predictions.append(
                {"label": label["name"], "confidence": label["confidence"], "box": box.to_dict()}
            )
        elif "box" not in label:
            predictions.append({"label": label["name"], "confidence": label["confidence"]})
    return {
        "source-ref": record["source-ref"],
        "taskType": task_type,
        "image_size": size,
        "predictions": predictions,
    }


def auto_accepted(task: dict[str, Any]) -> dict[str, Any]:
    """The reviewed record of an image whose predictions skip review."""
    detection = task["taskType"] == "detection"
    return {
        "source-ref": task["source-ref"],
        "taskType": task["taskType"],
        "image_size": task["image_size"],
        "boxes": [{"label": p["label"], **p["box"], "status": "kept"} for p in task["predictions"]]
        if detection
        else [],
        "labels": [] if detection else [{"label": p["label"], "status": "kept"} for p in task["predictions"]],
        "removed": [],
        "reviewer": "auto-accept",
        "humanReviewed": False,
    }


def is_auto_accepted(task: dict[str, Any], auto_accept: AutoAccept | float | None) -> bool:
    """Every shown prediction at or above its label's threshold (and at least one prediction)."""
    if not isinstance(auto_accept, AutoAccept):
        auto_accept = AutoAccept(auto_accept)
    predictions = task["predictions"]
    if not predictions:
        return False
    for p in predictions:
        threshold = auto_accept.threshold(p["label"])
        if threshold is None or p["confidence"] < threshold:
            return False
    return True


def plan(s3: S3Client, layout: RunLayout, settings: PlanSettings) -> PlanSummary:
    """Write review/tasks.jsonl (in the review order), review/order.jsonl, review/auto_accepted.jsonl,
    review/audit.jsonl and the deferrals over the budget; return counts and the label set."""
    auto_accept, min_confidence = settings.auto_accept, settings.min_confidence
    audit_salt, review_budget = settings.audit_salt, settings.review_budget
    found = survey(s3, layout, settings)
    predicted = found.labels
    task_type = resolve_task_type(settings.requested_task_type, found.has_boxes, any_label=bool(predicted))
    sampler = found.audit.get(task_type, AuditSampler(0.0, 0))
    summary = PlanSummary(
        task_type=task_type,
        labels=sorted(predicted | set(settings.extra_labels)),
        predicted_labels=predicted,
        review_budget=review_budget,
        audit_capped=sampler.capped,
    )
    with (
        JsonlWriter(s3, layout.review_tasks) as tasks,
        JsonlWriter(s3, layout.review_order) as order,
        JsonlWriter(s3, layout.deferred_part("review", 0)) as deferred,
        JsonlWriter(s3, layout.auto_accepted) as accepted,
        JsonlWriter(s3, layout.audit) as audit,
        ReviewQueue(audit_salt) as queue,
    ):
        queue.load_waited(read_jsonl(s3, layout.inventory, missing_ok=True))
        for record in read_jsonl_prefix(s3, layout.predictions_prefix):
            task = to_task(record, task_type, min_confidence)
            if not is_auto_accepted(task, auto_accept):
                queue.add(task, correction_score(task, record, min_confidence))
                continue
            if not sampler.selects(audit_key(task["source-ref"], audit_salt)):
                accepted.write(auto_accepted(task))
                summary.images_auto_accepted += 1
                continue
            # The audit comes first in the order: always reviewed, counted in the budget.
            audit.write(auto_accepted(task))
            summary.images_audited += 1
            summary.place(
                audit_line(task, record, summary.images_audited, min_confidence), tasks, order, deferred
            )
        room = None if review_budget is None else max(0, review_budget - summary.images_audited)
        for placed in queue.order(room, first_rank=summary.images_audited + 1):
            summary.place(placed, tasks, order, deferred)
    return summary


def check_label_set(summary: PlanSummary, max_labels: int) -> None:
    """The review needs labels to offer, and no more than the backend shows (InvalidInput)."""
    if summary.images_to_review and not summary.labels:
        raise InvalidInput(
            "labels: the model predicted no label in this run and the input names none, so reviewers "
            'would have nothing to choose from; pass the model\'s labels (e.g. "labels": ["cat", "dog"])'
        )
    if len(summary.labels) > max_labels:
        raise InvalidInput(
            f"maxLabelsPerJob: the review needs {len(summary.labels)} labels "
            f"({', '.join(summary.labels[:60])}), more than the {max_labels} allowed; "
            "raise maxLabelsPerJob (at most 50) or trim labels"
        )
