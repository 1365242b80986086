"""Thumbnails of the images where model and people disagreed most, the model's boxes and the
reviewed boxes drawn in two colours, as `data:` URIs so report.html needs nothing else to show them.

Boxes are pixels of the displayed image (docs/data-contracts.md), so the image is turned by its
EXIF orientation before drawing, as Rekognition, Ground Truth and Label Studio show it."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from labeling_loop.inference.images import MAX_BYTES
from labeling_loop.s3_uri import S3Uri

THUMBNAIL_PX = 360
PREDICTED_COLOUR = (230, 120, 0)  # orange: the model
REVIEWED_COLOUR = (0, 160, 80)  # green: people
JPEG_QUALITY = 72


def _draw(
    draw: ImageDraw.ImageDraw,
    boxes: Iterable[Mapping[str, Any]],
    scale: float,
    colour: tuple[int, int, int],
    width: int,
) -> None:
    for box in boxes:
        if not all(k in box for k in ("left", "top", "width", "height")):
            continue
        x0, y0 = box["left"] * scale, box["top"] * scale
        x1, y1 = (box["left"] + box["width"]) * scale, (box["top"] + box["height"]) * scale
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)


def thumbnail(s3: Any, item: Mapping[str, Any]) -> str | None:
    """A JPEG data URI of the image with the predicted (orange, thick) and reviewed (green, thin)
    boxes, or None when the image cannot be read."""
    ref = S3Uri.parse(str(item["source-ref"]))
    try:
        head = s3.head_object(Bucket=ref.bucket, Key=ref.key)
        if int(head.get("ContentLength", 0)) > MAX_BYTES:
            return None
        data = s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except Exception:  # an image that cannot be read has no thumbnail; the report says so
        return None
    scale = min(1.0, THUMBNAIL_PX / max(image.width, image.height))
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    _draw(draw, item.get("predicted") or [], scale, PREDICTED_COLOUR, 4)
    _draw(draw, item.get("reviewed") or [], scale, REVIEWED_COLOUR, 2)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
