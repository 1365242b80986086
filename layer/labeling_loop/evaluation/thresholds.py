"""Per-label auto-accept thresholds for the next run that keep their promise when followed.

What a threshold promises: of the next run's images that it would accept, no more than the target
share (`auditErrorTarget`) are wrong, wrong as `verdict` defines it (a wrong or out-of-tolerance
box, a wrong label, an extra box, a missed object: the image-level error, misses included).

How it is chosen, per label L, from the images people reviewed in this run:
- an image's score for L is the lowest confidence among its predictions of L that reviewers saw;
  a threshold t accepts the image (for L) when that score is >= t. Its error is the image's;
- the candidate thresholds are tested from the highest confidence down (fixed-sequence testing):
  at each, the hypothesis "the error rate of the images t accepts is >= the target" is rejected
  when the exact binomial test says so at level delta; the sequence stops at the first step it
  cannot reject, and the lowest rejected step is the threshold. Testing in an order fixed before
  looking at the errors needs no multiplicity correction: the chance of recommending any threshold
  whose true error rate is above the target is at most delta (the family-wise error; Bauer 1991,
  "Multiple testing in clinical trials", Stat Med 10(6); Angelopoulos et al. 2021, "Learn then
  Test", arXiv:2110.01052). The candidates are the confidences at which the label's images grow by
  a tenth, from the smallest count that could pass with no error at all;
- one sequence would end at an unlucky error among its first few images, so several start: at
  that smallest count and at every doubling of it the label's images allow (at most 8), each at
  delta / (number of starts) (Bonferroni across the starts, which depend on counts only);
- with auto-accept on in this run, reviewed images are weighted by their stratum (measures.py) and
  tested on Kish's effective size.

A label that cannot show the target gets no threshold, with what it would need; no pooled value
stands in for it. `nextRunInput` is ready to paste into the next execution's input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.evaluation.intervals import binomial_cdf, binomial_lower, binomial_upper, effective_size

STEPS_PER_POINT = 10  # confidence resolution: 0.1
DELTA = 0.05  # 95 %: the chance that a recommended threshold breaks its promise
MAX_STARTS = 8  # at most this many starts (one per doubling of the images)
GROWTH = 1.1  # each candidate accepts about a tenth more images than the last
MAX_CURVE_POINTS = 60


def _step(confidence: float) -> int:
    return int(confidence * STEPS_PER_POINT + 1e-9)


def smallest_passing_count(target: float, delta: float) -> int:
    """The fewest images that can show `error rate < target` at level delta: with none wrong,
    P(no error in n | rate = target) = (1 - target)^n <= delta."""
    return max(1, math.ceil(math.log(delta) / math.log(1.0 - target)))


@dataclass
class ThresholdCounts:
    """[images, wrong images] per (label, stratum, 0.1 confidence step of the image's score)."""

    bins: dict[str, dict[str, dict[int, list[int]]]] = field(default_factory=dict)

    def add(self, label: str, stratum: str, score: float, wrong: bool) -> None:
        cell = self.bins.setdefault(label, {}).setdefault(stratum, {}).setdefault(_step(score), [0, 0])
        cell[0] += 1
        cell[1] += int(wrong)

    def labels(self) -> list[str]:
        return sorted(self.bins)

    def cumulative(self, label: str, weights: Mapping[str, float], floor: float) -> list[_Row]:
        """One row per step >= floor where the label has images, highest first: the weighted
        images and errors at or above it."""
        per_step: dict[int, list[float]] = {}
        for stratum, steps in self.bins.get(label, {}).items():
            w = weights.get(stratum, 0.0)
            for step, (images, wrong) in steps.items():
                cell = per_step.setdefault(step, [0.0, 0.0, 0.0, 0.0])
                cell[0] += w * images
                cell[1] += w * wrong
                cell[2] += w * w * images
                cell[3] += images
        rows: list[_Row] = []
        sums = [0.0, 0.0, 0.0, 0.0]
        for step in sorted((s for s in per_step if s >= _step(floor)), reverse=True):
            sums = [a + b for a, b in zip(sums, per_step[step], strict=True)]
            rows.append(_Row(step / STEPS_PER_POINT, *sums))
        return rows


@dataclass(frozen=True)
class _Row:
    threshold: float
    weight: float  # weighted images at or above the threshold
    wrong_weight: float
    square_weight: float
    images: float  # images people reviewed at or above it (unweighted)

    @property
    def n_eff(self) -> float:
        return effective_size(self.weight, self.square_weight)

    @property
    def rate(self) -> float:
        return self.wrong_weight / self.weight if self.weight else 0.0

    def p_value(self, target: float) -> float:
        """P(this few errors | the true rate were the target): small rejects `rate >= target`."""
        n = self.n_eff
        return binomial_cdf(self.rate * n, n, target)

    def upper(self, alpha: float) -> float:
        n = self.n_eff
        return binomial_upper(self.rate * n, n, alpha)

    def lower(self, alpha: float) -> float:
        """The other side of the band the report draws: the exact lower bound at the same level."""
        n = self.n_eff
        return binomial_lower(self.rate * n, n, alpha)


def _candidates(rows: list[_Row], first_count: int) -> list[int]:
    """Indices of the rows tested, highest threshold first: the first row with `first_count`
    images, then each row with a tenth more images than the last candidate."""
    out: list[int] = []
    need = float(first_count)
    for i, row in enumerate(rows):
        if row.images >= need:
            out.append(i)
            need = max(need + 1, row.images * GROWTH)
    return out


def recommend(rows: list[_Row], target: float, delta: float = DELTA) -> dict[str, Any]:
    """The lowest threshold fixed-sequence testing accepts for one label, or why there is none."""
    total = rows[-1].images if rows else 0.0
    # One start per doubling of the images from the fewest that could pass, the level split
    # between them; the starts depend on counts only, never on which images were wrong.
    starts = 1
    while smallest_passing_count(target, delta / (starts + 1)) * 2**starts <= total and starts < MAX_STARTS:
        starts += 1
    level = delta / starts
    first = smallest_passing_count(target, level)
    candidates = _candidates(rows, first)
    passed: int | None = None
    for start in range(starts):
        begin = next((k for k, i in enumerate(candidates) if rows[i].images >= first * 2**start), None)
        if begin is None:
            break
        for i in candidates[begin:]:
            if rows[i].p_value(target) > level:
                break
            passed = i if passed is None else max(passed, i)
    curve = [
        {
            "threshold": rows[i].threshold,
            "images": int(rows[i].images),
            "errorRate": round(rows[i].rate, 4),
            "errorLowerBound": round(rows[i].lower(level), 4),
            "errorUpperBound": round(rows[i].upper(level), 4),
        }
        for i in candidates[:MAX_CURVE_POINTS]
    ]
    base = {"target": target, "confidence": 1 - delta, "curve": curve}
    if passed is not None:
        row = rows[passed]
        return {
            **base,
            "recommended": round(row.threshold, 1),
            "images": int(row.images),
            "errorRate": round(row.rate, 4),
            "errorUpperBound": round(row.upper(level), 4),
        }
    tested = [rows[i] for i in candidates]
    return {**base, "recommended": None, "reason": _why_not(rows, tested, target, level, first)}


def _why_not(rows: list[_Row], tested: list[_Row], target: float, level: float, first: int) -> str:
    if not rows:
        return "no image people reviewed has a prediction of this label"
    total = rows[-1]
    if total.images < first:
        return (
            f"{int(total.images)} reviewed images have this label; showing an error rate under "
            f"{target:g} needs at least {first} with none wrong"
        )
    best = min(tested or rows[-1:], key=lambda r: r.p_value(target))
    if best.rate >= target:
        return (
            f"every threshold that accepts at least {first} of its images accepts too many wrong ones "
            f"(at best {best.rate:.1%} at >= {best.threshold:g}): the model must get better before any "
            "of them skips review"
        )
    needed = _images_needed(best.rate, target, level)
    return (
        f"at >= {best.threshold:g} its {int(best.images)} reviewed images are {best.rate:.1%} wrong, "
        f"the upper bound {best.upper(level):.1%}; at that rate about {needed} reviewed images "
        "would show the target"
    )


def _images_needed(rate: float, target: float, level: float) -> int:
    n = 1
    while n < 10_000_000:
        if binomial_cdf(rate * n, n, target) <= level:
            return n
        n = math.ceil(n * 1.05) + 1
    return n


def recommendations(
    counts: ThresholdCounts, weights: Mapping[str, float], *, floor: float, target: float
) -> dict[str, Any]:
    """Per label; `nextRunInput` names only the labels that earned a threshold."""
    by_label = {
        label: recommend(counts.cumulative(label, weights, floor), target) for label in counts.labels()
    }
    chosen = {label: row["recommended"] for label, row in by_label.items() if row["recommended"] is not None}
    return {
        "target": target,
        "confidence": 1 - DELTA,
        "floor": floor,
        "byLabel": by_label,
        # What to paste into the next run's input: a label without a threshold is always reviewed.
        "nextRunInput": {"autoAcceptConfidence": "off", "autoAcceptConfidenceByLabel": chosen},
    }
