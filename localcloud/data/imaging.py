"""Image helpers shared by the generators and the emulators: EXIF orientation (one rule for the
whole local cloud) and the muted, grainy pixels both generators draw on."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

ORIENTATION_TAG = 0x0112  # EXIF Orientation

# What PIL.ImageOps.exif_transpose applies to a stored image to display it, per orientation.
DISPLAY_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Every display transform is its own inverse except the two quarter turns.
_INVERSE_TRANSPOSE: dict[Image.Transpose, Image.Transpose] = {
    Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
    Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
}


# ---------------------------------------------------------------------------------------------------
# Orientation


def displayed_size(stored_size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Size as displayed: orientations 5-8 turn the picture a quarter, swapping width and height."""
    width, height = stored_size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def displayed_size_of(image: Image.Image) -> tuple[int, int]:
    """An opened image's displayed size, from its stored size and EXIF orientation (1 when absent)."""
    return displayed_size(image.size, image.getexif().get(ORIENTATION_TAG, 1))


def to_stored(displayed: Image.Image, orientation: int) -> Image.Image:
    """The pixels to store so that applying `orientation` shows `displayed`."""
    transpose = DISPLAY_TRANSPOSE.get(orientation)
    if transpose is None:
        return displayed
    return displayed.transpose(_INVERSE_TRANSPOSE.get(transpose, transpose))


def save_oriented_jpeg(displayed: Image.Image, path: Path, orientation: int | None, **save_args: Any) -> None:
    """Save a JPEG that displays as `displayed`; orientation None writes no EXIF at all."""
    if orientation is None:
        displayed.save(path, "JPEG", **save_args)
        return
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    # Bytes rather than the Exif object: accepted by every Pillow version we meet.
    to_stored(displayed, orientation).save(path, "JPEG", exif=exif.tobytes(), **save_args)


# ---------------------------------------------------------------------------------------------------
# Pixels


def _muted_colour(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    base = rng.randint(low, high)
    red, green, blue = (max(0, min(255, base + rng.randint(-18, 18))) for _ in range(3))
    return red, green, blue


def jitter_colour(colour: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    red, green, blue = (max(0, min(255, c + rng.randint(-15, 15))) for c in colour)
    return red, green, blue


def gradient(size: tuple[int, int], corners: Sequence[tuple[int, int, int]]) -> Image.Image:
    """A smooth blend between four corner colours (top-left, top-right, bottom-left, bottom-right):
    bilinear upscaling of a 2x2 image does the blending in C."""
    tiny = Image.new("RGB", (2, 2))
    tiny.putdata(list(corners))
    return tiny.resize(size, Image.Resampling.BILINEAR)


def add_grain(image: Image.Image, rng: random.Random, amount: float) -> Image.Image:
    """Sensor-like grain from the seeded rng (Image.effect_noise uses C rand(), which we cannot seed).
    The grain is drawn at half resolution in 2x2 blocks: it looks the same to a detector, and PNGs of
    it encode about three times faster than per-pixel noise."""
    width, height = image.size
    half = (max(1, (width + 1) // 2), max(1, (height + 1) // 2))
    grain = Image.frombytes("L", half, rng.randbytes(half[0] * half[1]))
    grain = grain.resize((half[0] * 2, half[1] * 2), Image.Resampling.NEAREST).crop((0, 0, width, height))
    return Image.blend(image, Image.merge("RGB", (grain, grain, grain)), amount)


def background(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A muted, grainy gradient, so that shapes are found by their form and colour, not by contrast
    with a flat field."""
    return add_grain(gradient(size, [_muted_colour(rng, 80, 190) for _ in range(4)]), rng, 0.12)
