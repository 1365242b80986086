"""Per-label confidence thresholds chosen from what people decided.

Every prediction the model made above the inference floor, on every image people reviewed, is
marked right or wrong against the reviewed labels: boxes by greedy matching in descending
confidence order (each prediction takes the unmatched reviewed box of its label with the highest
IoU >= the threshold), as PASCAL VOC and COCO evaluate detectors. With that order, the predictions
at or above any confidence t are matched exactly as if only they had been made, so precision at t
is read off cumulative counts. Image labels are right when the reviewed labels hold them.

Counts are kept per label, per sampling stratum (see measures.py) and per 0.1 confidence step:
memory depends on the labels, never on the number of images. The recommended threshold of a label
is the lowest t >= minConfidence whose precision lower bound (Wilson, 95 %, on Kish's effective
size of the stratum-weighted counts) reaches the target. A higher target can only raise it: the
thresholds that meet a higher target are a subset of those that meet a lower one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.geometry import PixelBox, iou
from labeling_loop.manifest.quality import DEFAULT_IOU_THRESHOLD, LabeledBox
from labeling_loop.stats import weighted_wilson

STEPS_PER_POINT = 10  # confidence resolution: 0.1


@dataclass(frozen=True)
class ScoredBox:
    label: str
    confidence: float
    box: PixelBox


def correct_by_confidence(
    predicted: Sequence[ScoredBox],
    reference: Iterable[LabeledBox],
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
) -> list[bool]:
    """For each prediction (in the given order): does it match a reviewed box? Greedy in descending
    confidence (ties: given order), each reviewed box matched at most once."""
    refs = list(reference)
    used: set[int] = set()
    correct = [False] * len(predicted)
    order = sorted(range(len(predicted)), key=lambda i: (-predicted[i].confidence, i))
    for i in order:
        p = predicted[i]
        best, best_iou = -1, 0.0
        for j, r in enumerate(refs):
            if j in used or r.label != p.label:
                continue
            overlap = iou(p.box, r.box)
            if overlap >= iou_threshold and overlap > best_iou:
                best, best_iou = j, overlap
        if best >= 0:
            used.add(best)
            correct[i] = True
    return correct


def _step(confidence: float) -> int:
    return int(confidence * STEPS_PER_POINT + 1e-9)


@dataclass
class ThresholdCounts:
    """[correct, all] predictions per (label, stratum, confidence step)."""

    bins: dict[str, dict[str, dict[int, list[int]]]] = field(default_factory=dict)

    def add(self, label: str, stratum: str, confidence: float, correct: bool) -> None:
        cell = self.bins.setdefault(label, {}).setdefault(stratum, {}).setdefault(_step(confidence), [0, 0])
        cell[0] += int(correct)
        cell[1] += 1

    def labels(self) -> list[str]:
        return sorted(self.bins)

    def curve(
        self, labels: Iterable[str], weights: Mapping[str, float], floor: float
    ) -> list[tuple[float, float, float, float, int]]:
        """(threshold, weighted correct, weighted all, sum of squared weights, predictions) at or
        above each threshold >= floor, ascending: suffix sums over the steps of `labels`."""
        per_step: dict[int, list[float]] = {}
        for label in labels:
            for stratum, steps in self.bins.get(label, {}).items():
                w = weights.get(stratum, 0.0)
                for step, (good, total) in steps.items():
                    cell = per_step.setdefault(step, [0.0, 0.0, 0.0, 0.0])
                    cell[0] += w * good
                    cell[1] += w * total
                    cell[2] += w * w * total
                    cell[3] += total
        floor_step = _step(floor)
        kept = sorted((s for s in per_step if s >= floor_step), reverse=True)
        if not kept:
            return []
        rows: list[tuple[float, float, float, float, int]] = []
        sums = [0.0, 0.0, 0.0, 0.0]
        for step in kept:
            sums = [a + b for a, b in zip(sums, per_step[step], strict=True)]
            rows.append((step / STEPS_PER_POINT, sums[0], sums[1], sums[2], int(sums[3])))
        rows.reverse()
        # Below the lowest predicted step, the threshold `floor` sees what the lowest step sees.
        if rows[0][0] > floor:
            rows.insert(0, (floor, *rows[0][1:]))
        return rows


def recommend(curve: Sequence[tuple[float, float, float, float, int]], target: float) -> dict[str, Any]:
    """The lowest threshold whose precision lower bound reaches `target`, or why there is none."""
    best: dict[str, Any] | None = None
    for threshold, good, total, squares, count in curve:
        if total <= 0:
            continue
        low, _ = weighted_wilson(good, total, squares)
        row = {
            "threshold": round(threshold, 1),
            "precision": round(good / total, 4),
            "precisionLowerBound": round(low, 4),
            "predictions": count,
        }
        if low >= target:
            return {"recommended": row["threshold"], **row}
        if best is None or low > best["precisionLowerBound"]:
            best = row
    reason = (
        "no prediction was reviewed"
        if best is None
        else (
            f"no threshold reaches a precision lower bound of {target:g}: the best is "
            f"{best['precisionLowerBound']:.3f} at {best['threshold']:g} "
            f"({best['predictions']} predictions); "
            "more reviewed images are needed"
        )
    )
    return {"recommended": None, "reason": reason, **({"best": best} if best else {})}


def recommendations(
    counts: ThresholdCounts, weights: Mapping[str, float], *, floor: float, target: float
) -> dict[str, Any]:
    """Per label, and for all labels pooled (one autoAcceptConfidence for every label)."""
    by_label = {label: recommend(counts.curve([label], weights, floor), target) for label in counts.labels()}
    pooled = recommend(counts.curve(counts.labels(), weights, floor), target)
    chosen = {label: row["recommended"] for label, row in by_label.items() if row["recommended"] is not None}
    return {
        "target": target,
        "floor": floor,
        "byLabel": by_label,
        "allLabels": pooled,
        # What to paste into the next run's input: the pooled threshold for every label (evidence for
        # the run's mix of labels), a label's own where it has one; "off" when neither exists.
        "nextRunInput": {
            "autoAcceptConfidence": pooled["recommended"] if pooled["recommended"] is not None else "off",
            "autoAcceptConfidenceByLabel": chosen,
        },
    }
