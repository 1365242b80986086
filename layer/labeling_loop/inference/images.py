"""Image facts read from the file header with Pillow, without decoding pixels.

Limits for DetectCustomLabels (docs/aws-facts.md §1.4): PNG or JPEG, S3 object at most 15 MB, 64-4096 px
per side, aspect ratio at most 20:1.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

MAX_BYTES = 15 * 1024 * 1024
MIN_SIDE = 64
MAX_SIDE = 4096
MAX_ASPECT = 20.0
EXIF_ORIENTATION = 0x0112
# First read; enough for the header of nearly every JPEG/PNG (EXIF is at most 64 KB).
HEADER_BYTES = 96 * 1024


class ImageRejected(Exception):
    """The image cannot be sent to the model; `reason` is a skip reason of the data contract."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int  # as displayed, after the EXIF orientation
    height: int
    orientation: int


def read_header(data: bytes) -> ImageHeader:
    """Size as displayed and EXIF orientation; raises ImageRejected, or EOFError/SyntaxError-like
    errors when `data` is too short to hold the header (the caller then reads the whole object)."""
    if not data:
        raise ImageRejected("corrupt-image", "the object is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            width, height = image.size
            orientation = 1
            if fmt == "JPEG":
                orientation = int(image.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except UnidentifiedImageError as error:
        raise ImageRejected("corrupt-image", f"not a readable image ({error})") from None
    except Image.DecompressionBombError as error:
        # Far beyond 4096 x 4096: say so, rather than calling a valid image corrupt.
        raise ImageRejected("image-dimensions", f"too many pixels ({error})") from None
    if fmt not in ("JPEG", "PNG"):
        raise ImageRejected(
            "unsupported-format", f"{fmt or 'unknown'} image; Custom Labels accepts PNG and JPEG"
        )
    if orientation not in range(1, 9):
        orientation = 1
    if orientation >= 5:  # 5-8 rotate by 90 degrees: displayed width is the stored height
        width, height = height, width
    return ImageHeader(fmt, width, height, orientation)


def check_limits(header: ImageHeader, size_bytes: int) -> None:
    if size_bytes > MAX_BYTES:
        raise ImageRejected("image-too-large", f"{size_bytes} bytes; the limit is {MAX_BYTES} bytes (15 MB)")
    short, long = sorted((header.width, header.height))
    if short < MIN_SIDE or long > MAX_SIDE:
        raise ImageRejected(
            "image-dimensions",
            f"{header.width}x{header.height} px; each side must be {MIN_SIDE}-{MAX_SIDE} px",
        )
    if long / short > MAX_ASPECT:
        raise ImageRejected("image-dimensions", f"aspect ratio {long / short:.1f}:1 exceeds 20:1")
