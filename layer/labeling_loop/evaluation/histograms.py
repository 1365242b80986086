"""Confidence histograms of the predictions people reviewed, per label: in fixed 5-point bins of
confidence, how many of the predictions shown to people they kept (unchanged, or moved within
`boxTolerance`) and how many they corrected (moved past it, relabelled, or deleted), by the one
definition of verdict.py. Where the corrected share falls to nothing is where a label becomes
trustworthy; the report draws them next to the thresholds.

Bins are fixed (0-5, 5-10, ..., 95-100, 100 in the last), so two runs' histograms line up; only
the bins from `minConfidence`'s up are reported, since nothing below it was shown. Memory: two
counters per label and bin, whatever the number of images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.evaluation.verdict import NO_CORRECTION

BIN_WIDTH = 5
BINS = 100 // BIN_WIDTH


def bin_of(confidence: float) -> int:
    """The bin holding a confidence (0-100); 100 belongs to the last bin."""
    return min(BINS - 1, max(0, math.floor(confidence / BIN_WIDTH)))


@dataclass
class ConfidenceHistograms:
    min_confidence: float
    # label -> [kept per bin, corrected per bin]
    counts: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)

    def add(self, label: str, confidence: float, outcome: str) -> None:
        kept, corrected = self.counts.setdefault(label, ([0] * BINS, [0] * BINS))
        (kept if outcome in NO_CORRECTION else corrected)[bin_of(confidence)] += 1

    def to_dict(self) -> dict[str, Any]:
        first = bin_of(self.min_confidence)
        return {
            "binWidth": BIN_WIDTH,
            "minConfidence": self.min_confidence,
            "edges": [b * BIN_WIDTH for b in range(first, BINS + 1)],
            "byLabel": {
                label: {"kept": kept[first:], "corrected": corrected[first:]}
                for label, (kept, corrected) in sorted(self.counts.items())
            },
        }
