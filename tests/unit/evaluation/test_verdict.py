"""One definition of a wrong image, object by object."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from labeling_loop.evaluation.quality import LabeledBox
from labeling_loop.evaluation.verdict import (
    ADJUSTED,
    EXTRA,
    KEPT,
    OUT_OF_TOLERANCE,
    WRONG_LABEL,
    Verdict,
    classification_verdict,
    detection_verdict,
)
from labeling_loop.kernel.geometry import PixelBox, iou


def box(label: str, left: int, top: int = 0, width: int = 100, height: int = 100) -> LabeledBox:
    return LabeledBox(label, PixelBox(left, top, width, height))


def test_a_box_people_kept_or_moved_a_little_needs_no_correction() -> None:
    predicted = [box("cat", 0), box("dog", 300)]
    reviewed = [box("cat", 0), box("dog", 305)]  # the dog moved 5 px: IoU 0.90
    verdict = detection_verdict(predicted, reviewed, box_tolerance=0.75)
    assert verdict == Verdict(kept=1, adjusted_within_tolerance=1)
    assert not verdict.wrong and verdict.corrections == 0


def test_a_box_moved_past_the_tolerance_makes_the_image_wrong() -> None:
    # A reviewer moved the box 26 px: IoU 0.59, the same object (>= 0.5) but too far off to train on.
    predicted, reviewed = [box("cat", 0)], [box("cat", 26)]
    assert 0.5 <= iou(predicted[0].box, reviewed[0].box) < 0.75
    verdict = detection_verdict(predicted, reviewed, box_tolerance=0.75)
    assert verdict == Verdict(out_of_tolerance=1) and verdict.wrong
    # at a looser tolerance the same move is fine
    assert detection_verdict(predicted, reviewed, box_tolerance=0.5) == Verdict(adjusted_within_tolerance=1)


def test_wrong_labels_extra_boxes_and_missed_objects() -> None:
    predicted = [box("cat", 0), box("dog", 300), box("cat", 600)]
    # the cat at 0 is really a fox; nothing at 600; people drew a bird the model missed
    reviewed = [box("fox", 0), box("dog", 300), box("bird", 900)]
    verdict = detection_verdict(predicted, reviewed)
    assert verdict == Verdict(kept=1, wrong_label=1, extra=1, missed=1)
    assert verdict.corrections == 3


def test_an_image_the_model_left_empty_is_wrong_when_people_found_something() -> None:
    assert detection_verdict([], [box("cat", 0)]) == Verdict(missed=1)
    assert not detection_verdict([], []).wrong


def test_classification_labels() -> None:
    assert classification_verdict(["cat", "outdoor"], ["cat", "outdoor"]) == Verdict(kept=2)
    assert classification_verdict(["cat"], ["dog"]) == Verdict(wrong_label=1)
    assert classification_verdict(["cat", "dog"], ["cat"]) == Verdict(kept=1, extra=1)
    assert classification_verdict(["cat"], ["cat", "indoor"]) == Verdict(kept=1, missed=1)


def test_each_prediction_says_what_became_of_it() -> None:
    predicted = [box("cat", 0), box("dog", 300), box("cat", 600), box("cow", 1000), box("hen", 1400)]
    # kept, moved 5 px (within tolerance), really a fox, moved 26 px (out of tolerance), nothing there
    reviewed = [box("cat", 0), box("dog", 305), box("fox", 600), box("cow", 1026)]
    verdict = detection_verdict(predicted, reviewed, box_tolerance=0.75)
    assert verdict.outcomes == (KEPT, ADJUSTED, WRONG_LABEL, OUT_OF_TOLERANCE, EXTRA)
    # the image-level verdict is the one it always was
    assert verdict == Verdict(kept=1, adjusted_within_tolerance=1, out_of_tolerance=1, wrong_label=1, extra=1)
    assert classification_verdict(["cat", "dog", "sky"], ["cat", "fox"]).outcomes == (
        KEPT,
        WRONG_LABEL,
        EXTRA,
    )


@settings(max_examples=200, deadline=None)
@given(
    predicted=st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 6), st.integers(0, 6)), max_size=6),
    reviewed=st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 6), st.integers(0, 6)), max_size=6),
    tolerance=st.sampled_from([0.5, 0.75, 0.9]),
)
def test_the_outcomes_add_up_to_the_verdicts_counts(
    predicted: list[tuple[str, int, int]], reviewed: list[tuple[str, int, int]], tolerance: float
) -> None:
    # boxes on a 10 px grid that overlap in every way: same, shifted, relabelled
    p = [box(label, x * 10, y * 10, 40, 40) for label, x, y in predicted]
    r = [box(label, x * 10, y * 10, 40, 40) for label, x, y in reviewed]
    verdict = detection_verdict(p, r, tolerance)
    assert len(verdict.outcomes) == len(p)
    counts = {o: verdict.outcomes.count(o) for o in (KEPT, ADJUSTED, OUT_OF_TOLERANCE, WRONG_LABEL, EXTRA)}
    assert counts == {
        KEPT: verdict.kept,
        ADJUSTED: verdict.adjusted_within_tolerance,
        OUT_OF_TOLERANCE: verdict.out_of_tolerance,
        WRONG_LABEL: verdict.wrong_label,
        EXTRA: verdict.extra,
    }
