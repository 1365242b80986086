"""The bad-image corpus: every case the issue lists exists with the properties it claims, and each
expectation follows from the documented rules (header read, Custom Labels limits, full decode)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from localcloud.data.bad_images import (
    EXIF_DISPLAY_SIZE,
    MARKER_COLOUR,
    BadImageCase,
    generate_bad_corpus,
    marker_box,
)
from localcloud.data.imaging import ORIENTATION_TAG
from localcloud.data.truth import iter_truth

SKIP_REASONS = {"unsupported-format", "corrupt-image", "image-too-large", "image-dimensions"}
FIFTEEN_MB = 15 * 1024 * 1024


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, BadImageCase]]:
    root = tmp_path_factory.mktemp("bad")
    cases = generate_bad_corpus(root)
    assert len({c.path for c in cases}) == len(cases), "paths are unique"
    return root, {c.path: c for c in cases}


def header_size(path: Path) -> tuple[str, tuple[int, int]]:
    """What the pipeline reads without decoding pixels: format and displayed size."""
    with Image.open(path) as image:
        orientation = image.getexif().get(ORIENTATION_TAG, 1)
        width, height = image.size
        return str(image.format), ((height, width) if orientation in (5, 6, 7, 8) else (width, height))


def verdict(path: Path) -> tuple[str, str | None]:
    """The documented decision, in the pipeline's order: identify the header, format by content,
    bytes, dimensions, then the full decode Rekognition does."""
    try:
        fmt, (width, height) = header_size(path)
    except (OSError, SyntaxError):
        return "skipped", "corrupt-image"
    if fmt not in ("JPEG", "PNG"):
        return "skipped", "unsupported-format"
    if path.stat().st_size > FIFTEEN_MB:
        return "skipped", "image-too-large"
    if not (64 <= width <= 4096 and 64 <= height <= 4096) or max(width, height) > 20 * min(width, height):
        return "skipped", "image-dimensions"
    try:
        with Image.open(path) as image:
            image.load()
    except OSError:
        return "skipped", "corrupt-image"
    return "labeled", None


def test_every_case_is_well_formed(corpus: tuple[Path, dict[str, BadImageCase]]) -> None:
    root, cases = corpus
    for case in cases.values():
        assert (root / case.path).is_file()
        assert "\\" not in case.path and not case.path.startswith("/")
        assert case.note
        if case.expect == "labeled":
            assert case.reason is None and case.display_size is not None
        else:
            assert case.expect == "skipped" and case.reason in SKIP_REASONS


def test_expectations_follow_the_documented_rules(corpus: tuple[Path, dict[str, BadImageCase]]) -> None:
    root, cases = corpus
    for case in cases.values():
        assert verdict(root / case.path) == (case.expect, case.reason), case.path


def test_display_sizes_are_what_readers_see(corpus: tuple[Path, dict[str, BadImageCase]]) -> None:
    root, cases = corpus
    for case in cases.values():
        if case.display_size is None:
            with pytest.raises(OSError):
                header_size(root / case.path)
            continue
        assert header_size(root / case.path)[1] == case.display_size, case.path
        if case.reason != "corrupt-image":
            with Image.open(root / case.path) as image:
                assert ImageOps.exif_transpose(image).size == case.display_size, case.path


def test_the_issue_cases_are_all_there(corpus: tuple[Path, dict[str, BadImageCase]]) -> None:
    _, cases = corpus
    assert {c.reason for c in cases.values() if c.expect == "skipped"} == SKIP_REASONS
    paths = list(cases)
    for suffix in (".JPG", ".PNG", ".JPEG"):
        assert any(p.endswith(suffix) and cases[p].expect == "labeled" for p in paths)
    for needle in (" ", "+", "%"):
        assert any(needle in p and cases[p].expect == "labeled" for p in paths)
    assert any(not p.isascii() and cases[p].expect == "labeled" for p in paths)
    assert cases["formats/animation.gif"].reason == "unsupported-format"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations_display_upright(
    corpus: tuple[Path, dict[str, BadImageCase]], orientation: int
) -> None:
    root, cases = corpus
    case = cases[f"exif/orientation-{orientation}.jpg"]
    with Image.open(root / case.path) as image:
        assert image.getexif().get(ORIENTATION_TAG) == orientation
        stored = image.size
        shown = ImageOps.exif_transpose(image).convert("RGB")
    width, height = EXIF_DISPLAY_SIZE
    assert stored == ((height, width) if orientation >= 5 else (width, height))
    assert shown.size == case.display_size == EXIF_DISPLAY_SIZE
    # The marker square sits top-left once displayed; every mirror of its centre is background.
    box = marker_box(EXIF_DISPLAY_SIZE)
    cx, cy = box.left + box.width // 2, box.top + box.height // 2

    def near_marker(x: int, y: int) -> bool:
        pixel = shown.getpixel((x, y))
        assert isinstance(pixel, tuple)
        return sum(abs(int(a) - b) for a, b in zip(pixel, MARKER_COLOUR, strict=True)) < 60

    assert near_marker(cx, cy)
    for x, y in ((width - 1 - cx, cy), (cx, height - 1 - cy), (width - 1 - cx, height - 1 - cy)):
        assert not near_marker(x, y)


def test_image_modes_and_encodings(corpus: tuple[Path, dict[str, BadImageCase]]) -> None:
    root, _ = corpus
    expected_modes = {
        "modes/cmyk.jpg": ("JPEG", "CMYK"),
        "modes/grayscale.jpg": ("JPEG", "L"),
        "modes/progressive.jpg": ("JPEG", "RGB"),
        "modes/gray16.png": ("PNG", "I;16"),
        "modes/palette-transparent.png": ("PNG", "P"),
        "modes/rgba.png": ("PNG", "RGBA"),
        "formats/png-named.jpg": ("PNG", "RGB"),
        "formats/animation.gif": ("GIF", "P"),
        "names/upper.PNG": ("PNG", "RGB"),
        "names/upper.JPG": ("JPEG", "RGB"),
    }
    for path, (fmt, mode) in expected_modes.items():
        with Image.open(root / path) as image:
            assert (image.format, image.mode) == (fmt, mode), path
    with Image.open(root / "modes/progressive.jpg") as image:
        assert image.info.get("progressive") == 1
    with Image.open(root / "modes/palette-transparent.png") as image:
        assert "transparency" in image.info
    ihdr = (root / "modes/gray16.png").read_bytes()[16:26]
    assert ihdr[8] == 16, "PNG bit depth"
    with Image.open(root / "formats/animation.gif") as image:
        assert getattr(image, "n_frames", 1) == 2


def test_byte_sizes(corpus: tuple[Path, dict[str, BadImageCase]]) -> None:
    root, cases = corpus
    oversize = (root / "size/over-15mb.png").stat().st_size
    assert oversize > 16 * 1024 * 1024
    # the header is at the front, so a short ranged read is enough to learn the size
    with Image.open(io.BytesIO((root / "size/over-15mb.png").read_bytes()[:1024])) as image:
        assert image.size == cases["size/over-15mb.png"].display_size
    assert (root / "broken/zero-bytes.jpg").stat().st_size == 0
    assert (root / "broken/text.jpg").read_bytes().isascii()
    for case in cases.values():
        if case.reason != "image-too-large":
            assert (root / case.path).stat().st_size < 15_000_000, case.path


def test_truncated_jpeg_has_a_header_but_no_pixels(corpus: tuple[Path, dict[str, BadImageCase]]) -> None:
    root, cases = corpus
    raw = (root / "broken/truncated.jpg").read_bytes()
    assert raw.startswith(b"\xff\xd8") and not raw.endswith(b"\xff\xd9")
    with Image.open(root / "broken/truncated.jpg") as image:
        assert image.size == cases["broken/truncated.jpg"].display_size
        with pytest.raises(OSError, match="truncated"):
            image.load()


def test_truth_manifest_covers_exactly_the_labeled_cases(
    corpus: tuple[Path, dict[str, BadImageCase]],
) -> None:
    root, cases = corpus
    manifest = root / "truth.manifest"
    lines = manifest.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    for record in records:
        metadata = record["truth-metadata"]
        assert metadata["type"] == "groundtruth/object-detection"
        assert len(metadata["objects"]) == len(record["truth"]["annotations"])
        assert record["truth"]["image_size"][0]["depth"] == 3
    truths = {t.source_ref: t for t in iter_truth(manifest)}
    assert set(truths) == {p for p, c in cases.items() if c.expect == "labeled"}
    for path, truth in truths.items():
        assert truth.image_size is not None and truth.image_size == cases[path].display_size
        assert truth.boxes and truth.boxes[0].label == "square"
        for box in truth.boxes:
            assert 0 <= box.left and box.left + box.width <= truth.image_size[0]
            assert 0 <= box.top and box.top + box.height <= truth.image_size[1]


def test_same_bytes_every_time(corpus: tuple[Path, dict[str, BadImageCase]], tmp_path: Path) -> None:
    root, cases = corpus
    again = generate_bad_corpus(tmp_path)
    assert [c.path for c in again] == list(cases)
    for path in [*cases, "truth.manifest"]:
        assert (
            hashlib.sha256((root / path).read_bytes()).digest()
            == hashlib.sha256((tmp_path / path).read_bytes()).digest()
        ), path
