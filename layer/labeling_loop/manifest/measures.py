"""What a run says about the model and about the people's work, beyond the manifest: per-label
quality, the audit of auto-accept, threshold recommendations, human work, and the images where
model and people disagreed most. Fed one human-reviewed image at a time by build_manifest; memory
depends on the labels and a dozen kept images, never on the number of images.

Sampling strata (what makes whole-run figures honest when auto-accept is on):
- `review`: images sent to people because some prediction was below its auto-accept threshold (or
  there was none); all of them are reviewed, but for the ones nobody answered;
- `audit`: the images that would have been auto-accepted. Only the audit sample of them is
  reviewed, chosen by a hash independent of the predictions (review/plan.py), so it is a simple
  random sample of the stratum.
Whole-run figures weight each reviewed image by (images of its stratum) / (reviewed images of its
stratum): the Horvitz-Thompson estimate of what the counts would be had people reviewed every image.
Figures "on reviewed images" are the plain sums, as before this module, and overstate errors when
auto-accept is on (the reviewed images are the hard ones).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.geometry import ratio_to_pixels
from labeling_loop.manifest.quality import LabeledBox, match_boxes, match_labels, precision_recall_f1
from labeling_loop.manifest.thresholds import (
    ScoredBox,
    ThresholdCounts,
    correct_by_confidence,
    recommendations,
)
from labeling_loop.stats import wilson_interval

REVIEW, AUDIT = "review", "audit"
MAX_DISAGREEMENTS = 12


def scored_predictions(
    record: Mapping[str, Any] | None, task_type: str
) -> list[ScoredBox] | list[tuple[str, float]]:
    """Every prediction of a prediction record with its confidence: pixel boxes for detection
    (converted as PlanReview converts them), (label, confidence) for classification."""
    if not record:
        return []
    labels = record.get("labels") or []
    if task_type != "detection":
        best: dict[str, float] = {}
        for label in labels:
            if "box" not in label and "name" in label:
                best[str(label["name"])] = max(best.get(str(label["name"]), 0.0), float(label["confidence"]))
        return sorted(best.items())
    size = record.get("image_size") or {}
    width, height = size.get("width"), size.get("height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        return []
    boxes = []
    for label in labels:
        if label.get("box") is None:
            continue
        box = ratio_to_pixels(label["box"], width, height)
        if box is not None:
            boxes.append(ScoredBox(str(label["name"]), float(label["confidence"]), box))
    return boxes


@dataclass
class _Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, tp: int, fp: int, fn: int) -> None:
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn


def _figures(tp: float, fp: float, fn: float) -> dict[str, Any]:
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)  # type: ignore[arg-type]
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": round(tp, 2),
        "fp": round(fp, 2),
        "fn": round(fn, 2),
    }


@dataclass
class RunMeasures:
    task_type: str
    min_confidence: float
    floor: float
    iou_threshold: float = 0.5
    # per stratum, per label
    counts: dict[str, dict[str, _Counts]] = field(default_factory=lambda: {REVIEW: {}, AUDIT: {}})
    reviewed: dict[str, int] = field(default_factory=lambda: {REVIEW: 0, AUDIT: 0})
    thresholds: ThresholdCounts = field(default_factory=ThresholdCounts)
    audit_errors: int = 0
    audit_wrong_objects: int = 0
    audit_missed_objects: int = 0
    work: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("kept", "adjusted", "added", "removed", "unchanged"), 0)
    )
    review_seconds: float = 0.0
    timed_images: int = 0
    _worst: list[tuple[int, tuple[int, ...], dict[str, Any]]] = field(default_factory=list)  # min-heap

    def add(
        self, ref: str, record: Mapping[str, Any], prediction: Mapping[str, Any] | None, audited: bool
    ) -> None:
        """One image people reviewed: `record` is their answer, `prediction` the model's record."""
        stratum = AUDIT if audited else REVIEW
        self.reviewed[stratum] += 1
        scored = scored_predictions(prediction, self.task_type)
        shown = [p for p in scored if _confidence(p) >= self.min_confidence]
        if self.task_type == "detection":
            reference = reference_boxes(record)
            boxes = [p for p in shown if isinstance(p, ScoredBox)]
            match = match_boxes([LabeledBox(p.label, p.box) for p in boxes], reference, self.iou_threshold)
            matched_p = {i for i, _ in match.pairs}
            matched_r = {j for _, j in match.pairs}
            for i, p in enumerate(boxes):
                self._label(stratum, p.label).add(int(i in matched_p), int(i not in matched_p), 0)
            for j, r in enumerate(reference):
                if j not in matched_r:
                    self._label(stratum, r.label).add(0, 0, 1)
            all_boxes = [p for p in scored if isinstance(p, ScoredBox)]
            for p, right in zip(
                all_boxes, correct_by_confidence(all_boxes, reference, self.iou_threshold), strict=True
            ):
                self.thresholds.add(p.label, stratum, p.confidence, right)
            fp, fn = match.fp, match.fn
            kept_view = {
                "predicted": [
                    {"label": p.label, "confidence": p.confidence, **p.box.to_dict()} for p in boxes
                ],
                "reviewed": [{"label": r.label, **r.box.to_dict()} for r in reference],
            }
        else:
            truth = {str(i.get("label")) for i in record.get("labels") or [] if isinstance(i, Mapping)}
            names = [str(p[0]) for p in shown if isinstance(p, tuple)]
            match = match_labels(names, truth)
            for name in names:
                self._label(stratum, name).add(int(name in truth), int(name not in truth), 0)
            for name in truth - set(names):
                self._label(stratum, name).add(0, 0, 1)
            for item in scored:
                if isinstance(item, tuple):
                    self.thresholds.add(item[0], stratum, item[1], item[0] in truth)
            fp, fn = match.fp, match.fn
            kept_view = {
                "predicted": [{"label": p[0], "confidence": p[1]} for p in shown if isinstance(p, tuple)],
                "reviewed": [{"label": name} for name in sorted(truth)],
            }
        if audited and (fp or fn):
            self.audit_errors += 1
            self.audit_wrong_objects += fp
            self.audit_missed_objects += fn
        self._add_work(record)
        self._keep_disagreement(fp + fn, ref, {**kept_view, "image_size": record.get("image_size")})

    def _label(self, stratum: str, label: str) -> _Counts:
        return self.counts[stratum].setdefault(label, _Counts())

    def _add_work(self, record: Mapping[str, Any]) -> None:
        items = (record.get("boxes") or []) + (record.get("labels") or [])
        changed = False
        for item in items:
            status = item.get("status") if isinstance(item, Mapping) else None
            if status in ("kept", "adjusted", "added"):
                self.work[str(status)] += 1
                changed = changed or status != "kept"
        removed = len(record.get("removed") or [])
        self.work["removed"] += removed
        self.work["unchanged"] += int(not changed and not removed)
        seconds = record.get("reviewSeconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            self.review_seconds += float(seconds)
            self.timed_images += 1

    def _keep_disagreement(self, score: int, ref: str, view: dict[str, Any]) -> None:
        if score <= 0:
            return
        # Highest scores kept; among equals the first refs alphabetically (negated for the heap).
        item = (score, _invert(ref), {"source-ref": ref, "disagreements": score, **view})
        if len(self._worst) < MAX_DISAGREEMENTS:
            heapq.heappush(self._worst, item)
        elif item[:2] > self._worst[0][:2]:
            heapq.heapreplace(self._worst, item)

    # Results -------------------------------------------------------------------------------------

    def weights(self, population: Mapping[str, int]) -> dict[str, float]:
        """Each stratum's images per reviewed image (0 for a stratum nobody reviewed)."""
        return {
            s: (population.get(s, 0) / self.reviewed[s]) if self.reviewed[s] else 0.0 for s in (REVIEW, AUDIT)
        }

    def quality(self, population: Mapping[str, int]) -> dict[str, Any]:
        """Per-label and overall figures on reviewed images and, weighted, on the whole run."""
        labels = sorted(set(self.counts[REVIEW]) | set(self.counts[AUDIT]))
        weights = self.weights(population)
        unmeasured = [s for s in (REVIEW, AUDIT) if population.get(s, 0) and not self.reviewed[s]]

        def table(weighting: Mapping[str, float]) -> dict[str, Any]:
            rows: dict[str, Any] = {}
            total = [0.0, 0.0, 0.0]
            for label in labels:
                sums = [0.0, 0.0, 0.0]
                for stratum, w in weighting.items():
                    c = self.counts[stratum].get(label, _Counts())
                    sums = [sums[0] + w * c.tp, sums[1] + w * c.fp, sums[2] + w * c.fn]
                rows[label] = _figures(*sums)
                total = [a + b for a, b in zip(total, sums, strict=True)]
            return {"overall": _figures(*total), "byLabel": rows}

        reviewed = table({REVIEW: 1.0, AUDIT: 1.0})
        whole = None if unmeasured else table(weights)
        return {
            "iouThreshold": self.iou_threshold,
            "minConfidence": self.min_confidence,
            "reviewedImages": {**reviewed, "images": sum(self.reviewed.values())},
            "wholeRun": whole,
            "wholeRunNote": (
                "not measured: the auto-accepted images were not audited (auditFraction 0)"
                if unmeasured
                else "reviewed images weighted by their stratum's images per reviewed image"
            ),
            "strata": {
                s: {
                    "images": population.get(s, 0),
                    "reviewed": self.reviewed[s],
                    "weight": round(weights[s], 4),
                }
                for s in (REVIEW, AUDIT)
            },
        }

    def audit(self, candidates: int, audited: int, target: float) -> dict[str, Any] | None:
        """The auto-accept error rate: audited images people changed, with a 95 % Wilson interval."""
        if not candidates:
            return None
        reviewed = self.reviewed[AUDIT]
        low, high = wilson_interval(self.audit_errors, reviewed)
        accepted = candidates - audited
        result = {
            "candidates": candidates,
            "audited": audited,
            "reviewed": reviewed,
            "errors": self.audit_errors,
            "wrongObjects": self.audit_wrong_objects,
            "missedObjects": self.audit_missed_objects,
            "errorRate": round(self.audit_errors / reviewed, 4) if reviewed else None,
            "interval95": [round(low, 4), round(high, 4)],
            "target": target,
            "meetsTarget": bool(reviewed) and high <= target,
            "autoAcceptedImages": accepted,
            "estimatedWrongAutoAccepted": [round(low * accepted, 1), round(high * accepted, 1)],
        }
        return result

    def recommendations(self, population: Mapping[str, int], target: float) -> dict[str, Any]:
        return recommendations(
            self.thresholds, self.weights(population), floor=self.min_confidence, target=target
        )

    def work_saved(self, images_auto_accepted: int) -> dict[str, Any]:
        w = self.work
        objects = w["kept"] + w["adjusted"] + w["added"] + w["removed"]
        reviewed = sum(self.reviewed.values())
        return {
            **{k: w[k] for k in ("kept", "adjusted", "added", "removed")},
            "shareNeedingNoChange": round(w["kept"] / objects, 4) if objects else None,
            "imagesReviewed": reviewed,
            "imagesUnchanged": w["unchanged"],
            "imagesAutoAccepted": images_auto_accepted,
            "reviewerSecondsPerImage": (
                round(self.review_seconds / self.timed_images, 1) if self.timed_images else None
            ),
            "timedImages": self.timed_images,
        }

    def disagreements(self) -> list[dict[str, Any]]:
        return [item for _, _, item in sorted(self._worst, key=lambda t: (-t[0], t[2]["source-ref"]))]


def _confidence(p: ScoredBox | tuple[str, float]) -> float:
    return p.confidence if isinstance(p, ScoredBox) else p[1]


def _invert(text: str) -> tuple[int, ...]:
    """Orders strings in reverse (a prefix after its extensions): the heap keeps the first refs."""
    return (*(-ord(c) for c in text), 1)


def reference_boxes(record: Mapping[str, Any]) -> list[LabeledBox]:
    """The reviewed boxes of a record; a box that does not parse is left out of the measures."""
    boxes = []
    for raw in record.get("boxes") or []:
        try:
            boxes.append(LabeledBox.from_dict(raw))
        except (KeyError, TypeError, ValueError):
            continue
    return boxes
