"""Parsing the ground-truth manifest the emulators answer from."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from labeling_loop.kernel.geometry import PixelBox
from labeling_loop.kernel.geometry import iou as pixel_iou

from localcloud.data.truth import Truth, TruthBox, load_truth, resolve_source_ref


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """The emulators match boxes with the product's IoU; checked here in the truth's
    (left, top, width, height) form."""
    return pixel_iou(PixelBox(*a), PixelBox(*b))


BASE = "s3://bucket/images/"


def detection_line(ref: str, boxes: list[tuple[int, int, int, int, int]], class_map: dict[str, str]) -> dict:
    return {
        "source-ref": ref,
        "bounding-box": {
            "image_size": [{"width": 640, "height": 480, "depth": 3}],
            "annotations": [
                {"class_id": c, "left": left, "top": top, "width": w, "height": h}
                for c, left, top, w, h in boxes
            ],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1} for _ in boxes],
            "class-map": class_map,
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2024-01-01T00:00:00",
        },
    }


def classification_pair(attr: str, label: str) -> dict:
    return {
        attr: 1,
        f"{attr}-metadata": {
            "class-name": label,
            "confidence": 1.0,
            "type": "groundtruth/image-classification",
            "human-annotated": "yes",
            "creation-date": "2024-01-01T00:00:00",
        },
    }


def test_detection_line_gives_pixel_boxes_and_labels() -> None:
    line = detection_line("a.png", [(0, 10, 20, 30, 40), (1, 100, 110, 50, 60)], {"0": "cat", "1": "dog"})
    truth = load_truth([line], BASE)
    t = truth["s3://bucket/images/a.png"]
    assert (t.width, t.height) == (640, 480)
    assert t.boxes == [TruthBox("cat", 10, 20, 30, 40), TruthBox("dog", 100, 110, 50, 60)]
    assert t.labels == ["cat", "dog"]


def test_class_id_missing_from_class_map_is_dropped() -> None:
    line = detection_line("s3://other/x.jpg", [(0, 1, 2, 3, 4), (7, 1, 2, 3, 4)], {"0": "cat"})
    t = load_truth([line], BASE)["s3://other/x.jpg"]
    assert [b.label for b in t.boxes] == ["cat"]


def test_multi_label_classification_line() -> None:
    line = {
        "source-ref": "s3://b/k.jpg",
        **classification_pair("sport0", "football"),
        **classification_pair("sport1", "outdoor"),
    }
    t = load_truth([line], BASE)["s3://b/k.jpg"]
    assert t.labels == ["football", "outdoor"]
    assert t.boxes == []
    assert (t.width, t.height) == (0, 0)


def test_mixed_line_merges_boxes_and_image_labels() -> None:
    line = detection_line("m.png", [(0, 1, 1, 10, 10)], {"0": "cat"})
    line.update(classification_pair("scene", "indoor"))
    t = load_truth([line], BASE)["s3://bucket/images/m.png"]
    assert t.labels == ["cat", "indoor"]
    assert len(t.boxes) == 1


def test_other_types_and_unpaired_attributes_are_ignored() -> None:
    line = {
        "source-ref": "s3://b/n.jpg",
        "verify": 1,
        "verify-metadata": {"class-name": "bad", "type": "groundtruth/label-verification"},
        "orphan": {"annotations": [], "image_size": []},
    }
    t = load_truth([line, {"no-source": 1}], BASE)["s3://b/n.jpg"]
    assert t == Truth(source_ref="s3://b/n.jpg", width=0, height=0)


def test_relative_and_absolute_refs() -> None:
    assert resolve_source_ref("x/y.png", "s3://b/p") == "s3://b/p/x/y.png"
    assert resolve_source_ref("/x.png", "s3://b/p/") == "s3://b/p/x.png"
    assert resolve_source_ref("s3://c/z.png", "s3://b/p/") == "s3://c/z.png"


def test_iou_basics() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert abs(iou((0, 0, 10, 10), (5, 0, 10, 10)) - 50 / 150) < 1e-9


boxes = st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(1, 300), st.integers(1, 300))


@given(boxes, boxes)
def test_iou_is_symmetric_and_bounded(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> None:
    value = iou(a, b)
    assert 0.0 <= value <= 1.0
    assert abs(value - iou(b, a)) < 1e-12


@given(st.lists(st.tuples(st.integers(0, 3), boxes), max_size=6))
def test_every_mapped_box_survives_parsing(items: list[tuple[int, tuple[int, int, int, int]]]) -> None:
    class_map = {"0": "a", "1": "b", "2": "c", "3": "d"}
    line = detection_line("h.png", [(c, *box) for c, box in items], class_map)
    t = load_truth([line], BASE)["s3://bucket/images/h.png"]
    assert len(t.boxes) == len(items)
    assert set(t.labels) == {class_map[str(c)] for c, _ in items}
