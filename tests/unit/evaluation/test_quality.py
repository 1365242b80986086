"""Model quality: greedy IoU matching, label sets, streaming accumulation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from labeling_loop.evaluation.quality import (
    LabeledBox,
    QualityAccumulator,
    match_boxes,
    match_labels,
    precision_recall_f1,
)
from labeling_loop.kernel.geometry import PixelBox


def cat(left: int, top: int, width: int = 10, height: int = 10) -> LabeledBox:
    return LabeledBox("cat", PixelBox(left, top, width, height))


def test_same_box_same_label_is_a_true_positive() -> None:
    counts = match_boxes([cat(0, 0)], [cat(0, 0)])
    assert (counts.tp, counts.fp, counts.fn) == (1, 0, 0)
    assert counts.pairs == ((0, 0),)


def test_other_label_never_matches() -> None:
    counts = match_boxes([LabeledBox("dog", PixelBox(0, 0, 10, 10))], [cat(0, 0)])
    assert (counts.tp, counts.fp, counts.fn) == (0, 1, 1)


def test_iou_threshold_is_inclusive() -> None:
    # IoU of (0,0,10,10) and (0,0,10,20) is exactly 0.5
    assert match_boxes([cat(0, 0)], [cat(0, 0, 10, 20)], 0.5).tp == 1
    assert match_boxes([cat(0, 0)], [cat(0, 0, 10, 20)], 0.51).tp == 0


def test_greedy_matching_takes_the_best_pair_first_and_each_box_once() -> None:
    # GIVEN two predictions over one reference, the second one closer
    predicted = [cat(2, 0), cat(0, 0)]
    reference = [cat(0, 0)]
    counts = match_boxes(predicted, reference)
    # THEN the exact one matches; the other is a false positive (no double counting)
    assert counts.pairs == ((1, 0),)
    assert (counts.tp, counts.fp, counts.fn) == (1, 1, 0)


def test_label_sets() -> None:
    counts = match_labels(["outdoor", "dog"], ["outdoor", "cat", "cat"])
    assert (counts.tp, counts.fp, counts.fn) == (1, 1, 1)


def test_precision_recall_f1() -> None:
    precision, recall, f1 = precision_recall_f1(tp=3, fp=1, fn=2)
    assert precision == pytest.approx(0.75)
    assert recall == pytest.approx(0.6)
    assert f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)


def test_undefined_ratios_are_zero() -> None:
    assert precision_recall_f1(0, 0, 0) == (0.0, 0.0, 0.0)
    assert precision_recall_f1(0, 0, 4) == (0.0, 0.0, 0.0)  # no prediction at all
    assert precision_recall_f1(0, 3, 0) == (0.0, 0.0, 0.0)


def test_accumulator_sums_images() -> None:
    # GIVEN one perfect image, one with a missed object and one with a spurious label
    quality = QualityAccumulator()
    quality.add_detection([cat(0, 0)], [cat(0, 0)])
    quality.add_detection([], [cat(50, 50)])
    quality.add_classification(["outdoor", "indoor"], ["outdoor"])
    # THEN the result sums them
    result = quality.result()
    assert (result["tp"], result["fp"], result["fn"]) == (2, 1, 1)
    assert result["precision"] == pytest.approx(2 / 3, abs=1e-6)
    assert result["recall"] == pytest.approx(2 / 3, abs=1e-6)
    assert result["f1"] == pytest.approx(2 / 3, abs=1e-6)
    assert result["iouThreshold"] == 0.5
    assert quality.images == 3


def test_accumulator_without_images_reports_zeros() -> None:
    assert QualityAccumulator(0.7).result() == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "iouThreshold": 0.7, "tp": 0, "fp": 0, "fn": 0,
    }  # fmt: skip


def test_labeled_box_from_reviewed_record_box() -> None:
    raw = {"label": "cat", "left": 60, "top": 90, "width": 200, "height": 125, "status": "adjusted"}
    assert LabeledBox.from_dict(raw) == LabeledBox("cat", PixelBox(60, 90, 200, 125))


labeled_boxes = st.lists(
    st.builds(
        LabeledBox,
        st.sampled_from(["cat", "dog"]),
        st.builds(PixelBox, st.integers(0, 50), st.integers(0, 50), st.integers(2, 30), st.integers(2, 30)),
    ),
    max_size=8,
)


@given(labeled_boxes, labeled_boxes, st.floats(0.05, 1.0))
def test_matching_accounts_for_every_box(
    predicted: list[LabeledBox], reference: list[LabeledBox], threshold: float
) -> None:
    counts = match_boxes(predicted, reference, threshold)
    assert counts.tp + counts.fp == len(predicted)
    assert counts.tp + counts.fn == len(reference)
    assert len({i for i, _ in counts.pairs}) == len({j for _, j in counts.pairs}) == counts.tp
    for i, j in counts.pairs:
        assert predicted[i].label == reference[j].label


@given(labeled_boxes)
def test_predictions_equal_to_reference_are_perfect(boxes: list[LabeledBox]) -> None:
    # Identical boxes can pair crosswise, but greedy always finds a full matching of equal lists
    counts = match_boxes(boxes, boxes)
    assert counts.fp == 0 and counts.fn == 0


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_scores_are_in_unit_interval(tp: int, fp: int, fn: int) -> None:
    for value in precision_recall_f1(tp, fp, fn):
        assert 0.0 <= value <= 1.0
