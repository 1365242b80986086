"""The synthetic dataset: manifests in the Custom Labels format, boxes exactly on the drawn shapes,
EXIF orientations that display as the truth says, and the same bytes for the same seed."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageOps, ImageStat

from localcloud.data import dataset
from localcloud.data.dataset import DETECTION_CLASSES, MIN_OBJECT_PX, generate
from localcloud.data.imaging import ORIENTATION_TAG
from localcloud.data.truth import Truth, iter_truth

COUNT = 30


def check_detection_line(record: dict[str, Any], attribute: str = "truth") -> None:
    """Structure of a Custom Labels object-detection line (docs/aws-facts.md §2.1)."""
    assert isinstance(record["source-ref"], str) and record["source-ref"]
    value, metadata = record[attribute], record[f"{attribute}-metadata"]
    assert len(value["image_size"]) == 1
    size = value["image_size"][0]
    assert set(size) == {"width", "height", "depth"} and size["depth"] == 3
    assert metadata["type"] == "groundtruth/object-detection"
    assert metadata["human-annotated"] in ("yes", "no")
    assert isinstance(metadata["creation-date"], str) and "T" in metadata["creation-date"]
    assert len(metadata["objects"]) == len(value["annotations"])
    assert all(0 <= o["confidence"] <= 1 for o in metadata["objects"])
    for annotation in value["annotations"]:
        assert set(annotation) == {"class_id", "left", "top", "width", "height"}
        assert str(annotation["class_id"]) in metadata["class-map"]
        assert all(isinstance(annotation[k], int) for k in ("left", "top", "width", "height"))
        assert annotation["left"] >= 0 and annotation["top"] >= 0
        assert annotation["left"] + annotation["width"] <= size["width"]
        assert annotation["top"] + annotation["height"] <= size["height"]


def read_lines(manifest: Path) -> list[dict[str, Any]]:
    raw = manifest.read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def displayed(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def assert_shapes_at_boxes(image: Image.Image, truth: Truth) -> None:
    """Circles and squares cover their box centre, in their class colour; the background is muted grey,
    so a box that is off (or an image shown the wrong way round) lands on the wrong colour."""
    for box in truth.boxes:
        if box.label == "triangle":  # a triangle's box centre can fall outside it
            continue
        centre = rgb_at(image, (box.left + box.width // 2, box.top + box.height // 2))
        expected = dataset._CLASS_COLOURS[box.label]
        assert colour_distance(centre, expected) < 90, (truth.source_ref, box)


def rgb_at(image: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    pixel = image.getpixel(xy)
    assert isinstance(pixel, tuple) and len(pixel) == 3
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def colour_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> int:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def detection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("detection"), COUNT, exif_fraction=0.25)


@pytest.fixture(scope="module")
def classification(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("classification"), COUNT, task="classification")


def test_detection_manifest_is_custom_labels_object_detection(detection: Path) -> None:
    # GIVEN a generated detection dataset WHEN its manifest is read THEN every line is valid
    records = read_lines(detection)
    assert detection.name == "truth.manifest"
    assert len(records) == COUNT
    for record in records:
        check_detection_line(record)
        assert not record["source-ref"].startswith(("s3://", "/"))
        assert record["truth-metadata"]["class-map"] == {"0": "circle", "1": "square", "2": "triangle"}
    assert len({r["source-ref"] for r in records}) == COUNT


def test_detection_images_exist_and_match_their_truth(detection: Path) -> None:
    root = detection.parent
    truths = list(iter_truth(detection))
    for truth in truths:
        path = root / truth.source_ref
        with Image.open(path) as image:
            assert image.format == ("PNG" if path.suffix == ".png" else "JPEG")
        shown = displayed(path)
        assert shown.size == truth.image_size
        assert len(truth.boxes) <= dataset.MAX_OBJECTS
        for box in truth.boxes:
            assert box.label in DETECTION_CLASSES
            assert box.width >= MIN_OBJECT_PX and box.height >= MIN_OBJECT_PX
        assert_shapes_at_boxes(shown, truth)
    # the fractions are exact counts, and every class turns up
    assert sum(1 for t in truths if not t.boxes) == round(COUNT * 0.1)
    assert sum(1 for t in truths if t.source_ref.endswith(".png")) == round(COUNT * 0.2)
    assert {b.label for t in truths for b in t.boxes} == set(DETECTION_CLASSES)


def test_file_names_include_sub_folders_spaces_and_unicode(detection: Path) -> None:
    refs = [t.source_ref for t in iter_truth(detection)]
    assert refs[0] == "img-00001.jpg" or refs[0] == "img-00001.png"
    assert any(r.startswith("sub/") for r in refs)
    assert any(" " in r for r in refs)
    assert any(not r.isascii() for r in refs)
    for ref in refs:
        assert (detection.parent / ref).is_file()


def test_exif_orientations_display_as_the_truth_says(tmp_path: Path) -> None:
    # GIVEN every JPEG saved turned, with an EXIF orientation to undo it
    manifest = generate(
        tmp_path, 12, exif_fraction=1.0, png_fraction=0.0, empty_fraction=0.0, size=(320, 240)
    )
    seen: Counter[int | None] = Counter()
    for truth in iter_truth(manifest):
        path = tmp_path / truth.source_ref
        with Image.open(path) as image:
            orientation = image.getexif().get(ORIENTATION_TAG)
            stored = image.size
        seen[orientation] += 1
        # THEN the stored pixels are the sensor size and the displayed ones the truth's size
        assert orientation in (3, 6, 8)
        assert stored == (320, 240)
        assert truth.image_size == ((240, 320) if orientation in (6, 8) else (320, 240))
        shown = displayed(path)
        assert shown.size == truth.image_size
        assert_shapes_at_boxes(shown, truth)
    assert set(seen) == {3, 6, 8}


def test_classification_manifest_is_image_level_multi_label(classification: Path) -> None:
    records = read_lines(classification)
    assert len(records) == COUNT
    combos: Counter[frozenset[str]] = Counter()
    for record in records:
        pairs = [k for k in record if k.endswith("-metadata")]
        assert pairs, "each image has at least one label"
        labels = []
        for key in pairs:
            attribute = key.removesuffix("-metadata")
            assert isinstance(record[attribute], int)
            metadata = record[key]
            assert metadata["type"] == "groundtruth/image-classification"
            assert 0 <= metadata["confidence"] <= 1
            assert metadata["human-annotated"] == "yes" and metadata["creation-date"]
            labels.append(metadata["class-name"])
        assert len([label for label in labels if label in ("day", "night")]) == 1
        assert set(labels) <= {"day", "night", "striped"} and len(set(labels)) == len(labels)
        combos[frozenset(labels)] += 1
        assert (classification.parent / record["source-ref"]).is_file()
    assert any(len(c) == 2 for c in combos), "some images are multi-label"


def test_classification_pictures_look_like_their_labels(classification: Path) -> None:
    # Night scenes are dark and day scenes light: a model (or a person) could tell them apart.
    brightness: dict[str, list[float]] = {"day": [], "night": []}
    for truth in iter_truth(classification):
        time_of_day = "night" if "night" in truth.labels else "day"
        brightness[time_of_day].append(
            ImageStat.Stat(displayed(classification.parent / truth.source_ref).convert("L")).mean[0]
        )
    assert brightness["day"] and brightness["night"]
    assert min(brightness["day"]) > max(brightness["night"])


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", 8, exif_fraction=0.5)
    second = generate(tmp_path / "b", 8, exif_fraction=0.5)
    other = generate(tmp_path / "c", 8, exif_fraction=0.5, seed=8)
    assert tree_digest(first.parent) == tree_digest(second.parent)
    assert first.read_bytes() != other.read_bytes()


def test_process_pool_writes_what_one_process_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset, "PARALLEL_THRESHOLD", 1)
    serial = generate(tmp_path / "serial", 6, workers=1, exif_fraction=0.5)
    parallel = generate(tmp_path / "parallel", 6, workers=2, exif_fraction=0.5)
    assert tree_digest(serial.parent) == tree_digest(parallel.parent)


def test_zero_images_gives_an_empty_manifest(tmp_path: Path) -> None:
    assert generate(tmp_path, 0).read_bytes() == b""


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": -1},
        {"empty_fraction": 1.5},
        {"exif_fraction": -0.1},
        {"size": (0, 10)},
        {"task": "segmentation"},
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"count": 1, **kwargs}
    with pytest.raises(ValueError):
        generate(tmp_path, **arguments)


def test_cli_writes_and_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        dataset.main(
            ["--out", str(tmp_path), "--count", "3", "--task", "classification", "--exif-fraction", "1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert str(tmp_path / "truth.manifest") in out
    assert len(read_lines(tmp_path / "truth.manifest")) == 3


@settings(max_examples=30, deadline=None)
@given(
    width=st.integers(min_value=16, max_value=400),
    height=st.integers(min_value=16, max_value=400),
    count=st.integers(min_value=0, max_value=8),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_objects_fit_any_image_size(width: int, height: int, count: int, seed: int) -> None:
    # Whatever the image size: boxes inside, >= 16 px, not overlapping, and on the drawn pixels.
    image = Image.new("RGB", (width, height), (128, 128, 128))
    boxes = dataset.draw_objects(image, count, random.Random(seed))
    assert len(boxes) <= count
    for i, box in enumerate(boxes):
        assert box.left >= 0 and box.top >= 0
        assert box.left + box.width <= width and box.top + box.height <= height
        assert box.width >= MIN_OBJECT_PX and box.height >= MIN_OBJECT_PX
        # tight: the box's outer rows and columns each hold a pixel of the shape
        crop = image.crop((box.left, box.top, box.left + box.width, box.top + box.height))
        grey = Image.new("RGB", crop.size, (128, 128, 128))
        assert ImageChops.difference(crop, grey).getbbox() == (0, 0, box.width, box.height)
        for other in boxes[i + 1 :]:
            assert (
                box.left + box.width <= other.left
                or other.left + other.width <= box.left
                or box.top + box.height <= other.top
                or other.top + other.height <= box.top
            )
