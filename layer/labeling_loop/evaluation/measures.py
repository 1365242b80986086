"""What a run says about the model and about the people's work, beyond the manifest: quality with
intervals, the audit of auto-accept and its gate, thresholds for the next run, human work, and the
images where model and people disagreed most. Fed one human-reviewed image at a time by the
manifest build; memory depends on the labels and a dozen kept images, never on the number of images.

Sampling strata (what makes whole-run figures honest when auto-accept is on):
- `review`: images sent to people because some prediction was below its auto-accept threshold (or
  there was none); all of them are reviewed, but for the ones nobody answered;
- `audit`: the auto-accept candidates. The audit sample of them is reviewed, chosen by a salted hash
  independent of the predictions (review/selection.py), so it is a simple random sample of the stratum;
  when the gate sends the rest to people (a second wave), the stratum is reviewed whole.
Whole-run figures weight each reviewed image by (images of its stratum) / (reviewed images of its
stratum), the Horvitz-Thompson estimate of the run's counts had people reviewed every image, and
their intervals are for this run's images (finite population). Figures "on reviewed images" are the
plain sums, about the model on images like them, and overstate errors when auto-accept is on.

Every image people reviewed gets one verdict (verdict.py) on the model's labels at `minConfidence`:
the audit, the thresholds and the work figures all count that one definition.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.evaluation.audit import AuditTally, GateAction, audit_figures
from labeling_loop.evaluation.histograms import ConfidenceHistograms
from labeling_loop.evaluation.quality import (
    LabeledBox,
    Moments,
    Stratum,
    figures_with_intervals,
    match_boxes,
)
from labeling_loop.evaluation.thresholds import ThresholdCounts, recommendations
from labeling_loop.evaluation.verdict import (
    DEFAULT_BOX_TOLERANCE,
    Verdict,
    classification_verdict,
    detection_verdict,
)
from labeling_loop.kernel.geometry import ratio_to_pixels

REVIEW, AUDIT = "review", "audit"
STRATA = (REVIEW, AUDIT)
MAX_DISAGREEMENTS = 12
OVERALL = ""  # the moments key of all labels together


@dataclass(frozen=True)
class Prediction:
    """One prediction as reviewers saw it: pixel box for detection, None for an image label."""

    label: str
    confidence: float
    box: Any = None  # PixelBox | None


def predictions_of(record: Mapping[str, Any] | None, task_type: str) -> list[Prediction]:
    """Every prediction of a prediction record (predictions/*.jsonl): pixel boxes for detection,
    converted as the review plan converts them; image labels (their best confidence each) for
    classification."""
    if not record:
        return []
    labels = record.get("labels") or []
    if task_type != "detection":
        best: dict[str, float] = {}
        for label in labels:
            if "box" not in label and "name" in label:
                best[str(label["name"])] = max(best.get(str(label["name"]), 0.0), float(label["confidence"]))
        return [Prediction(name, confidence) for name, confidence in sorted(best.items())]
    size = record.get("image_size") or {}
    width, height = size.get("width"), size.get("height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        return []
    out = []
    for label in labels:
        if label.get("box") is None:
            continue
        box = ratio_to_pixels(label["box"], width, height)
        if box is not None:
            out.append(Prediction(str(label["name"]), float(label["confidence"]), box))
    return out


def reference_boxes(record: Mapping[str, Any]) -> list[LabeledBox]:
    """The reviewed boxes of a record; a box that does not parse is left out of the measures."""
    boxes = []
    for raw in record.get("boxes") or []:
        try:
            boxes.append(LabeledBox.from_dict(raw))
        except (KeyError, TypeError, ValueError):
            continue
    return boxes


def reference_labels(record: Mapping[str, Any]) -> set[str]:
    return {str(i.get("label")) for i in record.get("labels") or [] if isinstance(i, Mapping)}


@dataclass
class RunMeasures:
    task_type: str
    min_confidence: float
    floor: float
    iou_threshold: float = 0.5
    box_tolerance: float = DEFAULT_BOX_TOLERANCE
    # per stratum: per label (OVERALL for all) the moments of (tp, fp, fn) per image
    moments: dict[str, dict[str, Moments]] = field(default_factory=lambda: {s: {} for s in STRATA})
    reviewed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STRATA, 0))
    thresholds: ThresholdCounts = field(default_factory=ThresholdCounts)
    audit_tally: AuditTally = field(default_factory=AuditTally)
    held_tally: AuditTally = field(default_factory=AuditTally)  # the second wave: what the gate held
    work: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("kept", "adjustedWithinTolerance", "corrected", "added", "removed", "imagesCorrected"), 0
        )
    )
    review_seconds: float = 0.0
    timed_images: int = 0
    histograms: ConfidenceHistograms = field(init=False)
    _worst: list[tuple[int, tuple[int, ...], dict[str, Any]]] = field(default_factory=list)  # min-heap

    def __post_init__(self) -> None:
        self.histograms = ConfidenceHistograms(self.min_confidence)

    def add(
        self,
        ref: str,
        record: Mapping[str, Any],
        prediction: Mapping[str, Any] | None,
        *,
        stratum: str = REVIEW,
        audited: bool = False,
        held: bool = False,
    ) -> Verdict:
        """One image people reviewed: `record` is their answer, `prediction` the model's record.
        `audited`: the image is in the audit sample; `held`: an auto-accepted image the audit gate
        sent to people (the second wave), which tells how right the audit's prediction was."""
        self.reviewed[stratum] += 1
        shown = [p for p in predictions_of(prediction, self.task_type) if p.confidence >= self.min_confidence]
        per_label: dict[str, list[int]] = {}  # label -> [tp, fp, fn] at the IoU of the quality figures

        def count(label: str, tp: int, fp: int, fn: int) -> None:
            cell = per_label.setdefault(label, [0, 0, 0])
            cell[0], cell[1], cell[2] = cell[0] + tp, cell[1] + fp, cell[2] + fn

        if self.task_type == "detection":
            reference = reference_boxes(record)
            predicted = [LabeledBox(p.label, p.box) for p in shown]
            match = match_boxes(predicted, reference, self.iou_threshold)
            matched_p = {i for i, _ in match.pairs}
            matched_r = {j for _, j in match.pairs}
            for i, p in enumerate(predicted):
                count(p.label, int(i in matched_p), int(i not in matched_p), 0)
            for j, r in enumerate(reference):
                if j not in matched_r:
                    count(r.label, 0, 0, 1)
            verdict = detection_verdict(predicted, reference, self.box_tolerance)
            view = {
                "predicted": [
                    {"label": p.label, "confidence": p.confidence, **p.box.to_dict()} for p in shown
                ],
                "reviewed": [{"label": r.label, **r.box.to_dict()} for r in reference],
            }
        else:
            truth = reference_labels(record)
            names = [p.label for p in shown]
            for name in names:
                count(name, int(name in truth), int(name not in truth), 0)
            for name in truth - set(names):
                count(name, 0, 0, 1)
            verdict = classification_verdict(names, truth)
            view = {
                "predicted": [{"label": p.label, "confidence": p.confidence} for p in shown],
                "reviewed": [{"label": name} for name in sorted(truth)],
            }
        layer = self.moments[stratum]
        for label, (tp, fp, fn) in per_label.items():
            layer.setdefault(label, Moments()).add(tp, fp, fn)
        totals = [sum(c[k] for c in per_label.values()) for k in range(3)]
        layer.setdefault(OVERALL, Moments()).add(*totals)
        # The image's score for each label: its least confident shown prediction of that label.
        scores: dict[str, float] = {}
        for item in shown:
            scores[item.label] = min(scores.get(item.label, 100.0), item.confidence)
        for label, score in scores.items():
            self.thresholds.add(label, stratum, score, verdict.wrong)
        for item, outcome in zip(shown, verdict.outcomes, strict=True):
            self.histograms.add(item.label, item.confidence, outcome)
        if audited:
            self.audit_tally.add(verdict)
        if held:
            self.held_tally.add(verdict)
        self._add_work(verdict, record)
        self._keep_disagreement(verdict.corrections, ref, {**view, "image_size": record.get("image_size")})
        return verdict

    def _add_work(self, verdict: Verdict, record: Mapping[str, Any]) -> None:
        w = self.work
        w["kept"] += verdict.kept
        w["adjustedWithinTolerance"] += verdict.adjusted_within_tolerance
        w["corrected"] += verdict.out_of_tolerance + verdict.wrong_label
        w["added"] += verdict.missed
        w["removed"] += verdict.extra
        w["imagesCorrected"] += int(verdict.wrong)
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
        return {s: (population.get(s, 0) / self.reviewed[s]) if self.reviewed[s] else 0.0 for s in STRATA}

    def _table(self, strata: dict[str, Stratum]) -> dict[str, Any]:
        labels = sorted({label for s in STRATA for label in self.moments[s]} - {OVERALL})

        def row(label: str) -> dict[str, Any]:
            moments = {s: self.moments[s][label] for s in STRATA if label in self.moments[s]}
            counts = {
                k: round(sum(strata[s].weight * (m.first or [0, 0, 0])[i] for s, m in moments.items()), 2)
                for i, k in enumerate(("tp", "fp", "fn"))
            }
            return {**figures_with_intervals(moments, strata), **counts}

        return {"overall": row(OVERALL), "byLabel": {label: row(label) for label in labels}}

    def quality(self, population: Mapping[str, int]) -> dict[str, Any]:
        """Per-label and overall figures with 95 % intervals, on reviewed images and, weighted, on
        the whole run."""
        unmeasured = [s for s in STRATA if population.get(s, 0) and not self.reviewed[s]]
        reviewed_strata = {s: Stratum(self.reviewed[s], self.reviewed[s], finite=False) for s in STRATA}
        whole_strata = {s: Stratum(self.reviewed[s], population.get(s, 0), finite=True) for s in STRATA}
        weights = self.weights(population)
        return {
            "iouThreshold": self.iou_threshold,
            "minConfidence": self.min_confidence,
            "confidence": 0.95,
            "reviewedImages": {**self._table(reviewed_strata), "images": sum(self.reviewed.values())},
            "wholeRun": None if unmeasured else self._table(whole_strata),
            "wholeRunNote": (
                "not measured: the auto-accepted images were not audited (auditFraction 0)"
                if unmeasured
                else "reviewed images weighted by their stratum's images per reviewed image; "
                "intervals for this run's images"
            ),
            "strata": {
                s: {
                    "images": population.get(s, 0),
                    "reviewed": self.reviewed[s],
                    "weight": round(weights[s], 4),
                }
                for s in STRATA
            },
        }

    def audit(
        self, *, candidates: int, audited: int, target: float, action: GateAction
    ) -> dict[str, Any] | None:
        return audit_figures(
            self.audit_tally, candidates=candidates, audited=audited, target=target, action=action
        )

    def recommendations(self, population: Mapping[str, int], target: float) -> dict[str, Any]:
        return recommendations(
            self.thresholds, self.weights(population), floor=self.min_confidence, target=target
        )

    def work_done(self, images_auto_accepted: int) -> dict[str, Any]:
        w = self.work
        objects = w["kept"] + w["adjustedWithinTolerance"] + w["corrected"] + w["added"] + w["removed"]
        reviewed = sum(self.reviewed.values())
        return {
            **w,
            "boxTolerance": self.box_tolerance,
            "shareNeedingNoCorrection": (
                round((w["kept"] + w["adjustedWithinTolerance"]) / objects, 4) if objects else None
            ),
            "imagesReviewed": reviewed,
            "correctionsPerReviewedImage": (
                round((objects - w["kept"] - w["adjustedWithinTolerance"]) / reviewed, 4)
                if reviewed
                else None
            ),
            "imagesAutoAccepted": images_auto_accepted,
            "reviewerSecondsPerImage": (
                round(self.review_seconds / self.timed_images, 1) if self.timed_images else None
            ),
            "reviewerSeconds": round(self.review_seconds, 1),
            "timedImages": self.timed_images,
        }

    def confidence_histograms(self) -> dict[str, Any]:
        """Per label, the shown predictions people kept and corrected, in 5-point confidence bins
        (evaluation/histograms.py): counts on the images people reviewed, unweighted."""
        return self.histograms.to_dict()

    def disagreements(self) -> list[dict[str, Any]]:
        return [item for _, _, item in sorted(self._worst, key=lambda t: (-t[0], t[2]["source-ref"]))]


def _invert(text: str) -> tuple[int, ...]:
    """Orders strings in reverse (a prefix after its extensions): the heap keeps the first refs."""
    return (*(-ord(c) for c in text), 1)
