"""A corpus of awkward and broken images, each with what the pipeline must do with it.

Every case says whether the image must end in the manifest (`labeled`) or in `skipped.jsonl` with a
reason from docs/data-contracts.md (`skipped`). The expectations follow what the pipeline does:
it reads the header with Pillow (format, size, EXIF orientation; no pixel decoding) and checks the
Custom Labels limits (PNG/JPEG, <= 15 MB, 64-4096 px per side inclusive, aspect <= 20:1), then
Rekognition (emulated: a full Pillow decode) reads the pixels; a file that fails either read is a
`corrupt-image`. The format is judged by content, as Rekognition does, never by the extension.

`out_dir/truth.manifest` holds ground truth (detection format, one square per image, displayed
coordinates) for the labeled cases, so the emulated model has something to predict.
"""

from __future__ import annotations

import argparse
import io
import logging
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw

from localcloud.data.dataset import MANIFEST_NAME, detection_record, dumps_line
from localcloud.data.imaging import background, displayed_size, save_oriented_jpeg
from localcloud.data.truth import TruthBox

logger = logging.getLogger(__name__)

SkipReason = Literal["unsupported-format", "corrupt-image", "image-too-large", "image-dimensions"]

# 2400x2400 RGB noise is ~16.5 MiB: over 15 MB whether "MB" means 10^6 or 2^20 bytes.
OVERSIZE_SIDE = 2400
EXIF_DISPLAY_SIZE = (320, 200)  # landscape as displayed, so 5-8 are stored portrait
_SEED = "bad-images"


@dataclass(frozen=True)
class BadImageCase:
    """One file of the corpus. `path` is relative to the corpus folder, with `/` separators.
    `display_size` is (width, height) after the EXIF orientation, None when no header is readable."""

    path: str
    expect: Literal["labeled", "skipped"]
    reason: SkipReason | None
    display_size: tuple[int, int] | None
    note: str


@dataclass(frozen=True)
class _Written:
    case: BadImageCase
    boxes: list[TruthBox]


def marker_box(size: tuple[int, int]) -> TruthBox:
    """The one object of every labeled case: a square off-centre towards the top-left, so that any
    wrong flip or turn moves it (tests look for its colour at the box centre)."""
    width, height = size
    side = max(16, min(width, height) // 4)
    return TruthBox("square", width // 10, height // 8, side, side)


MARKER_COLOUR = (35, 85, 225)


def _scene(size: tuple[int, int], rng: random.Random) -> tuple[Image.Image, list[TruthBox]]:
    image = background(size, rng)
    box = marker_box(size)
    ImageDraw.Draw(image).rectangle(
        (box.left, box.top, box.left + box.width - 1, box.top + box.height - 1), fill=MARKER_COLOUR
    )
    return image, [box]


def _labeled(path: str, size: tuple[int, int], boxes: list[TruthBox], note: str) -> _Written:
    return _Written(BadImageCase(path, "labeled", None, size, note), boxes)


def _skipped(path: str, reason: SkipReason, size: tuple[int, int] | None, note: str) -> _Written:
    return _Written(BadImageCase(path, "skipped", reason, size, note), [])


def _target(out_dir: Path, path: str) -> Path:
    target = out_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


# ---------------------------------------------------------------------------------------------------
# Cases, one small function per family


def _exif_cases(out_dir: Path, rng: random.Random) -> list[_Written]:
    written = []
    for orientation in range(1, 9):
        path = f"exif/orientation-{orientation}.jpg"
        image, boxes = _scene(EXIF_DISPLAY_SIZE, rng)
        save_oriented_jpeg(image, _target(out_dir, path), orientation, quality=90)
        stored = displayed_size(EXIF_DISPLAY_SIZE, orientation)  # the swap is its own inverse
        written.append(
            _labeled(
                path,
                EXIF_DISPLAY_SIZE,
                boxes,
                f"EXIF Orientation={orientation}, stored {stored[0]}x{stored[1]}; displays "
                f"{EXIF_DISPLAY_SIZE[0]}x{EXIF_DISPLAY_SIZE[1]} with the square top-left. "
                "image_size and boxes must be in displayed coordinates"
                + (" (width/height swapped)" if orientation >= 5 else ""),
            )
        )
    return written


def _mode_cases(out_dir: Path, rng: random.Random) -> list[_Written]:
    size = (400, 300)
    image, boxes = _scene(size, rng)
    written = []

    path = "modes/cmyk.jpg"
    image.convert("CMYK").save(_target(out_dir, path), "JPEG", quality=90)
    written.append(
        _labeled(
            path,
            size,
            boxes,
            "CMYK JPEG (Adobe marker); Pillow decodes it. Real "
            "Rekognition's support for CMYK is not documented: labeled here",
        )
    )

    path = "modes/grayscale.jpg"
    image.convert("L").save(_target(out_dir, path), "JPEG", quality=90)
    written.append(
        _labeled(path, size, boxes, "8-bit grayscale JPEG (mode L); depth stays 3 in the manifest")
    )

    path = "modes/progressive.jpg"
    image.save(_target(out_dir, path), "JPEG", quality=90, progressive=True)
    written.append(_labeled(path, size, boxes, "progressive JPEG (SOF2)"))

    path = "modes/gray16.png"
    # Pillow writes 16-bit PNG only from I;16; scale 8-bit values to the full 16-bit range.
    image.convert("L").convert("I").point(lambda v: v * 257).convert("I;16").save(
        _target(out_dir, path), "PNG"
    )
    written.append(_labeled(path, size, boxes, "16-bit grayscale PNG (bit depth 16, Pillow mode I;16)"))

    path = "modes/palette-transparent.png"
    palette = image.quantize(colors=32)
    corner = palette.getpixel((size[0] - 1, size[1] - 1))  # make a background colour transparent
    palette.save(_target(out_dir, path), "PNG", transparency=corner)
    written.append(
        _labeled(
            path,
            size,
            boxes,
            "palette PNG (mode P, 32 colours) with a tRNS transparent index; flatten before decoding as RGB",
        )
    )

    path = "modes/rgba.png"
    rgba = image.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(_target(out_dir, path), "PNG")
    written.append(_labeled(path, size, boxes, "RGBA PNG with a partly transparent alpha channel"))
    return written


def _broken_cases(out_dir: Path, rng: random.Random) -> list[_Written]:
    written = []
    size = (640, 480)
    image, _ = _scene(size, rng)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    whole = buffer.getvalue()

    path = "broken/truncated.jpg"
    _target(out_dir, path).write_bytes(whole[: len(whole) // 2])
    written.append(
        _skipped(
            path,
            "corrupt-image",
            size,
            "JPEG cut at half its bytes: the header is intact, so Image.open and the size "
            "work, but a full decode raises 'image file is truncated' (unless a reader sets "
            "ImageFile.LOAD_TRUNCATED_IMAGES, which we never do)",
        )
    )

    path = "broken/zero-bytes.jpg"
    _target(out_dir, path).write_bytes(b"")
    written.append(_skipped(path, "corrupt-image", None, "empty object: no header to identify"))

    path = "broken/text.jpg"
    _target(out_dir, path).write_text("this is not an image, only a text file named .jpg\n", encoding="utf-8")
    written.append(
        _skipped(
            path,
            "corrupt-image",
            None,
            "plain text with a .jpg name: Pillow cannot identify it, so corrupt-image "
            "(unsupported-format is for images recognised as another format)",
        )
    )

    path = "formats/animation.gif"
    # Two different frames: Pillow merges identical ones, and an animation is the usual GIF.
    first = image.resize((160, 120))
    frames = [first.quantize(colors=64), first.transpose(Image.Transpose.FLIP_LEFT_RIGHT).quantize(colors=64)]
    frames[0].save(_target(out_dir, path), "GIF", save_all=True, append_images=frames[1:], duration=200)
    written.append(
        _skipped(path, "unsupported-format", (160, 120), "GIF: Custom Labels takes PNG and JPEG only")
    )

    path = "formats/png-named.jpg"
    small, boxes = _scene((320, 240), rng)
    small.save(_target(out_dir, path), "PNG")
    written.append(
        _labeled(
            path,
            (320, 240),
            boxes,
            "PNG bytes under a .jpg name: the format is judged by content, as Rekognition "
            "does, so it is labeled",
        )
    )

    path = "size/over-15mb.png"
    side = OVERSIZE_SIDE
    noise = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    # Level 0 stores the deflate blocks uncompressed: random pixels would not shrink anyway, and
    # storing is ~10x faster. The header stays at the front, as in any real oversized image.
    noise.save(_target(out_dir, path), "PNG", compress_level=0)
    written.append(
        _skipped(
            path,
            "image-too-large",
            (side, side),
            f"a valid {side}x{side} PNG of random noise, about {side * side * 3 / 2**20:.1f} MiB "
            "(> 15 MB whether MB means 10^6 or 2^20 bytes); its dimensions are fine, only its bytes are over",
        )
    )
    return written


def _dimension_cases(out_dir: Path, rng: random.Random) -> list[_Written]:
    written = []
    # Outside the limits. Flat or gradient pixels keep these cheap to encode however wide they are.
    for path, size, note in (
        (
            "dims/wider-than-4096.jpg",
            (4100, 300),
            "4100 px wide, over the 4096 px limit (aspect 13.7:1 is fine)",
        ),
        ("dims/under-64.png", (48, 120), "48 px wide, under the 64 px minimum"),
        ("dims/aspect-21.jpg", (2100, 100), "aspect 21:1 (> 20:1) with both sides within 64-4096 px"),
    ):
        image, _ = _scene(size, rng)
        image.save(_target(out_dir, path), "PNG" if path.endswith(".png") else "JPEG", quality=85)
        written.append(_skipped(path, "image-dimensions", size, note))

    path = "dims/exif-turned-under-64.jpg"
    image, _ = _scene((120, 48), rng)
    save_oriented_jpeg(image, _target(out_dir, path), 6, quality=85)
    written.append(
        _skipped(
            path,
            "image-dimensions",
            (120, 48),
            "stored 48x120 with Orientation=6, displayed 120x48: too small either way round",
        )
    )

    # On the limits, which are inclusive: these must be labeled.
    for path, size, note in (
        ("dims/exactly-4096.jpg", (4096, 512), "4096 px wide: exactly the maximum, inclusive"),
        ("dims/exactly-64.png", (64, 64), "64x64: exactly the minimum, inclusive"),
        ("dims/aspect-20.jpg", (1280, 64), "aspect exactly 20:1, inclusive"),
    ):
        image, boxes = _scene(size, rng)
        image.save(_target(out_dir, path), "PNG" if path.endswith(".png") else "JPEG", quality=85)
        written.append(_labeled(path, size, boxes, note))
    return written


def _name_cases(out_dir: Path, rng: random.Random) -> list[_Written]:
    written = []
    size = (256, 192)
    names: Sequence[tuple[str, str, str]] = (
        ("names/upper.JPG", "JPEG", "upper-case extension .JPG"),
        ("names/upper.JPEG", "JPEG", "upper-case extension .JPEG"),
        ("names/upper.PNG", "PNG", "upper-case extension .PNG"),
        ("names/lower.jpeg", "JPEG", "extension .jpeg"),
        ("names/with space.jpg", "JPEG", "space in the key (URL-encoded as + or %20 by some clients)"),
        ("names/a+b.jpg", "JPEG", "literal + in the key (S3 event notifications encode a space as +)"),
        ("names/100%.jpg", "JPEG", "literal % in the key: must never be URL-decoded"),
        ("names/a%20b.jpg", "JPEG", "literal %20 in the key: decoding it once would name another object"),
        ("names/café-猫.jpg", "JPEG", "non-ASCII key (NFC): UTF-8 in S3 and in the manifest"),
        ("names/dir with space/ünï.png", "PNG", "non-ASCII name inside a folder whose name has a space"),
    )
    for path, fmt, note in names:
        image, boxes = _scene(size, rng)
        image.save(_target(out_dir, path), fmt)
        written.append(_labeled(path, size, boxes, note))
    return written


_FAMILIES: tuple[Callable[[Path, random.Random], list[_Written]], ...] = (
    _exif_cases,
    _mode_cases,
    _broken_cases,
    _dimension_cases,
    _name_cases,
)


def generate_bad_corpus(out_dir: Path) -> list[BadImageCase]:
    """Write the corpus under out_dir and `out_dir/truth.manifest` for its labeled cases; return the
    cases in a fixed order. Deterministic: the same bytes on every call."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[_Written] = []
    for family in _FAMILIES:
        # One rng per family, so adding a case to one family does not change the others' pixels.
        written.extend(family(out_dir, random.Random(f"{_SEED}/{family.__name__}")))
    manifest = out_dir / MANIFEST_NAME
    with manifest.open("w", encoding="utf-8", newline="\n") as out:
        for item in written:
            if item.case.expect == "labeled":
                assert item.case.display_size is not None  # labeled cases always have a size
                out.write(
                    dumps_line(detection_record(item.case.path, item.case.display_size, item.boxes)) + "\n"
                )
    logger.info("wrote %d bad-image cases and %s", len(written), manifest)
    return [item.case for item in written]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud.data.bad_images",
        description="Write the corpus of awkward and broken images with its ground-truth manifest.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    args = parser.parse_args(argv)
    cases = generate_bad_corpus(args.out)
    for case in cases:
        outcome = case.expect if case.reason is None else f"{case.expect} ({case.reason})"
        print(f"{case.path}: {outcome}")
    print(f"wrote {len(cases)} cases under {args.out}; ground truth: {args.out / MANIFEST_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
