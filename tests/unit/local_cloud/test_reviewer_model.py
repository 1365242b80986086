"""The emulated reviewer: one model for both review backends. Its rules one by one, and the proof that
the Ground Truth workforce and the Label Studio reviewers are that one model: given the same shown
boxes, truth and random draws, both answer with the same boxes, so the two demos agree within noise."""

from __future__ import annotations

import random
from typing import Any

import pytest

from localcloud.data.truth import Truth, TruthBox
from localcloud.services.groundtruth.jobs import GroundTruthConfig
from localcloud.services.groundtruth.workers import Workforce
from localcloud.services.labelstudio.reviewers import ReviewStats, _prediction_boxes, _rectangle, _Reviewer
from localcloud.services.reviewer_model import DEMO, ReviewerModel, review_boxes, review_labels

W, H = 640, 480
CAT = {"label": "cat", "left": 100, "top": 100, "width": 100, "height": 80}
DOG = {"label": "dog", "left": 400, "top": 200, "width": 120, "height": 120}


def one(
    shown: list[dict[str, Any]], truth: list[dict[str, Any]], accuracy: float = 1.0, seed: int = 0
) -> Any:
    return review_boxes(shown, truth, ReviewerModel(accuracy=accuracy), random.Random(seed), W, H)


def test_a_box_that_fits_is_left_as_it_is() -> None:
    near = {**CAT, "left": 102}  # IoU 0.96 with the object, right label
    review = one([near], [CAT])
    assert [(b.kind, b.box) for b in review.boxes] == [("kept", near)]
    assert not review.changed and review.counts() == {"kept": 1, "adjusted": 0, "added": 0, "removed": 0}


def test_a_loose_box_is_redrawn_by_a_careful_reviewer_and_left_by_a_careless_one() -> None:
    loose = {**CAT, "left": 125}  # IoU 0.6
    assert [(b.kind, b.box) for b in one([loose], [CAT]).boxes] == [("redrawn", CAT)]
    assert [(b.kind, b.box) for b in one([loose], [CAT], accuracy=0.0).boxes] == [("kept", loose)]


def test_a_box_on_the_object_with_the_wrong_label_is_relabelled() -> None:
    wrong = {**CAT, "label": "dog"}
    review = one([wrong], [CAT])
    assert [(b.kind, b.box) for b in review.boxes] == [("redrawn", CAT)]
    assert review.counts()["adjusted"] == 1


def test_a_false_box_is_deleted_and_a_missed_object_drawn() -> None:
    ghost = {"label": "cat", "left": 10, "top": 10, "width": 20, "height": 20}
    review = one([ghost], [DOG])
    assert review.deleted == [0]
    assert [(b.kind, b.box) for b in review.boxes] == [("drawn", DOG)]
    careless = one([ghost], [DOG], accuracy=0.0)
    assert careless.deleted == [] and [b.kind for b in careless.boxes] == ["kept"]


def test_drawn_boxes_stay_within_the_jitter_and_inside_the_image() -> None:
    edge = {"label": "cat", "left": 0, "top": 0, "width": 5, "height": 5}
    model = ReviewerModel(accuracy=1.0, jitter_px=3.0)
    for seed in range(50):
        (box,) = [b.box for b in review_boxes([], [edge, DOG], model, random.Random(seed), W, H).boxes][:1]
        assert box["left"] >= 0 and box["top"] >= 0 and box["width"] >= 1 and box["height"] >= 1
        assert all(isinstance(box[k], int) for k in ("left", "top", "width", "height"))
        assert abs(box["left"] + box["width"] - 5) <= 3.5


def test_image_labels_are_set_right_with_the_reviewers_accuracy() -> None:
    model = ReviewerModel(accuracy=1.0)
    checked = review_labels(["cat", "dog", "sofa"], ["cat", "dog"], ["cat", "sofa"], model, random.Random(0))
    assert checked == ["cat", "sofa"]
    careless = review_labels(
        ["cat", "dog", "sofa"], ["cat", "dog"], ["cat", "sofa"], ReviewerModel(0.0), random.Random(0)
    )
    assert careless == ["cat", "dog"]


def _scene(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Objects, and what a noisy model shows of them: most found (a little off, sometimes far off or
    with the wrong label), some missed, some false boxes."""
    truth, shown = [], []
    for index in range(rng.randint(0, 4)):
        box = {
            "label": rng.choice(["cat", "dog"]),
            "left": 20 + 150 * index,
            "top": rng.randint(10, 300),
            "width": rng.randint(40, 120),
            "height": rng.randint(40, 120),
        }
        truth.append(box)
        roll = rng.random()
        if roll < 0.15:
            continue  # missed
        off = rng.uniform(0, 3) if roll < 0.6 else rng.uniform(8, 25)
        label = box["label"] if rng.random() > 0.1 else ("dog" if box["label"] == "cat" else "cat")
        shown.append({**box, "label": label, "left": box["left"] + off, "top": box["top"] + off / 2})
    if rng.random() < 0.2:
        shown.append({"label": "cat", "left": 600, "top": 400, "width": 30, "height": 30})
    return shown, truth


def _ls_answer(answer: list[dict[str, Any]]) -> list[tuple[str, int, int, int, int]]:
    boxes = [box for _, box in _prediction_boxes(answer)]
    return sorted(
        (b["label"], round(b["left"]), round(b["top"]), round(b["width"]), round(b["height"])) for b in boxes
    )


def _gt_answer(boxes: list[dict[str, Any]]) -> list[tuple[str, int, int, int, int]]:
    return sorted(
        (b["label"], round(b["left"]), round(b["top"]), round(b["width"]), round(b["height"])) for b in boxes
    )


@pytest.mark.parametrize("seed", range(3))
def test_both_backends_answer_the_same_tasks_the_same_way(seed: int) -> None:
    # GIVEN 200 images the model labelled with noise, and the same reviewer model on both backends
    rng = random.Random(seed)
    scenes = [_scene(rng) for _ in range(200)]
    workforce = Workforce(
        None,
        lambda *_: None,
        {},
        "us-east-1",
        GroundTruthConfig(annotator_accuracy=DEMO.accuracy, annotator_jitter_px=DEMO.jitter_px),
    )
    ls_stats = ReviewStats()
    kept = {"groundtruth": 0, "labelstudio": 0}
    for index, (shown, truth_boxes) in enumerate(scenes):
        truth = Truth(source_ref=f"s3://b/{index}.jpg", width=W, height=H)
        truth.boxes = [TruthBox(**b) for b in truth_boxes]
        # WHEN each backend's reviewer answers the image with the same random draws
        gt = workforce._annotate_boxes(
            [dict(b) for b in shown], truth, ["cat", "dog"], random.Random(index), W, H
        )
        ls = _Reviewer(random.Random(index), DEMO, ls_stats).detection(
            [_rectangle(f"p{i}", b, W, H) for i, b in enumerate(shown)],
            {"width": W, "height": H, "boxes": truth_boxes},
        )
        # THEN the answers are the same boxes
        assert _gt_answer(gt) == _ls_answer(ls), index
        kept["groundtruth"] += sum(1 for b in gt if any(b == s for s in shown))
    kept["labelstudio"] = ls_stats.kept
    # and the work figure the demos print (objects needing no change) is the same
    assert kept["groundtruth"] == kept["labelstudio"] > 0
