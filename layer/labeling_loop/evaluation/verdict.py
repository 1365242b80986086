"""One definition of "this image's labels were wrong", used by the audit, the thresholds and the
work figures alike (docs/closing-the-loop.md).

The model's labels of an image are what auto-accept would write for it: its predictions at
`minConfidence`. They are compared with what people answered. For detection, each predicted box is
paired with the reviewed box of the same label it overlaps most (greedy, highest IoU first, each
box at most once), when they overlap at IoU >= 0.5, the PASCAL VOC criterion for "the same object".
Then every object is one of:

- **kept**: paired, and the reviewed box is the predicted one;
- **adjusted within tolerance**: paired at IoU >= `boxTolerance`, moved a little: fine as it was;
- **out of tolerance**: paired below `boxTolerance`: the model's box was too far off to train on;
- **wrong label**: an unpaired predicted box over (IoU >= 0.5) an unpaired reviewed box of another
  label: the right place, the wrong name;
- **extra**: a predicted box people deleted (no object there);
- **missed**: a reviewed box nothing predicted: the model did not see the object.

Classification: a predicted label people kept is kept; a predicted label they removed beside one
they added is a wrong label, other removed ones are extra, other added ones missed.

The image is **wrong** when anything is out of tolerance, a wrong label, extra or missed.

The verdict also says what became of each predicted object (`outcomes`, in the order predicted):
the report's confidence histograms count, per confidence, the predictions people kept and the ones
they corrected. It never changes the image-level counts above.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from labeling_loop.evaluation.quality import LabeledBox
from labeling_loop.kernel.geometry import iou

SAME_OBJECT_IOU = 0.5  # PASCAL VOC's criterion for a detection of the object
# A box people would not need to touch: COCO's strict criterion (AP at IoU 0.75,
# https://cocodataset.org/#detection-eval); Custom Labels documents none (docs/aws-facts.md §9.1).
DEFAULT_BOX_TOLERANCE = 0.75

# What became of one predicted object. The first two need no correction.
KEPT, ADJUSTED, OUT_OF_TOLERANCE, WRONG_LABEL, EXTRA = (
    "kept",
    "adjustedWithinTolerance",
    "outOfTolerance",
    "wrongLabel",
    "extra",
)
NO_CORRECTION = frozenset({KEPT, ADJUSTED})


@dataclass(frozen=True)
class Verdict:
    """What one image's model labels were, object by object, against people's answer."""

    kept: int = 0
    adjusted_within_tolerance: int = 0
    out_of_tolerance: int = 0
    wrong_label: int = 0
    extra: int = 0
    missed: int = 0
    # Per predicted object, in the order given: KEPT, ADJUSTED, OUT_OF_TOLERANCE, WRONG_LABEL or
    # EXTRA. Not part of the verdict's identity: two verdicts with the same counts are equal.
    outcomes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def wrong(self) -> bool:
        return bool(self.corrections)

    @property
    def corrections(self) -> int:
        """Objects people had to correct: every error, counted once per object."""
        return self.out_of_tolerance + self.wrong_label + self.extra + self.missed

    def to_dict(self) -> dict[str, int]:
        return {
            "kept": self.kept,
            "adjustedWithinTolerance": self.adjusted_within_tolerance,
            "outOfTolerance": self.out_of_tolerance,
            "wrongLabel": self.wrong_label,
            "extra": self.extra,
            "missed": self.missed,
        }


def _pairs(
    predicted: Sequence[LabeledBox], reviewed: Sequence[LabeledBox], *, same_label: bool
) -> list[tuple[int, int, float]]:
    """Greedy one-to-one pairs (predicted index, reviewed index, IoU) at IoU >= SAME_OBJECT_IOU,
    highest IoU first (ties: lower indices first)."""
    candidates = []
    for i, p in enumerate(predicted):
        for j, r in enumerate(reviewed):
            if (p.label == r.label) == same_label:
                overlap = iou(p.box, r.box)
                if overlap >= SAME_OBJECT_IOU:
                    candidates.append((-overlap, i, j))
    candidates.sort()
    used_p: set[int] = set()
    used_r: set[int] = set()
    pairs = []
    for negative, i, j in candidates:
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            pairs.append((i, j, -negative))
    return pairs


def detection_verdict(
    predicted: Sequence[LabeledBox],
    reviewed: Sequence[LabeledBox],
    box_tolerance: float = DEFAULT_BOX_TOLERANCE,
) -> Verdict:
    outcomes = [EXTRA] * len(predicted)
    same = _pairs(predicted, reviewed, same_label=True)
    for i, j, overlap in same:
        if predicted[i].box == reviewed[j].box:
            outcomes[i] = KEPT
        elif overlap >= box_tolerance:
            outcomes[i] = ADJUSTED
        else:
            outcomes[i] = OUT_OF_TOLERANCE
    paired_p = {i for i, _, _ in same}
    paired_r = {j for _, j, _ in same}
    free_p = [i for i in range(len(predicted)) if i not in paired_p]
    free_r = [j for j in range(len(reviewed)) if j not in paired_r]
    relabelled = _pairs([predicted[i] for i in free_p], [reviewed[j] for j in free_r], same_label=False)
    for k, _, _ in relabelled:
        outcomes[free_p[k]] = WRONG_LABEL
    wrong = len(relabelled)
    return Verdict(
        kept=outcomes.count(KEPT),
        adjusted_within_tolerance=outcomes.count(ADJUSTED),
        out_of_tolerance=outcomes.count(OUT_OF_TOLERANCE),
        wrong_label=wrong,
        extra=len(free_p) - wrong,
        missed=len(free_r) - wrong,
        outcomes=tuple(outcomes),
    )


def classification_verdict(predicted: Iterable[str], reviewed: Iterable[str]) -> Verdict:
    """`outcomes` follow `predicted` one to one (a repeated label shares its first outcome); which
    removed labels are the wrong-label ones is not knowable, so the first ones removed are."""
    names = list(predicted)
    p, r = set(names), set(reviewed)
    extra, missed = len(p - r), len(r - p)
    wrong = min(extra, missed)
    first: dict[str, str] = {}
    for name in names:
        if name not in first:
            relabelled = sum(1 for o in first.values() if o != KEPT)
            first[name] = KEPT if name in r else (WRONG_LABEL if relabelled < wrong else EXTRA)
    return Verdict(
        kept=len(p & r),
        wrong_label=wrong,
        extra=extra - wrong,
        missed=missed - wrong,
        outcomes=tuple(first[name] for name in names),
    )
