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

from labeling_loop.evaluation.intervals import decimals_for, format_estimate, wilson_interval
from labeling_loop.kernel.geometry import PixelBox, iou

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


# Intervals for precision, recall and F1 -------------------------------------------------------------
#
# Each figure is a ratio of sums over images, R = sum y / sum x (precision: y = tp, x = tp + fp;
# recall: x = tp + fn; F1: y = 2 tp, x = 2 tp + fp + fn). Its variance comes from the images'
# spread, by linearisation (the ratio estimator of survey sampling; Cochran, *Sampling Techniques*,
# 3rd ed., §6.4 and §5A.11 for strata): Var(R) ~ sum_h w_h^2 n_h (1 - f_h) s_h^2(z) / X^2 with
# z = y - R x, w_h the images of stratum h per reviewed image, f_h the share of them reviewed. The
# interval is Wilson's on the effective size R(1 - R) / Var(R), which stays inside [0, 1] and
# behaves at R near 0 or 1 (Korn and Graubard 1998, "Confidence intervals for proportions with
# small expected number of positive counts estimated from survey data", Survey Methodology 24(2)).
# Memory: ten numbers per (stratum, label), whatever the number of images.

FIGURES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    # name: (y coefficients, x coefficients) over (tp, fp, fn)
    "precision": ((1, 0, 0), (1, 1, 0)),
    "recall": ((1, 0, 0), (1, 0, 1)),
    "f1": ((2, 0, 0), (2, 1, 1)),
}


@dataclass
class Moments:
    """Sums of (tp, fp, fn) and of their products over the images of one stratum."""

    images: int = 0  # images where this label (or anything, for the overall) was counted
    first: list[float] | None = None
    second: list[list[float]] | None = None

    def add(self, tp: int, fp: int, fn: int) -> None:
        if self.first is None or self.second is None:
            self.first = [0.0, 0.0, 0.0]
            self.second = [[0.0] * 3 for _ in range(3)]
        values = (tp, fp, fn)
        self.images += 1
        for i in range(3):
            self.first[i] += values[i]
            for j in range(3):
                self.second[i][j] += values[i] * values[j]

    def linear(self, a: tuple[int, ...]) -> float:
        return sum(c * v for c, v in zip(a, self.first or (0, 0, 0), strict=True))

    def product(self, a: tuple[int, ...], b: tuple[int, ...]) -> float:
        second = self.second or [[0.0] * 3 for _ in range(3)]
        return sum(a[i] * b[j] * second[i][j] for i in range(3) for j in range(3))


@dataclass(frozen=True)
class Stratum:
    """How a stratum's reviewed images stand for its images: `reviewed` of `population`.
    `finite`: the figure is about these images (this run), so a stratum reviewed whole has no
    sampling error; otherwise about images like them (the model), with no correction."""

    reviewed: int
    population: int
    finite: bool

    @property
    def weight(self) -> float:
        return self.population / self.reviewed if self.reviewed else 0.0

    @property
    def fpc(self) -> float:
        return max(0.0, 1.0 - self.reviewed / self.population) if self.finite and self.population else 1.0


def ratio_estimate(
    name: str, moments: dict[str, Moments], strata: dict[str, Stratum]
) -> tuple[float, float, float] | None:
    """(estimate, low, high) of one figure, 95 %; None when its denominator is 0."""
    a, b = FIGURES[name]
    y_total = sum(strata[h].weight * m.linear(a) for h, m in moments.items() if h in strata)
    x_total = sum(strata[h].weight * m.linear(b) for h, m in moments.items() if h in strata)
    if x_total <= 0:
        return None
    ratio = y_total / x_total
    variance = 0.0
    for h, m in moments.items():
        stratum = strata.get(h)
        n = stratum.reviewed if stratum else 0
        if stratum is None or n < 2:
            continue
        # Images of the stratum without this label count as z = 0: they are in n, not in the sums.
        sum_z = m.linear(a) - ratio * m.linear(b)
        sum_z2 = m.product(a, a) - 2 * ratio * m.product(a, b) + ratio * ratio * m.product(b, b)
        s2 = max(0.0, (sum_z2 - sum_z * sum_z / n) / (n - 1))
        variance += stratum.weight**2 * n * stratum.fpc * s2
    variance /= x_total * x_total
    if variance <= 1e-15:
        if all(strata[h].fpc == 0.0 for h in moments if h in strata):
            return ratio, ratio, ratio  # every image of the population was measured
        # R is 0 or 1 on every image: Wilson on the images that carry the figure.
        size = float(sum(m.images for m in moments.values()))
    else:
        size = (
            ratio * (1 - ratio) / variance
            if 0 < ratio < 1
            else float(sum(m.images for m in moments.values()))
        )
    low, high = wilson_interval(ratio * size, size)
    return ratio, low, high


def figures_with_intervals(moments: dict[str, Moments], strata: dict[str, Stratum]) -> dict[str, Any]:
    """{"precision": {"value", "interval95", "text"}, "recall": ..., "f1": ...}."""
    out: dict[str, Any] = {}
    for name in FIGURES:
        found = ratio_estimate(name, moments, strata)
        if found is None:
            out[name] = {"value": None, "interval95": None, "decimals": None, "text": "n/a"}
            continue
        value, low, high = found
        places = decimals_for(low, high)
        out[name] = {
            "value": round(value, places),
            "interval95": [round(low, places), round(high, places)],
            "decimals": places,  # what the interval's width supports
            "text": format_estimate(value, low, high),
        }
    return out
