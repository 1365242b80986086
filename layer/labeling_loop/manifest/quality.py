"""Model quality measured against what people reviewed: greedy IoU matching for detection, label
sets for classification, and an accumulator so a run of any size is measured in one pass.

Conventions (documented because they decide the numbers in report.json):
- A predicted box matches a reference box when both have the same label and IoU >= threshold
  (default 0.5, the usual PASCAL VOC criterion). Matching is greedy: all candidate pairs are taken
  in descending IoU order (ties broken by position), each box matched at most once.
- precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2PR / (P + R). A ratio whose
  denominator is 0 is undefined and reported as 0.0 (so an image set with no prediction and no
  reference box yields 0/0/0, not 1/1/1): report readers must look at tp/fp/fn to tell "nothing to
  measure" from "all wrong".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from labeling_loop.geometry import PixelBox, iou

DEFAULT_IOU_THRESHOLD = 0.5


class LabeledBox(NamedTuple):
    label: str
    box: PixelBox

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> LabeledBox:
        """From a reviewed-record box `{"label", "left", "top", "width", "height", ...}`."""
        return cls(str(record["label"]), PixelBox.from_dict(record))


class MatchCounts(NamedTuple):
    tp: int
    fp: int
    fn: int
    pairs: tuple[tuple[int, int], ...]  # (predicted index, reference index) of each match


def match_boxes(
    predicted: Iterable[LabeledBox],
    reference: Iterable[LabeledBox],
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
) -> MatchCounts:
    """Greedy one-to-one matching of predicted to reference boxes of the same label."""
    preds = list(predicted)
    refs = list(reference)
    candidates: list[tuple[float, int, int]] = []
    for i, p in enumerate(preds):
        for j, r in enumerate(refs):
            if p.label == r.label:
                overlap = iou(p.box, r.box)
                if overlap >= iou_threshold and overlap > 0.0:
                    candidates.append((-overlap, i, j))
    candidates.sort()
    used_p: set[int] = set()
    used_r: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, i, j in candidates:
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            pairs.append((i, j))
    tp = len(pairs)
    return MatchCounts(tp, len(preds) - tp, len(refs) - tp, tuple(pairs))


def match_labels(predicted: Iterable[str], reference: Iterable[str]) -> MatchCounts:
    """Image-level labels: a label is a true positive when both sets hold it."""
    p, r = set(predicted), set(reference)
    tp = len(p & r)
    return MatchCounts(tp, len(p) - tp, len(r) - tp, ())


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """(precision, recall, F1); each is 0.0 when undefined (see module docstring)."""
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass
class QualityAccumulator:
    """Sums tp/fp/fn image by image; holds three integers whatever the number of images."""

    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    tp: int = 0
    fp: int = 0
    fn: int = 0
    images: int = 0

    def _add(self, counts: MatchCounts) -> MatchCounts:
        self.tp += counts.tp
        self.fp += counts.fp
        self.fn += counts.fn
        self.images += 1
        return counts

    def add_detection(self, predicted: Iterable[LabeledBox], reference: Iterable[LabeledBox]) -> MatchCounts:
        return self._add(match_boxes(predicted, reference, self.iou_threshold))

    def add_classification(
        self, predicted_labels: Iterable[str], reference_labels: Iterable[str]
    ) -> MatchCounts:
        return self._add(match_labels(predicted_labels, reference_labels))

    def result(self) -> dict[str, Any]:
        precision, recall, f1 = precision_recall_f1(self.tp, self.fp, self.fn)
        return {
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
            "iouThreshold": self.iou_threshold,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }
