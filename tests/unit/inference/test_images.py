"""Image headers and the Custom Labels limits: what an image looks like to Rekognition, from its header."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from fixtures_aws import image_bytes, jpeg, png
from labeling_loop.inference.images import MAX_BYTES, ImageHeader, ImageRejected, check_limits, read_header
from PIL import Image

from localcloud.data.bad_images import BadImageCase, generate_bad_corpus


def rejected(data: bytes) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        read_header(data)
    return caught.value


# read_header --------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_size_is_the_displayed_size_for_every_exif_orientation(orientation: int) -> None:
    # GIVEN a camera JPEG that displays as 640x480 landscape; for orientations 5-8 the pixels are
    # stored 480x640 and the viewer turns them
    data = jpeg((640, 480), orientation=orientation)

    # WHEN its header is read
    header = read_header(data)

    # THEN the size is what people (and Rekognition's boxes) see, and the orientation is kept
    assert (header.width, header.height) == (640, 480)
    assert header.orientation == orientation
    assert header.format == "JPEG"


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_stored_size_is_swapped_for_quarter_turns(orientation: int) -> None:
    # GIVEN pixels stored 300 wide and 200 high with a quarter-turn orientation
    image = Image.new("RGB", (300, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    # THEN the displayed size is 200x300
    header = read_header(buffer.getvalue())
    assert (header.width, header.height) == (200, 300)


def test_jpeg_without_exif_is_upright() -> None:
    # GIVEN a JPEG without EXIF
    # THEN it is read upright, as stored
    header = read_header(jpeg((320, 200)))
    assert header == ImageHeader("JPEG", 320, 200, 1)


@pytest.mark.parametrize("orientation", [0, 9, 300])
def test_out_of_range_orientation_is_treated_as_upright(orientation: int) -> None:
    # GIVEN an EXIF orientation outside 1-8 (written by buggy software)
    header = read_header(jpeg((320, 200), orientation=orientation))
    # THEN the image is taken as stored
    assert (header.width, header.height, header.orientation) == (320, 200, 1)


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (image_bytes("JPEG", (400, 300), mode="CMYK"), "JPEG"),
        (image_bytes("JPEG", (400, 300), mode="L"), "JPEG"),
        (image_bytes("JPEG", (400, 300), progressive=True), "JPEG"),
        (image_bytes("PNG", (400, 300), mode="I;16"), "PNG"),
        (image_bytes("PNG", (400, 300), mode="P"), "PNG"),
        (image_bytes("PNG", (400, 300), mode="RGBA"), "PNG"),
        (image_bytes("PNG", (400, 300), mode="1"), "PNG"),
    ],
    ids=[
        "cmyk-jpeg",
        "grayscale-jpeg",
        "progressive-jpeg",
        "16bit-png",
        "palette-png",
        "rgba-png",
        "1bit-png",
    ],
)
def test_every_jpeg_and_png_flavour_is_read(data: bytes, fmt: str) -> None:
    # GIVEN a JPEG or PNG in an unusual colour mode
    # WHEN its header is read
    header = read_header(data)
    # THEN it is accepted with its size
    assert (header.format, header.width, header.height, header.orientation) == (fmt, 400, 300, 1)


def test_png_named_jpg_is_judged_by_content() -> None:
    # GIVEN PNG bytes (whatever the object's name)
    # THEN the format comes from the content
    assert read_header(png((320, 240))).format == "PNG"


def test_truncated_jpeg_still_has_a_readable_header() -> None:
    # GIVEN a JPEG cut in half (the header is intact; the pixels are not)
    whole = jpeg((640, 480), quality=95)
    # WHEN its header is read
    header = read_header(whole[: len(whole) // 2])
    # THEN the size is known: decoding (and failing) is Rekognition's part
    assert (header.width, header.height) == (640, 480)


def test_empty_object_is_corrupt() -> None:
    # GIVEN an empty object
    # THEN it is a corrupt image, saying it is empty
    error = rejected(b"")
    assert error.reason == "corrupt-image"
    assert "empty" in error.detail


@pytest.mark.parametrize(
    "data",
    [
        b"this is not an image, only a text file named .jpg\n",
        b"\xff\xd8\xff",
        b"\x89PNG\r\n\x1a\n",
        bytes(100),
    ],
    ids=["text", "jpeg-magic-only", "png-signature-only", "zeros"],
)
def test_unreadable_bytes_are_corrupt_images(data: bytes) -> None:
    # GIVEN bytes Pillow cannot identify as any image
    error = rejected(data)
    # THEN the reason is corrupt-image (unsupported-format is for recognised other formats)
    assert error.reason == "corrupt-image"


@pytest.mark.parametrize(
    ("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF"), ("WEBP", "WEBP")]
)
def test_other_image_formats_are_unsupported(fmt: str, name: str) -> None:
    # GIVEN a readable image in a format Custom Labels does not take
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100)).save(buffer, fmt)
    # WHEN its header is read
    error = rejected(buffer.getvalue())
    # THEN it is skipped as unsupported-format, naming the format
    assert error.reason == "unsupported-format"
    assert name in error.detail


def test_jpeg_header_is_read_from_the_first_bytes_only() -> None:
    # GIVEN the first 2 KB of a large JPEG (what a ranged GET returns)
    whole = jpeg((3000, 2000), quality=95)
    assert len(whole) > 20_000
    # THEN the header and size are already known
    assert (read_header(whole[:2048]).width, read_header(whole[:2048]).height) == (3000, 2000)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def test_huge_dimensions_are_rejected_as_dimensions() -> None:
    # GIVEN a PNG header announcing 20000x20000 pixels (over Pillow's bomb limit)
    data = _png_header_only(20_000, 20_000)
    # WHEN it is checked
    with pytest.raises(ImageRejected) as caught:
        check_limits(read_header(data), len(data))
    # THEN it is skipped for its dimensions
    assert caught.value.reason == "image-dimensions"


# check_limits -------------------------------------------------------------------------------------


def header(width: int, height: int) -> ImageHeader:
    return ImageHeader("JPEG", width, height, 1)


@pytest.mark.parametrize(
    ("width", "height"),
    [(64, 64), (4096, 4096), (4096, 205), (1280, 64), (64, 1280), (640, 480)],
)
def test_sizes_within_the_limits_pass(width: int, height: int) -> None:
    # GIVEN sizes on the inclusive limits (64 and 4096 px, aspect exactly 20:1)
    # THEN nothing is rejected
    check_limits(header(width, height), MAX_BYTES)


@pytest.mark.parametrize(
    ("width", "height", "fragment"),
    [
        (63, 480, "63x480 px"),
        (640, 63, "640x63 px"),
        (4097, 480, "4097x480 px"),
        (480, 4097, "480x4097 px"),
        (1281, 64, "aspect ratio 20.0:1"),
        (2100, 100, "aspect ratio 21.0:1"),
        (100, 2100, "aspect ratio 21.0:1"),
    ],
)
def test_sizes_outside_the_limits_are_image_dimensions(width: int, height: int, fragment: str) -> None:
    # GIVEN a size past a side limit or the 20:1 aspect
    # WHEN the limits are checked
    # THEN it is rejected as image-dimensions, saying why
    with pytest.raises(ImageRejected) as caught:
        check_limits(header(width, height), 1000)
    assert caught.value.reason == "image-dimensions"
    assert fragment in caught.value.detail


def test_more_than_15_mb_is_image_too_large() -> None:
    # GIVEN a well-sized image of 15 MB plus one byte
    with pytest.raises(ImageRejected) as caught:
        check_limits(header(640, 480), MAX_BYTES + 1)
    # THEN it is too large, saying the limit; exactly 15 MB is fine
    assert caught.value.reason == "image-too-large"
    assert "15 MB" in caught.value.detail
    check_limits(header(640, 480), MAX_BYTES)


def test_displayed_size_decides_the_limits() -> None:
    # GIVEN a phone photo stored 48x120 with orientation 6 (displayed 120x48)
    data = jpeg((120, 48), orientation=6)
    # THEN it is too small whichever way round
    with pytest.raises(ImageRejected) as caught:
        check_limits(read_header(data), len(data))
    assert caught.value.reason == "image-dimensions"
    assert "120x48" in caught.value.detail


# The shared bad-image corpus ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[BadImageCase]]:
    folder = tmp_path_factory.mktemp("bad-images")
    return folder, generate_bad_corpus(folder)


def test_header_checks_agree_with_the_bad_image_corpus(corpus: tuple[Path, list[BadImageCase]]) -> None:
    # GIVEN the corpus of awkward and broken images with what the pipeline must do with each
    folder, cases = corpus
    checked = 0
    for case in cases:
        data = (folder / case.path).read_bytes()
        # WHEN its header is read and the limits checked
        try:
            found = read_header(data)
            check_limits(found, len(data))
        except ImageRejected as error:
            # THEN images skipped before inference are skipped for the corpus's reason
            assert case.expect == "skipped", f"{case.path}: {error}"
            assert error.reason == case.reason, case.path
        else:
            # THEN the rest pass with their displayed size; only the truncated JPEG fails later,
            # when Rekognition decodes the pixels
            assert (found.width, found.height) == case.display_size, case.path
            assert case.expect == "labeled" or case.path == "broken/truncated.jpg", case.path
        checked += 1
    assert checked == len(cases) > 30
