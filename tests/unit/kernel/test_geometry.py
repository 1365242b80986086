"""Box conversions: exact where the maths allows, clipped and valid always."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from labeling_loop.kernel.geometry import (
    PixelBox,
    box_to_percent,
    clip_box,
    iou,
    is_valid,
    percent_to_box,
    ratio_to_pixels,
    round_half_up,
    snap_to_pixels,
)


def pixels_to_ratio(box: PixelBox, width: int, height: int) -> dict[str, float]:
    """Pixel box -> ratios of the image (Rekognition's shape, keys in lower case). Only the tests
    go this way: the loop reads Rekognition's ratios and never writes them."""
    return {
        "left": box.left / width,
        "top": box.top / height,
        "width": box.width / width,
        "height": box.height / height,
    }


def percent_to_pixels(value: dict[str, float], width: int, height: int) -> PixelBox:
    """What collect makes of a Label Studio rectangle: the enclosing box, snapped to pixels."""
    return snap_to_pixels(percent_to_box(value, width, height), width, height)


# --- examples ------------------------------------------------------------------------------------


def test_ratio_to_pixels_matches_the_data_contract_example() -> None:
    # GIVEN the prediction of docs/data-contracts.md on a 640x480 image
    ratio = {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.25}
    # WHEN converted THEN it is the review task's pixel box
    assert ratio_to_pixels(ratio, 640, 480) == PixelBox(64, 96, 192, 120)


def test_ratio_to_pixels_rounds_edges_half_up() -> None:
    # left edge 0.5 px -> 1, right edge 10.5 px -> 11: width stays 10
    box = ratio_to_pixels({"left": 0.5 / 100, "top": 0.0, "width": 10 / 100, "height": 0.5}, 100, 100)
    assert box == PixelBox(1, 0, 10, 50)
    assert round_half_up(2.5) == 3 and round_half_up(1.5) == 2  # not banker's rounding


def test_ratio_to_pixels_clips_boxes_across_the_border() -> None:
    # Rekognition returns negative ratios for objects cut by the image border
    box = ratio_to_pixels({"left": -0.1, "top": 0.9, "width": 0.3, "height": 0.3}, 200, 100)
    assert box == PixelBox(0, 90, 40, 10)


@pytest.mark.parametrize(
    "ratio",
    [
        {"left": 0.5, "top": 0.5, "width": 0.001, "height": 0.3},  # 0.1 px wide
        {"left": 0.999, "top": 0.1, "width": 0.5, "height": 0.3},  # 1 px left after clipping
        {"left": 1.2, "top": 0.1, "width": 0.1, "height": 0.1},  # entirely outside
        {"left": 0.1, "top": 0.1, "width": 0.3, "height": 0.0},  # zero height
    ],
)
def test_ratio_to_pixels_drops_boxes_of_one_pixel_or_less(ratio: dict[str, float]) -> None:
    assert ratio_to_pixels(ratio, 1000, 1000) is None


def test_clip_box_keeps_inner_part_and_drops_slivers() -> None:
    assert clip_box(PixelBox(-10, -5, 50, 30), 100, 100) == PixelBox(0, 0, 40, 25)
    assert clip_box(PixelBox(90, 90, 50, 50), 100, 100) == PixelBox(90, 90, 10, 10)
    assert clip_box(PixelBox(99, 10, 20, 20), 100, 100) is None  # 1 px wide after clipping
    assert clip_box(PixelBox(10, 10, 2, 2), 100, 100) == PixelBox(10, 10, 2, 2)


def test_percent_round_trip_example() -> None:
    box = PixelBox(64, 96, 192, 120)
    value = box_to_percent(box.to_dict(), 640, 480)
    assert value == {"x": 10.0, "y": 20.0, "width": 30.0, "height": 25.0, "rotation": 0}
    assert percent_to_box(value, 640, 480) == {"left": 64.0, "top": 96.0, "width": 192.0, "height": 120.0}
    assert percent_to_pixels(value, 640, 480) == box


def test_snap_to_pixels_rounds_edges_half_up_and_clips() -> None:
    # left edge 12.5 -> 13 (round() would give 12), right edge 22.5 -> 23: width stays 10
    assert snap_to_pixels({"left": 12.5, "top": 13.5, "width": 10.0, "height": 10.0}, 100, 100) == PixelBox(
        13, 14, 10, 10
    )
    # Edges, not sizes, are rounded: 10.4 + 10.4 = 20.8 -> right edge 21, width 11.
    assert snap_to_pixels({"left": 10.4, "top": 0, "width": 10.4, "height": 1}, 100, 100).width == 11
    assert snap_to_pixels({"left": -3.2, "top": 10.4, "width": 20.0, "height": 500.0}, 100, 100) == PixelBox(
        0, 10, 17, 90
    )


def test_snap_to_pixels_keeps_boxes_of_one_pixel_or_less() -> None:
    # A person's 1 px box stays in the reviewed record; the manifest drops it (clip_box) and counts it.
    one_px = snap_to_pixels({"left": 10.2, "top": 10.0, "width": 1.0, "height": 5.0}, 100, 100)
    assert one_px == PixelBox(10, 10, 1, 5)
    assert clip_box(one_px, 100, 100) is None
    assert snap_to_pixels({"left": 10.1, "top": 10.0, "width": 0.2, "height": 5.0}, 100, 100).width == 0


def test_percent_to_box_encloses_a_rotated_rectangle() -> None:
    # GIVEN a 20x10 px rectangle at (50, 50) rotated 90 degrees clockwise about its top-left corner
    value = {"x": 50.0, "y": 50.0, "width": 20.0, "height": 10.0, "rotation": 90}
    # THEN its corners span x 40..50 and y 50..70
    assert percent_to_box(value, 100, 100) == pytest.approx(
        {"left": 40.0, "top": 50.0, "width": 10.0, "height": 20.0}
    )
    assert percent_to_pixels(value, 100, 100) == PixelBox(40, 50, 10, 20)
    # and a full turn is no rotation
    assert percent_to_pixels({**value, "rotation": 360}, 100, 100) == PixelBox(50, 50, 20, 10)


def test_iou_examples() -> None:
    a = PixelBox(0, 0, 10, 10)
    assert iou(a, a) == 1.0
    assert iou(a, PixelBox(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou(a, PixelBox(10, 0, 10, 10)) == 0.0  # touching edges share no area
    assert iou(PixelBox(0, 0, 0, 0), PixelBox(0, 0, 0, 0)) == 0.0


def test_pixel_box_dict_round_trip() -> None:
    box = PixelBox(1, 2, 3, 4)
    assert PixelBox.from_dict({**box.to_dict(), "label": "cat", "status": "kept"}) == box
    assert box.right == 4 and box.bottom == 6 and box.area == 12


# --- properties ----------------------------------------------------------------------------------

sizes = st.tuples(st.integers(2, 4096), st.integers(2, 4096))


@st.composite
def image_and_box(draw: st.DrawFn) -> tuple[int, int, PixelBox]:
    """An image size and a valid box inside it (> 1 px on each side)."""
    width, height = draw(st.integers(3, 4096)), draw(st.integers(3, 4096))
    box_w = draw(st.integers(2, width))
    box_h = draw(st.integers(2, height))
    left = draw(st.integers(0, width - box_w))
    top = draw(st.integers(0, height - box_h))
    return width, height, PixelBox(left, top, box_w, box_h)


any_box = st.builds(
    PixelBox,
    st.integers(-5000, 5000),
    st.integers(-5000, 5000),
    st.integers(-100, 5000),
    st.integers(-100, 5000),
)


@given(image_and_box())
def test_pixels_ratio_pixels_is_exact(case: tuple[int, int, PixelBox]) -> None:
    width, height, box = case
    assert ratio_to_pixels(pixels_to_ratio(box, width, height), width, height) == box


@given(image_and_box())
def test_pixels_percent_pixels_is_exact(case: tuple[int, int, PixelBox]) -> None:
    width, height, box = case
    value = box_to_percent(box.to_dict(), width, height)
    assert all(0.0 <= value[k] <= 100.0 for k in ("x", "y", "width", "height"))
    # unrounded, the answer is the box to far below the half pixel that decides "kept"
    exact = percent_to_box(value, width, height)
    assert all(abs(exact[k] - box.to_dict()[k]) < 1e-6 for k in ("left", "top", "width", "height"))
    assert percent_to_pixels(value, width, height) == box


@given(
    sizes,
    st.floats(-1.0, 2.0),
    st.floats(-1.0, 2.0),
    st.floats(-1.0, 2.0),
    st.floats(-1.0, 2.0),
)
def test_ratio_to_pixels_is_none_or_valid_and_near(
    size: tuple[int, int], left: float, top: float, w: float, h: float
) -> None:
    width, height = size
    box = ratio_to_pixels({"left": left, "top": top, "width": w, "height": h}, width, height)
    if box is not None:
        assert is_valid(box, width, height)
        # each edge within half a pixel of the exact (clipped) edge
        exact_left = min(max(left * width, 0), width)
        assert abs(box.left - exact_left) <= 0.5 + 1e-9


@given(sizes, any_box)
def test_clipping_always_yields_valid_boxes(size: tuple[int, int], box: PixelBox) -> None:
    width, height = size
    clipped = clip_box(box, width, height)
    if clipped is not None:
        assert is_valid(clipped, width, height)
        assert clipped.left >= box.left and clipped.right <= box.right
    if is_valid(box, width, height):
        assert clipped == box  # a valid box is left alone


@given(
    sizes, st.floats(-50, 150), st.floats(-50, 150), st.floats(0, 150), st.floats(0, 150), st.floats(0, 720)
)
def test_percent_to_pixels_is_inside_the_image_and_the_manifest_keeps_it_valid_or_drops_it(
    size: tuple[int, int], x: float, y: float, w: float, h: float, rotation: float
) -> None:
    width, height = size
    box = percent_to_pixels({"x": x, "y": y, "width": w, "height": h, "rotation": rotation}, width, height)
    assert 0 <= box.left <= box.right <= width and 0 <= box.top <= box.bottom <= height
    clipped = clip_box(box, width, height)
    assert clipped is None or is_valid(clipped, width, height)
    if rotation == 0.0:
        # each edge within half a pixel of the exact (clipped) edge
        exact_left = min(max(x * width / 100.0, 0), width)
        assert abs(box.left - exact_left) <= 0.5 + 1e-9


@given(any_box, any_box)
def test_iou_is_symmetric_and_bounded(a: PixelBox, b: PixelBox) -> None:
    value = iou(a, b)
    assert value == iou(b, a)
    assert 0.0 <= value <= 1.0
    if a.width > 0 and a.height > 0:
        assert iou(a, a) == 1.0


def test_iou_of_dicts_keeps_fractional_pixels() -> None:
    # Label Studio answers convert to fractional pixels; rounding before IoU would change matches.
    from labeling_loop.kernel.geometry import iou_of_dicts

    a = {"left": 0.0, "top": 0.0, "width": 10.0, "height": 10.0}
    b = {"left": 0.5, "top": 0.0, "width": 10.0, "height": 10.0}
    assert iou_of_dicts(a, b) == pytest.approx(95 / 105)
    assert iou_of_dicts(a, a) == 1.0
